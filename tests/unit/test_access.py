"""The access table (orderdesk/access.py): every method it names exists in the protos, and the services each
identity may call are the peers its NetworkPolicy lets it reach (deploy/k8s/base/networkpolicies.yaml)."""

from __future__ import annotations

from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2

from orderdesk import access
from orderdesk.config import SERVICES
from orderdesk.v1 import (
    apikeys_pb2,
    intake_pb2,
    inventory_pb2,
    notifier_pb2,
    orders_pb2,
    returns_pb2,
    shipping_pb2,
)
from tests.unit.deploy.test_k8s import TARGETS, by_kind, files_as_written, grpc_peers

MODULES = (
    apikeys_pb2,
    intake_pb2,
    inventory_pb2,
    notifier_pb2,
    orders_pb2,
    returns_pb2,
    shipping_pb2,
    health_pb2,
    reflection_pb2,
)
SERVED_BY = {  # the component that serves each service of the table
    "IntakeService": "intake",
    "OrdersService": "orders",
    "InventoryService": "inventory",
    "ShippingService": "shipping",
    "ReturnsService": "returns",
    "NotifierService": "notifier",
}


def methods_in_protos() -> set[str]:
    """Every method path the generated descriptors define, "/orderdesk.v1.OrdersService/GetOrder"."""
    return {
        f"/{service.full_name}/{method.name}"
        for module in MODULES
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    }


def unknown(table: dict[str, dict[str, tuple[str, ...]]]) -> list[str]:
    """The table's entries that name no method (or no service) of the protos."""
    known = methods_in_protos()
    services = {path.rsplit("/", 1)[0] for path in known}
    found = []
    for identity, entries in table.items():
        for service, methods in entries.items():
            for method in methods:
                path = f"/{access.service_name(service)}/{method}"
                if (method == "*" and path.rsplit("/", 1)[0] not in services) or (
                    method != "*" and path not in known
                ):
                    found.append(f"{identity}: {path}")
    return found


def test_every_entry_names_a_method_of_the_protos():
    assert unknown(access.TABLE) == []
    assert set(access.HEALTH) <= methods_in_protos()


def test_the_check_catches_a_renamed_method():
    renamed = {"shipping": {"OrdersService": ("ApproveOrders",)}, "cli": {"NoSuchService": ("*",)}}
    assert unknown(renamed) == [
        "shipping: /orderdesk.v1.OrdersService/ApproveOrders",
        "cli: /orderdesk.v1.NoSuchService/*",
    ]


def test_identities_are_the_components_and_the_cli():
    assert set(access.TABLE) <= {*SERVICES, "gateway", "console", "cli"}


def test_who_may_call_what():
    assert access.may_call("intake", "/orderdesk.v1.OrdersService/ApproveOrder")
    assert not access.may_call("shipping", "/orderdesk.v1.OrdersService/ApproveOrder")
    assert not access.may_call("gateway", "/orderdesk.v1.OrdersService/AddOrderNote")  # the desk's only
    assert access.may_call("console", "/orderdesk.v1.ApiKeysService/CreateApiKey")
    assert not access.may_call("gateway", "/orderdesk.v1.ApiKeysService/CreateApiKey")
    # Everyone authenticated, even an identity the table does not know, may ask for health; nothing else.
    for identity in ("shipping", "stranger", ""):
        assert access.may_call(identity, "/grpc.health.v1.Health/Check")
        assert not access.may_call(identity, "/orderdesk.v1.InventoryService/Restock")
    # A service wildcard covers that service's methods only.
    assert access.may_call("cli", "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
    assert not access.may_call("cli", "/orderdesk.v1.OrdersService/CancelOrder")


def test_the_table_and_the_network_policies_name_the_same_peers():
    """An identity's services here are the pods its NetworkPolicy reaches on gRPC (50051), both ways."""
    policies = by_kind(files_as_written(TARGETS["base"]), "NetworkPolicy")
    for name, policy in policies.items():
        table = {SERVED_BY[s] for s in access.TABLE.get(name, {}) if s in SERVED_BY}
        assert grpc_peers(policy["spec"]["egress"], "to") == table, f"{name} egress"
        if name in SERVICES:
            callers = {
                identity
                for identity, entries in access.TABLE.items()
                if identity in policies and any(SERVED_BY.get(s) == name for s in entries)
            }
            assert grpc_peers(policy["spec"]["ingress"], "from") == callers, f"{name} ingress"
