"""Request-edge helpers: correlation ids are accepted only when sane; body limits per route family."""

from __future__ import annotations

import pytest

from gateway.middleware import CSV_BODY_LIMIT, JSON_BODY_LIMIT, body_limit_for, correlation_id_from


@pytest.mark.parametrize("given", ["abc-123", "0f1e2d3c" * 4, "req:42.a_b"])
def test_a_sane_correlation_id_is_kept(given):
    assert correlation_id_from([(b"x-correlation-id", given.encode())]) == given


@pytest.mark.parametrize("given", [b"", b"a b", b"x" * 129, b"evil\r\nset-cookie: 1", "ü".encode()])
def test_anything_else_gets_a_fresh_id(given):
    fresh = correlation_id_from([(b"x-correlation-id", given)])
    assert fresh != given.decode("latin-1") and len(fresh) == 32


def test_no_header_gets_a_fresh_id_each_time():
    assert correlation_id_from([]) != correlation_id_from([])


def test_body_limits():
    assert body_limit_for("/v1/orders") == JSON_BODY_LIMIT == 1024 * 1024
    assert body_limit_for("/v1/admin/import/stock") == CSV_BODY_LIMIT == 20 * 1024 * 1024
