"""The gateway's key store on SQLite and PostgreSQL: partners CSV, operator keys, lookups."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from gateway.auth import hash_key
from gateway.store import MIGRATIONS_DIR, PartnerStore, api_keys
from orderdesk.errors import InvalidArgument, NotFound
from orderdesk.masterdata import parse

HEADER = "partner_id,name,api_key,scopes\n"
PARTNERS = HEADER + "P-SHOP,Webshop,shop-key,orders returns\nP-ADMIN,Desk,admin-key,admin\n"


@pytest.fixture
async def store(make_database):
    store = PartnerStore(await make_database(MIGRATIONS_DIR))
    await store.import_partners(parse("partners", PARTNERS))
    return store


async def test_imported_keys_resolve_to_their_partner(store):
    shop = await store.principal(hash_key("shop-key"))
    assert (shop.partner_id, shop.scopes) == ("P-SHOP", frozenset({"orders", "returns"}))
    assert (await store.principal(hash_key("admin-key"))).scopes == frozenset({"admin"})
    assert await store.principal(hash_key("nobody")) is None


async def test_only_hashes_are_stored(store):
    async with store.db.read() as conn:
        stored = [r.key_hash for r in (await conn.execute(sa.select(api_keys.c.key_hash))).all()]
    assert sorted(stored) == sorted([hash_key("shop-key"), hash_key("admin-key")])


async def test_reimport_replaces_the_imported_key_and_scopes(store):
    await store.import_partners(parse("partners", HEADER + "P-SHOP,Webshop,shop-key-2,orders\n"))
    assert await store.principal(hash_key("shop-key")) is None
    assert (await store.principal(hash_key("shop-key-2"))).scopes == frozenset({"orders"})
    assert await store.import_partners(parse("partners", HEADER + "P-SHOP,Webshop,shop-key-2,orders\n")) == 1


async def test_another_partners_key_is_refused_and_nothing_is_imported(store):
    csv = HEADER + "P-NEW,New,fresh-key,orders\nP-EDI,EDI,shop-key,orders\n"
    with pytest.raises(InvalidArgument) as caught:
        await store.import_partners(parse("partners", csv))
    assert [v.field for v in caught.value.violations] == ["row 3.api_key"]
    assert (await store.principal(hash_key("shop-key"))).partner_id == "P-SHOP"
    assert await store.principal(hash_key("fresh-key")) is None  # all rows or none


async def test_operator_keys(store):
    key = await store.create_key("P-SHOP", "erp", ["orders"])
    assert key.startswith("odk_")
    assert (await store.principal(hash_key(key))).scopes == frozenset({"orders"})
    with pytest.raises(InvalidArgument):
        await store.create_key("P-SHOP", "too-much", ["admin"])
    with pytest.raises(NotFound):
        await store.create_key("P-NOBODY", "x", ["orders"])
    boot = await store.create_key("P-OPS", "alice", ["admin"], partner_name="Operations")
    assert (await store.principal(hash_key(boot))).partner_id == "P-OPS"
    assert [k.name for k in await store.list_keys("P-SHOP")] == ["csv-import", "erp"]
    # The CSV manages only its own key: a re-import leaves the operator's key alone...
    await store.import_partners(parse("partners", HEADER + "P-SHOP,Webshop,shop-key-3,returns\n"))
    # ...but narrows it to the partner's scopes.
    assert (await store.principal(hash_key(key))).scopes == frozenset()
    assert await store.revoke_keys("P-SHOP", "erp") == 1
    assert await store.principal(hash_key(key)) is None
