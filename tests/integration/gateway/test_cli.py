"""The orderdesk CLI: imports over gRPC (fake services), keys in the store, held orders through the gateway."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from cli.main import main
from gateway.store import PartnerStore

DEMO = Path(__file__).resolve().parents[3] / "demo"


async def run(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


async def test_keys_create_prints_a_key_that_only_the_hash_remembers(tmp_path, monkeypatch, capsys):
    url = f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}"
    monkeypatch.setenv("ORDERDESK_GATEWAY_DATABASE_URL", url)
    assert await run("keys", "create", "--partner", "P-OPS", "--name", "alice", "--scopes", "admin") == 1
    assert "unknown partner" in capsys.readouterr().err
    assert (
        await run(
            "keys",
            "create",
            "--partner",
            "P-OPS",
            "--name",
            "alice",
            "--scopes",
            "admin",
            "--partner-name",
            "Operations",
        )
        == 0
    )
    key = capsys.readouterr().out.strip()
    store = await PartnerStore.open(url)
    try:
        assert (await store.lookup_key(key)).scopes == frozenset({"admin"})
    finally:
        await store.close()
    assert await run("keys", "list") == 0
    listing = capsys.readouterr().out
    assert "alice" in listing and key not in listing
    assert await run("keys", "create", "--partner", "P-OPS", "--name", "x", "--scopes", "orders,magic") == 1
    assert "magic" in capsys.readouterr().err


async def test_import_demo_loads_every_kind_in_order(fakes, tmp_path, monkeypatch, capsys):
    for name in ("intake", "inventory", "shipping", "orders", "returns"):
        monkeypatch.setenv(f"ORDERDESK_{name.upper()}_ADDR", fakes.address)
    monkeypatch.setenv("ORDERDESK_GATEWAY_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}")
    assert await run("import-demo", "--dir", str(DEMO)) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[-1] for line in out] == [
        "warehouses",
        "calendars",
        "lanes",
        "customers",
        "products",
        "stock",
        "partners",
    ]
    assert fakes.inventory.imports == [
        "warehouses",
        "calendars",
        "lanes",
        "products",
        "stock",
    ] and fakes.shipping.imports == ["warehouses", "calendars", "lanes"]
    assert [r.kind for r in fakes.intake.imports] == [
        "warehouses",
        "calendars",
        "lanes",
        "customers",
        "products",
    ]


async def test_import_reports_bad_rows_and_unreachable_services(tmp_path, monkeypatch, capsys):
    bad = tmp_path / "partners.csv"
    bad.write_text("partner_id,name,api_key,scopes\nP-1,One,k1,orders wizardry\n")
    monkeypatch.setenv("ORDERDESK_GATEWAY_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}")
    assert await run("import", "partners", str(bad)) == 1
    assert "row 2.scopes" in capsys.readouterr().err
    monkeypatch.setenv("ORDERDESK_INVENTORY_ADDR", "127.0.0.1:1")
    monkeypatch.setenv("ORDERDESK_RPC_TIMEOUT", "0.5")
    monkeypatch.setattr("cli.main.CONNECT_TIMEOUT", 0.5)
    assert await run("import", "stock", str(DEMO / "stock.csv")) == 1
    assert "did not answer" in capsys.readouterr().err
    assert await run("import", "stock", str(tmp_path / "missing.csv")) == 1


async def test_orders_commands_go_through_the_gateway(gateway, fakes, monkeypatch, capsys):
    monkeypatch.setenv("ORDERDESK_GATEWAY_URL", gateway.url)
    monkeypatch.delenv("ORDERDESK_API_KEY", raising=False)
    assert await run("orders", "list") == 1
    assert "ORDERDESK_API_KEY" in capsys.readouterr().err

    monkeypatch.setenv("ORDERDESK_API_KEY", "admin-key")
    assert await run("orders", "list", "--status", "on_hold") == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split()[:2] == ["ORDER", "STATUS"] and "ORD-EDI" in table
    assert fakes.orders.list_requests[-1].status == "on_hold"

    # The search: each option becomes its query parameter, and the orders service gets it.
    assert (
        await run(
            "orders", "search", "--ref", "4711", "--customer", "C0001", "--sku", "SKU-1", "--channel", "csv",
            "--partner", "P-SHOP", "--from", "2026-11-01", "--to", "2026-11-30", "--order-by", "priority",
        )
        == 0
    )  # fmt: skip
    asked = fakes.orders.list_requests[-1]
    assert (asked.external_ref, asked.customer_id, asked.sku, asked.channel, asked.partner_id) == (
        "4711",
        "C0001",
        "SKU-1",
        "csv",
        "P-SHOP",
    )
    assert (asked.created_from, asked.created_to, asked.order_by) == ("2026-11-01", "2026-11-30", "priority")
    assert capsys.readouterr().out.splitlines()[0].split()[:2] == ["ORDER", "STATUS"]

    assert await run("orders", "show", "ORD-SHOP", "--json") == 0
    assert json.loads(capsys.readouterr().out)["order_id"] == "ORD-SHOP"
    assert await run("orders", "show", "ORD-SHOP") == 0
    assert "SKU-1" in capsys.readouterr().out

    assert await run("orders", "reject", "ORD-EDI", "--reason", "wrong price") == 0
    assert capsys.readouterr().out.strip() == "ORD-EDI is on_hold"  # what the fake answers
    assert fakes.orders.decisions[-1][1].actor.reason == "wrong price"

    assert await run("orders", "approve", "ORD-EDI", "--note", "ok") == 1  # the fake reports a lost race
    assert "409 Conflict" in capsys.readouterr().err
    assert await run("orders", "show", "NOPE") == 1
    assert "404 Not Found: order NOPE not found" in capsys.readouterr().err
    assert await run("orders", "list", "--status", "bogus") == 1
    assert "status: not an order status" in capsys.readouterr().err

    monkeypatch.setenv("ORDERDESK_API_KEY", "shop-key")
    assert await run("orders", "approve", "ORD-SHOP") == 1
    assert "403" in capsys.readouterr().err
