"""The floor: the same process hops and database commits as an order's path, with no business logic.

Real path:  HTTP -> gateway -gRPC-> intake (1 commit) -gRPC-> orders (1 commit, + outbox row)
Floor path: HTTP -> floor-http -gRPC-> floor-hop A (1 commit) -gRPC-> floor-hop B (1 commit)

The gateway sends the single orders that arrive while its call to intake is in flight together, as one
SubmitOrders call (gateway.gathering: a second call goes at once when a full one is waiting), and so does
floor-http: one HopGroup call to hop A with them, with the same limits. Intake
enters a call's orders as one group (one commit, one CreateOrders call for the group), and so does hop A: a
group's rows in one commit, one call to hop B with all of them, one commit there. (Hop A still groups single
Hop calls too, as intake does its SubmitOrder calls.)

    python -m bench.floor hop  --listen 127.0.0.1:P --db URL [--next 127.0.0.1:Q]
    python -m bench.floor http --listen 127.0.0.1:P --next 127.0.0.1:Q
"""

from __future__ import annotations

import argparse
import struct
import uuid

import grpc
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Column, Integer, LargeBinary, MetaData, String, Table

from gateway.gathering import GATHER_IN_FLIGHT, GATHER_LIMIT
from orderdesk import ids, tls
from orderdesk.db import Database
from orderdesk.grouping import GroupCommit
from orderdesk.runtime import run

METHOD = "/bench.Floor/Hop"
GROUP_METHOD = "/bench.Floor/HopGroup"  # a group's payloads in one call (pack / unpack)
PEER = "localhost"  # every floor process shows the same certificate (ORDERDESK_TLS_*), named localhost too
metadata = MetaData()
rows = Table(
    "floor_rows",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(64), nullable=False, unique=True),
    Column("payload", LargeBinary, nullable=False),
)


def _identity(b: bytes) -> bytes:
    return b


def pack(payloads: list[bytes]) -> bytes:
    return b"".join(struct.pack("!I", len(p)) + p for p in payloads)


def unpack(data: bytes) -> list[bytes]:
    payloads, at = [], 0
    while at < len(data):
        (size,) = struct.unpack_from("!I", data, at)
        payloads.append(data[at + 4 : at + 4 + size])
        at += 4 + size
    return payloads


async def hop(listen: str, db_url: str, next_addr: str | None) -> None:
    db = Database(db_url)
    async with db.begin() as conn:
        await conn.run_sync(metadata.create_all)
    settings = tls.TlsSettings.from_env()
    downstream = (
        tls.aio_channel(next_addr, settings, peer=PEER).unary_unary(
            GROUP_METHOD, request_serializer=_identity, response_deserializer=_identity
        )
        if next_addr
        else None
    )

    async def store(payloads: list[bytes]) -> None:
        async with db.transaction() as tx:
            # Keys that sort by time, as the real path's order and event ids do (orderdesk.ids).
            await tx.conn.execute(rows.insert(), [{"key": ids.uuid7().hex, "payload": p} for p in payloads])

    async def forward(payloads: list[bytes]) -> list[bytes | BaseException]:
        await store(payloads)
        assert downstream is not None
        await downstream(pack(payloads), timeout=5)
        return list(payloads)

    group: GroupCommit[bytes, bytes] = GroupCommit(forward)

    async def handle(request: bytes, context) -> bytes:
        if downstream is not None:
            return await group.submit(request)
        await store([request])
        return request

    async def handle_group(request: bytes, context) -> bytes:
        payloads = unpack(request)
        if downstream is not None:
            return pack(await forward(payloads))  # type: ignore[arg-type]
        await store(payloads)
        return b""

    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "bench.Floor",
                {
                    "Hop": grpc.unary_unary_rpc_method_handler(handle, _identity, _identity),
                    "HopGroup": grpc.unary_unary_rpc_method_handler(handle_group, _identity, _identity),
                },
            )
        ]
    )
    tls.add_port(server, listen, settings)
    await server.start()
    await server.wait_for_termination()


def http(listen: str, next_addr: str) -> None:
    import uvicorn

    app = FastAPI()
    state: dict = {}

    async def send(bodies: list[bytes]) -> list[bytes | BaseException]:
        if "stub" not in state:
            state["stub"] = tls.aio_channel(next_addr, tls.TlsSettings.from_env(), peer=PEER).unary_unary(
                GROUP_METHOD, request_serializer=_identity, response_deserializer=_identity
            )
        return list(unpack(await state["stub"](pack(bodies), timeout=5)))

    gathered: GroupCommit[bytes, bytes] = GroupCommit(send, limit=GATHER_LIMIT, in_flight=GATHER_IN_FLIGHT)

    @app.post("/v1/orders", status_code=201)
    async def create(request: Request):
        try:
            await gathered.submit(await request.body())
        except grpc.RpcError as exc:  # as the gateway answers a hop that is down (the start's probes meet it)
            return JSONResponse({"title": f"hop: {exc.code().name}"}, status_code=503)
        return JSONResponse({"order_id": uuid.uuid4().hex, "status": "confirmed"}, status_code=201)

    host, port = listen.rsplit(":", 1)
    uvicorn.run(app, host=host, port=int(port), log_level="warning", loop="uvloop", http="httptools")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("hop", "http"))
    parser.add_argument("--listen", required=True)
    parser.add_argument("--db")
    parser.add_argument("--next")
    args = parser.parse_args()
    if args.mode == "hop":
        run(lambda: hop(args.listen, args.db, args.next))
    else:
        http(args.listen, args.next)


if __name__ == "__main__":
    main()
