"""The `orderdesk` command: master data import, API keys, and the order desk's daily work.

    orderdesk import <kind> <file.csv>        customers | products | prices | stock | warehouses | calendars | lanes | partners
    orderdesk import-demo [--dir demo]        all of demo/, in dependency order
    orderdesk keys create --partner P --name N --scopes orders,returns [--partner-name "Webshop"]
    orderdesk keys list [--partner P]  |  orderdesk keys revoke --partner P --name N
    orderdesk orders list [--status on_hold] [--limit 50] [--json]
    orderdesk orders show ORDER_ID [--json]
    orderdesk orders approve ORDER_ID --note "..."  |  orderdesk orders reject ORDER_ID --reason "..."
    orderdesk report [--from 2026-11-01] [--to 2026-11-30] [--group-by day|week|month|customer|channel] [--csv]
    orderdesk supply receive|production|complete|atp …   receipts, production runs, ATP (cli/supply.py)
    orderdesk users create|list|disable|reset-password|demo   desk accounts of the console (cli/users.py)
    orderdesk backup DEST | restore SRC                   every database at one point (cli/backup.py)
    orderdesk archive run | export --from --to --format jsonl|csv   the archive (cli/archive.py)
    orderdesk customers erase CUSTOMER_ID [--scope all|expired]   personal data erasure (cli/customers.py)

Imports and keys talk to the services over gRPC and to the gateway's key store
through gateway.keys (so an operator can bootstrap the first admin key before any key exists);
`orders` goes through the gateway's HTTP API with ORDERDESK_API_KEY, like any partner.
Configuration comes from the same environment variables as the services
(ORDERDESK_<SERVICE>_ADDR, ORDERDESK_GATEWAY_DATABASE_URL, ORDERDESK_GATEWAY_URL).
Exit status: 0 done, 1 refused or failed, 2 bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from orderdesk import errors, masterdata
from orderdesk.config import Settings, database_url, env, grpc_target

# stock needs warehouses; calendars and lanes go with them
DEMO_ORDER = ("warehouses", "calendars", "lanes", "customers", "products", "stock", "partners")
IMPORT_TIMEOUT = 120.0  # a large CSV takes longer than an ordinary call's deadline
CONNECT_TIMEOUT = 10.0


class CliError(Exception):
    """A failure worth one clear line (plus details) and exit status 1."""

    def __init__(self, message: str, details: Sequence[str] = ()):
        super().__init__(message)
        self.details = list(details)


# --- master data -----------------------------------------------------------------------------
def _owners(kind: str) -> list[str]:
    return [owner for owner in masterdata.OWNERS[kind] if owner != "gateway"]


async def import_csv(kind: str, text: str, settings: Settings) -> int:
    """Loads one CSV into the services that own it (partners: the gateway's key store)."""
    if kind == "partners":
        from gateway import keys

        async with keys.opened(database_url("gateway")) as store:
            return await keys.import_partners(store, text)

    import grpc

    from orderdesk import rpc, tls
    from orderdesk.v1 import (
        common_pb2,
        intake_pb2_grpc,
        inventory_pb2_grpc,
        returns_pb2_grpc,
        shipping_pb2_grpc,
    )

    stubs: dict[str, Any] = {
        "intake": intake_pb2_grpc.IntakeServiceStub,
        "inventory": inventory_pb2_grpc.InventoryServiceStub,
        "shipping": shipping_pb2_grpc.ShippingServiceStub,
        "returns": returns_pb2_grpc.ReturnsServiceStub,
    }
    rows = 0
    for service in _owners(kind):
        address = settings.peers[service]
        target, options = grpc_target(address)
        async with tls.aio_channel(target, settings.tls, peer=service, options=options) as channel:
            try:
                # Wait a little for a service that is still starting, but not the whole import's deadline.
                await asyncio.wait_for(channel.channel_ready(), CONNECT_TIMEOUT)
            except TimeoutError:
                raise CliError(f"{service} at {address} did not answer; is it running?") from None
            try:
                answer = await stubs[service](channel).ImportMasterData(
                    common_pb2.ImportCsvRequest(kind=kind, csv=text),
                    timeout=max(settings.rpc_timeout, IMPORT_TIMEOUT),
                )
            except grpc.RpcError as exc:
                failure = rpc.describe(exc)
                if failure.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise CliError(
                        f"{service} at {address} did not answer ({failure.code.name}); is it running?"
                    ) from None
                raise CliError(
                    f"{service} refused the {kind} import: {failure.message}",
                    [f"{v.field}: {v.description}" for v in failure.violations],
                ) from None
        rows = answer.rows
    return rows


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise CliError(f"{path} is not UTF-8 text") from None


def cmd_import(args: argparse.Namespace) -> int:
    rows = asyncio.run(import_csv(args.kind, _read(args.file), Settings.from_env("cli")))
    print(f"imported {rows} {args.kind}")
    return 0


def cmd_import_demo(args: argparse.Namespace) -> int:
    folder = Path(args.dir)
    settings = Settings.from_env("cli")

    async def load_all() -> None:
        for kind in DEMO_ORDER:
            rows = await import_csv(kind, _read(str(folder / f"{kind}.csv")), settings)
            print(f"imported {rows} {kind}", flush=True)

    asyncio.run(load_all())
    return 0


# --- API keys --------------------------------------------------------------------------------
async def _with_store(action):
    from gateway import keys

    async with keys.opened(database_url("gateway")) as store:
        return await action(store)


def cmd_keys_create(args: argparse.Namespace) -> int:
    from gateway import keys

    try:
        scopes = keys.parse_scopes(args.scopes)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    expires_at = _expiry(args.expires_in_days)
    key = asyncio.run(
        _with_store(
            lambda store: keys.create_key(
                store,
                args.partner,
                args.name,
                scopes,
                partner_name=args.partner_name,
                expires_at=expires_at,
                warehouse=args.warehouse or "",
                carrier=args.carrier or "",
            )
        )
    )
    print(key)
    print(
        f"(API key {args.name!r} for {args.partner} with scopes {', '.join(scopes)}; it is shown only now, "
        "store it safely)",
        file=sys.stderr,
    )
    return 0


def _expiry(days: float | None):
    import datetime as dt

    if days is None:
        return None
    if days <= 0:
        raise CliError("--expires-in-days must be more than 0")
    return dt.datetime.now(dt.UTC) + dt.timedelta(days=days)


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    import datetime as dt

    from gateway import keys

    if args.overlap_hours < 0:
        raise CliError("--overlap-hours cannot be negative")
    overlap = dt.timedelta(hours=args.overlap_hours)
    expires_at = _expiry(args.expires_in_days)
    key = asyncio.run(
        _with_store(
            lambda store: keys.rotate_key(store, args.partner, args.name, overlap, expires_at=expires_at)
        )
    )
    print(key)
    print(
        f"(new API key {args.name!r} for {args.partner}, shown only now; the old one works for "
        f"{args.overlap_hours:g} more hour(s))",
        file=sys.stderr,
    )
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    from gateway import keys

    listed = asyncio.run(_with_store(lambda store: keys.list_keys(store, args.partner or "")))
    rows = [
        (
            k.partner_id,
            k.name,
            " ".join(k.scopes),
            k.source,
            k.hash_prefix + ("" if k.hash_kind == "hmac" else " (old sha256: rotate if unused)"),
            " ".join(
                f"{what}={value}"
                for what, value in (("warehouse", k.warehouse), ("carrier", k.carrier))
                if value
            )
            or "-",
            k.created_at,
            k.expires_at or "-",
            k.last_used_at or "never",
        )
        for k in listed
    ]
    print(
        table(
            ("PARTNER", "NAME", "SCOPES", "SOURCE", "HASH", "TIED TO", "CREATED", "EXPIRES", "LAST USED"),
            rows,
        )
    )
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    from gateway import keys

    count = asyncio.run(_with_store(lambda store: keys.revoke_keys(store, args.partner, args.name)))
    if not count:
        raise CliError(f"no key named {args.name!r} for partner {args.partner}")
    print(f"revoked {count} key(s) (every gateway replica refuses them within a second)")
    return 0


# --- orders, through the gateway ----------------------------------------------------------------
class Gateway:
    """A tiny client of the partner API (standard library only)."""

    def __init__(self, base_url: str, api_key: str, timeout: float = 30.0):
        self.base_url, self.api_key, self.timeout = base_url.rstrip("/"), api_key, timeout

    @classmethod
    def from_env(cls) -> Gateway:
        key = os.environ.get("ORDERDESK_API_KEY", "")
        if not key:
            raise CliError("set ORDERDESK_API_KEY to an API key (create one with: orderdesk keys create ...)")
        return cls(env("ORDERDESK_GATEWAY_URL", "http://127.0.0.1:8080"), key)

    def request(self, method: str, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.api_key}",
                "Accept": "application/json",
                **({"Content-Type": "application/json"} if data is not None else {}),
            },
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise problem_error(exc.code, exc.read()) from None
        except urllib.error.URLError as exc:
            raise CliError(f"cannot reach the gateway at {self.base_url}: {exc.reason}") from None
        except TimeoutError:
            raise CliError(
                f"the gateway at {self.base_url} did not answer within {self.timeout:.0f}s"
            ) from None


def problem_error(status: int, payload: bytes) -> CliError:
    """A problem+json answer as one readable line plus one line per offending field."""
    try:
        problem = json.loads(payload)
    except ValueError:
        problem = {}
    if not isinstance(problem, dict):
        problem = {}
    title = problem.get("title") or f"HTTP {status}"
    detail = problem.get("detail") or ""
    details = [f"{e.get('field')}: {e.get('message')}" for e in problem.get("errors") or []]
    if problem.get("rule"):
        details.append(f"rule: {problem['rule']}")
    return CliError(f"{status} {title}" + (f": {detail}" if detail and detail != title else ""), details)


# Partner text never reaches a terminal raw: control characters (an escape sequence can rewrite the screen,
# the title, the clipboard), line and paragraph separators and bidirectional overrides are shown escaped.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_UNSAFE_IN_CELL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, *, newlines: bool = True) -> str:
    """Text for a terminal: control characters escaped (\\x1b, \\u202e); line feeds kept unless `newlines`
    is false (a table cell stays on its line)."""
    return (_UNSAFE if newlines else _UNSAFE_IN_CELL).sub(_escape, text)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(c) for c in headers]] + [
        ["" if c is None else printable(str(c), newlines=False) for c in row] for row in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )


def _holds(order: dict) -> str:
    return ",".join(r["code"] for r in order.get("hold_reasons") or [])


def format_order(order: dict) -> str:
    out = [
        f"order     {order['order_id']}  ({order['status']}, version {order['version']})",
        f"partner   {order.get('partner_id', '')}   external ref {order.get('external_ref') or '-'}",
        f"customer  {order['customer_id']}   terms {order.get('payment_terms') or '-'}   "
        f"delivery {order.get('requested_delivery_date') or '-'}",
        f"total     {order.get('total_amount', '')} {order.get('currency', '')}   priority {order.get('priority', '')}",
        "",
        table(
            ("SKU", "QTY", "PRICE", "ALLOCATED", "SHIPPED", "DELIVERED", "RETURNED"),
            [
                (
                    x["sku"],
                    x["quantity"],
                    x["unit_price"],
                    x["allocated_quantity"],
                    x["shipped_quantity"],
                    x.get("delivered_quantity", ""),
                    x["returned_quantity"],
                )
                for x in order["lines"]
            ],
        ),
    ]
    if order.get("hold_reasons"):
        out += [
            "",
            table(
                ("HOLD", "FIELD", "MESSAGE"),
                [(r["code"], r["field"], r["message"]) for r in order["hold_reasons"]],
            ),
        ]
    if order.get("shipments"):
        out += [
            "",
            table(
                ("SHIPMENT", "WAREHOUSE", "STATUS", "CARRIER", "TRACKING"),
                [
                    (s["shipment_id"], s["warehouse"], s["status"], s["carrier"], s["tracking_number"])
                    for s in order["shipments"]
                ],
            ),
        ]
    out += [
        "",
        table(
            ("AT", "STATUS", "ACTOR", "REASON"),
            [(h["at"], h["status"], h["actor"], h["reason"]) for h in order.get("history") or []],
        ),
    ]
    return "\n".join(out)


def _emit(args: argparse.Namespace, data: dict, text: str) -> int:
    # JSON escapes control characters itself (ensure_ascii); text is made printable.
    print(json.dumps(data, indent=2) if args.json else printable(text))
    return 0


# `orderdesk orders search` option -> GET /v1/orders query parameter
SEARCH_OPTIONS = {
    "ref": "external_ref",
    "customer": "customer_id",
    "sku": "sku",
    "channel": "channel",
    "status": "status",
    "partner": "partner_id",
    "created_from": "created_from",
    "created_to": "created_to",
    "order_by": "order_by",
    "cursor": "cursor",
}


def cmd_orders_list(args: argparse.Namespace) -> int:
    query = {"limit": str(args.limit)}
    for option, parameter in SEARCH_OPTIONS.items():
        if getattr(args, option, None):
            query[parameter] = getattr(args, option)
    page = Gateway.from_env().request("GET", "/v1/orders?" + urllib.parse.urlencode(query))
    rows = [
        (
            o["order_id"],
            o["status"],
            o["customer_id"],
            o.get("external_ref", ""),
            f"{o.get('total_amount', '')} {o.get('currency', '')}".strip(),
            len(o["lines"]),
            _holds(o),
        )
        for o in page["items"]
    ]
    text = table(("ORDER", "STATUS", "CUSTOMER", "EXTERNAL REF", "TOTAL", "LINES", "HOLD REASONS"), rows)
    if page.get("next_cursor"):
        text += f"\n(more: the next page starts at cursor {page['next_cursor']})"
    return _emit(args, page, text)


def _order_path(order_id: str, action: str = "") -> str:
    return f"/v1/orders/{urllib.parse.quote(order_id, safe='')}" + (f"/{action}" if action else "")


def cmd_orders_show(args: argparse.Namespace) -> int:
    order = Gateway.from_env().request("GET", _order_path(args.order_id))
    return _emit(args, order, format_order(order))


def cmd_orders_approve(args: argparse.Namespace) -> int:
    body: dict = {"note": args.note, "acknowledge": args.acknowledge or []}
    if args.accept:
        body["accept_proposal"] = args.accept
    order = Gateway.from_env().request("POST", _order_path(args.order_id, "approve"), body)
    text = f"{order['order_id']} is {order['status']}"
    if order.get("split_into"):
        text += f"; later deliveries: {', '.join(order['split_into'])}"
    return _emit(args, order, text)


# --- the desk's work queue ----------------------------------------------------------------------
def _proposals(order: dict) -> str:
    found = []
    for p in order.get("proposals") or []:
        if p["kind"] == "earliest_date":
            found.append(f"earliest_date {p['delivery_date']}")
        else:
            days = sorted({part["delivery_date"] for part in p.get("parts", [])})
            found.append(f"split {'+'.join(days)}")
    return ", ".join(found)


def cmd_queue_list(args: argparse.Namespace) -> int:
    """Held orders, highest priority first (first come within a priority): the order the desk works them in."""
    query = {"status": "on_hold", "order_by": "priority", "limit": str(args.limit)}
    if args.reason:
        query["hold_reason"] = args.reason
    if args.cursor:
        query["cursor"] = args.cursor
    page = Gateway.from_env().request("GET", "/v1/orders?" + urllib.parse.urlencode(query))
    rows = [
        (
            o["priority"],
            o["order_id"],
            o["customer_id"],
            f"{o['total_amount']} {o['currency']}",
            o.get("requested_delivery_date") or "-",
            _holds(o),
            _proposals(o) or "-",
        )
        for o in page["items"]
    ]
    text = table(("PRIORITY", "ORDER", "CUSTOMER", "TOTAL", "DELIVERY", "HOLD REASONS", "PROPOSALS"), rows)
    if not rows:
        text = "the queue is empty" + (f" for {args.reason}" if args.reason else "")
    if page.get("next_cursor"):
        text += f"\n(more: orderdesk queue list --cursor {page['next_cursor']})"
    return _emit(args, page, text)


def cmd_queue_show(args: argparse.Namespace) -> int:
    order = Gateway.from_env().request("GET", _order_path(args.order_id))
    text = format_order(order)
    for p in order.get("proposals") or []:
        if p["kind"] == "earliest_date":
            text += f"\n\nproposal earliest_date: the whole order on {p['delivery_date']}"
        else:
            text += "\n\nproposal split:\n" + table(
                ("DELIVERY", "SKU", "QTY"),
                [(x["delivery_date"], x["sku"], x["quantity"]) for x in p["parts"]],
            )
    if order.get("proposals") and order["status"] == "on_hold":
        text += "\n\naccept one: orderdesk queue approve ORDER --accept earliest_date|split --note ..."
    return _emit(args, order, text)


def cmd_orders_reject(args: argparse.Namespace) -> int:
    order = Gateway.from_env().request("POST", _order_path(args.order_id, "reject"), {"reason": args.reason})
    return _emit(args, order, f"{order['order_id']} is {order['status']}")


# --- the desk's numbers ----------------------------------------------------------------------------
HEADLINE_FIGURES = (
    "orders_received",
    "order_value",
    "lines_first_allocated",
    "lines_filled",
    "line_fill_rate",
    "units_first_allocated",
    "units_filled",
    "unit_fill_rate",
    "orders_delivered",
    "orders_on_time",
    "on_time_rate",
    "orders_cancelled",
    "cancellation_rate",
    "orders_held",
    "hold_rate",
    "orders_late",
    "orders_warned",
    "warned_before_late_rate",
)
REPORT_SECTIONS = (  # (section, columns after the key) of the detail tables, in print order
    ("cancellations_by_reason", ("orders", "units")),
    ("cancellations_by_sku", ("units", "base_units", "rate")),
    ("holds_by_reason", ("orders",)),
    ("best_sellers", ("currency", "units", "value")),
    ("slow_sellers", ("currency", "units", "value")),
    ("returns_by_sku", ("units", "base_units", "rate")),
    ("returns_by_reason", ("orders", "units")),
    ("at_risk_now", ("orders",)),
)


def _pct(rate: float | None, part: int, whole: int) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}% ({part}/{whole})"


def _money(values: list[dict]) -> str:
    return ", ".join(f"{m['amount']} {m['currency']}" for m in values) or "0"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def format_report(report: dict) -> str:
    """The report for people: the headline per group, then cycle times and the detail tables."""
    heads = [report["total"]] + report["groups"]
    out = [
        f"the desk's numbers from {report['from']} to {report['to']} (events in the period)",
        "",
        table(
            (
                "GROUP",
                "ORDERS",
                "VALUE",
                "FILL LINES",
                "FILL UNITS",
                "ON TIME",
                "CANCELLED",
                "HELD",
                "WARNED",
            ),
            [
                (
                    h["key"] or "total",
                    h["orders_received"],
                    _money(h["order_value"]),
                    _pct(h["line_fill_rate"], h["lines_filled"], h["lines_first_allocated"]),
                    _pct(h["unit_fill_rate"], h["units_filled"], h["units_first_allocated"]),
                    _pct(h["on_time_rate"], h["orders_on_time"], h["orders_delivered"]),
                    _pct(h["cancellation_rate"], h["orders_cancelled"], h["orders_received"]),
                    _pct(h["hold_rate"], h["orders_held"], h["orders_received"]),
                    _pct(
                        h.get("warned_before_late_rate"), h.get("orders_warned", 0), h.get("orders_late", 0)
                    ),
                )
                for h in heads
            ],
        ),
        "",
        table(
            ("CYCLE TIME", "ORDERS", "AVERAGE", "P90"),
            [
                (
                    c["stage"].replace("_to_", " -> "),
                    c["count"],
                    _duration(c["average_seconds"]),
                    _duration(c["p90_seconds"]),
                )
                for c in report["cycle_times"]
            ],
        ),
    ]
    for section, columns in REPORT_SECTIONS:
        rows = report[section]
        key = "sku" if "sku" in (rows[0] if rows else {"sku": 1}) else "reason"
        shown = [
            (
                r[key],
                *("-" if r[c] is None else f"{r[c] * 100:.1f}%" if c == "rate" else r[c] for c in columns),
            )
            for r in rows
        ]
        out += [
            "",
            f"{section.replace('_', ' ')}:" + ("" if rows else " none"),
            *([table((key.upper(), *(c.upper() for c in columns)), shown)] if rows else []),
        ]
    return "\n".join(out)


def report_csv(report: dict) -> str:
    """The report as one tidy CSV (section, group, item, figure, value) for spreadsheets; empty value = null."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("section", "group", "item", "figure", "value"))
    cell = lambda v: "" if v is None else v  # noqa: E731
    for h in [report["total"]] + report["groups"]:
        group = h["key"] or "total"
        for figure in HEADLINE_FIGURES:
            if figure == "order_value":
                for m in h["order_value"]:
                    writer.writerow(("headline", group, m["currency"], figure, m["amount"]))
            else:
                writer.writerow(("headline", group, "", figure, cell(h[figure])))
    for c in report["cycle_times"]:
        for figure in ("count", "average_seconds", "p90_seconds"):
            writer.writerow(("cycle_time", "", c["stage"], figure, cell(c[figure])))
    for section, columns in REPORT_SECTIONS:
        for r in report[section]:
            item = r.get("sku", r.get("reason"))
            for figure in columns:
                if figure != "currency":
                    writer.writerow((section, r.get("currency", ""), item, figure, cell(r[figure])))
    return buffer.getvalue()


def cmd_report(args: argparse.Namespace) -> int:
    query = {k: v for k, v in (("from", args.from_), ("to", args.to), ("group_by", args.group_by)) if v}
    report = Gateway.from_env().request(
        "GET", "/v1/reports/kpis" + ("?" + urllib.parse.urlencode(query) if query else "")
    )
    if args.csv:
        sys.stdout.write(report_csv(report))
        return 0
    return _emit(args, report, format_report(report))


# --- the parser ------------------------------------------------------------------------------------
def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="orderdesk", description="orderdesk: master data, API keys and held orders"
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    imp = sub.add_parser("import", help="import one master data CSV")
    imp.add_argument("kind", choices=masterdata.KINDS)
    imp.add_argument("file", help="path of the CSV file")
    imp.set_defaults(run=cmd_import)

    demo = sub.add_parser(
        "import-demo",
        help="import the demo master data (warehouses, calendars, lanes, customers, products, stock, partners)",
    )
    demo.add_argument("--dir", default="demo", help="folder with the five CSV files (default: demo)")
    demo.set_defaults(run=cmd_import_demo)

    keys = sub.add_parser("keys", help="API keys of partners").add_subparsers(
        dest="keys_command", required=True, metavar="ACTION"
    )
    create = keys.add_parser("create", help="create a key; it is printed once and stored only as a hash")
    create.add_argument("--partner", required=True, help="partner id, e.g. P-ADMIN")
    create.add_argument("--name", required=True, help="what the key is for, e.g. alice or erp-prod")
    create.add_argument("--scopes", required=True, help=f"comma separated: {', '.join(masterdata.SCOPES)}")
    create.add_argument("--partner-name", help="create the partner with this name if it does not exist yet")
    create.add_argument("--expires-in-days", type=float, help="the key stops working then (default: never)")
    create.add_argument(
        "--warehouse", help="a fulfillment key that sees and moves only this warehouse's shipments"
    )
    create.add_argument("--carrier", help="a key that may post only this carrier's tracking events")
    create.set_defaults(run=cmd_keys_create)
    rotate = keys.add_parser(
        "rotate", help="a new key of this name; the old one keeps working for the overlap, then expires"
    )
    rotate.add_argument("--partner", required=True)
    rotate.add_argument("--name", required=True)
    rotate.add_argument("--overlap-hours", type=float, default=24.0, help="old key still valid (default 24)")
    rotate.add_argument(
        "--expires-in-days", type=float, help="the new key stops working then (default: never)"
    )
    rotate.set_defaults(run=cmd_keys_rotate)
    listing = keys.add_parser("list", help="list keys (never the keys themselves)")
    listing.add_argument("--partner")
    listing.set_defaults(run=cmd_keys_list)
    revoke = keys.add_parser("revoke", help="delete a partner's key(s) by name")
    revoke.add_argument("--partner", required=True)
    revoke.add_argument("--name", required=True)
    revoke.set_defaults(run=cmd_keys_revoke)

    orders = sub.add_parser("orders", help="orders, through the gateway (ORDERDESK_API_KEY)").add_subparsers(
        dest="orders_command", required=True, metavar="ACTION"
    )
    ol = orders.add_parser("list", help="list orders, newest first")
    ol.add_argument("--status", help="e.g. on_hold")
    ol.add_argument("--limit", type=int, default=50)
    search = orders.add_parser(
        "search",
        help="find orders: by your reference (PO number), customer, SKU, channel, status, partner, dates",
    )
    search.add_argument("--ref", help="the partner's reference (PO number), exactly")
    search.add_argument("--customer", help="customer id")
    search.add_argument("--sku", help="orders with a line of this SKU")
    search.add_argument("--channel", help="api, batch, csv, grpc, …")
    search.add_argument("--status", help="e.g. on_hold")
    search.add_argument("--partner", help="one partner's orders (admin key)")
    search.add_argument("--from", dest="created_from", help="received from YYYY-MM-DD (or an RFC 3339 time)")
    search.add_argument("--to", dest="created_to", help="received up to YYYY-MM-DD, that day included")
    search.add_argument("--order-by", choices=("newest", "priority"))
    search.add_argument("--cursor", help="the next page: the cursor the previous page printed")
    search.add_argument("--limit", type=int, default=50)
    show = orders.add_parser("show", help="one order with lines, shipments and history")
    show.add_argument("order_id")
    approve = orders.add_parser("approve", help="release a held order (admin key)")
    reject = orders.add_parser("reject", help="reject a held order (admin key)")

    queue = sub.add_parser("queue", help="the desk's work queue of held orders (admin key)").add_subparsers(
        dest="queue_command", required=True, metavar="ACTION"
    )
    ql = queue.add_parser(
        "list", help="held orders, highest priority first, with their reasons and proposals"
    )
    ql.add_argument(
        "--reason", default="", help="only orders held for this reason code, e.g. credit_limit_exceeded"
    )
    ql.add_argument("--limit", type=int, default=50)
    ql.add_argument("--cursor", default="", help="the next page, as printed")
    qshow = queue.add_parser("show", help="one held order with its reasons and proposals")
    qshow.add_argument("order_id")
    qapprove = queue.add_parser("approve", help="release it: stock and credit are checked again first")
    qreject = queue.add_parser("reject", help="reject it with a reason")
    for action, run in (
        (ol, cmd_orders_list),
        (search, cmd_orders_list),
        (show, cmd_orders_show),
        (approve, cmd_orders_approve),
        (reject, cmd_orders_reject),
        (ql, cmd_queue_list),
        (qshow, cmd_queue_show),
        (qapprove, cmd_orders_approve),
        (qreject, cmd_orders_reject),
    ):
        action.add_argument("--json", action="store_true", help="machine-readable output")
        action.set_defaults(run=run)
    for action in (approve, qapprove):
        action.add_argument("order_id")
        action.add_argument("--note", default="", help="why, for the history")
        action.add_argument(
            "--accept",
            choices=("earliest_date", "split"),
            help="accept the order's proposal: the earliest date, or a split into one order per date",
        )
        action.add_argument(
            "--acknowledge",
            action="append",
            metavar="CODE",
            help="a reason code the re-check may find that you accept (repeatable)",
        )
    for action in (reject, qreject):
        action.add_argument("order_id")
        action.add_argument("--reason", required=True, help="why, for the history and the partner")

    report = sub.add_parser("report", help="the desk's numbers for a period, through the gateway (admin key)")
    report.add_argument(
        "--from", dest="from_", default="", help="YYYY-MM-DD or RFC 3339 (default: 30 days ago)"
    )
    report.add_argument("--to", default="", help="YYYY-MM-DD (that day included) or RFC 3339 (default: now)")
    report.add_argument("--group-by", default="", choices=("", "day", "week", "month", "customer", "channel"))
    output = report.add_mutually_exclusive_group()
    output.add_argument(
        "--csv", action="store_true", help="CSV for spreadsheets (section,group,item,figure,value)"
    )
    output.add_argument("--json", action="store_true", help="machine-readable output")
    report.set_defaults(run=cmd_report)

    from cli import supply as cli_supply  # receipts, production, ATP (its own module)

    cli_supply.register(sub)
    from cli import customers as cli_customers  # erasure of a customer's personal data (its own module)

    cli_customers.register(sub)
    from cli import backup as cli_backup  # backup and restore (its own module)

    cli_backup.register(sub)
    from cli import users as cli_users  # desk accounts of the console (its own module)

    cli_users.register(sub)
    from cli import archive as cli_archive  # the archive: a pass now, an export (its own module)

    cli_archive.register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except CliError as exc:  # may quote the gateway's answer, which may quote partner text
        print(printable(f"error: {exc}"), file=sys.stderr)
        for line in exc.details:
            print(printable(f"  {line}"), file=sys.stderr)
        return 1
    except errors.DomainError as exc:  # from the key store or CSV parsing
        print(printable(f"error: {exc.message}"), file=sys.stderr)
        for v in getattr(exc, "violations", []):
            print(printable(f"  {v.field}: {v.description}"), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
