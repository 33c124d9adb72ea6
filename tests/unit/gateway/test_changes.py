"""The gateway's part of change requests: If-Match parsing and the ETag."""

from __future__ import annotations

import pytest

from gateway import problems
from gateway.changes import etag, parse_if_match


@pytest.mark.parametrize("value,version", [('"7"', 7), ('W/"7"', 7), ("7", 7), (' "12" ', 12)])
def test_if_match_forms(value, version):
    assert parse_if_match(value, required=True) == version


def test_missing_if_match_is_428_only_when_required():
    with pytest.raises(problems.Problem) as missing:
        parse_if_match(None, required=True)
    assert missing.value.status == 428
    assert parse_if_match(None, required=False) == 0 and parse_if_match("", required=False) == 0


@pytest.mark.parametrize("value", ['"x"', "*", '"0"', '"-1"', "W/"])
def test_bad_if_match_names_the_header(value):
    with pytest.raises(problems.Problem) as bad:
        parse_if_match(value, required=True)
    assert bad.value.status == 422 and bad.value.errors[0].field == "If-Match"


def test_etag_is_the_quoted_version():
    assert etag(7) == '"7"' and parse_if_match(etag(7), required=True) == 7
