"""Who may say what on NATS: each component's own user and its permissions, derived from one table.

A service publishes only its own aggregates' events (only shipping publishes `orderdesk.shipment.>`), so a
consumer can trust an event's subject (orderdesk.events.misplaced); it reads the stream only through its
own durable consumers, each pinned to its filter subject at creation (`$JS.API.CONSUMER.CREATE.<stream>.
<durable>.<filter>`: the server refuses a body whose filter differs), and receives only on its own inbox
prefix (`_INBOX.<component>`), so it cannot listen to another service's deliveries. Plain data, no I/O:
the runtime connects with `inbox_prefix(component)`, devstack and deploy/k8s render the server's
`authorization` block with `render_authorization`.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

# The names of orderdesk.events, repeated here so this module stays free of protobuf and settings
# (tests/unit/test_natsauth.py checks they agree).
STREAM = "ORDERDESK"
DLQ_STREAM = "ORDERDESK_DLQ"
SUBJECT_ROOT = "orderdesk"
DLQ_ROOT = "dlq.orderdesk"
WAKE_ROOT = "_orderdesk.wake"  # orderdesk.leases.Wakeup: core NATS pokes between one service's replicas

ADMIN = "admin"  # operators and the CLI (backup/restore resets the stream): every subject; never a pod's


@dataclass(frozen=True)
class Component:
    """One process kind's share of NATS."""

    aggregates: tuple[str, ...] = ()  # publishes orderdesk.<aggregate>.> (its outbox), nothing else
    consumers: Mapping[str, str] = field(default_factory=dict)  # durable consumer -> filter subject
    jobs: tuple[str, ...] = ()  # singleton jobs besides outbox-/retention-<name> (runtime.add_singleton)


# The one table. The unit tests compare it with the code: what each service's aggregates publish
# (orderdesk.usecase / events.new_event), its consumers.subscriptions() and its add_singleton() jobs.
COMPONENTS: dict[str, Component] = {
    "intake": Component(
        consumers={
            "intake-order-exposure": "orderdesk.order.>",
            # the returns service's decided refunds become credit notes (issue 14)
            "intake-return-credit": "orderdesk.return.>",
        }
    ),
    "orders": Component(
        aggregates=("order",),
        consumers={
            "orders-shipment-events": "orderdesk.shipment.>",
            "orders-stock-rescheduled": "orderdesk.stock.*.rescheduled",
            "orders-return-refunded": "orderdesk.return.*.refunded",
            "orders-return-claim": "orderdesk.return.*.claim_resolved",  # claims in the desk's numbers
            "orders-stock-restocked": "orderdesk.stock.*.restocked",
            "orders-return-exchange": "orderdesk.return.*.exchange_created",  # the original names its replacement
        },
        jobs=("orders-allocator", "orders-watch", "orders-archive"),
    ),
    "inventory": Component(
        aggregates=("stock",),
        consumers={
            "inventory-order-cancelled": "orderdesk.order.*.cancelled",
            "inventory-shipment-shipped": "orderdesk.shipment.*.shipped",
            "inventory-return-refunded": "orderdesk.return.*.refunded",
            "inventory-return-claim": "orderdesk.return.*.claim_opened",  # a wrong item's stock correction
        },
    ),
    "shipping": Component(
        aggregates=("shipment",),
        consumers={
            "shipping-order-allocated": "orderdesk.order.*.allocated",
            "shipping-order-cancelled": "orderdesk.order.*.cancelled",
            "shipping-order-changed": "orderdesk.order.*.changed",
            "shipping-order-exception": "orderdesk.order.*.exception",
            "shipping-return-claim": "orderdesk.return.*.claim_opened",  # damaged in transit: a carrier claim
        },
    ),
    "returns": Component(
        aggregates=("return",),
        consumers={  # exchanges (issue 14): on receipt, and in advance
            "returns-exchange-due": "orderdesk.return.*.refunded",
            "returns-exchange-advance": "orderdesk.return.*.authorized",
            "returns-claim-resolved": "orderdesk.return.*.claim_resolved",  # claims: the replacement
        },
        jobs=("returns-advance-deadline",),
    ),
    "notifier": Component(consumers={"notifier-feed": "orderdesk.>"}, jobs=("notifier",)),
}
# The gateway and the console call the services over gRPC and never connect to NATS: no user.


@dataclass(frozen=True)
class Permissions:
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]


def inbox_prefix(component: str) -> str:
    """The component's own inboxes (JetStream API replies, pull deliveries): nats.connect(inbox_prefix=)."""
    return f"_INBOX.{component}"


def wake_jobs(component: str) -> tuple[str, ...]:
    return (f"outbox-{component}", f"retention-{component}", *COMPONENTS[component].jobs)


def permissions(component: str) -> Permissions:
    """What the component's user may publish and subscribe to; `admin` may do anything."""
    if component == ADMIN:
        return Permissions(publish=(">",), subscribe=(">",))
    if component not in COMPONENTS:
        raise ValueError(f"no NATS user for {component!r}: one of {', '.join(COMPONENTS)} or {ADMIN}")
    spec = COMPONENTS[component]
    api = "$JS.API"
    publish = [f"{SUBJECT_ROOT}.{aggregate}.>" for aggregate in spec.aggregates]
    # Every process makes sure of the streams at start-up (orderdesk.events.ensure_streams).
    publish += [
        f"{api}.STREAM.{verb}.{stream}" for stream in (STREAM, DLQ_STREAM) for verb in ("CREATE", "UPDATE")
    ]
    for durable, filter_subject in spec.consumers.items():
        publish += [
            f"{api}.CONSUMER.INFO.{STREAM}.{durable}",
            f"{api}.CONSUMER.CREATE.{STREAM}.{durable}.{filter_subject}",  # only with its own filter
            f"{api}.CONSUMER.MSG.NEXT.{STREAM}.{durable}",
            f"$JS.ACK.{STREAM}.{durable}.>",  # ack, nak, term of what it was delivered
            f"{DLQ_ROOT}.{durable}",  # parks a message it gave up on
        ]
    wakes = [f"{WAKE_ROOT}.{job}" for job in wake_jobs(component)]
    return Permissions(
        publish=(*publish, *wakes),
        subscribe=(f"{inbox_prefix(component)}.>", *wakes),
    )


def users() -> tuple[str, ...]:
    """Every NATS user: one per component that connects, and the operators' admin."""
    return (*COMPONENTS, ADMIN)


def generate_passwords() -> dict[str, str]:
    """A fresh random password per user (development stacks and tests; production keeps them in Secrets)."""
    return {user: secrets.token_urlsafe(24) for user in users()}


def password_variable(user: str) -> str:
    """The environment variable a NATS server's config reads a user's password from (deploy/k8s)."""
    return f"ORDERDESK_NATS_{user.upper()}_PASSWORD"


def render_authorization(passwords: Mapping[str, str] | None = None) -> str:
    """The nats-server `authorization { users = [...] }` block for every user.

    With `passwords` (user -> password) they are written in (a throw-away local server's config, mode
    0600); without, each password is `$ORDERDESK_NATS_<USER>_PASSWORD`, which nats-server reads from its
    environment (Kubernetes: from the Secret `orderdesk-nats-<user>`)."""
    lines = ["authorization {", "  users = ["]
    for user in users():
        if passwords is None:
            password = "$" + password_variable(user)
        else:
            if not passwords.get(user):
                raise ValueError(f"no NATS password for {user}")
            password = json.dumps(passwords[user])  # a quoted string: no variable, no special characters
        perms = permissions(user)
        lines += [
            f"    {{user: {json.dumps(user)}, password: {password}, permissions: {{",
            f"      publish: {{allow: {json.dumps(list(perms.publish))}}}",
            f"      subscribe: {{allow: {json.dumps(list(perms.subscribe))}}}",
            "    }}",
        ]
    lines += ["  ]", "}"]
    return "\n".join(lines) + "\n"


def credentials_env(passwords: Mapping[str, str], component: str | None) -> dict[str, str]:
    """The ORDERDESK_NATS_USER/_PASSWORD of a process of `component` on a server made with `passwords`:
    its own user; a client of the suite (None: the CLI) the operators' admin; nothing for a process that
    does not connect (the gateway, the console) or when the server has no users (empty `passwords`)."""
    user = ADMIN if component is None else component
    if not passwords or user not in passwords:
        return {}
    return {"ORDERDESK_NATS_USER": user, "ORDERDESK_NATS_PASSWORD": passwords[user]}


SERVER_SECRET = "orderdesk-nats-server"  # the NATS servers' copy of every password (namespace nats)


def helm_values() -> dict:
    """The NATS helm chart's values for the users (deploy/k8s/nats-values.yaml holds them; a unit test keeps
    the two equal): `config.merge.authorization` with each password an environment reference (`<< $VAR >>`,
    the chart's unquoted value), and `container.env` filling the variables from the Secret SERVER_SECRET."""
    entries = []
    for user in users():
        perms = permissions(user)
        entries.append(
            {
                "user": user,
                "password": f"<< ${password_variable(user)} >>",
                "permissions": {
                    "publish": {"allow": list(perms.publish)},
                    "subscribe": {"allow": list(perms.subscribe)},
                },
            }
        )
    env = {
        password_variable(user): {
            "valueFrom": {"secretKeyRef": {"name": SERVER_SECRET, "key": password_variable(user)}}
        }
        for user in users()
    }
    return {"config": {"merge": {"authorization": {"users": entries}}}, "container": {"env": env}}
