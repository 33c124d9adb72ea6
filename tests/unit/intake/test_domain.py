"""Intake's rules with no I/O: structure (refuse), business rules (hold), priority, request hashing."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import time
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orderdesk import idempotency
from orderdesk.errors import InvalidArgument
from orderdesk.idempotency import key_reused
from orderdesk.masterdata import Customer, Product
from services.intake import domain
from services.intake.domain import Submission, SubmittedLine
from services.intake.domain.submission import canonical_request

TODAY = dt.date(2026, 6, 1)
NOW = dt.datetime(2026, 6, 1, 8, 0, tzinfo=dt.UTC)
FACTS = domain.Facts(now=NOW)
EMPTY_ADDRESS = {f: "" for f in domain.ADDRESS_FIELDS}


def customer(**changes) -> Customer:
    base = Customer(
        customer_id="C1",
        name="Acme Ltd",
        tier="standard",
        status="active",
        credit_limit=Decimal("50000"),
        currency="USD",
        payment_terms=("NET30", "NET45"),
        email="buy@acme.example",
        phone="+1-555-0100",
        ship_to_line1="1 Harbour Road",
        ship_to_city="Austin",
        ship_to_postal_code="73301",
        ship_to_country="US",
    )
    return dataclasses.replace(base, **changes)


def product(sku: str = "SKU-1", **changes) -> Product:
    base = Product(
        sku=sku,
        name=f"Part {sku}",
        unit_price=Decimal("12.50"),
        currency="USD",
        make_to_order=False,
        production_lead_time_days=3,
        min_order_qty=1,
        order_multiple=1,
        status="active",
    )
    return dataclasses.replace(base, **changes)


def submission(**changes) -> Submission:
    base = Submission(
        partner_id="P1",
        idempotency_key="key-1",
        channel="api",
        external_ref="PO-1",
        customer_id="C1",
        ship_to=dict(EMPTY_ADDRESS),
        lines=(SubmittedLine("SKU-1", 2, "12.50"),),
        requested_delivery_date="",
        payment_terms="NET30",
    )
    return dataclasses.replace(base, **changes)


CATALOGUE = {"SKU-1": product("SKU-1"), "SKU-2": product("SKU-2", unit_price=Decimal("3"))}


def violations(s: Submission, c: Customer | None = None, products=None) -> list[tuple[str, str]]:
    """(field, reason) of every violation, or [] when the request is well-formed."""
    try:
        domain.check_structure(s, customer() if c is None else c, CATALOGUE if products is None else products)
    except InvalidArgument as exc:
        assert exc.violations, "an InvalidArgument from intake always names its fields"
        return [(v.field, v.reason) for v in exc.violations]
    return []


def fields(s: Submission, **kw) -> list[str]:
    return [f for f, _ in violations(s, **kw)]


def reasons_of(
    s: Submission, c: Customer, products, facts: domain.Facts = FACTS, config=None
) -> list[domain.Reason]:
    return domain.hold_reasons(s, c, products, facts, config)[0]


def codes(s: Submission, c: Customer | None = None, products=None) -> list[str]:
    return [r.code for r in reasons_of(s, c or customer(), products or CATALOGUE)]


# --- structure ---------------------------------------------------------------------------
def test_a_clean_order_has_no_violations_and_no_hold_reasons():
    assert violations(submission()) == []
    decision = domain.decide(submission(), customer(), CATALOGUE, FACTS)
    assert decision.approved and decision.hold_reasons == ()
    assert decision.lines == (domain.OrderLine("SKU-1", 2, Decimal("12.50")),)
    assert decision.currency == "USD" and decision.payment_terms == "NET30"


def test_missing_customer_id_is_required():
    assert violations(submission(customer_id="")) == [("customer_id", "required")]


def test_unknown_customer_is_refused_on_customer_id():
    with pytest.raises(InvalidArgument) as err:
        domain.check_structure(submission(customer_id="C404"), None, CATALOGUE)
    assert [(v.field, v.reason) for v in err.value.violations] == [("customer_id", "unknown")]
    assert "C404" in err.value.violations[0].description


def test_an_order_without_lines_is_refused():
    assert violations(submission(lines=())) == [("lines", "required")]


def test_too_many_lines_are_refused():
    lines = tuple(SubmittedLine("SKU-1", 1, "12.50") for _ in range(domain.MAX_LINES + 1))
    assert fields(submission(lines=lines)) == ["lines"]
    assert fields(submission(lines=lines[: domain.MAX_LINES])) == []


def test_unknown_and_missing_skus_are_named_by_line():
    lines = (SubmittedLine("SKU-1", 1, "12.50"), SubmittedLine("NOPE", 1, "1"), SubmittedLine("", 1, "1"))
    assert violations(submission(lines=lines)) == [("lines[1].sku", "unknown"), ("lines[2].sku", "required")]


@pytest.mark.parametrize("quantity", [0, -1, -(2**40), domain.MAX_QUANTITY + 1])
def test_quantity_must_be_positive_and_bounded(quantity):
    lines = (SubmittedLine("SKU-1", 1, "12.50"), SubmittedLine("SKU-2", quantity, "3"))
    assert fields(submission(lines=lines)) == ["lines[1].quantity"]


@pytest.mark.parametrize("quantity", [1, 7, domain.MAX_QUANTITY])
def test_positive_quantities_are_well_formed(quantity):
    assert fields(submission(lines=(SubmittedLine("SKU-1", quantity, "12.50"),))) == []


@pytest.mark.parametrize(
    "price",
    [
        "",
        "ten",
        "-1",
        "-0.01",
        "1e3",
        "NaN",
        "Infinity",
        " 12.50",
        "12.50 ",
        "1.",
        ".5",
        "1,50",
        "+1",
        "0x10",
        "1.1234567",
        "1234567890123456",
    ],
)
def test_unit_price_must_be_a_plain_non_negative_decimal(price):
    assert fields(submission(lines=(SubmittedLine("SKU-1", 1, price),))) == ["lines[0].unit_price"]


@pytest.mark.parametrize("price", ["0", "12.5", "12.50", "0.000001", "123456789012345.123456"])
def test_plain_decimals_are_valid_prices(price):
    assert fields(submission(lines=(SubmittedLine("SKU-1", 1, price),))) == []


@pytest.mark.parametrize(
    "date",
    [
        "2026-13-01",
        "2026-02-30",
        "2026/12/01",
        "20261201",
        "2026-W01-1",
        "tomorrow",
        "2026-1-5",
        " 2026-12-01",
    ],
)
def test_requested_delivery_date_must_be_yyyy_mm_dd(date):
    assert fields(submission(requested_delivery_date=date)) == ["requested_delivery_date"]


@pytest.mark.parametrize("date", ["", "2026-12-01", "2024-02-29"])
def test_requested_delivery_date_is_optional(date):
    assert fields(submission(requested_delivery_date=date)) == []


def test_idempotency_key_is_required_and_bounded():
    assert violations(submission(idempotency_key="")) == [("idempotency_key", "required")]
    assert violations(submission(idempotency_key="k" * 201)) == [("idempotency_key", "too_long")]
    assert violations(submission(idempotency_key="k" * 200)) == []


def test_external_ref_is_bounded():
    assert fields(submission(external_ref="r" * 129)) == ["external_ref"]
    assert fields(submission(external_ref="r" * 128)) == []
    assert fields(submission(external_ref="")) == []


def test_channel_must_be_a_known_one():
    assert fields(submission(channel="fax")) == ["channel"]
    for channel in domain.CHANNELS:
        assert fields(submission(channel=channel)) == []


def test_partner_id_and_payment_terms_are_bounded_to_what_is_stored():
    assert fields(submission(partner_id="p" * 65)) == ["partner_id"]
    assert fields(submission(payment_terms="T" * 33)) == ["payment_terms"]


def test_a_given_ship_to_needs_name_line1_city_and_a_two_letter_country():
    partial = dict(EMPTY_ADDRESS, city="Berlin")
    assert fields(submission(ship_to=partial)) == ["ship_to.name", "ship_to.line1", "ship_to.country"]
    bad_country = dict(EMPTY_ADDRESS, name="Dock 4", line1="Hafenstr. 1", city="Hamburg", country="DEU")
    assert fields(submission(ship_to=bad_country)) == ["ship_to.country"]
    long_phone = dict(bad_country, country="DE", phone="1" * 201)
    assert fields(submission(ship_to=long_phone)) == ["ship_to.phone"]


def test_every_violation_is_reported_at_once():
    s = submission(
        idempotency_key="",
        customer_id="",
        requested_delivery_date="01/12/2026",
        lines=(SubmittedLine("NOPE", 0, "ten"), SubmittedLine("SKU-1", 1, "12.50")),
    )
    with pytest.raises(InvalidArgument) as err:
        domain.decide(s, None, CATALOGUE, FACTS)
    assert [v.field for v in err.value.violations] == [
        "idempotency_key",
        "customer_id",
        "requested_delivery_date",
        "lines[0].sku",
        "lines[0].quantity",
        "lines[0].unit_price",
    ]
    assert "6 problem" in err.value.message


# --- hold reasons ----------------------------------------------------------------------------
def test_a_blocked_customer_is_held():
    reasons = reasons_of(submission(), customer(status="blocked"), CATALOGUE)
    assert [(r.code, r.field) for r in reasons] == [("customer_blocked", "customer_id")]


def test_a_discontinued_sku_is_held_on_its_line():
    products = dict(CATALOGUE, **{"SKU-2": product("SKU-2", unit_price=Decimal("3"), status="discontinued")})
    lines = (SubmittedLine("SKU-1", 1, "12.50"), SubmittedLine("SKU-2", 1, "3"))
    reasons = reasons_of(submission(lines=lines), customer(), products)
    assert [(r.code, r.field) for r in reasons] == [("sku_discontinued", "lines[1].sku")]


def test_a_price_other_than_the_list_price_is_held_saying_both_prices():
    reasons = reasons_of(submission(lines=(SubmittedLine("SKU-1", 1, "9.99"),)), customer(), CATALOGUE)
    assert [(r.code, r.field) for r in reasons] == [("price_mismatch", "lines[0].unit_price")]
    assert "12.50" in reasons[0].message and "9.99" in reasons[0].message


@pytest.mark.parametrize("price", ["12.5", "12.50", "12.500000"])
def test_prices_compare_as_decimals_not_as_text(price):
    assert codes(submission(lines=(SubmittedLine("SKU-1", 1, price),))) == []


@pytest.mark.parametrize("price", ["12.49", "12.51", "0", "125"])
def test_any_other_amount_is_a_price_mismatch(price):
    assert codes(submission(lines=(SubmittedLine("SKU-1", 1, price),))) == ["price_mismatch"]


def test_below_the_minimum_order_quantity_is_held():
    products = {"SKU-1": product(min_order_qty=10)}
    assert codes(submission(lines=(SubmittedLine("SKU-1", 9, "12.50"),)), products=products) == [
        "below_min_order_qty"
    ]
    assert codes(submission(lines=(SubmittedLine("SKU-1", 10, "12.50"),)), products=products) == []


def test_a_quantity_off_the_order_multiple_is_held():
    products = {"SKU-1": product(order_multiple=5)}
    reasons = reasons_of(submission(lines=(SubmittedLine("SKU-1", 7, "12.50"),)), customer(), products)
    assert [(r.code, r.field) for r in reasons] == [("not_order_multiple", "lines[0].quantity")]
    assert codes(submission(lines=(SubmittedLine("SKU-1", 15, "12.50"),)), products=products) == []


def test_payment_terms_must_be_among_the_customers_allowed_ones():
    reasons = reasons_of(submission(payment_terms="NET90"), customer(), CATALOGUE)
    assert [(r.code, r.field) for r in reasons] == [("payment_terms_not_allowed", "payment_terms")]
    assert "NET30" in reasons[0].message
    assert codes(submission(payment_terms="net45")) == []  # terms compare case-insensitively


def test_empty_payment_terms_default_to_the_customers_first_allowed_term():
    assert codes(submission(payment_terms="")) == []
    decision = domain.decide(
        submission(payment_terms=""), customer(payment_terms=("PREPAID", "NET30")), CATALOGUE, FACTS
    )
    assert decision.payment_terms == "PREPAID"
    assert (
        domain.decide(submission(payment_terms="net45"), customer(), CATALOGUE, FACTS).payment_terms
        == "NET45"
    )


def test_a_product_priced_in_another_currency_is_held_without_a_price_comparison():
    products = {"SKU-1": product(currency="EUR", unit_price=Decimal("99"))}
    reasons = reasons_of(submission(), customer(), products)
    assert [(r.code, r.field) for r in reasons] == [("currency_mismatch", "lines[0].sku")]


def test_the_order_is_in_the_customers_currency():
    decision = domain.decide(
        submission(), customer(currency="EUR"), {"SKU-1": product(currency="EUR")}, FACTS
    )
    assert decision.currency == "EUR" and decision.approved


RULES = ("blocked", "discontinued", "mispriced", "below_min", "off_multiple", "terms")
EXPECTED_CODE = {
    "blocked": "customer_blocked",
    "terms": "payment_terms_not_allowed",
    "discontinued": "sku_discontinued",
    "mispriced": "price_mismatch",
    "below_min": "below_min_order_qty",
    "off_multiple": "not_order_multiple",
}


@given(broken=st.sets(st.sampled_from(RULES)), line_index=st.integers(0, 2))
def test_each_broken_rule_gives_exactly_its_reason_in_a_stable_order(broken, line_index):
    # One line breaks the line rules; the others are clean.
    bad = product(
        "BAD",
        unit_price=Decimal("10"),
        min_order_qty=4 if "below_min" in broken else 1,
        order_multiple=3 if "off_multiple" in broken else 1,
        status="discontinued" if "discontinued" in broken else "active",
    )
    quantity = 2 if "below_min" in broken else 6  # 2 < 4 and 2 % 3 != 0; 6 is a multiple of 1 and 3
    if "off_multiple" in broken and "below_min" not in broken:
        quantity = 7  # >= 4 but not a multiple of 3
    lines = [SubmittedLine("SKU-1", 1, "12.50"), SubmittedLine("SKU-2", 1, "3.00")]
    lines.insert(line_index, SubmittedLine("BAD", quantity, "9.00" if "mispriced" in broken else "10.00"))
    s = submission(lines=tuple(lines), payment_terms="NET90" if "terms" in broken else "NET45")
    c = customer(status="blocked" if "blocked" in broken else "active")
    reasons = reasons_of(s, c, dict(CATALOGUE, BAD=bad))

    order = ["blocked", "terms", "discontinued", "mispriced", "below_min", "off_multiple"]
    assert [r.code for r in reasons] == [EXPECTED_CODE[rule] for rule in order if rule in broken]
    for r in reasons:
        assert (
            r.field == "customer_id"
            or r.field == "payment_terms"
            or r.field.startswith(f"lines[{line_index}].")
        )
        assert r.message
    assert domain.decide(s, c, dict(CATALOGUE, BAD=bad), FACTS).approved == (not broken)


# --- ship_to -------------------------------------------------------------------------------
def test_an_empty_ship_to_is_the_customers_default_address():
    decision = domain.decide(submission(), customer(), CATALOGUE, FACTS)
    assert decision.ship_to == {
        "name": "Acme Ltd",
        "line1": "1 Harbour Road",
        "city": "Austin",
        "postal_code": "73301",
        "country": "US",
        "phone": "+1-555-0100",
    }


def test_a_given_ship_to_is_kept_with_its_country_upper_case():
    given_address = dict(EMPTY_ADDRESS, name="Dock 4", line1="Hafenstr. 1", city="Hamburg", country="de")
    decision = domain.decide(submission(ship_to=given_address), customer(), CATALOGUE, FACTS)
    assert decision.ship_to == dict(given_address, country="DE")


# --- priority ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "tier, due, expected",
    [
        ("new", None, 0),
        ("standard", None, 100),
        ("key", None, 200),
        ("strategic", None, 300),
        ("standard", TODAY, 190),
        ("standard", TODAY - dt.timedelta(days=3), 190),
        ("standard", TODAY + dt.timedelta(days=1), 189),
        ("standard", TODAY + dt.timedelta(days=30), 160),
        ("standard", TODAY + dt.timedelta(days=90), 100),
        ("standard", TODAY + dt.timedelta(days=400), 100),
        ("strategic", TODAY, 390),
        ("unheard-of", None, 0),
    ],
)
def test_priority_table(tier, due, expected):
    assert domain.priority(tier, due, TODAY) == expected


dates = st.one_of(st.none(), st.dates(min_value=dt.date(2025, 1, 1), max_value=dt.date(2028, 1, 1)))
tiers = st.sampled_from(list(domain.TIER_RANK))


@given(higher=tiers, lower=tiers, due_a=dates, due_b=dates)
def test_a_higher_tier_always_comes_first_whatever_the_dates(higher, lower, due_a, due_b):
    if domain.TIER_RANK[higher] > domain.TIER_RANK[lower]:
        assert domain.priority(higher, due_a, TODAY) > domain.priority(lower, due_b, TODAY)


@given(tier=tiers, sooner=dates, days_later=st.integers(0, 500))
def test_within_a_tier_a_sooner_date_never_ranks_lower(tier, sooner, days_later):
    if sooner is None:
        return
    later = sooner + dt.timedelta(days=days_later)
    assert domain.priority(tier, sooner, TODAY) >= domain.priority(tier, later, TODAY)
    assert domain.priority(tier, later, TODAY) >= domain.priority(tier, None, TODAY)


def test_decide_takes_the_priority_from_tier_and_requested_date():
    s = submission(requested_delivery_date="2026-06-11")
    assert domain.decide(s, customer(tier="key"), CATALOGUE, FACTS).priority == 280


# --- request hash ------------------------------------------------------------------------
def test_the_hash_ignores_the_idempotency_key_only():
    a = submission(idempotency_key="first")
    assert domain.request_hash(a) == domain.request_hash(submission(idempotency_key="second"))
    assert re.fullmatch(r"[0-9a-f]{64}", domain.request_hash(a))


def test_the_hash_of_a_fixed_request_stays_the_same_so_stored_keys_still_replay():
    # Computed by the hash as it was when these keys were first stored: a change to the
    # canonical form or its encoding would refuse every replay of a stored key.
    s = Submission(
        "P-SHOP",
        "key-1",
        "api",
        "PO-1",
        "C0001",
        {"name": "Zo\u00eb M\u00fcller", "line1": "1 Stra\u00dfe", "city": "K\u00f6ln", "country": "DE"},
        (SubmittedLine("BRK-001", 2, "31.57"), SubmittedLine("BRK-002", 10, "12.50")),
        "2026-06-11",
        "NET30",
    )
    assert domain.request_hash(s) == "cf6178fec2a1b98ef934f33b610d2a923791bc2c4d8a90ffc5534fc8bfb0ae2b"
    urgent = dataclasses.replace(s, urgent=True, ship_to={})
    assert domain.request_hash(urgent) == "a224920470cdaa3b046f0ce58cc8cfc004001a0b86d206907c9562bf1dffdabf"


def test_the_hash_does_not_depend_on_how_the_address_mapping_was_built():
    address = {"country": "DE", "name": "Dock 4", "line1": "Hafenstr. 1", "city": "Hamburg"}
    reordered = dict(reversed(list(address.items())))
    assert domain.request_hash(submission(ship_to=address)) == domain.request_hash(
        submission(ship_to=reordered)
    )
    assert domain.request_hash(submission(ship_to={})) == domain.request_hash(
        submission(ship_to=EMPTY_ADDRESS)
    )


CHANGES = {
    "partner_id": "P2",
    "channel": "batch",
    "external_ref": "PO-2",
    "customer_id": "C2",
    "ship_to": dict(EMPTY_ADDRESS, name="X", line1="Y", city="Z", country="DE"),
    "lines": (SubmittedLine("SKU-1", 3, "12.50"),),
    "requested_delivery_date": "2026-07-01",
    "payment_terms": "NET45",
}


@pytest.mark.parametrize("field", sorted(CHANGES))
def test_any_change_to_the_body_changes_the_hash(field):
    assert domain.request_hash(submission(**{field: CHANGES[field]})) != domain.request_hash(submission())


def test_a_price_written_differently_is_a_different_request():
    one = submission(lines=(SubmittedLine("SKU-1", 1, "12.5"),))
    other = submission(lines=(SubmittedLine("SKU-1", 1, "12.50"),))
    assert domain.request_hash(one) != domain.request_hash(other)


text = st.text(max_size=6)
line_strategy = st.builds(SubmittedLine, sku=text, quantity=st.integers(-3, 3), unit_price=text)
submissions = st.builds(
    Submission,
    partner_id=text,
    idempotency_key=text,
    channel=text,
    external_ref=text,
    customer_id=text,
    ship_to=st.fixed_dictionaries({f: text for f in domain.ADDRESS_FIELDS}),
    lines=st.lists(line_strategy, max_size=3).map(tuple),
    requested_delivery_date=text,
    payment_terms=text,
)


@given(a=submissions, b=submissions)
def test_equal_hashes_mean_equal_requests_apart_from_the_key(a, b):
    same_body = dataclasses.replace(a, idempotency_key="") == dataclasses.replace(b, idempotency_key="")
    assert (domain.request_hash(a) == domain.request_hash(b)) == same_body


def test_key_reuse_is_an_invalid_argument_on_the_idempotency_key_header():
    error = key_reused("order")
    assert error.reason == "idempotency_key_reused"
    assert [(v.field, v.reason) for v in error.violations] == [("Idempotency-Key", "idempotency_key_reused")]


# --- odds and ends -----------------------------------------------------------------------------
def test_order_ids_are_ord_and_24_upper_case_hex_digits_that_sort_by_creation(monkeypatch):
    ids = {domain.new_order_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(re.fullmatch(r"ORD-[0-9A-F]{24}", i) for i in ids)
    now = time.time_ns()
    monkeypatch.setattr(time, "time_ns", lambda: now + 2_000_000)  # two milliseconds on
    assert domain.new_order_id() > max(ids)


def test_metric_channels_stay_bounded():
    assert domain.metric_channel("api") == "api"
    assert domain.metric_channel("anything else") == "other"


def test_intake_imports_customers_products_prices_and_warehouses_only():
    for kind in ("customers", "products", "prices", "warehouses"):
        domain.check_master_kind(kind)
    for kind in ("stock", "partners", ""):
        with pytest.raises(InvalidArgument) as err:
            domain.check_master_kind(kind)
        assert [v.field for v in err.value.violations] == ["kind"]


def test_master_keys_and_integers_must_fit_what_is_stored():
    domain.check_master_records("products", [product("S" * 64)])
    with pytest.raises(InvalidArgument) as err:
        domain.check_master_records("products", [product("ok"), product("S" * 65, min_order_qty=2**31)])
    assert [v.field for v in err.value.violations] == ["row 3.sku", "row 3.min_order_qty"]
    with pytest.raises(InvalidArgument) as err:
        domain.check_master_records("customers", [customer(customer_id="C" * 65)])
    assert [v.field for v in err.value.violations] == ["row 2.customer_id"]


# --- credit booked in turn (a group's claims) --------------------------------------------------------
def test_a_customers_orders_are_booked_in_turn_until_the_limit():
    amounts = [400, 400, 400, 100, 300]
    bookings = domain.book_in_turn(49_000, 50_000, amounts)
    assert [(b.booked, b.open_micros) for b in bookings] == [
        (True, 49_000),
        (True, 49_400),
        (False, 49_800),  # would pass the limit: held, with the total it met
        (True, 49_800),  # a smaller one after it still fits
        (False, 49_900),
    ]
    assert domain.booked_micros(amounts, bookings) == 900
    assert not domain.book_in_turn(-500, 1_000, [1_200])[0].booked  # never more than the limit at once


@given(
    open_micros=st.integers(-(10**6), 10**7),
    limit=st.integers(0, 10**7),
    amounts=st.lists(st.integers(0, 10**7), max_size=8),
)
def test_a_group_books_what_its_orders_book_one_at_a_time(open_micros, limit, amounts):
    together = domain.book_in_turn(open_micros, limit, amounts)
    total = open_micros
    for micros, booking in zip(amounts, together, strict=True):
        (alone,) = domain.book_in_turn(total, limit, [micros])
        assert alone == booking
        total += micros if alone.booked else 0
    # What a group books first, as if nothing were open, stays within the limit: its sum cannot overflow.
    assert domain.booked_micros(amounts, domain.book_in_turn(0, limit, amounts)) <= limit


@pytest.mark.parametrize(
    "text",
    [
        "plain",
        "",
        "caf\u00e9 \U0001d538",
        'quote " and \\ back',
        "\x00\x01\x1f\x7f \b\f\n\r\t",
        "\u2028\u2029",
        "\ud800",
    ],
)
@pytest.mark.parametrize("quantity", [1, -3, 2**63 - 1, 2**63, 2**70])
def test_the_request_hash_is_idempotency_s_json_hash(text, quantity):
    """domain.request_hash hashes orjson's bytes: the very hash orderdesk.idempotency's json.dumps gives (every
    stored key's hash must stay what it was)."""
    s = submission(
        external_ref=text,
        customer_id=text or "C1",
        payment_terms=text,
        requested_delivery_date=text,
        ship_to={"name": text, "country": "DE", "line1": text},
        lines=(SubmittedLine(text or "A", quantity, text), SubmittedLine("B", 1, "1.00")),
        urgent=bool(quantity % 2),
    )
    assert outcome(domain.request_hash, s) == outcome(idempotency.request_hash, canonical_request(s))


def outcome(f, *args):
    try:
        return f(*args)
    except Exception as exc:  # a lone surrogate is no UTF-8: refused the same way
        return type(exc)
