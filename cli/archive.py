"""`orderdesk archive …`: the archive of closed orders (README "Archive"), straight from the orders service.

    orderdesk archive run [--after-days N] [--json]      a pass now (as the job does it, a batch at a time)
    orderdesk archive export --from 2026-01-01 --to 2026-03-31 [--by archived|created]
                             --format jsonl|csv [--out FILE]

Operator tools like the imports: they dial orders over gRPC (ORDERDESK_ORDERS_ADDR / _TARGET), no API key.
The export streams (OrdersService.ExportArchive): memory stays flat however long the period; with --out it
writes FILE.partial and renames it to FILE only once the last order arrived, so a file that exists is whole.

JSON lines: one archived order per line, the order as the Order message with the field names of
protos/orderdesk/v1/orders.proto (every field present, numbers as numbers, times RFC 3339 UTC), plus
`created_at`, `closed_at` and `archived_at`. CSV: one row per order line, the order's columns repeated
(CSV_COLUMNS); the history, changes and exceptions are in the JSON lines only.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cli.main import CONNECT_TIMEOUT, CliError, table

RUN_TIMEOUT = 3600.0  # a first pass over years of orders takes minutes
EXPORT_TIMEOUT = 24 * 3600.0

CSV_COLUMNS = (
    "order_id",
    "partner_id",
    "channel",
    "external_ref",
    "customer_id",
    "status",
    "currency",
    "total_amount",
    "payment_terms",
    "requested_delivery_date",
    "ship_to_country",
    "ship_to_postal_code",
    "created_at",
    "closed_at",
    "archived_at",
    "line_no",
    "sku",
    "quantity",
    "unit_price",
    "allocated_quantity",
    "shipped_quantity",
    "delivered_quantity",
    "returned_quantity",
)


# --- formats (no I/O) ------------------------------------------------------------------------------
def _instant(ts) -> str:
    return ts.ToJsonString() if ts.seconds or ts.nanos else ""  # as protobuf writes the history's times


def _numbers(value: Any, descriptor) -> Any:
    """Protobuf's JSON mapping writes 64-bit integers as strings; a data warehouse wants numbers."""
    from google.protobuf.descriptor import FieldDescriptor

    if not isinstance(value, dict):
        return value
    for name, field in descriptor.fields_by_name.items():
        if name not in value:
            continue
        if field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.full_name != (
            "google.protobuf.Timestamp"
        ):
            items = value[name] if isinstance(value[name], list) else [value[name]]
            for item in items:
                _numbers(item, field.message_type)
        elif field.type in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT64):
            value[name] = [int(v) for v in value[name]] if isinstance(value[name], list) else int(value[name])
    return value


def jsonl_line(archived) -> str:
    """One orders_pb2.ArchivedOrder as a JSON line: the order's fields, then when it was created, closed
    and archived."""
    from google.protobuf import json_format

    order = json_format.MessageToDict(
        archived.order, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    record = {
        **_numbers(order, archived.order.DESCRIPTOR),
        "created_at": _instant(archived.created_at),
        "closed_at": _instant(archived.closed_at),
        "archived_at": _instant(archived.archived_at),
    }
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


def csv_rows(archived) -> list[list[object]]:
    """One row per order line (CSV_COLUMNS)."""
    o = archived.order
    head = [
        o.order_id,
        o.partner_id,
        o.channel,
        o.external_ref,
        o.customer_id,
        o.status,
        o.currency,
        o.total_amount,
        o.payment_terms,
        o.requested_delivery_date,
        o.ship_to.country,
        o.ship_to.postal_code,
        _instant(archived.created_at),
        _instant(archived.closed_at),
        _instant(archived.archived_at),
    ]
    return [
        [
            *head,
            n,
            line.sku,
            line.quantity,
            line.unit_price,
            line.allocated_quantity,
            line.shipped_quantity,
            line.delivered_quantity,
            line.returned_quantity,
        ]
        for n, line in enumerate(o.lines, start=1)
    ]


def csv_text(rows: Iterable[list[object]], *, header: bool = False) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(CSV_COLUMNS)
    writer.writerows(rows)
    return out.getvalue()


# --- talking to orders ----------------------------------------------------------------------------
async def _orders_call(call):
    """`call(stub)` on the orders service; its failures as one clear CliError."""
    import grpc

    from orderdesk import rpc, tls
    from orderdesk.config import Settings, grpc_target
    from orderdesk.v1 import orders_pb2_grpc

    settings = Settings.from_env("cli")
    address = settings.peers["orders"]
    target, options = grpc_target(address)
    async with tls.aio_channel(target, settings.tls, peer="orders", options=options) as channel:
        try:
            await asyncio.wait_for(channel.channel_ready(), CONNECT_TIMEOUT)
        except TimeoutError:
            raise CliError(f"orders at {address} did not answer; is it running?") from None
        try:
            return await call(orders_pb2_grpc.OrdersServiceStub(channel))
        except grpc.RpcError as exc:
            failure = rpc.describe(exc)
            raise CliError(
                f"orders refused: {failure.message}" if failure.message else f"orders: {failure.code.name}",
                [f"{v.field}: {v.description}" for v in failure.violations],
            ) from None


def cmd_run(args: argparse.Namespace) -> int:
    from orderdesk.v1 import orders_pb2

    request = orders_pb2.RunArchiveRequest()
    if args.after_days is not None:
        request.after_days = args.after_days
    done = asyncio.run(_orders_call(lambda stub: stub.RunArchive(request, timeout=RUN_TIMEOUT)))
    figures = {
        "archived": done.archived,
        "skipped": done.skipped,
        "batches": done.batches,
        "seconds": round(done.seconds, 3),
    }
    if args.json:
        print(json.dumps(figures))
    else:
        print(table(("ARCHIVED", "SKIPPED (CHANGED)", "BATCHES", "SECONDS"), [list(figures.values())]))
    return 0


async def export(args: argparse.Namespace, out) -> int:
    from orderdesk.v1 import orders_pb2

    request = orders_pb2.ExportArchiveRequest(**{"from": args.from_}, to=args.to, by=args.by)
    count = 0

    async def stream(stub) -> None:
        nonlocal count
        if args.format == "csv":
            out.write(csv_text([], header=True))
        async for chunk in stub.ExportArchive(request, timeout=EXPORT_TIMEOUT):
            if args.format == "csv":
                out.write(csv_text(row for archived in chunk.orders for row in csv_rows(archived)))
            else:
                out.write("".join(jsonl_line(archived) for archived in chunk.orders))
            count += len(chunk.orders)

    await _orders_call(stream)
    return count


def cmd_export(args: argparse.Namespace) -> int:
    if not args.out:
        count = asyncio.run(export(args, sys.stdout))
        print(f"{count} archived order(s) exported", file=sys.stderr)
        return 0
    final = Path(args.out)
    partial = final.with_name(final.name + ".partial")
    try:
        with open(partial, "w", encoding="utf-8", newline="") as out:
            count = asyncio.run(export(args, out))
        os.replace(partial, final)
    except OSError as exc:
        raise CliError(f"cannot write {args.out}: {exc.strerror}") from None
    finally:
        partial.unlink(missing_ok=True)
    print(f"{count} archived order(s) exported to {final}", file=sys.stderr)
    return 0


def register(sub) -> None:
    archive = sub.add_parser(
        "archive", help="the archive of closed orders: a pass now, an export for a data warehouse"
    ).add_subparsers(dest="archive_command", required=True, metavar="ACTION")
    run = archive.add_parser(
        "run", help="archive now the closed orders old enough (ORDERDESK_ARCHIVE_AFTER_DAYS)"
    )
    run.add_argument(
        "--after-days",
        type=float,
        default=None,
        help="instead of the setting: closed orders unchanged for this many days (0: every closed order)",
    )
    run.add_argument("--json", action="store_true", help="machine-readable output")
    run.set_defaults(run=cmd_run)
    exp = archive.add_parser("export", help="the archived orders of a period, as JSON lines or CSV")
    exp.add_argument(
        "--from", dest="from_", metavar="FROM", required=True, help="YYYY-MM-DD (from 00:00 UTC) or RFC 3339"
    )
    exp.add_argument("--to", required=True, help="YYYY-MM-DD (that day included) or RFC 3339 (excluded)")
    exp.add_argument(
        "--by",
        choices=("archived", "created"),
        default="archived",
        help="which time falls in the period: when archived (default: incremental loads) or when created",
    )
    exp.add_argument("--format", choices=("jsonl", "csv"), required=True)
    exp.add_argument("--out", default="", help="a file (default: standard output)")
    exp.set_defaults(run=cmd_export)
