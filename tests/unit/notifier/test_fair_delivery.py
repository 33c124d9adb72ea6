"""Which due deliveries start: per endpoint, per partner and overall caps (domain.pick_launches)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.notifier.domain import pick_launches


def head(n: int, endpoint: str, partner: str) -> dict:
    return {"delivery_id": f"D{n}", "endpoint_id": endpoint, "partner_id": partner}


def test_a_partner_with_many_slow_endpoints_leaves_room_for_another():
    # P-SLOW registered 20 endpoints, each with due deliveries ahead of P-OK's in due order.
    heads = [head(n, f"E-SLOW-{n % 20}", "P-SLOW") for n in range(100)] + [head(999, "E-OK", "P-OK")]
    chosen = pick_launches(heads, [], room=64, per_endpoint=4, per_partner=16)
    assert sum(h["partner_id"] == "P-SLOW" for h in chosen) == 16
    assert head(999, "E-OK", "P-OK") in chosen
    # ... also when P-SLOW's slots are all taken by POSTs still hanging
    hanging = [(f"E-SLOW-{n}", "P-SLOW") for n in range(16)]
    assert pick_launches(heads, hanging, room=48, per_endpoint=4, per_partner=16) == [
        head(999, "E-OK", "P-OK")
    ]


def test_without_a_partner_cap_one_partner_can_take_every_slot():
    heads = [head(n, f"E{n % 20}", "P-SLOW") for n in range(100)] + [head(999, "E-OK", "P-OK")]
    chosen = pick_launches(heads, [], room=64, per_endpoint=4, per_partner=0)
    assert len(chosen) == 64 and head(999, "E-OK", "P-OK") not in chosen


@given(
    st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3)), max_size=80),
    st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3)), max_size=20),
    st.integers(0, 30),
    st.integers(1, 4),
    st.integers(0, 6),
)
def test_caps_hold_and_nothing_is_skipped_without_reason(
    raw_heads, raw_busy, room, per_endpoint, per_partner
):
    # An endpoint belongs to one partner: endpoint e is partner e % 4's.
    heads = [head(n, f"E{e}", f"P{e % 4}") for n, (e, _) in enumerate(raw_heads)]
    busy = [(f"E{e}", f"P{e % 4}") for e, _ in raw_busy]
    chosen = pick_launches(heads, busy, room=room, per_endpoint=per_endpoint, per_partner=per_partner)
    assert len(chosen) <= room
    for e in {h["endpoint_id"] for h in heads}:
        assert sum(h["endpoint_id"] == e for h in chosen) + sum(b[0] == e for b in busy) <= max(
            per_endpoint, sum(b[0] == e for b in busy)
        )
    if per_partner:
        for p in {h["partner_id"] for h in heads}:
            started = sum(h["partner_id"] == p for h in chosen)
            already = sum(b[1] == p for b in busy)
            assert started == 0 or started + already <= per_partner
    # A head left out had a full endpoint or partner, or there was no room left.
    if len(chosen) < room:
        for h in heads:
            if h in chosen:
                continue
            endpoint_load = sum(c["endpoint_id"] == h["endpoint_id"] for c in chosen) + sum(
                b[0] == h["endpoint_id"] for b in busy
            )
            partner_load = sum(c["partner_id"] == h["partner_id"] for c in chosen) + sum(
                b[1] == h["partner_id"] for b in busy
            )
            assert endpoint_load >= per_endpoint or (per_partner and partner_load >= per_partner)
