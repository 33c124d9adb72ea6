"""The codes the services send (statuses, hold reasons, roles), as words in the person's language.

`label(HOLD_REASONS, code)` in Python, `{{ hold_reason(code) }}` (or `{{ code | hold_reason }}`) in a template. An unknown code is shown as
it is, so a new code never hides an order; add its words here (and to the catalogues).
"""

from __future__ import annotations

from collections.abc import Mapping

from console.i18n import N_, gettext

STATUSES = {
    "received": N_("Received"),
    "on_hold": N_("On hold"),
    "confirmed": N_("Confirmed"),
    "scheduled": N_("Backordered"),
    "allocated": N_("Allocated"),
    "partially_shipped": N_("Partially shipped"),
    "shipped": N_("Shipped"),
    "completed": N_("Completed"),
    "cancelled": N_("Cancelled"),
    "rejected": N_("Rejected"),
}

HOLD_REASONS = {
    "customer_blocked": N_("Customer is blocked"),
    "contact_missing": N_("Contact details missing"),
    "ship_to_incomplete": N_("Delivery address incomplete"),
    "country_unknown": N_("Country unknown"),
    "postal_code_invalid": N_("Postal code not valid"),
    "payment_terms_not_allowed": N_("Payment terms not allowed"),
    "duplicate_line": N_("Same product on two lines"),
    "sku_discontinued": N_("Product discontinued"),
    "currency_mismatch": N_("Currency differs from the customer's"),
    "price_mismatch": N_("Price differs from the customer's price"),
    "below_min_order_qty": N_("Below the minimum order quantity"),
    "not_order_multiple": N_("Not a multiple of the order unit"),
    "delivery_date_infeasible": N_("Requested date cannot be met"),
    "delivery_date_unverified": N_("Delivery date could not be checked"),
    "credit_limit_exceeded": N_("Credit limit exceeded"),
    "overdue_invoices": N_("Invoices overdue"),
    "new_customer_review": N_("New customer: review"),
    "amount_review": N_("Large order: review"),
    "duplicate_external_ref": N_("Purchase order number used before"),
}

# The end customer's status page says an order's status in their words, not the desk's.
END_CUSTOMER_STATUSES = {
    "received": N_("Received"),
    "on_hold": N_("Being checked"),
    "confirmed": N_("Confirmed"),
    "scheduled": N_("Waiting for stock"),
    "allocated": N_("Being prepared"),
    "partially_shipped": N_("Partly shipped"),
    "shipped": N_("Shipped"),
    "completed": N_("Delivered"),
    "cancelled": N_("Cancelled"),
    "rejected": N_("Not accepted"),
}

PROPOSALS = {
    "earliest_date": N_("Earliest date for the whole order"),
    "split": N_("Split delivery"),
}

CHANNELS = {
    "api": N_("Partner API"),
    "batch": N_("Batch"),
    "csv": N_("CSV upload"),
    "grpc": N_("Internal system"),
    "phone": N_("Phone"),
    "email": N_("E-mail"),
    "exchange": N_("Exchange (a return's replacement)"),
}

SHIPMENT_STATUSES = {
    "pending": N_("Waiting to be picked"),
    "picked": N_("Picked"),
    "packed": N_("Packed"),
    "shipped": N_("Shipped"),
    "delivered": N_("Delivered"),
    "cancelled": N_("Cancelled"),
}

TRACKING_STATUSES = {  # a carrier's word, normalised (services/shipping/tracking.py)
    "label_created": N_("Label created"),
    "picked_up": N_("Picked up by the carrier"),
    "in_transit": N_("In transit"),
    "delayed": N_("Delayed"),
    "out_for_delivery": N_("Out for delivery"),
    "available_for_pickup": N_("Available for pickup"),
    "delivery_attempted": N_("Delivery attempted"),
    "delivered": N_("Delivered"),
    "exception": N_("Carrier exception"),
    "returning_to_sender": N_("Returning to the sender"),
    "returned": N_("Returned to the sender"),
    "cancelled": N_("Cancelled"),
    "unknown": N_("Unknown status"),
}

RETURN_STATUSES = {
    "held": N_("Held for an approver"),
    "authorized": N_("Authorised"),
    "refused": N_("Refused"),
    "cancelled": N_("Cancelled"),
    "received": N_("Received"),
    "refunded": N_("Refunded"),
}

EXCEPTION_TYPES = {
    "production_delay": N_("Production delay"),
    "stock_shortage_at_pick": N_("Stock short at picking"),
    "carrier_delay": N_("Carrier delay"),
    "lost_parcel": N_("Lost parcel"),
    "quality_rework": N_("Quality rework"),
    "delivery_failed": N_("Delivery attempt failed"),
    "carrier_exception": N_("Carrier exception"),
    "returning_to_sender": N_("Returning to sender"),
}

EXCEPTION_STATUSES = {"open": N_("Open"), "resolved": N_("Resolved")}

RESOLUTIONS = {
    "reallocate": N_("Take stock from another warehouse"),
    "change_carrier": N_("Change the carrier"),
    "reship": N_("Send again"),
    "substitute": N_("Substitute a product"),
    "split_delivery": N_("Deliver in parts"),
    "accept_delay": N_("Accept the delay"),
}

CUSTOMER_TIERS = {
    "new": N_("New customer"),
    "standard": N_("Standard"),
    "key": N_("Key account"),
    "strategic": N_("Strategic account"),
}

CUSTOMER_STATES = {"active": N_("Active"), "blocked": N_("Blocked")}
CANCEL_REASONS = {  # the KPI report's classes of a free-text cancellation reason (services/orders/kpi)
    "customer_request": N_("Customer asked"),
    "out_of_stock": N_("Out of stock"),
    "late_delivery": N_("Late delivery"),
    "price": N_("Price"),
    "duplicate": N_("Duplicate order"),
    "payment": N_("Payment"),
    "address": N_("Address"),
    "fraud": N_("Fraud"),
    "other": N_("Other"),
}

CYCLE_STAGES = {
    "received_to_confirmed": N_("Received to confirmed"),
    "confirmed_to_shipped": N_("Confirmed to shipped"),
    "shipped_to_delivered": N_("Shipped to delivered"),
    "received_to_delivered": N_("Received to delivered"),
}

DELIVERY_STATUSES = {
    "pending": N_("being sent"),
    "delivered": N_("delivered"),
    "failed": N_("refused by the receiver"),
    "parked": N_("given up after retries"),
}

CHANGE_KINDS = {
    "ship_to": N_("delivery address"),
    "quantity": N_("quantities"),
    "add_line": N_("line added"),
    "remove_line": N_("line removed"),
    "cancel_lines": N_("units cancelled"),
    "substitute": N_("product substituted"),
    "accept_delay": N_("delay accepted"),
}

FIELDS = {
    "ship_to.name": N_("Delivery address: name"),
    "ship_to.line1": N_("Delivery address: street"),
    "ship_to.city": N_("Delivery address: city"),
    "ship_to.postal_code": N_("Delivery address: postal code"),
    "ship_to.country": N_("Delivery address: country"),
    "ship_to.phone": N_("Delivery address: phone"),
    "requested_delivery_date": N_("Requested delivery date"),
}

RISKS = {  # the promise watch's (services/orders/promise.py, issue 13)
    "not_allocatable_in_time": N_("Cannot be allocated in time"),
    "supply_late": N_("Supply arrives after the promised date"),
    "not_picked_by_cutoff": N_("Not picked by the warehouse's cut-off"),
    "carrier_silent": N_("No news from the carrier"),
    "transit_overdue": N_("In transit longer than planned"),
    "carrier_problem": N_("The carrier reports a problem"),
    "hold_too_long": N_("On hold too long to keep the promise"),
}

# Why a service refused a desk action (its rule), for the person; a rule not here shows the service's message.
REFUSALS = {
    "order_closed": N_("The order is closed: it can no longer be changed."),
    "returns_only_after_shipment": N_("The goods have left: only a return is possible now."),
    "address_until_packed": N_("A shipment is packed already: the address can no longer change."),
    "quantity_until_picked": N_("The line is picked already: its quantity can no longer change."),
    "lines_until_picking": N_("Picking has begun: lines can no longer be added or removed."),
    "cancel_before_shipment": N_("Goods have shipped: cancelling is no longer possible; authorise a return."),
    "cancel_not_allowed_in_status": N_("The order cannot be cancelled in its present state."),
    "approve_only_on_hold": N_("Only a held order can be approved; this one has moved on."),
    "reject_only_on_hold": N_("Only a held order can be rejected; this one has moved on."),
    "nothing_delivered": N_("Nothing of this order has been delivered yet, so nothing can be returned."),
    "exceeds_returnable": N_("More would be returned than was delivered and not yet returned."),
    "exception_already_resolved": N_("Someone resolved this exception already."),
    "change_needs_stock": N_("There is not enough stock for this change."),
    "reship_needs_stock": N_("There is not enough stock to ship again."),
    "no_such_proposal": N_("The order has no such proposal (any more)."),
}

ROLES = {
    "viewer": N_("Viewer"),
    "clerk": N_("Clerk"),
    "approver": N_("Approver"),
    "admin": N_("Administrator"),
}

PERMISSIONS = {
    "read": N_("read orders"),
    "enter_orders": N_("enter orders"),
    "amend_orders": N_("amend orders"),
    "cancel_orders": N_("cancel orders"),
    "raise_exceptions": N_("raise exceptions"),
    "resolve_exceptions": N_("resolve exceptions"),
    "authorise_returns": N_("authorise returns"),
    "record_receipts": N_("record receipts"),
    "write_notes": N_("write notes"),
    "decide_held_orders": N_("approve or reject held orders"),
    "manage_accounts": N_("manage desk accounts"),
    "manage_api_keys": N_("manage API keys"),
    "import_master_data": N_("import master data"),
}


def label(words: Mapping[str, str], code: str) -> str:
    return gettext(words[code]) if code in words else code


def field_label(path: str) -> str:
    """A changed field in words: "ship_to.city" -> "Delivery address: city", "lines[SKU-1].quantity" ->
    "Line SKU-1: quantity", "lines[SKU-1]" -> "Line SKU-1"; an unknown path as it is."""
    if path in FIELDS:
        return gettext(FIELDS[path])
    if path.startswith("lines[") and "]" in path:
        sku, _, rest = path[len("lines[") :].partition("]")
        if rest == ".quantity":
            return gettext(N_("Line %(sku)s: quantity"), sku=sku)
        if not rest:
            return gettext(N_("Line %(sku)s"), sku=sku)
    return path


def register(environment) -> None:
    """Template helpers, as functions and filters: status, hold_reason, proposal, channel, shipment_status,
    tracking_status, return_status, exception_type, exception_status, resolution, end_customer_status, tier,
    customer_state, cancel_reason, cycle_stage, delivery_status, change_kind, field_label, risk, role,
    permission."""
    helpers = {
        "status": lambda code: label(STATUSES, code),
        "hold_reason": lambda code: label(HOLD_REASONS, code),
        "proposal": lambda kind: label(PROPOSALS, kind),
        "channel": lambda code: label(CHANNELS, code),
        "shipment_status": lambda code: label(SHIPMENT_STATUSES, code),
        "tracking_status": lambda code: label(TRACKING_STATUSES, code),
        "return_status": lambda code: label(RETURN_STATUSES, code),
        "exception_type": lambda code: label(EXCEPTION_TYPES, code),
        "exception_status": lambda code: label(EXCEPTION_STATUSES, code),
        "resolution": lambda code: label(RESOLUTIONS, code),
        "end_customer_status": lambda code: label(END_CUSTOMER_STATUSES, code),
        "tier": lambda code: label(CUSTOMER_TIERS, code),
        "customer_state": lambda code: label(CUSTOMER_STATES, code),
        "cancel_reason": lambda code: label(CANCEL_REASONS, code),
        "cycle_stage": lambda code: label(CYCLE_STAGES, code),
        "delivery_status": lambda code: label(DELIVERY_STATUSES, code),
        "change_kind": lambda code: label(CHANGE_KINDS, code),
        "risk": lambda code: label(RISKS, code),
        "field_label": field_label,
        "role": lambda code: label(ROLES, code),
        "permission": lambda code: label(PERMISSIONS, code),
    }
    environment.globals.update(helpers)
    environment.filters.update(helpers)
