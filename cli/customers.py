"""`orderdesk customers …`: a customer's personal data, through the gateway.

    orderdesk customers erase C0042 [--scope all|expired] [--json]

Erases (pseudonymises) the customer's personal data in every service holding some (README "Personal data"),
with an admin key in ORDERDESK_API_KEY. Scope "all" (the default) is refused while an order of the customer
is open or closed within the legal retention (ORDERDESK_PERSONAL_DATA_RETENTION_DAYS); "expired" erases what
has passed it and lists what stays.
"""

from __future__ import annotations

import argparse
import urllib.parse

from cli.main import Gateway, _emit, table


def cmd_erase(args: argparse.Namespace) -> int:
    report = Gateway.from_env().request(
        "POST",
        f"/v1/admin/customers/{urllib.parse.quote(args.customer_id, safe='')}/erasure",
        {"scope": args.scope},
    )
    lines = [
        f"{report['customer_id']}: personal data erased on {len(report['erased_orders'])} order(s)"
        + ("; the master record too" if report["whole_customer"] else "")
        + f" (request {report['request_id']}, by {report['actor']})",
        table(
            ("SERVICE", "ROWS ERASED"),
            [
                (s["service"], ", ".join(f"{what} {rows}" for what, rows in sorted(s["erased"].items())))
                for s in report["services"]
            ],
        ),
    ]
    if report["kept"]:
        lines.append("kept (their personal data stays):")
        lines.append(
            table(
                ("ORDER", "STATUS", "WHY", "UNTIL"),
                [(k["order_id"], k["status"], k["reason"], k["until"] or "") for k in report["kept"]],
            )
        )
    return _emit(args, report, "\n".join(lines))


def register(sub) -> None:
    customers = sub.add_parser(
        "customers", help="a customer's personal data (through the gateway, admin key)"
    )
    commands = customers.add_subparsers(dest="customers_command", required=True, metavar="{erase}")
    erase = commands.add_parser(
        "erase", help="erase (pseudonymise) a customer's personal data past the legal retention"
    )
    erase.add_argument("customer_id")
    erase.add_argument(
        "--scope",
        default="all",
        choices=("all", "expired"),
        help="all: refused while any order must keep its data; expired: what has passed the retention",
    )
    erase.add_argument("--json", action="store_true", help="machine-readable output")
    erase.set_defaults(run=cmd_erase)
