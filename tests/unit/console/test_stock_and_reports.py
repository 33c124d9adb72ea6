"""The Stock screen's receipt check and the Reports CSV, as plain functions."""

from __future__ import annotations

import pytest

from console.screens import reports, stock
from orderdesk.v1 import orders_pb2


@pytest.mark.parametrize(
    ("values", "fields"),
    [
        ({"warehouse": "WH-HAM", "quantity": "12", "reference": "DN-1"}, set()),
        ({"warehouse": "WH-HAM", "quantity": "1,200", "reference": "DN-1"}, set()),
        ({"warehouse": "", "quantity": "12", "reference": "DN-1"}, {"warehouse"}),
        ({"warehouse": "WH-HAM", "quantity": "0", "reference": "DN-1"}, {"quantity"}),
        ({"warehouse": "WH-HAM", "quantity": "-3", "reference": "DN-1"}, {"quantity"}),
        ({"warehouse": "WH-HAM", "quantity": "2.5", "reference": "DN-1"}, {"quantity"}),
        ({"warehouse": "WH-HAM", "quantity": "1000000001", "reference": "DN-1"}, {"quantity"}),
        (
            {"warehouse": "W" * 33, "quantity": "twelve", "reference": ""},
            {"warehouse", "quantity", "reference"},
        ),
    ],
)
def test_a_receipt_names_each_bad_field(values, fields):
    quantity, found = stock.check_receipt(values)
    assert set(found.fields) == fields
    if not fields:
        assert quantity == int(values["quantity"].replace(",", ""))


def test_the_csv_holds_every_figure_of_the_report_once():
    report = orders_pb2.KpiReport(
        **{"from": "2026-11-01T00:00:00Z"}, to="2026-11-08T00:00:00Z", group_by="day"
    )
    report.total.orders_received = 3
    report.total.on_time_rate = 0.5
    group = report.groups.add(key="2026-11-02", orders_received=3)
    group.order_value.add(currency="USD", amount="12.50")
    report.holds_by_reason.add(reason="price_mismatch", orders=2, units=7)
    report.best_sellers.add(sku="BRK-001", currency="USD", units=9, value="90.00")
    report.cycle_times.add(stage="received_to_confirmed", count=2, average_seconds=60.0)
    rows = reports.csv_rows(report)
    keys = [tuple(r[:3]) for r in rows[1:]]
    assert rows[0] == ["section", "key", "measure", "value"] and len(keys) == len(set(keys))
    figures = {tuple(r[:3]): r[3] for r in rows[1:]}
    headline = [
        f.name for f in orders_pb2.KpiHeadline.DESCRIPTOR.fields if f.name not in ("key", "order_value")
    ]
    assert all(("total", "", name) in figures for name in headline)
    assert figures[("total", "", "on_time_rate")] == "0.5"
    assert figures[("total", "", "unit_fill_rate")] == ""  # no denominator: no figure, not 0
    assert figures[("group", "2026-11-02", "order_value.USD")] == "12.50"
    assert figures[("holds_by_reason", "price_mismatch", "units")] == "7"
    assert figures[("best_sellers", "BRK-001", "value")] == "90.00"
    assert figures[("cycle_times", "received_to_confirmed", "p90_seconds")] == ""
