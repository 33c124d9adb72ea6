"""The order desk's checks, no I/O: contact and address, prices, duplicates, delivery dates, credit,
auto-approval, blocked policy, urgent priority, configuration."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orderdesk import masterdata
from orderdesk.calendar import (
    EVERY_DAY,
    MONDAY_TO_FRIDAY,
    Calendar,
    CalendarBook,
    Holiday,
    add_working_days,
    is_working_day,
)
from orderdesk.errors import FailedPrecondition, FieldViolation, InvalidArgument
from orderdesk.masterdata import CustomerPrice, Warehouse
from services.intake import domain
from services.intake.domain import AutoApprovalPolicy, Facts, IntakeConfig, OrderLine, SubmittedLine
from tests.unit.intake.test_domain import CATALOGUE, EMPTY_ADDRESS, customer, product, submission

DEMO = Path(__file__).resolve().parents[3] / "demo"
MORNING = dt.datetime(2026, 6, 1, 8, 0, tzinfo=dt.UTC)  # before every demo cut-off (the first is 9:00)
EVENING = dt.datetime(2026, 6, 1, 22, 0, tzinfo=dt.UTC)  # after every cut-off
TODAY = MORNING.date()


def warehouse(code, name, country, cutoff_hour_utc, domestic, international, **calendar) -> Warehouse:
    """A warehouse working every day with its cut-off in UTC (the arithmetic below stays plain);
    the calendar's own rules are tested in tests/unit/test_calendar.py and below."""
    fields = {"time_zone": "UTC", "cutoff": dt.time(cutoff_hour_utc), "working_days": EVERY_DAY} | calendar
    return Warehouse(
        code,
        name,
        country,
        transit_days_domestic=domestic,
        transit_days_international=international,
        **fields,
    )


WAREHOUSES = {
    "WH-SHA": warehouse("WH-SHA", "Shanghai DC", "CN", 9, 2, 9),
    "WH-HAM": warehouse("WH-HAM", "Hamburg DC", "DE", 14, 2, 6),
    "WH-CHI": warehouse("WH-CHI", "Chicago DC", "US", 20, 3, 8),
}
BOOK = CalendarBook(WAREHOUSES)
NO_REVIEW = IntakeConfig(
    auto_approval=AutoApprovalPolicy(review_new_customers=False, review_above_amount=Decimal(10**12))
)


def day(n: int) -> dt.date:
    return TODAY + dt.timedelta(days=n)


def wd(n: int) -> dt.date:
    """n working days (Monday to Friday) after TODAY, a Monday: where deliveries arrive."""
    return add_working_days(TODAY, n, Calendar())


def reasons(s=None, c=None, products=None, facts=None, config=None) -> list[domain.Reason]:
    return domain.hold_reasons(
        s or submission(), c or customer(), products or CATALOGUE, facts or Facts(now=MORNING), config
    )[0]


def codes(*args, **kwargs) -> list[str]:
    return [r.code for r in reasons(*args, **kwargs)]


def pairs(*args, **kwargs) -> list[tuple[str, str]]:
    return [(r.code, r.field) for r in reasons(*args, **kwargs)]


# --- configuration --------------------------------------------------------------------------------
def test_configuration_defaults():
    config = IntakeConfig.from_env({})
    assert config == IntakeConfig()
    assert (config.blocked_policy, config.price_tolerance) == ("hold", Decimal(0))
    assert config.auto_approval == AutoApprovalPolicy(True, Decimal(100000))


def test_configuration_from_the_environment():
    config = IntakeConfig.from_env(
        {
            "ORDERDESK_INTAKE_BLOCKED_POLICY": "Refuse",
            "ORDERDESK_INTAKE_PRICE_TOLERANCE": "0.01",
            "ORDERDESK_INTAKE_REVIEW_NEW_CUSTOMERS": "false",
            "ORDERDESK_INTAKE_REVIEW_ABOVE_AMOUNT": "2500.50",
        }
    )
    assert config == IntakeConfig("refuse", Decimal("0.01"), AutoApprovalPolicy(False, Decimal("2500.50")))


@pytest.mark.parametrize(
    "name, value",
    [
        ("ORDERDESK_INTAKE_BLOCKED_POLICY", "ignore"),
        ("ORDERDESK_INTAKE_PRICE_TOLERANCE", "-1"),
        ("ORDERDESK_INTAKE_PRICE_TOLERANCE", "cheap"),
        ("ORDERDESK_INTAKE_REVIEW_NEW_CUSTOMERS", "maybe"),
        ("ORDERDESK_INTAKE_REVIEW_ABOVE_AMOUNT", "NaN"),
    ],
)
def test_a_bad_setting_stops_start_up_naming_it(name, value):
    with pytest.raises(ValueError, match=name):
        IntakeConfig.from_env({name: value})


# --- customer: blocked -------------------------------------------------------------------------------
def test_a_blocked_customer_is_held_by_default_and_refused_by_policy():
    blocked = customer(status="blocked")
    assert (
        domain.decide(submission(), blocked, CATALOGUE, Facts(now=MORNING)).hold_reasons[0].code
        == "customer_blocked"
    )
    with pytest.raises(FailedPrecondition) as err:
        domain.decide(
            submission(), blocked, CATALOGUE, Facts(now=MORNING), IntakeConfig(blocked_policy="refuse")
        )
    assert err.value.rule == "customer_blocked"
    assert domain.decide(
        submission(), customer(), CATALOGUE, Facts(now=MORNING), IntakeConfig(blocked_policy="refuse")
    ).approved


# --- customer: contact and address ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "email, ok",
    [
        ("buy@acme.example", True),
        ("a.b+c@x.co.uk", True),
        ("", False),
        ("acme.example", False),
        ("a@b", False),
        ("a b@c.de", False),
        ("a@@c.de", False),
        ("a@c.", False),
    ],
)
def test_the_customer_needs_a_plausible_email(email, ok):
    found = pairs(c=customer(email=email))
    assert found == ([] if ok else [("contact_missing", "customer.email")])


@pytest.mark.parametrize(
    "phone, ok",
    [
        ("+1-555-0100", True),
        ("+49 (40) 123 456", True),
        ("030.1234.5678", True),
        ("", False),
        ("12345", False),
        ("+1234567890123456", False),
        ("call me", False),
        ("+", False),
    ],
)
def test_the_delivery_needs_a_plausible_phone(phone, ok):
    assert pairs(c=customer(phone=phone)) == ([] if ok else [("contact_missing", "ship_to.phone")])


def test_a_given_ship_to_without_phone_falls_back_on_the_customers_phone():
    given_address = dict(
        EMPTY_ADDRESS, name="Dock 4", line1="Hafenstr. 1", city="Hamburg", postal_code="20095", country="DE"
    )
    assert codes(submission(ship_to=given_address)) == []
    assert pairs(submission(ship_to=given_address), customer(phone="")) == [
        ("contact_missing", "ship_to.phone")
    ]


@pytest.mark.parametrize("missing", ["ship_to_line1", "ship_to_city", "ship_to_country", "name"])
def test_the_customers_default_address_must_be_complete(missing):
    field_path = {
        "ship_to_line1": "ship_to.line1",
        "ship_to_city": "ship_to.city",
        "ship_to_country": "ship_to.country",
        "name": "ship_to.name",
    }[missing]
    assert ("ship_to_incomplete", field_path) in pairs(c=customer(**{missing: ""}))


def test_a_postal_code_is_needed_where_the_country_uses_them():
    assert pairs(c=customer(ship_to_postal_code="")) == [("ship_to_incomplete", "ship_to.postal_code")]
    given_address = dict(EMPTY_ADDRESS, name="Shop", line1="1 Queen's Rd", city="Hong Kong", country="HK")
    assert codes(submission(ship_to=given_address)) == []


def test_an_unknown_country_is_held_and_its_postal_code_not_judged():
    given_address = dict(EMPTY_ADDRESS, name="N", line1="L", city="C", postal_code="??", country="XX")
    assert pairs(submission(ship_to=given_address)) == [("country_unknown", "ship_to.country")]


def test_the_country_table_is_iso_3166_alpha_2():
    assert len(domain.ISO_COUNTRIES) == 249
    assert {"US", "CN", "FR", "DE", "JP", "NL", "GB", "AX", "SS", "XK"} - domain.ISO_COUNTRIES == {"XK"}
    assert set(domain.POSTAL_CODES) <= domain.ISO_COUNTRIES
    assert domain.COUNTRIES_WITHOUT_POSTAL_CODES <= domain.ISO_COUNTRIES


@pytest.mark.parametrize(
    "country, code",
    [
        ("US", "73301"),
        ("US", "73301-0001"),
        ("CN", "518000"),
        ("FR", "69001"),
        ("DE", "20095"),
        ("JP", "530-0001"),
        ("JP", "5300001"),
        ("NL", "3011"),
        ("NL", "3011 AB"),
        ("NL", "3011ab"),
        ("GB", "SW1A 1AA"),
        ("GB", "M1 1AE"),
        ("GB", "EC1A1BB"),
        ("CA", "K1A 0B1"),
        ("PL", "00-950"),
        ("PT", "1000-001"),
        ("SE", "114 55"),
        ("IE", "D02 X285"),
        ("BR", "01310-100"),
        ("AU", "2000"),
        ("IT", "00118"),
        ("ES", "28013"),
        ("CH", "8001"),
        ("ZZ-UNLISTED", "anything"),
        ("BE", " 1000 "),
    ],
)
def test_postal_codes_in_their_countrys_format(country, code):
    assert domain.postal_code_valid(country, code)


@pytest.mark.parametrize(
    "country, code",
    [
        ("US", "7330"),
        ("US", "733011"),
        ("US", "73301-01"),
        ("CN", "51800"),
        ("FR", "6900"),
        ("FR", "690011"),
        ("DE", "2009"),
        ("JP", "530-001"),
        ("JP", "53-00001"),
        ("NL", "301"),
        ("NL", "3011 A"),
        ("GB", "12345"),
        ("GB", "SW1A"),
        ("CA", "123456"),
        ("PL", "00950"),
        ("BE", "10000"),
        ("SE", "1145"),
        ("AU", "ABCD"),
        ("DE", ""),
        ("LISTED-NOWHERE", ""),
    ],
)
def test_postal_codes_out_of_format(country, code):
    assert not domain.postal_code_valid(country, code)


def test_a_malformed_postal_code_is_held_naming_the_format():
    found = reasons(c=customer(ship_to_postal_code="7330"))
    assert [(r.code, r.field) for r in found] == [("postal_code_invalid", "ship_to.postal_code")]
    assert "7330" in found[0].message and "ZIP+4" in found[0].message


def test_every_demo_customer_has_complete_contact_and_address():
    for c in masterdata.parse("customers", (DEMO / "customers.csv").read_text()):
        found = pairs(c=c, config=NO_REVIEW)
        assert [
            p
            for p in found
            if p[0] not in ("customer_blocked", "payment_terms_not_allowed", "credit_limit_exceeded")
        ] == [], c.customer_id


# --- payment terms -------------------------------------------------------------------------------------
def test_a_prepaid_only_customer_cannot_order_on_net_terms():
    prepaid = customer(payment_terms=("PREPAID",), credit_limit=Decimal(0))
    found = reasons(submission(payment_terms="NET30"), prepaid)
    assert [(r.code, r.field) for r in found] == [("payment_terms_not_allowed", "payment_terms")]
    assert "PREPAID" in found[0].message
    assert codes(submission(payment_terms="prepaid"), prepaid) == []
    assert codes(submission(payment_terms=""), prepaid) == []  # the default term is PREPAID


def test_a_customer_with_prepaid_and_net_terms_may_use_either():
    both = customer(payment_terms=("PREPAID", "NET30"))
    assert codes(submission(payment_terms="NET30"), both) == []
    assert codes(submission(payment_terms="PREPAID"), both) == []
    assert codes(submission(payment_terms="NET60"), both) == ["payment_terms_not_allowed"]


# --- lines: prices, duplicates ----------------------------------------------------------------------------
def with_price(price: str, **kw) -> list[str]:
    return codes(submission(lines=(SubmittedLine("SKU-1", 1, price),)), **kw)


def test_a_customer_specific_price_replaces_the_list_price():
    own = Facts(now=MORNING, prices={"SKU-1": CustomerPrice("C1", "SKU-1", Decimal("11.00"), "USD")})
    assert with_price("11.00", facts=own) == []
    assert with_price("12.50", facts=own) == ["price_mismatch"]
    found = reasons(submission(lines=(SubmittedLine("SKU-1", 1, "12.50"),)), facts=own)
    assert "customer price is 11.00 USD" in found[0].message


def test_a_customer_price_in_another_currency_is_a_currency_mismatch():
    own = Facts(now=MORNING, prices={"SKU-1": CustomerPrice("C1", "SKU-1", Decimal("10"), "EUR")})
    assert pairs(facts=own) == [("currency_mismatch", "lines[0].sku")]


def test_the_price_tolerance_is_absolute_and_inclusive():
    config = dataclasses.replace(NO_REVIEW, price_tolerance=Decimal("0.05"))
    assert with_price("12.45", config=config) == [] and with_price("12.55", config=config) == []
    assert with_price("12.44", config=config) == ["price_mismatch"]
    assert with_price("12.56", config=config) == ["price_mismatch"]
    assert (
        "tolerance 0.05"
        in reasons(submission(lines=(SubmittedLine("SKU-1", 1, "13"),)), config=config)[0].message
    )


@given(
    list_cents=st.integers(0, 10**6), given_cents=st.integers(0, 10**6), tolerance_cents=st.integers(0, 500)
)
def test_a_price_is_held_exactly_when_it_is_off_by_more_than_the_tolerance(
    list_cents, given_cents, tolerance_cents
):
    products = {"SKU-1": product(unit_price=Decimal(list_cents) / 100)}
    config = dataclasses.replace(NO_REVIEW, price_tolerance=Decimal(tolerance_cents) / 100)
    s = submission(lines=(SubmittedLine("SKU-1", 1, str(Decimal(given_cents) / 100)),))
    held = "price_mismatch" in codes(s, customer(credit_limit=Decimal(10**9)), products, config=config)
    assert held == (abs(list_cents - given_cents) > tolerance_cents)


def test_a_repeated_sku_is_flagged_on_every_later_line():
    lines = (
        SubmittedLine("SKU-1", 1, "12.50"),
        SubmittedLine("SKU-2", 1, "3"),
        SubmittedLine("SKU-1", 2, "12.50"),
        SubmittedLine("SKU-1", 1, "12.50"),
    )
    found = reasons(submission(lines=lines))
    assert [(r.code, r.field) for r in found] == [
        ("duplicate_line", "lines[2].sku"),
        ("duplicate_line", "lines[3].sku"),
    ]
    assert "lines[0]" in found[0].message


# --- delivery dates ---------------------------------------------------------------------------------------
def plan(lines, stock, products=None, country="US", now=MORNING, supply=None, book=BOOK):
    return domain.plan_arrivals(
        [OrderLine(sku, q, Decimal(1)) for sku, q in lines],
        products or CATALOGUE,
        stock,
        book,
        country,
        now,
        supply or {},
    )


def test_stock_comes_from_the_warehouse_that_delivers_soonest():
    # To the US at 08:00: Chicago ships today + 3 days; Hamburg today + 6; Shanghai today + 9.
    arrivals = plan([("SKU-1", 5)], {"SKU-1": {"WH-HAM": 100, "WH-CHI": 100, "WH-SHA": 100}})
    assert arrivals == [[domain.Arrival(5, wd(3), "WH-CHI")]]


def test_a_line_is_split_across_warehouses_then_inventory_supplies_the_shortfall():
    lines = [OrderLine("SKU-1", 10, Decimal(1))]
    stock = {"SKU-1": {"WH-CHI": 3, "WH-HAM": 4}}
    _, missing = domain.stock_arrivals(lines, CATALOGUE, stock, BOOK, "US", MORNING)
    assert missing == {"SKU-1": 3}  # what intake asks inventory's QuoteSupply for
    arrivals = plan([("SKU-1", 10)], stock, supply={"SKU-1": domain.Supply(wd(9), "WH-CHI")})
    assert arrivals == [
        [
            domain.Arrival(3, wd(3), "WH-CHI"),
            domain.Arrival(4, wd(6), "WH-HAM"),
            domain.Arrival(3, wd(9), ""),
        ]
    ]


def test_after_the_cut_off_stock_leaves_a_day_later():
    assert plan([("SKU-1", 1)], {"SKU-1": {"WH-CHI": 1}}, now=EVENING) == [
        [domain.Arrival(1, wd(4), "WH-CHI")]
    ]


def test_make_to_order_products_are_always_made_when_inventory_says():
    products = {"MTO": product("MTO", make_to_order=True, production_lead_time_days=21)}
    lines = [OrderLine("MTO", 2, Decimal(1))]
    assert domain.stock_arrivals(lines, products, {"MTO": {"WH-CHI": 50}}, BOOK, "US", MORNING)[1] == {
        "MTO": 2
    }
    assert plan([("MTO", 2)], {"MTO": {"WH-CHI": 50}}, products, supply={"MTO": domain.Supply(wd(31))}) == [
        [domain.Arrival(2, wd(31), "")]
    ]


def test_lines_of_one_sku_share_its_stock_and_unknown_warehouses_promise_nothing():
    stock = {"SKU-1": {"WH-CHI": 4, "WH-ELSEWHERE": 100}}
    lines = [OrderLine("SKU-1", 3, Decimal(1)), OrderLine("SKU-1", 3, Decimal(1))]
    assert domain.stock_arrivals(lines, CATALOGUE, stock, BOOK, "US", MORNING)[1] == {"SKU-1": 2}
    arrivals = plan([("SKU-1", 3), ("SKU-1", 3)], stock, supply={"SKU-1": domain.Supply(wd(6))})
    assert arrivals == [
        [domain.Arrival(3, wd(3), "WH-CHI")],
        [domain.Arrival(1, wd(3), "WH-CHI"), domain.Arrival(2, wd(6), "")],
    ]


def test_stock_arrives_on_working_days_in_the_warehouses_time_zone():
    hamburg = warehouse(
        "WH-HAM",
        "Hamburg DC",
        "DE",
        0,
        2,
        6,
        time_zone="Europe/Berlin",
        cutoff=dt.time(15),
        working_days=MONDAY_TO_FRIDAY,
    )
    book = CalendarBook([hamburg], [Holiday("warehouse", "WH-HAM", dt.date(2026, 12, 7), "stocktake")])
    friday_afternoon = dt.datetime(2026, 12, 4, 14, 30, tzinfo=dt.UTC)  # 15:30 in Hamburg: past the cut-off
    arrivals = plan([("SKU-1", 1)], {"SKU-1": {"WH-HAM": 5}}, country="DE", now=friday_afternoon, book=book)
    # ships Tuesday (Monday is the stocktake), 2 working days: Thursday
    assert arrivals == [[domain.Arrival(1, dt.date(2026, 12, 10), "WH-HAM")]]
    friday_morning = dt.datetime(2026, 12, 4, 9, 0, tzinfo=dt.UTC)
    arrivals = plan([("SKU-1", 1)], {"SKU-1": {"WH-HAM": 5}}, country="DE", now=friday_morning, book=book)
    # ships Friday; the stocktake closes the warehouse only, carriers deliver Monday and Tuesday
    assert arrivals == [[domain.Arrival(1, dt.date(2026, 12, 8), "WH-HAM")]]


def date_facts(stock, now=MORNING, warehouses=WAREHOUSES, supply=None) -> Facts:
    # what inventory's QuoteSupply answers for the shortfall: here, ready at day 6 for every SKU
    supply = (
        supply if supply is not None else {sku: domain.Supply(wd(6)) for sku in ("SKU-1", "SKU-2", "MTO")}
    )
    return Facts(now=now, book=CalendarBook(warehouses), stock=stock, supply=supply)


def dated(requested: dt.date, lines=(SubmittedLine("SKU-1", 10, "12.50"),)):
    return submission(requested_delivery_date=requested.isoformat(), lines=tuple(lines))


def test_a_feasible_date_passes_and_needs_nothing_else():
    decision = domain.decide(dated(wd(3)), customer(), CATALOGUE, date_facts({"SKU-1": {"WH-CHI": 10}}))
    assert decision.approved and decision.proposals == ()


def test_an_infeasible_date_is_held_with_the_earliest_date_and_a_split():
    stock = {"SKU-1": {"WH-CHI": 3, "WH-HAM": 4}}
    decision = domain.decide(dated(wd(4)), customer(), CATALOGUE, date_facts(stock))
    assert [(r.code, r.field) for r in decision.hold_reasons] == [
        ("delivery_date_infeasible", "requested_delivery_date")
    ]
    assert str(wd(6)) in decision.hold_reasons[0].message
    assert decision.proposals == (
        domain.Proposal("earliest_date", delivery_date=wd(6)),
        domain.Proposal(
            "split", parts=(domain.ProposalPart("SKU-1", 3, wd(4)), domain.ProposalPart("SKU-1", 7, wd(6)))
        ),
    )


def test_no_split_is_proposed_when_nothing_can_arrive_in_time():
    decision = domain.decide(dated(wd(1)), customer(), CATALOGUE, date_facts({"SKU-1": {"WH-CHI": 100}}))
    assert [p.kind for p in decision.proposals] == ["earliest_date"]


def test_a_split_over_several_lines_keeps_on_time_lines_whole():
    lines = (SubmittedLine("SKU-1", 10, "12.50"), SubmittedLine("SKU-2", 5, "3"))
    stock = {"SKU-1": {"WH-CHI": 10}, "SKU-2": {}}
    decision = domain.decide(dated(wd(3), lines), customer(), CATALOGUE, date_facts(stock))
    assert decision.proposals[1].parts == (
        domain.ProposalPart("SKU-1", 10, wd(3)),
        domain.ProposalPart("SKU-2", 5, wd(6)),
    )


def test_a_requested_date_in_the_past_is_refused_and_today_is_allowed():
    with pytest.raises(InvalidArgument) as err:
        domain.decide(dated(day(-1)), customer(), CATALOGUE, date_facts({"SKU-1": {"WH-CHI": 10}}))
    assert [(v.field, v.reason) for v in err.value.violations] == [("requested_delivery_date", "in_the_past")]
    today = domain.decide(dated(wd(0)), customer(), CATALOGUE, date_facts({"SKU-1": {"WH-CHI": 10}}))
    assert [r.code for r in today.hold_reasons] == ["delivery_date_infeasible"]


def test_without_stock_warehouses_or_a_production_plan_the_date_is_left_to_the_desk():
    short = {"SKU-1": {"WH-CHI": 1}}
    for facts in (
        date_facts(None),
        date_facts({"SKU-1": {"WH-CHI": 10}}, warehouses={}),
        Facts(now=MORNING, book=BOOK, stock=short, supply=None),  # inventory's quote failed
        date_facts(short, supply={"SKU-1": domain.Supply(None)}),  # inventory cannot plan the SKU
    ):
        found = domain.decide(dated(wd(30)), customer(), CATALOGUE, facts)
        assert [(r.code, r.field) for r in found.hold_reasons] == [
            ("delivery_date_unverified", "requested_delivery_date")
        ]


def test_no_requested_date_no_date_check():
    assert domain.decide(submission(), customer(), CATALOGUE, date_facts(None)).approved


warehouse_ids = st.sampled_from(sorted(WAREHOUSES) + ["WH-UNKNOWN"])
stock_strategy = st.dictionaries(
    st.sampled_from(["SKU-1", "SKU-2", "MTO"]),
    st.dictionaries(warehouse_ids, st.integers(0, 30), max_size=4),
    max_size=3,
)
line_strategy = st.lists(
    st.tuples(st.sampled_from(["SKU-1", "SKU-2", "MTO"]), st.integers(1, 40)), min_size=1, max_size=4
)
times = st.datetimes(
    min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2027, 1, 1), timezones=st.just(dt.UTC)
)
PRODUCTS = dict(
    CATALOGUE, MTO=product("MTO", make_to_order=True, production_lead_time_days=10, unit_price=Decimal("1"))
)


@given(
    stock=stock_strategy,
    lines=line_strategy,
    now=times,
    days_ahead=st.integers(0, 30),
    country=st.sampled_from(["US", "DE", "CN", "FR"]),
    supply_days=st.dictionaries(st.sampled_from(["SKU-1", "SKU-2", "MTO"]), st.integers(0, 40)),
    weekdays=st.booleans(),
)
def test_delivery_proposals_are_consistent(stock, lines, now, days_ahead, country, supply_days, weekdays):
    book = CalendarBook(
        [dataclasses.replace(w, working_days=MONDAY_TO_FRIDAY) for w in WAREHOUSES.values()]
        if weekdays
        else WAREHOUSES,
        [Holiday("country", "DE", now.date() + dt.timedelta(days=3)), Holiday("country", "US", now.date())],
    )
    order_lines = [OrderLine(sku, q, Decimal(1)) for sku, q in lines]
    requested = now.date() + dt.timedelta(days=days_ahead)
    # inventory's quote: a working day some days out (as its rule gives), or none for a SKU it cannot plan
    supply = {
        sku: domain.Supply(book.arrival_from(now.date() + dt.timedelta(days=n), "WH-CHI", country))
        for sku, n in supply_days.items()
    }
    found, proposals = domain.delivery_reasons(
        requested, order_lines, PRODUCTS, stock, book, country, now, supply
    )
    _, missing = domain.stock_arrivals(order_lines, PRODUCTS, stock, book, country, now)
    if any(sku not in supply for sku in missing):
        assert [r.code for r in found] == ["delivery_date_unverified"] and proposals == []
        return
    arrivals = domain.plan_arrivals(order_lines, PRODUCTS, stock, book, country, now, supply)
    earliest = max(a.date for line in arrivals for a in line)
    for line, parts in zip(order_lines, arrivals, strict=True):
        assert sum(a.quantity for a in parts) == line.quantity  # every unit is planned
        assert all(a.date >= now.date() for a in parts)
        # no promised date lands on a day closed at the destination
        assert all(is_working_day(a.date, book.destination(country)) for a in parts)
    assert (found != []) == (earliest > requested)
    if not found:
        assert proposals == []
        return
    assert found[0].code == "delivery_date_infeasible"
    assert proposals[0] == domain.Proposal("earliest_date", delivery_date=earliest)
    # the earliest date is feasible itself; the day before is not
    assert (
        domain.delivery_reasons(earliest, order_lines, PRODUCTS, stock, book, country, now, supply)[0] == []
    )
    if len(proposals) == 2:
        split = proposals[1]
        assert split.kind == "split"
        assert {p.delivery_date for p in split.parts} > {requested}  # something in time, something later
        assert max(p.delivery_date for p in split.parts) == earliest
        for sku in {line.sku for line in order_lines}:
            ordered = sum(line.quantity for line in order_lines if line.sku == sku)
            assert sum(p.quantity for p in split.parts if p.sku == sku) == ordered
        assert all(p.delivery_date == requested or p.delivery_date > requested for p in split.parts)
    else:
        assert all(a.date > requested for line in arrivals for a in line)


# --- credit --------------------------------------------------------------------------------------------
def test_credit_is_held_with_the_numbers():
    found = reasons(
        submission(lines=(SubmittedLine("SKU-1", 100, "12.50"),)),
        customer(credit_limit=Decimal(2000)),
        facts=Facts(now=MORNING, open_exposure=Decimal("1000")),
    )
    assert [(r.code, r.field) for r in found] == [("credit_limit_exceeded", "customer_id")]
    for number in ("1000", "1250.00", "2250.00", "2000", "250.00"):
        assert number in found[0].message


def test_prepaid_orders_and_prepaid_customers_are_exempt_from_credit():
    prepaid = customer(payment_terms=("PREPAID",), credit_limit=Decimal(0))
    assert codes(submission(payment_terms="PREPAID"), prepaid) == []
    both = customer(payment_terms=("NET30", "PREPAID"), credit_limit=Decimal(0))
    assert codes(submission(payment_terms="PREPAID"), both) == []
    assert codes(submission(payment_terms="NET30"), both) == ["credit_limit_exceeded"]


@given(
    limit=st.integers(0, 10**7),
    exposure=st.integers(0, 10**7),
    quantity=st.integers(1, 10**4),
    cents=st.integers(0, 10**5),
    terms=st.sampled_from(["NET30", "PREPAID"]),
)
def test_credit_holds_exactly_when_exposure_plus_order_exceeds_the_limit(
    limit, exposure, quantity, cents, terms
):
    price = Decimal(cents) / 100
    c = customer(credit_limit=Decimal(limit), payment_terms=("NET30", "PREPAID"))
    s = submission(lines=(SubmittedLine("SKU-1", quantity, str(price)),), payment_terms=terms)
    products = {"SKU-1": product(unit_price=price)}
    held = codes(s, c, products, Facts(now=MORNING, open_exposure=Decimal(exposure)), NO_REVIEW)
    over = Decimal(exposure) + quantity * price > limit
    assert held == (["credit_limit_exceeded"] if over and terms == "NET30" else [])


# --- automatic decisions ---------------------------------------------------------------------------------
def test_new_customers_are_reviewed_unless_configured_otherwise():
    new = customer(tier="new")
    assert pairs(c=new) == [("new_customer_review", "customer_id")]
    assert (
        codes(c=new, config=IntakeConfig(auto_approval=AutoApprovalPolicy(review_new_customers=False))) == []
    )


def test_orders_above_the_amount_are_reviewed():
    policy = AutoApprovalPolicy(review_above_amount=Decimal("25.00"))
    config = IntakeConfig(auto_approval=policy)
    at_limit = submission(lines=(SubmittedLine("SKU-1", 2, "12.50"),))  # 25.00: not above
    above = submission(lines=(SubmittedLine("SKU-1", 3, "12.50"),))  # 37.50
    assert codes(at_limit, config=config) == []
    found = reasons(above, config=config)
    assert [(r.code, r.field) for r in found] == [("amount_review", "lines")] and "37.50" in found[0].message


def test_the_demo_standard_customer_small_order_is_approved_with_default_settings():
    c0001 = next(
        c
        for c in masterdata.parse("customers", (DEMO / "customers.csv").read_text())
        if c.customer_id == "C0001"
    )
    decision = domain.decide(
        submission(customer_id="C0001"), c0001, CATALOGUE, Facts(now=MORNING), IntakeConfig.from_env({})
    )
    assert decision.approved


# --- every rule together ------------------------------------------------------------------------------------
RULES = {
    "blocked": "customer_blocked",
    "email": "contact_missing",
    "postal": "postal_code_invalid",
    "terms": "payment_terms_not_allowed",
    "duplicate": "duplicate_line",
    "discontinued": "sku_discontinued",
    "price": "price_mismatch",
    "below_min": "below_min_order_qty",
    "date": "delivery_date_infeasible",
    "credit": "credit_limit_exceeded",
    "new": "new_customer_review",
    "amount": "amount_review",
}
DOCUMENTED_ORDER = list(RULES)  # the order the module docstring lists


@given(broken=st.sets(st.sampled_from(list(RULES))))
def test_each_broken_rule_gives_its_reason_in_the_documented_order(broken):
    c = customer(
        status="blocked" if "blocked" in broken else "active",
        email="" if "email" in broken else "b@acme.example",
        ship_to_postal_code="ABC" if "postal" in broken else "73301",
        tier="new" if "new" in broken else "standard",
        credit_limit=Decimal(10) if "credit" in broken else Decimal(10**6),
    )
    products = dict(
        CATALOGUE,
        **{
            "SKU-1": product(
                "SKU-1",
                min_order_qty=3 if "below_min" in broken else 1,
                status="discontinued" if "discontinued" in broken else "active",
            )
        },
    )
    lines = [SubmittedLine("SKU-1", 2, "9.99" if "price" in broken else "12.50")]
    if "duplicate" in broken:  # before the broken line: line rules are reported line by line
        lines[:0] = [SubmittedLine("SKU-2", 1, "3"), SubmittedLine("SKU-2", 1, "3")]
    s = submission(
        lines=tuple(lines),
        payment_terms="NET90" if "terms" in broken else "NET30",
        requested_delivery_date=day(1).isoformat() if "date" in broken else day(10).isoformat(),
    )
    config = IntakeConfig(
        auto_approval=AutoApprovalPolicy(
            review_above_amount=Decimal(1) if "amount" in broken else Decimal(10**9)
        )
    )
    facts = date_facts({"SKU-1": {"WH-CHI": 10}, "SKU-2": {"WH-CHI": 10}})
    found = [r.code for r in reasons(s, c, products, facts, config)]
    assert found == [RULES[rule] for rule in DOCUMENTED_ORDER if rule in broken]
    for code in found:
        assert code in domain.__doc__


# --- priority with the urgent flag -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "tier, due, urgent, expected",
    [
        ("standard", None, False, 100),
        ("standard", None, True, 191),
        ("standard", TODAY, True, 199),
        ("standard", day(45), True, 195),
        ("standard", TODAY, False, 190),
        ("strategic", None, True, 391),
        ("new", day(400), True, 91),
    ],
)
def test_urgent_orders_rank_above_the_rest_of_their_tier(tier, due, urgent, expected):
    assert domain.priority(tier, due, TODAY, urgent) == expected


dates = st.one_of(st.none(), st.dates(min_value=dt.date(2025, 1, 1), max_value=dt.date(2028, 1, 1)))
tiers = st.sampled_from(list(domain.TIER_RANK))


@given(tier_a=tiers, tier_b=tiers, due_a=dates, due_b=dates, urgent_a=st.booleans(), urgent_b=st.booleans())
def test_tier_then_urgent_flag_then_date(tier_a, tier_b, due_a, due_b, urgent_a, urgent_b):
    a = domain.priority(tier_a, due_a, TODAY, urgent_a)
    b = domain.priority(tier_b, due_b, TODAY, urgent_b)
    rank_a, rank_b = domain.TIER_RANK[tier_a], domain.TIER_RANK[tier_b]
    if rank_a != rank_b:
        assert (a > b) == (rank_a > rank_b)
    elif urgent_a != urgent_b:
        assert (a > b) == urgent_a
    elif due_a is not None and due_b is not None and due_a <= due_b:
        assert a >= b


def test_the_decision_carries_urgent_and_its_priority():
    decision = domain.decide(submission(urgent=True), customer(tier="key"), CATALOGUE, Facts(now=MORNING))
    assert decision.urgent and decision.priority == 291


def test_urgent_changes_the_request_hash_only_when_set():
    assert domain.request_hash(submission(urgent=True)) != domain.request_hash(submission())
    assert domain.request_hash(submission(urgent=False)) == domain.request_hash(submission())


# --- exposure bookkeeping rules ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "status, state",
    [
        ("received", None),
        ("on_hold", None),
        ("confirmed", "open"),
        ("scheduled", "open"),
        ("allocated", "open"),
        ("partially_shipped", "open"),
        ("shipped", "open"),
        ("completed", "closed"),
        ("cancelled", "closed"),
        ("rejected", "closed"),
        ("something-new", None),
    ],
)
def test_exposure_states(status, state):
    assert domain.exposure_state(status) == state


def test_decisions_know_their_amount_and_whether_they_use_credit():
    decision = domain.decide(
        submission(lines=(SubmittedLine("SKU-1", 3, "12.50"), SubmittedLine("SKU-2", 2, "3"))),
        customer(),
        CATALOGUE,
        Facts(now=MORNING),
    )
    assert decision.amount == Decimal("43.50") and decision.counts_as_credit
    held = decision.held_also_for(domain.duplicate_external_ref("PO-1", "ORD-1"))
    assert (
        not held.approved
        and held.hold_reasons[-1].field == "external_ref"
        and "ORD-1" in held.hold_reasons[-1].message
    )
    prepaid = domain.decide(
        submission(payment_terms=""), customer(payment_terms=("PREPAID",)), CATALOGUE, Facts(now=MORNING)
    )
    assert not prepaid.counts_as_credit


# --- master data ------------------------------------------------------------------------------------------
def test_warehouse_and_price_records_are_bounded():
    domain.check_master_records("warehouses", [WAREHOUSES["WH-HAM"]])
    with pytest.raises(InvalidArgument) as err:
        domain.check_master_records("warehouses", [warehouse("W" * 65, "x", "DE", 1, 2, 3651)])
    assert [v.field for v in err.value.violations] == ["row 2.warehouse", "row 2.transit_days_international"]
    with pytest.raises(InvalidArgument) as err:
        domain.check_master_records("prices", [CustomerPrice("C1", "S" * 65, Decimal("1.1234567"), "USD")])
    assert [v.field for v in err.value.violations] == ["row 2.sku", "row 2.unit_price"]
    with pytest.raises(InvalidArgument) as err:
        domain.check_master_records("products", [product(production_lead_time_days=3651)])
    assert err.value.violations == [FieldViolation("row 2.production_lead_time_days", "at most 3650")]


def test_the_prices_csv_parses_with_row_and_column_errors():
    records = masterdata.parse("prices", "customer_id,sku,unit_price,currency\nC0001,BRK-001,29.90,usd\n")
    assert records == [CustomerPrice("C0001", "BRK-001", Decimal("29.90"), "USD")]
    with pytest.raises(InvalidArgument) as err:
        masterdata.parse("prices", "customer_id,sku,unit_price,currency\nC1,A,x,USD\nC1,A,1,USD\n")
    assert [v.field for v in err.value.violations] == ["row 2.unit_price", "row 3"]


def test_the_earliest_date_of_each_line_is_its_last_arrival_and_none_when_undated():
    stock = {"SKU-1": {"WH-CHI": 4}}
    lines = [
        OrderLine("SKU-1", 3, Decimal(1)),
        OrderLine("SKU-1", 3, Decimal(1)),
        OrderLine("SKU-2", 1, Decimal(1)),
    ]
    supply = {"SKU-1": domain.Supply(wd(6))}  # SKU-2 has no stock and inventory cannot date it
    assert domain.earliest_dates(lines, CATALOGUE, stock, BOOK, "US", MORNING, supply) == [wd(3), wd(6), None]
    planned = plan([("SKU-1", 3), ("SKU-1", 3)], stock, supply=supply)
    assert [max(a.date for a in arrivals) for arrivals in planned] == [wd(3), wd(6)]  # as an order is planned
