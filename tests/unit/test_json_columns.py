"""orderdesk.db's JSON column text: what json.dumps writes and json.loads reads, empty lists and objects
without the encoder (the stored text must not change)."""

from __future__ import annotations

import json

import pytest

from orderdesk.db import json_text, json_value

VALUES = [[], {}, [1, "a"], {"a": [], "b": {}}, [[]], "", "x", 0, 1.5, False, True, None, [{"code": "é"}]]


@pytest.mark.parametrize("value", VALUES)
def test_text_is_json_dumps_and_reads_back(value):
    assert json_text(value) == json.dumps(value)
    assert json_value(json_text(value)) == json.loads(json.dumps(value))


def test_an_empty_value_read_is_a_new_one_each_time():
    first, second = json_value("[]"), json_value("[]")
    first.append(1)
    assert second == [] and json_value("{}") is not json_value("{}")
