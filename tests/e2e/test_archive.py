"""The archive as an operator and a partner meet it (its own suite: archiving every closed order would
change what other end-to-end tests read): a partner's order cancelled, the desk's numbers read,
`orderdesk archive run` moves it, then the partner still reads it by id and finds it by its reference
(archived: true; another partner gets 404 and finds nothing), the numbers are the same, and `orderdesk archive export` gives it back as JSON lines and CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import subprocess
import sys
import uuid

import pytest

from devtools.devstack import ROOT, Stack
from devtools.http import client_session
from tests.e2e.conftest import KEYS, _eventually, running_stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def suite(tmp_path_factory, request):
    """Its own NATS and databases (PostgreSQL with ORDERDESK_TEST_E2E_BACKEND=postgresql, as the others)."""
    folder = tmp_path_factory.mktemp("archive")
    async with running_stack(
        request, lambda urls: Stack(data_dir=folder, database_urls=urls), prefix="odt_arc"
    ) as stack:
        yield stack


def orderdesk(stack: Stack, *args: str, status: int = 0) -> str:
    """The CLI's standard output (its standard error when it is expected to fail with `status`)."""
    done = subprocess.run(
        [sys.executable, "-m", "cli", *args],
        env=stack.env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == status, done.stderr
    return done.stdout if status == 0 else done.stderr


async def test_an_archived_order_is_still_read_counted_and_exported(suite, tmp_path):
    base = suite.gateway_url
    today = dt.datetime.now(dt.UTC).date().isoformat()
    ref = f"PO-ARC-{uuid.uuid4().hex[:8]}"

    def auth(who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {KEYS[who]}"}

    async with client_session(total=60) as http:

        async def call(method: str, path: str, who: str, **kw):
            async with http.request(
                method, base + path, headers={**auth(who), **kw.pop("headers", {})}, **kw
            ) as r:
                return r.status, await r.json(content_type=None)

        body = {
            "external_ref": ref,
            "customer_id": "C0001",
            "payment_terms": "NET30",
            "lines": [{"sku": "BRK-001", "quantity": 2, "unit_price": "31.57"}],
        }
        status, placed = await call("POST", "/v1/orders", "shop", json=body, headers={"Idempotency-Key": ref})
        assert status == 201, placed
        order_id = placed["order_id"]
        status, cancelled = await call(
            "POST", f"/v1/orders/{order_id}/cancel", "shop", json={"reason": "customer_request: test"}
        )
        assert status == 200 and cancelled["status"] == "cancelled", cancelled
        # Another order after it: the newest order always stays hot (services/orders/archive/store.py).
        later = {**body, "external_ref": ref + "-2"}
        status, second = await call(
            "POST", "/v1/orders", "shop", json=later, headers={"Idempotency-Key": ref + "-2"}
        )
        assert status == 201

        async def settled():  # reserved: the desk's numbers no longer move while the test reads them
            _, now = await call("GET", f"/v1/orders/{second['order_id']}", "shop")
            return now["status"] == "allocated"

        await _eventually(settled)
        status, hot = await call("GET", f"/v1/orders/{order_id}", "shop")
        assert status == 200 and hot["archived"] is False
        status, kpis_before = await call("GET", f"/v1/reports/kpis?from={today}&to={today}", "admin")
        assert status == 200 and kpis_before["total"]["orders_cancelled"] >= 1, kpis_before

        ran = json.loads(orderdesk(suite, "archive", "run", "--after-days", "0", "--json"))
        assert ran["archived"] >= 1 and ran["skipped"] == 0, ran

        status, archived = await call("GET", f"/v1/orders/{order_id}", "shop")
        assert status == 200 and archived["archived"] is True, archived
        assert {k: v for k, v in archived.items() if k != "archived"} == {
            k: v for k, v in hot.items() if k != "archived"
        }
        status, _ = await call("GET", f"/v1/orders/{order_id}", "edi")  # another partner's order
        assert status == 404
        # The partner's search by its own reference finds it in the archive; another partner's does not.
        status, page = await call("GET", f"/v1/orders?external_ref={ref}", "shop")
        assert status == 200 and [(o["order_id"], o["archived"]) for o in page["items"]] == [(order_id, True)]
        status, page = await call("GET", f"/v1/orders?external_ref={ref}", "edi")
        assert status == 200 and page["items"] == []
        status, kpis_after = await call("GET", f"/v1/reports/kpis?from={today}&to={today}", "admin")
        assert status == 200 and kpis_after == kpis_before

        # A second run finds nothing left to move.
        assert json.loads(orderdesk(suite, "archive", "run", "--after-days", "0", "--json"))["archived"] == 0

    lines_file, csv_file = tmp_path / "archive.jsonl", tmp_path / "archive.csv"
    orderdesk(
        suite,
        "archive",
        "export",
        "--from",
        today,
        "--to",
        today,
        "--format",
        "jsonl",
        "--out",
        str(lines_file),
    )
    orderdesk(
        suite, "archive", "export", "--from", today, "--to", today, "--format", "csv", "--out", str(csv_file)
    )
    records = {r["order_id"]: r for r in map(json.loads, lines_file.read_text().splitlines())}
    mine = records[order_id]
    assert (mine["external_ref"], mine["status"], mine["archived"]) == (ref, "cancelled", True)
    assert [(x["sku"], x["quantity"]) for x in mine["lines"]] == [("BRK-001", 2)]
    assert [h["status"] for h in mine["history"]] == [h["status"] for h in hot["history"]]
    assert mine["archived_at"].startswith(today)
    rows = [r for r in csv.DictReader(io.StringIO(csv_file.read_text())) if r["order_id"] == order_id]
    assert [(r["external_ref"], r["sku"], r["quantity"], r["status"]) for r in rows] == [
        (ref, "BRK-001", "2", "cancelled")
    ]
    assert not list(tmp_path.glob("*.partial"))

    # A bad period is refused by orders over the stream, naming the field; no file is left behind.
    refused = orderdesk(
        suite,
        "archive",
        "export",
        "--from",
        "2026-13-01",
        "--to",
        today,
        "--format",
        "csv",
        "--out",
        str(tmp_path / "bad.csv"),
        status=1,
    )
    assert "from:" in refused and not (tmp_path / "bad.csv").exists(), refused
    assert not list(tmp_path.glob("*.partial"))
