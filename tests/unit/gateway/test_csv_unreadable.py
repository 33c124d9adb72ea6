"""A CSV body the csv module cannot read is a 422 naming the body, not a 500 (found by the API fuzzing)."""

import pytest

from gateway import csv_orders


def test_a_lone_carriage_return_in_an_unquoted_field_is_refused_as_unreadable():
    text = "external_ref,customer_id,sku,quantity,unit_price\nPO-1,C0001,A\rB,1,2.00\n"
    with pytest.raises(csv_orders.CsvDocumentError) as refused:
        csv_orders.parse(text)
    assert [e.field for e in refused.value.errors] == ["body"]
    assert "not readable as CSV" in refused.value.errors[0].message
