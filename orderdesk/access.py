"""Who may call what inside the suite: ONE table, caller identity -> the gRPC methods it may call.

The identity is the common name of the caller's certificate (orderdesk/tls.py); orderdesk.runtime.Authorize
checks every call of every service (and of the gateway's API-key service) against this table when mTLS is on,
and refuses anything else with PERMISSION_DENIED, counted in orderdesk_rpc_denied_total{caller,method}.

Each entry is a call the code makes (grep the stub's method in services/*/ for the services, gateway/ and
console/ for the edges, cli/ for the operator's tool); a method added to the code needs its line here, or the
call is refused under mTLS. tests/unit/test_access.py checks that every method named exists in the protos.

Checking it against deploy/k8s/base/networkpolicies.yaml: the services an identity's lines name are exactly
the gRPC peers its NetworkPolicy lets it reach on 50051 (egress), and a service's callers here are the pods
its NetworkPolicy admits (ingress); tests/unit/test_access.py asserts both. The network keeps a pod from
reaching a port, this table keeps a reached service from doing what the caller has no business asking.
"""

from __future__ import annotations

from functools import cache

PACKAGE = "orderdesk.v1"
# Any authenticated caller: the standard health check (readiness of the gateway and the console, `make run`).
HEALTH = ("/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch")

# identity -> service -> methods. "*" would allow a whole service: nobody needs that today.
TABLE: dict[str, dict[str, tuple[str, ...]]] = {
    "intake": {
        "OrdersService": ("CreateOrder", "CreateOrders", "GetOrder", "ApproveOrder"),  # enter, approve held
        "InventoryService": ("GetStock", "QuoteSupply"),  # delivery-date checks
    },
    "orders": {
        "InventoryService": ("Reserve", "ReserveMany", "Reallocate"),  # allocator, changes, exceptions
        "IntakeService": ("ReviewChange",),  # change requests re-checked by intake's rules
        "ShippingService": ("ListShipments",),  # a change of an allocated order
    },
    "returns": {
        "OrdersService": ("GetOrder",),  # delivered quantities
        "IntakeService": ("QuoteLines", "SubmitOrder"),  # exchanges: the replacement's price, its order
    },
    # inventory, shipping and the notifier call no service: they act on events only.
    "gateway": {
        "IntakeService": (
            "SubmitOrder",
            "SubmitOrderStream",
            "SubmitOrders",  # a JSON batch or CSV upload in one message
            "ApproveHeldOrder",
            "ImportMasterData",
            "EraseCustomer",
            "RecordFinanceDocument",  # finance's invoices, payments and credit notes
            "GetOrderAccount",
            "ListCreditNotes",
        ),
        "OrdersService": (
            "GetOrder",
            "ListOrders",
            "CancelOrder",
            "RejectOrder",
            "ChangeOrder",
            "RecordException",
            "ResolveException",
            "GetKpiReport",
            "EraseCustomer",
        ),
        "InventoryService": (
            "GetStock",
            "Restock",
            "ImportMasterData",
            "ListProduction",
            "CompleteProduction",
            "RescheduleProduction",
            "AnnounceInbound",
            "GetAvailableToPromise",
        ),
        "ShippingService": (
            "ListShipments",
            "RecordShipmentEvent",
            "RecordCarrierEvents",
            "ImportMasterData",
        ),
        "ReturnsService": (
            "CreateReturn",
            "CreateClaim",  # claims (issue 14)
            "GetReturn",
            "ReceiveReturn",
            "InspectReturn",
            "ListReturns",
            "AuthoriseReturn",
            "RefuseReturn",
            "CancelReturn",
            "ImportMasterData",
        ),
        "NotifierService": (
            "CreateEndpoint",
            "ListEndpoints",
            "GetEndpoint",
            "PauseEndpoint",
            "ResumeEndpoint",
            "RotateSecret",
            "DeleteEndpoint",
            "ListDeliveries",
            "ReplayDelivery",
            "ReplayRange",
            "ReadFeed",
            "EraseCustomer",
        ),
    },
    "console": {
        "IntakeService": ("SubmitOrder", "ApproveHeldOrder", "SearchCustomers", "GetCustomer", "QuoteLines"),
        "OrdersService": (
            "GetOrder",
            "ListOrders",
            "CancelOrder",
            "RejectOrder",
            "ChangeOrder",
            "RecordException",
            "ResolveException",
            "GetKpiReport",
            "AddOrderNote",
            "GetDeskOrder",  # the desk's read of an order with its notes (README "The desk's backend")
            "GetOrderStatus",
            "GetOrderTimeline",
            "CountQueues",
        ),
        "InventoryService": ("GetStock", "Restock", "ListProduction", "GetAvailableToPromise"),
        "ShippingService": ("ListShipments",),
        "ReturnsService": (
            "CreateReturn",
            "CreateClaim",
            "ListReturns",
            "AuthoriseReturn",
            "RefuseReturn",
            "CancelReturn",
        ),
        "NotifierService": ("ListEndpoints", "ListOrderDeliveries"),
        "ApiKeysService": ("ListApiKeys", "CreateApiKey", "RevokeApiKey"),  # the gateway's key admin
    },
    "cli": {  # the operator's tool: master data imports and the archive
        "IntakeService": ("ImportMasterData",),
        "InventoryService": ("ImportMasterData",),
        "ShippingService": ("ImportMasterData",),
        "ReturnsService": ("ImportMasterData",),
        "OrdersService": ("RunArchive", "ExportArchive"),
        "ServerReflection": ("*",),  # ORDERDESK_GRPC_REFLECTION=true (debugging with grpcurl): the operator
    },
}
FULL_NAMES = {"ServerReflection": "grpc.reflection.v1alpha.ServerReflection"}  # not in orderdesk.v1


def service_name(service: str) -> str:
    return FULL_NAMES.get(service, f"{PACKAGE}.{service}")


@cache
def allowed(identity: str) -> frozenset[str]:
    """Every method path ("/orderdesk.v1.OrdersService/GetOrder") or service wildcard ("/….Service/*")
    `identity` may call; unknown identities only the health check."""
    paths = {f"/{service_name(s)}/{m}" for s, methods in TABLE.get(identity, {}).items() for m in methods}
    return frozenset({*paths, *HEALTH})


def may_call(identity: str, method: str) -> bool:
    """Whether `identity` may call `method`, a full gRPC path such as "/orderdesk.v1.OrdersService/GetOrder"."""
    granted = allowed(identity)
    return method in granted or f"{method.rsplit('/', 1)[0]}/*" in granted
