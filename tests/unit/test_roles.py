"""The one table of who may do what (orderdesk/roles.py) and the approval limit rule."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orderdesk import roles
from orderdesk.roles import ROLES, Permission

CLERK_WORK = {
    Permission.ENTER_ORDERS,
    Permission.AMEND_ORDERS,
    Permission.CANCEL_ORDERS,
    Permission.RAISE_EXCEPTIONS,
    Permission.RESOLVE_EXCEPTIONS,
    Permission.AUTHORISE_RETURNS,
    Permission.RECORD_RECEIPTS,
    Permission.WRITE_NOTES,
}
ADMIN_WORK = {Permission.MANAGE_ACCOUNTS, Permission.MANAGE_API_KEYS, Permission.IMPORT_MASTER_DATA}


def test_the_four_roles_and_what_each_may_do():
    assert set(ROLES) == {"viewer", "clerk", "approver", "admin"}
    assert ROLES["viewer"] == {Permission.READ}
    assert ROLES["clerk"] == {Permission.READ} | CLERK_WORK
    assert ROLES["approver"] == ROLES["clerk"] | {Permission.DECIDE_HELD_ORDERS}
    assert ROLES["admin"] == {Permission.READ} | ADMIN_WORK


def test_every_permission_belongs_to_some_role_and_everyone_reads():
    granted = set().union(*ROLES.values())
    assert granted == set(Permission)
    assert all(roles.allows(role, Permission.READ) for role in ROLES)


def test_a_refusal_names_the_roles_that_may():
    assert roles.check("clerk", Permission.AMEND_ORDERS) is None
    refused = roles.check("viewer", Permission.AMEND_ORDERS)
    assert refused is not None and refused.roles == ("clerk", "approver")
    assert roles.check("clerk", Permission.DECIDE_HELD_ORDERS).roles == ("approver",)
    assert roles.check("approver", Permission.MANAGE_ACCOUNTS).roles == ("admin",)
    assert roles.check("nobody", Permission.READ).roles == ("viewer", "clerk", "approver", "admin")


def test_an_approver_decides_up_to_the_limit_in_the_orders_currency():
    limits = {"USD": Decimal("5000")}
    assert roles.check_decision("approver", limits, "USD", Decimal("5000")) is None
    assert roles.check_decision("approver", limits, "usd", Decimal("4999.99")) is None
    over = roles.check_decision("approver", limits, "USD", Decimal("5000.01"))
    assert (over.currency, over.needed, over.limit) == ("USD", Decimal("5000.01"), Decimal("5000"))
    none = roles.check_decision("approver", limits, "EUR", Decimal("1"))
    assert (none.currency, none.limit) == ("EUR", None)


def test_a_clerk_never_decides_whatever_the_limits():
    refused = roles.check_decision("clerk", {"USD": Decimal("1000000")}, "USD", Decimal("1"))
    assert refused is not None and refused.roles == ("approver",)


@given(
    limit=st.decimals(min_value=0, max_value=10**9, places=2),
    total=st.decimals(min_value=0, max_value=10**9, places=2),
    role=st.sampled_from(sorted(ROLES)),
)
def test_a_decision_is_allowed_exactly_for_an_approver_whose_limit_covers_the_total(limit, total, role):
    allowed = roles.check_decision(role, {"USD": limit}, "USD", total) is None
    assert allowed == (role == "approver" and total <= limit)


def test_limits_are_read_from_currency_equals_amount():
    assert roles.parse_limits(["usd=5000", "EUR = 2500.50"]) == {
        "USD": Decimal("5000"),
        "EUR": Decimal("2500.50"),
    }
    for bad in ("USD", "US=1", "USD=abc", "USD=-1", "USD=NaN"):
        with pytest.raises(ValueError):
            roles.parse_limits([bad])
