"""The desk's notes on an order, without I/O: who and when, the version, and what is published."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orderdesk.errors import InvalidArgument
from services.orders.domain import MessageSent
from services.orders.notes import MAX_NOTE_CHARS, Note, Visibility
from tests.unit.orders.test_lifecycle import NOW, new_order

CLERK = "desk:ann@acme.example (clerk)"


def test_an_internal_note_is_kept_with_who_and_when_and_publishes_nothing():
    order = new_order()
    before = order.version
    note = order.add_note(NOW, CLERK, "  customer called, wants it Friday  ")
    assert note == Note("N1", NOW, CLERK, Visibility.INTERNAL, "customer called, wants it Friday", before + 1)
    assert order.version == before + 1 and order.notes == [note]
    assert order.events == [] and order.transitions == []


def test_a_customer_message_is_published_as_order_message():
    order = new_order()
    order.add_note(NOW, CLERK, "internal first")
    later = NOW + dt.timedelta(minutes=5)
    note = order.add_note(later, CLERK, "Your order ships on Friday.", "customer")
    assert note.note_id == "N2" and note.visibility is Visibility.CUSTOMER and note.version == order.version
    assert order.events == [MessageSent(note)]
    event = order.events[0]
    assert (event.event_type, event.actor, event.reason, event.at) == (
        "order.message",
        CLERK,
        "Your order ships on Friday.",
        later,
    )


@pytest.mark.parametrize(
    ("text", "visibility", "field"),
    [
        ("", "internal", "text"),
        ("   \n ", "", "text"),
        ("x" * (MAX_NOTE_CHARS + 1), "", "text"),
        ("bell \x07", "", "text"),
        ("fine", "public", "visibility"),
    ],
)
def test_a_bad_note_is_refused_naming_the_field_and_changes_nothing(text, visibility, field):
    order = new_order()
    before = order.version
    with pytest.raises(InvalidArgument) as refused:
        order.add_note(NOW, CLERK, text, visibility)
    assert [v.field for v in refused.value.violations] == [field]
    assert order.version == before and order.notes == [] and order.events == []


@given(st.lists(st.tuples(st.sampled_from(["internal", "customer"]), st.text(min_size=1, max_size=40))))
def test_notes_are_numbered_in_order_and_only_customer_messages_are_published(notes):
    order = new_order()
    start = order.version
    kept = []
    for visibility, text in notes:
        try:
            kept.append(order.add_note(NOW, CLERK, text, visibility))
        except InvalidArgument:
            continue
    assert [n.note_id for n in order.notes] == [f"N{i + 1}" for i in range(len(kept))]
    assert [n.version for n in order.notes] == list(range(start + 1, start + 1 + len(kept)))
    assert [e.note for e in order.events] == [n for n in kept if n.visibility is Visibility.CUSTOMER]
    assert order.version == start + len(kept)
