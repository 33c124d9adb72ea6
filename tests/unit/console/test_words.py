"""Every code the services send has its words in console/words.py (an unknown code would show raw)."""

import re

import services.intake.domain as intake_domain
from console import words
from services.intake.domain.submission import CHANNELS
from services.orders.domain import Status as OrderStatus
from services.orders.exceptions import Action, ExceptionType
from services.returns.domain import Status as ReturnStatus
from services.shipping.domain import Status as ShipmentStatus
from services.shipping.tracking import TrackingStatus


def documented_hold_reasons() -> set[str]:
    """The codes of the table in intake's domain docstring (the stable list partners match on)."""
    table = intake_domain.__doc__.split("Hold reason codes", 1)[1].split("Configuration", 1)[0]
    return set(re.findall(r"^  ([a-z_]+) {2,}", table, flags=re.M))


def test_every_code_has_words():
    assert len(documented_hold_reasons()) == 19
    assert set(words.HOLD_REASONS) == documented_hold_reasons()
    assert set(words.STATUSES) == {s.value for s in OrderStatus}
    assert set(words.SHIPMENT_STATUSES) == {s.value for s in ShipmentStatus}
    assert set(words.TRACKING_STATUSES) == {s.value for s in TrackingStatus}
    assert set(words.RETURN_STATUSES) == {s.value for s in ReturnStatus}
    assert set(words.EXCEPTION_TYPES) == {t.value for t in ExceptionType}
    assert set(words.RESOLUTIONS) == {a.value for a in Action}
    assert set(CHANNELS) <= set(words.CHANNELS)


def test_an_unknown_code_is_shown_as_it_is():
    assert words.label(words.HOLD_REASONS, "some_new_reason") == "some_new_reason"
    assert words.label(words.HOLD_REASONS, "credit_limit_exceeded") == "Credit limit exceeded"
