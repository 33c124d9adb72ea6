"""orderdesk/natsauth.py's table against the code: each service may publish exactly the subject trees its
code publishes, read through exactly the consumers it makes, wake exactly its own jobs (issue 12)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from orderdesk import config, events, leases, natsauth
from orderdesk.config import SERVICES, NatsCredentials

ROOT = Path(__file__).resolve().parents[2]


def _sources(component: str) -> list[ast.Module]:
    return [ast.parse(p.read_text()) for p in sorted((ROOT / "services" / component).rglob("*.py"))]


def _prefix(node: ast.AST | None) -> str | None:
    """The aggregate a literal or f-string event type starts with ("shipment.{…}" -> "shipment")."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and "." in node.value:
        return node.value.split(".", 1)[0]
    if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
        text = str(node.values[0].value)
        return text.split(".", 1)[0] if "." in text else None
    return None


def published_aggregates(component: str) -> set[str]:
    """Every aggregate the service's code names an event type for: events.new_event("<aggregate>.…") and
    the `event_type` its aggregates' changes declare (orderdesk.usecase.publish)."""
    found: set[str] = set()
    for tree in _sources(component):
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = (
                    node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                )
                if name == "new_event" and node.args and (p := _prefix(node.args[0])):
                    found.add(p)
            elif isinstance(node, ast.FunctionDef) and node.name == "event_type":
                found |= {p for r in ast.walk(node) if isinstance(r, ast.Return) if (p := _prefix(r.value))}
            elif isinstance(node, ast.AnnAssign | ast.Assign):
                targets = [node.target] if isinstance(node, ast.AnnAssign) else node.targets
                if any(isinstance(t, ast.Name) and t.id == "event_type" for t in targets):
                    if p := _prefix(node.value):
                        found.add(p)
    return found


def singleton_jobs(component: str) -> set[str]:
    """The jobs the service hands to runtime.add_singleton, by literal or module constant."""
    found: set[str] = set()
    for tree in _sources(component):
        constants = {
            t.id: n.value.value
            for n in tree.body
            if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant)
            for t in n.targets
            if isinstance(t, ast.Name)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_singleton" and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant):
                    found.add(first.value)
                elif isinstance(first, ast.Name) and first.id in constants:
                    found.add(constants[first.id])
                else:
                    raise AssertionError(f"{component}: add_singleton with a job name this test cannot read")
    return found


class _Anything:
    """Stands in for a service object: subscriptions() only takes its bound methods."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def subscriptions(component: str) -> dict[str, str]:
    module = importlib.import_module(f"services.{component}.consumers")
    extra = {"wake_allocator": _Anything().x, "allocate_soon": _Anything().x} if component == "orders" else {}
    return {s.durable: s.filter_subject for s in module.subscriptions(_Anything(), **extra)}


def test_the_table_has_every_service_and_nothing_else():
    assert set(natsauth.COMPONENTS) == set(SERVICES)
    assert set(natsauth.users()) == {*SERVICES, natsauth.ADMIN}


@pytest.mark.parametrize("component", SERVICES)
def test_a_service_publishes_exactly_its_own_aggregates(component):
    assert published_aggregates(component) == set(natsauth.COMPONENTS[component].aggregates)


def test_no_two_services_publish_one_subject_tree():
    owners = [a for spec in natsauth.COMPONENTS.values() for a in spec.aggregates]
    assert len(owners) == len(set(owners))
    assert set(owners) == {"order", "shipment", "return", "stock"}


@pytest.mark.parametrize("component", SERVICES)
def test_a_service_consumes_exactly_its_subscriptions(component):
    assert subscriptions(component) == dict(natsauth.COMPONENTS[component].consumers)


@pytest.mark.parametrize("component", SERVICES)
def test_a_service_wakes_exactly_its_jobs(component):
    generic = {f"outbox-{component}", f"retention-{component}"}
    assert set(natsauth.wake_jobs(component)) == generic | singleton_jobs(component)


def test_names_agree_with_the_runtime():
    assert (natsauth.STREAM, natsauth.DLQ_STREAM) == (events.STREAM, events.DLQ_STREAM)
    assert (natsauth.SUBJECT_ROOT, natsauth.DLQ_ROOT) == (events.SUBJECT_ROOT, events.DLQ_ROOT)
    assert natsauth.WAKE_ROOT == leases.WAKE_ROOT


def test_shipping_may_publish_shipments_and_returns_may_not():
    shipping, returns = natsauth.permissions("shipping"), natsauth.permissions("returns")
    assert "orderdesk.shipment.>" in shipping.publish
    assert not any(s.startswith("orderdesk.shipment") or s in (">", "orderdesk.>") for s in returns.publish)
    # Only its own inboxes, never every inbox.
    assert returns.subscribe[0] == "_INBOX.returns.>"
    assert not any(s in (">", "_INBOX.>") or s.startswith("orderdesk.") for s in returns.subscribe)


def test_a_consumer_is_created_only_with_its_own_filter():
    orders = natsauth.permissions("orders")
    assert (
        "$JS.API.CONSUMER.CREATE.ORDERDESK.orders-stock-restocked.orderdesk.stock.*.restocked"
        in orders.publish
    )
    assert not any("DURABLE.CREATE" in s or s.endswith("CONSUMER.CREATE.ORDERDESK") for s in orders.publish)
    assert not any(s.startswith("$JS.API.STREAM.MSG") or "DELETE" in s for s in orders.publish)


def test_unknown_component_has_no_user():
    with pytest.raises(ValueError, match="no NATS user for 'gateway'"):
        natsauth.permissions("gateway")


def test_rendered_block_names_every_user_with_its_password():
    passwords = natsauth.generate_passwords()
    assert len(set(passwords.values())) == len(passwords)
    text = natsauth.render_authorization(passwords)
    for user in natsauth.users():
        assert f'{{user: "{user}", password: "{passwords[user]}"' in text
    assert '"orderdesk.shipment.>"' in text and text.count("{user:") == len(natsauth.users())


def test_rendered_block_for_a_deployment_reads_passwords_from_the_environment():
    text = natsauth.render_authorization()
    assert '{user: "orders", password: $ORDERDESK_NATS_ORDERS_PASSWORD,' in text
    assert '{user: "admin", password: $ORDERDESK_NATS_ADMIN_PASSWORD,' in text


def test_a_missing_password_is_refused_naming_the_user():
    passwords = natsauth.generate_passwords()
    del passwords["inventory"]
    with pytest.raises(ValueError, match="no NATS password for inventory"):
        natsauth.render_authorization(passwords)


def test_each_process_gets_only_its_own_user():
    passwords = natsauth.generate_passwords()
    assert natsauth.credentials_env(passwords, "shipping") == {
        "ORDERDESK_NATS_USER": "shipping",
        "ORDERDESK_NATS_PASSWORD": passwords["shipping"],
    }
    assert natsauth.credentials_env(passwords, None)["ORDERDESK_NATS_USER"] == "admin"
    assert natsauth.credentials_env(passwords, "gateway") == {}
    assert natsauth.credentials_env({}, "shipping") == {}


def test_credentials_come_in_pairs_and_never_show(monkeypatch):
    monkeypatch.setenv("ORDERDESK_NATS_USER", "orders")
    monkeypatch.delenv("ORDERDESK_NATS_PASSWORD", raising=False)
    with pytest.raises(ValueError, match="go together"):
        NatsCredentials.from_env()
    monkeypatch.setenv("ORDERDESK_NATS_PASSWORD", "s3cret-pass")
    credentials = NatsCredentials.from_env()
    assert "s3cret-pass" not in repr(credentials)
    assert credentials.connect_options("orders") == {
        "user": "orders",
        "password": "s3cret-pass",
        "inbox_prefix": "_INBOX.orders",
    }
    monkeypatch.delenv("ORDERDESK_NATS_USER")
    monkeypatch.delenv("ORDERDESK_NATS_PASSWORD")
    assert config.NatsCredentials.from_env().connect_options() == {}


def test_the_development_stack_gives_each_process_only_its_own_user(tmp_path):
    from devtools.devstack import Stack

    passwords = natsauth.generate_passwords()
    stack = Stack(data_dir=tmp_path, nats_url="nats://127.0.0.1:1", nats_passwords=passwords, console=True)
    for instance in stack.all_instances:
        env = stack.env(instance)
        others = [p for user, p in passwords.items() if user != instance]
        assert not any(p in env.values() for p in others), instance
        if instance in SERVICES:
            assert (env["ORDERDESK_NATS_USER"], env["ORDERDESK_NATS_PASSWORD"]) == (
                instance,
                passwords[instance],
            )
        else:  # the gateway and the console do not connect to NATS
            assert "ORDERDESK_NATS_USER" not in env and "ORDERDESK_NATS_PASSWORD" not in env
    assert stack.env()["ORDERDESK_NATS_USER"] == "admin"  # the CLI
    assert "ORDERDESK_NATS_USER" not in Stack(data_dir=tmp_path, nats_url="nats://127.0.0.1:1").env("orders")


def test_the_nats_helm_values_are_the_tables():
    import yaml

    values = yaml.safe_load((ROOT / "deploy" / "k8s" / "nats-values.yaml").read_text())
    expected = natsauth.helm_values()
    assert values["config"]["merge"] == expected["config"]["merge"]
    assert values["container"] == expected["container"]
    users = {u["user"] for u in values["config"]["merge"]["authorization"]["users"]}
    assert users == set(natsauth.users())
