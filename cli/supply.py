"""`orderdesk supply …`: receipts, production runs and available-to-promise, through the gateway.

    orderdesk supply receive --warehouse WH-HAM --sku BRK-001 --quantity 50 --reference GRN-42
    orderdesk supply production [--sku SKU] [--status open|completed] [--json]
    orderdesk supply complete PRD-…
    orderdesk supply atp SKU [--json]

Like `orderdesk orders`, these use the partner API with ORDERDESK_API_KEY (admin for receipts and
production; any key with the orders scope for atp).
"""

from __future__ import annotations

import argparse
import urllib.parse

from cli.main import Gateway, _emit, table


def _levels(level: dict) -> str:
    return table(
        ("WAREHOUSE", "ON HAND", "RESERVED", "AVAILABLE"),
        [(w["warehouse"], w["on_hand"], w["reserved"], w["available"]) for w in level["warehouses"]],
    )


def cmd_receive(args: argparse.Namespace) -> int:
    level = Gateway.from_env().request(
        "POST",
        "/v1/admin/receipts",
        {
            "warehouse": args.warehouse,
            "sku": args.sku,
            "quantity": args.quantity,
            "reference": args.reference,
        },
    )
    return _emit(args, level, f"{args.sku} after receipt {args.reference}:\n{_levels(level)}")


def cmd_production(args: argparse.Namespace) -> int:
    query = {k: v for k, v in (("sku", args.sku), ("status", args.status)) if v}
    runs = Gateway.from_env().request("GET", "/v1/admin/production?" + urllib.parse.urlencode(query))
    text = (
        table(
            ("RUN", "SKU", "WAREHOUSE", "QUANTITY", "EXPECTED", "STATUS"),
            [
                (r["production_id"], r["sku"], r["warehouse"], r["quantity"], r["expected_date"], r["status"])
                for r in runs["items"]
            ],
        )
        if runs["items"]
        else "no production runs"
    )
    return _emit(args, runs, text)


def cmd_complete(args: argparse.Namespace) -> int:
    run = Gateway.from_env().request(
        "POST", f"/v1/admin/production/{urllib.parse.quote(args.production_id, safe='')}/complete"
    )
    return _emit(
        args,
        run,
        f"{run['production_id']} {run['status']}: {run['quantity']} x {run['sku']} "
        f"received at {run['warehouse']}",
    )


def cmd_atp(args: argparse.Namespace) -> int:
    atp = Gateway.from_env().request("GET", f"/v1/inventory/{urllib.parse.quote(args.sku, safe='')}/atp")
    head = (
        f"{atp['sku']}: {atp['available_now']} available now, {atp['backordered']} owed to backorders, "
        f"{atp['in_production']} in production"
    )
    rows = [
        (d["date"], d["quantity"], ", ".join(f"{w['warehouse']} {w['quantity']}" for w in d["warehouses"]))
        for d in atp["dates"]
    ]
    return _emit(args, atp, head + "\n" + table(("BY", "PROMISABLE", "PER WAREHOUSE"), rows))


def register(sub) -> None:
    supply = sub.add_parser(
        "supply", help="receipts, production runs, available to promise (through the gateway)"
    )
    commands = supply.add_subparsers(
        dest="supply_command", required=True, metavar="{receive,production,complete,atp}"
    )
    receive = commands.add_parser(
        "receive", help="goods received: stock rises once per reference, backorders fill"
    )
    receive.add_argument("--warehouse", required=True)
    receive.add_argument("--sku", required=True)
    receive.add_argument("--quantity", required=True, type=int)
    receive.add_argument(
        "--reference", required=True, help="the receipt's unique reference (a repeat adds nothing)"
    )
    receive.set_defaults(run=cmd_receive)
    production = commands.add_parser("production", help="production runs planned for backorders")
    production.add_argument("--sku", default="")
    production.add_argument("--status", default="", choices=("", "open", "completed"))
    production.set_defaults(run=cmd_production)
    complete = commands.add_parser("complete", help="a run is finished: its units are received once")
    complete.add_argument("production_id")
    complete.set_defaults(run=cmd_complete)
    atp = commands.add_parser("atp", help="what quantity of a SKU can be promised by which date")
    atp.add_argument("sku")
    atp.set_defaults(run=cmd_atp)
    for command in (receive, production, complete, atp):
        command.add_argument("--json", action="store_true", help="machine-readable output")
