"""One check for every text a partner sends: no NUL or control characters, valid Unicode."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from gateway import csv_orders
from gateway.bodies import text_problem
from gateway.changes import ResolutionIn
from gateway.order_models import OrderSubmission
from gateway.supply import ReceiptIn
from gateway.webhooks import WebhookIn


@pytest.mark.parametrize("bad", ["a\x00b", "\x1b[2J", "x\x07", "\x7f", "\x9b31m", "\x0b", "\ud800"])
def test_control_characters_and_lone_surrogates_are_refused(bad):
    assert text_problem(bad)


@pytest.mark.parametrize(
    "good", ["", "Müller & Söhne", "line one\nline two\r\n\tindented", "東京 🚚", "‏שלום"]
)
def test_ordinary_text_passes(good):
    assert text_problem(good) == ""


@given(st.text())
def test_what_passes_has_no_control_character(text):
    if not text_problem(text):
        assert all(ch in "\t\n\r" or not (ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F) for ch in text)


def _errors(model, body) -> list[tuple]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(body)
    return [e["loc"] for e in caught.value.errors()]


def test_every_body_refuses_them_naming_the_field():
    order = {
        "external_ref": "PO-1",
        "customer_id": "C1",
        "lines": [{"sku": "A\x00", "quantity": 1, "unit_price": "1"}],
    }
    assert _errors(OrderSubmission, order) == [("lines", 0, "sku")]
    order = {
        **order,
        "lines": [{"sku": "A", "quantity": 1, "unit_price": "1"}],
        "ship_to": {"name": "\x1b]0;x\x07"},
    }
    assert _errors(OrderSubmission, order) == [("ship_to", "name")]
    assert _errors(WebhookIn, {"url": "https://h.example/\x00", "event_types": ["*"]}) == [("url",)]
    assert _errors(WebhookIn, {"url": "https://h.example/", "event_types": ["order.*\x00"]}) == [
        ("event_types",)
    ]
    receipt = {"warehouse": "WH", "sku": "A", "quantity": 1, "reference": "GRN\x00"}
    assert _errors(ReceiptIn, receipt) == [("reference",)]
    assert _errors(ResolutionIn, {"action": "reship", "details": {"carrier": "DHL\x1b"}}) == [("details",)]


def test_csv_cells_get_the_same_check():
    text = "external_ref,customer_id,sku,quantity,unit_price\nPO-1,C1,A\x00,1,1.00\nPO-2,C1,B,1,1.00\n"
    first, second = csv_orders.parse(text)
    assert [e.field for e in first.errors] == ["row 2.sku"] and not second.errors
