"""The order search's form: its address carries the search (and the page's cursor), and what the orders service
refuses lands beside the form's field with the console's own words."""

import grpc
from hypothesis import given
from hypothesis import strategies as st
from starlette.datastructures import QueryParams

from console import web
from console.screens import search
from orderdesk import rpc
from orderdesk.errors import FieldViolation


def refusal(*violations: FieldViolation) -> web.ServiceRefusal:
    return web.ServiceRefusal(
        rpc.RpcFailure(
            grpc.StatusCode.INVALID_ARGUMENT, "invalid listing", "invalid_argument", list(violations)
        )
    )


values = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")), max_size=12)


@given(st.fixed_dictionaries({}, optional={f: values for f in search.Search.__dataclass_fields__}), values)
def test_the_address_carries_the_search_and_the_cursor(asked, cursor):
    searched = search.Search.of(asked)
    address = searched.address(cursor)
    query = QueryParams(address.partition("?")[2])
    assert search.Search.of(query) == searched  # the next page searches the same
    assert query.get("cursor", "") == cursor
    assert searched.address() == searched.address("")


def test_a_bad_date_is_named_beside_its_field():
    found = search.form_errors(
        refusal(
            FieldViolation("created_from", "a date YYYY-MM-DD …", "invalid_time"),
            FieldViolation("customer_id", "at most 128 characters"),
        )
    )
    assert found.fields == {"created_from": search.DATE, "customer": search.TEXT}
    assert not found.general


def test_an_empty_period_is_told_apart_from_a_bad_end_date():
    empty = search.form_errors(
        refusal(FieldViolation("created_to", "must be after created_from", "empty_period"))
    )
    bad = search.form_errors(refusal(FieldViolation("created_to", "a date", "invalid_time")))
    assert empty.fields == {"created_to": search.EMPTY_PERIOD}
    assert bad.fields == {"created_to": search.DATE}


def test_a_stale_cursor_asks_to_search_again_and_an_unknown_field_is_said_above_the_form():
    assert search.form_errors(refusal(FieldViolation("cursor", "not a cursor"))).general == search.STALE_PAGE
    found = search.form_errors(refusal(FieldViolation("limit", "must be 1..500")))
    assert not found.fields and found.general == "invalid listing"


def test_the_at_risk_queue_is_a_search_of_any_risk_or_one():
    assert not search.Search.of({}).request("", "").at_risk
    queue = search.Search.of({"risk": "any"}).request("", "")
    assert (queue.at_risk, queue.risk) == (True, "")
    one = search.Search.of({"risk": "supply_late", "sku": "BRK-001"}).request("", "")
    assert (one.at_risk, one.risk, one.sku) == (True, "supply_late", "BRK-001")
    found = search.form_errors(refusal(FieldViolation("risk", "one of not_allocatable_in_time, …")))
    assert found.fields == {"risk": search.RISK}
