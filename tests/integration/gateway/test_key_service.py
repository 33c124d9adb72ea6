"""The gateway's API-key admin service (gateway/keyservice.py) over real gRPC on a real store (SQLite and
PostgreSQL): what the console's API keys page calls instead of opening the gateway's database."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest

from devtools import localservers
from gateway import keyservice
from gateway.auth import KeyCache
from gateway.store import MIGRATIONS_DIR, PartnerStore
from orderdesk import rpc, tls
from orderdesk.masterdata import parse
from orderdesk.v1 import apikeys_pb2, apikeys_pb2_grpc, common_pb2

PEPPER = b"a-test-pepper-of-at-least-32-characters"
PARTNERS = (
    "partner_id,name,api_key,scopes\nP-SHOP,Webshop,shop-key,orders returns\nP-ADMIN,Desk,admin-key,admin\n"
)
ACTOR = common_pb2.Actor(id="desk:ann@acme.example (admin)", reason="test")


@pytest.fixture
async def service(make_database):
    store = PartnerStore(await make_database(MIGRATIONS_DIR), PEPPER)
    await store.import_partners(parse("partners", PARTNERS), named_keys=True)
    addr = f"127.0.0.1:{localservers.free_port()}"
    cache = KeyCache()
    server = await keyservice.serve(addr, store, cache)
    channel = tls.aio_channel(addr, tls.TlsSettings(), peer="gateway")  # plaintext: no TLS configured here
    yield store, apikeys_pb2_grpc.ApiKeysServiceStub(channel)
    await channel.close()
    await server.stop(grace=None)


def violations(error: grpc.RpcError) -> dict[str, str]:
    failure = rpc.describe(error)
    return {v.field: v.reason for v in failure.violations}


async def test_a_key_made_works_is_listed_with_its_maker_and_stops_when_revoked(service):
    store, keys = service
    made = await keys.CreateApiKey(
        apikeys_pb2.CreateApiKeyRequest(partner_id="P-SHOP", name="shop-prod", scopes=["orders"], actor=ACTOR)
    )
    assert made.secret.startswith("odk_")
    who = await store.lookup_key(made.secret)
    assert (who.partner_id, who.scopes) == ("P-SHOP", frozenset({"orders"}))
    listing = await keys.ListApiKeys(apikeys_pb2.ListApiKeysRequest())
    (row,) = [k for k in listing.keys if k.name == "shop-prod"]
    assert (row.partner_id, list(row.scopes), row.source) == ("P-SHOP", ["orders"], "console")
    assert row.created_by == ACTOR.id and row.partner_name == "Webshop" and row.expires_at == ""
    assert made.secret not in str(listing)
    assert {p.partner_id: list(p.scopes) for p in listing.partners} == {
        "P-ADMIN": ["admin"],
        "P-SHOP": ["orders", "returns"],
    }

    with pytest.raises(grpc.RpcError) as taken:  # one name once per partner
        await keys.CreateApiKey(
            apikeys_pb2.CreateApiKeyRequest(
                partner_id="P-SHOP", name="shop-prod", scopes=["orders"], actor=ACTOR
            )
        )
    assert violations(taken.value) == {"name": "name_taken"}

    revoked = await keys.RevokeApiKey(
        apikeys_pb2.RevokeApiKeyRequest(partner_id="P-SHOP", name="shop-prod", actor=ACTOR)
    )
    assert revoked.revoked == 1
    assert await store.lookup_key(made.secret) is None
    with pytest.raises(grpc.RpcError) as gone:
        await keys.RevokeApiKey(
            apikeys_pb2.RevokeApiKeyRequest(partner_id="P-SHOP", name="shop-prod", actor=ACTOR)
        )
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND


async def test_bad_fields_are_each_named_and_nothing_is_made(service):
    store, keys = service
    before = await store.list_keys()
    yesterday = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).date().isoformat()
    with pytest.raises(grpc.RpcError) as bad:
        await keys.CreateApiKey(
            apikeys_pb2.CreateApiKeyRequest(
                partner_id="P-SHOP",
                name="shop prod!",
                scopes=["everything"],
                expires_at=yesterday,
                actor=ACTOR,
            )
        )
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(bad.value) == {
        "name": "invalid",
        "scopes": "unknown_scope",
        "expires_at": "in_the_past",
    }
    for asked, field in (
        (dict(partner_id="P-NOBODY", name="x", scopes=["orders"]), "partner_id"),
        (dict(partner_id="P-SHOP", name="x", scopes=["admin"]), "scopes"),  # more than the partner has
        (dict(partner_id="P-SHOP", name="x", scopes=[]), "scopes"),
        (dict(partner_id="P-SHOP", name="x", scopes=["orders"], expires_at="soon"), "expires_at"),
    ):
        with pytest.raises(grpc.RpcError) as refused:
            await keys.CreateApiKey(apikeys_pb2.CreateApiKeyRequest(**asked, actor=ACTOR))
        assert list(violations(refused.value)) == [field], asked
    assert await store.list_keys() == before


async def test_an_expiry_date_holds_to_the_end_of_that_day(service):
    store, keys = service
    day = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).date()
    made = await keys.CreateApiKey(
        apikeys_pb2.CreateApiKeyRequest(
            partner_id="P-SHOP",
            name="trial",
            scopes=["orders", "returns"],
            expires_at=day.isoformat(),
            actor=ACTOR,
        )
    )
    assert made.key.expires_at.startswith((day + dt.timedelta(days=1)).isoformat())
