"""Input that JSON allows but no protobuf message can carry is refused by the models with its field's path
(found by API fuzzing: it used to be a 500)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway import order_models


def body(**line) -> dict:
    return {"customer_id": "C1", "lines": [{"sku": "A", "quantity": 1, "unit_price": "1.00", **line}]}


def test_a_quantity_beyond_int64_is_refused_on_its_field():
    with pytest.raises(ValidationError) as err:
        order_models.OrderSubmission.model_validate(body(quantity=-175340186989176415516864473464832))
    assert [e["loc"] for e in err.value.errors()] == [("lines", 0, "quantity")]
    assert (
        order_models.OrderSubmission.model_validate(body(quantity=2**63 - 1)).lines[0].quantity == 2**63 - 1
    )


@pytest.mark.parametrize("text", ["\ud800", "ok\udfffok", "J\ud9f0\udf58"])
def test_a_lone_surrogate_is_refused_on_its_field(text):
    with pytest.raises(ValidationError) as err:
        order_models.OrderSubmission.model_validate(body(sku=text))
    assert [e["loc"] for e in err.value.errors()] == [("lines", 0, "sku")]
    with pytest.raises(ValidationError):
        order_models.ApproveRequest.model_validate({"acknowledge": [text]})


def test_ordinary_unicode_passes():
    assert order_models.OrderSubmission.model_validate(body(sku="Ölfilter-𝔸")).lines[0].sku == "Ölfilter-𝔸"
