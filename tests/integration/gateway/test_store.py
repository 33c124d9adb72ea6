"""The gateway's key store on SQLite and PostgreSQL: partners CSV, operator keys, lookups."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib

import pytest
import sqlalchemy as sa

from gateway.store import MIGRATIONS_DIR, PartnerStore, api_keys
from orderdesk.errors import InvalidArgument, NotFound
from orderdesk.masterdata import parse

PEPPER = b"a-test-pepper-of-at-least-32-characters"
HEADER = "partner_id,name,api_key,scopes\n"
PARTNERS = HEADER + "P-SHOP,Webshop,shop-key,orders returns\nP-ADMIN,Desk,admin-key,admin\n"


@pytest.fixture
async def store(make_database):
    store = PartnerStore(await make_database(MIGRATIONS_DIR), PEPPER)
    await store.import_partners(parse("partners", PARTNERS), named_keys=True)
    return store


async def test_imported_keys_resolve_to_their_partner(store):
    shop = await store.lookup_key("shop-key")
    assert (shop.partner_id, shop.scopes) == ("P-SHOP", frozenset({"orders", "returns"}))
    assert (await store.lookup_key("admin-key")).scopes == frozenset({"admin"})
    assert await store.lookup_key("nobody") is None


async def test_only_hashes_are_stored(store):
    async with store.db.read() as conn:
        stored = [r.key_hash for r in (await conn.execute(sa.select(api_keys.c.key_hash))).all()]
    assert sorted(stored) == sorted([store.hash("shop-key"), store.hash("admin-key")])


async def test_reimport_replaces_the_imported_key_and_scopes(store):
    await store.import_partners(parse("partners", HEADER + "P-SHOP,Webshop,shop-key-2,orders\n"))
    assert await store.lookup_key("shop-key") is None
    assert (await store.lookup_key("shop-key-2")).scopes == frozenset({"orders"})
    assert await store.import_partners(parse("partners", HEADER + "P-SHOP,Webshop,shop-key-2,orders\n")) == 1


async def test_another_partners_key_is_refused_and_nothing_is_imported(store):
    csv = HEADER + "P-NEW,New,fresh-key,orders\nP-EDI,EDI,shop-key,orders\n"
    with pytest.raises(InvalidArgument) as caught:
        await store.import_partners(parse("partners", csv))
    assert [v.field for v in caught.value.violations] == ["row 3.api_key"]
    assert (await store.lookup_key("shop-key")).partner_id == "P-SHOP"
    assert await store.lookup_key("fresh-key") is None  # all rows or none


async def test_operator_keys(store):
    key = await store.create_key("P-SHOP", "erp", ["orders"])
    assert key.startswith("odk_")
    assert (await store.lookup_key(key)).scopes == frozenset({"orders"})
    with pytest.raises(InvalidArgument):
        await store.create_key("P-SHOP", "too-much", ["admin"])
    with pytest.raises(NotFound):
        await store.create_key("P-NOBODY", "x", ["orders"])
    boot = await store.create_key("P-OPS", "alice", ["admin"], partner_name="Operations")
    assert (await store.lookup_key(boot)).partner_id == "P-OPS"
    assert [k.name for k in await store.list_keys("P-SHOP")] == ["csv-import", "erp"]
    # The CSV manages only its own key: a re-import leaves the operator's key alone...
    await store.import_partners(parse("partners", HEADER + "P-SHOP,Webshop,shop-key-3,returns\n"))
    # ...but narrows it to the partner's scopes.
    assert (await store.lookup_key(key)).scopes == frozenset()
    assert await store.revoke_keys("P-SHOP", "erp") == 1
    assert await store.lookup_key(key) is None


async def test_the_partners_csv_cannot_plant_a_key_outside_development(store):
    csv = HEADER + "P-NEW,New,chosen-key,orders\nP-OTHER,Other,,orders\n"
    with pytest.raises(InvalidArgument) as caught:
        await store.import_partners(parse("partners", csv), named_keys=False)
    ((violation),) = caught.value.violations
    assert violation.field == "row 2.api_key" and violation.reason == "key_not_generated"
    assert await store.lookup_key("chosen-key") is None
    # Without keys (or without the column) partners import; their keys are then generated.
    assert await store.import_partners(
        parse("partners", "partner_id,name,scopes\nP-NEW,New,orders\n"), named_keys=False
    )
    key = await store.create_key("P-NEW", "erp", ["orders"])
    assert (await store.lookup_key(key)).partner_id == "P-NEW"


async def test_a_key_stored_before_the_pepper_works_once_and_is_rehashed(store):
    """Migration 0002 marks the rows it finds `sha256`; the first use moves each to its peppered hash."""
    key = "odk_from-before-the-pepper"
    async with store.db.transaction() as tx:
        await tx.conn.execute(
            api_keys.insert().values(
                key_hash=hashlib.sha256(key.encode()).hexdigest(),
                partner_id="P-SHOP",
                name="old",
                scopes="orders",
                source="cli",
                created_at=dt.datetime.now(dt.UTC),
                hash_kind="sha256",
            )
        )
    assert (await store.lookup_key(key)).partner_id == "P-SHOP"
    async with store.db.read() as conn:
        row = (await conn.execute(sa.select(api_keys).where(api_keys.c.name == "old"))).one()
    assert (row.key_hash, row.hash_kind) == (store.hash(key), "hmac") and row.last_used_at is not None
    assert (await store.lookup_key(key)).key_name == "old"
    # The sha256 of a key is no longer a way in.
    assert await store.principal(hashlib.sha256(key.encode()).hexdigest()) is None


async def test_expiry_last_use_and_rotation_with_an_overlap(store):
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    short = await store.create_key("P-SHOP", "temp", ["orders"], expires_at=soon)
    assert (await store.lookup_key(short)).expires_at == soon
    await asyncio.sleep(1.1)
    assert await store.lookup_key(short) is None
    with pytest.raises(InvalidArgument):
        await store.create_key("P-SHOP", "past", ["orders"], expires_at=dt.datetime.now(dt.UTC))

    old = await store.create_key("P-SHOP", "erp", ["orders"])
    assert await store.lookup_key(old)
    (info,) = [k for k in await store.list_keys("P-SHOP") if k.name == "erp"]
    assert info.last_used_at and not info.expires_at
    new = await store.rotate_key("P-SHOP", "erp", dt.timedelta(hours=2))
    assert new != old and new.startswith("odk_")
    assert (await store.lookup_key(new)).scopes == frozenset({"orders"})
    overlap = (await store.lookup_key(old)).expires_at  # still works, until the overlap ends
    assert dt.timedelta(hours=1.9) < overlap - dt.datetime.now(dt.UTC) <= dt.timedelta(hours=2)
    newest = await store.rotate_key("P-SHOP", "erp", dt.timedelta(0))  # no overlap: both stop now
    assert await store.lookup_key(old) is None and await store.lookup_key(new) is None
    assert await store.lookup_key(newest)
    with pytest.raises(NotFound):
        await store.rotate_key("P-SHOP", "nothing", dt.timedelta(hours=1))


async def test_a_key_tied_to_a_warehouse_or_a_carrier_and_rotated_stays_tied(store):
    key = await store.create_key(
        "P-3PL", "ham-wms", ["fulfillment"], partner_name="Warehouse operator", warehouse="WH-HAM"
    )
    who = await store.lookup_key(key)
    assert who is not None and (who.warehouse, who.warehouse_scope, who.carrier) == ("WH-HAM", "WH-HAM", "")
    carrier_key = await store.create_key("P-3PL", "dhl-feed", ["fulfillment"], carrier="DHL")
    by_carrier = await store.lookup_key(carrier_key)
    assert by_carrier is not None and (by_carrier.carrier, by_carrier.warehouse_scope) == ("dhl", "")
    rotated = await store.rotate_key("P-3PL", "ham-wms", dt.timedelta(0))
    again = await store.lookup_key(rotated)
    assert again is not None and again.warehouse == "WH-HAM"
    listed = {k.name: (k.warehouse, k.carrier) for k in await store.list_keys("P-3PL")}
    assert listed["ham-wms"] == ("WH-HAM", "") and listed["dhl-feed"] == ("", "dhl")


async def test_a_carriers_signature_is_seen_once_within_the_window(store):
    keep = dt.timedelta(minutes=10)
    assert await store.first_sight("dhl", "a" * 64, keep)
    assert not await store.first_sight("dhl", "a" * 64, keep)  # a replay
    assert await store.first_sight("ups", "a" * 64, keep)  # another carrier's namespace
    assert await store.first_sight("dhl", "b" * 64, keep)
    assert await store.prune_signatures(dt.timedelta(0)) >= 3
    assert await store.first_sight(
        "dhl", "a" * 64, keep
    )  # forgotten after the window: its timestamp is stale
