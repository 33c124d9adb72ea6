"""The desk's notes on a real database (SQLite and PostgreSQL): stored with who and when, read back on the
desk's view only, a customer message published as order.message, internal ones published nowhere."""

from __future__ import annotations

import pytest

from orderdesk import errors
from services.orders.proto import desk_order_to_proto, order_to_proto
from tests.integration.orders.test_store import orders, published, request  # noqa: F401 (fixture)

CLERK = "desk:ann@acme.example (clerk)"
SECRET = "customer is a slow payer, keep an eye"


async def test_notes_are_kept_and_only_the_customer_message_is_published(orders):  # noqa: F811
    created = await orders.create(request("ORD-N"))
    internal = await orders.add_note("ORD-N", "", CLERK, SECRET)
    assert internal.version == created.version + 1
    message = await orders.add_note(
        "ORD-N", "P-SHOP", CLERK, "Your order ships Friday.", "customer", expected_version=internal.version
    )

    loaded = await orders.get("ORD-N", "")
    desk = desk_order_to_proto(loaded)
    assert [(n.note_id, n.visibility, n.text, n.actor, n.version) for n in desk.notes] == [
        ("N1", "internal", SECRET, CLERK, internal.version),
        ("N2", "customer", "Your order ships Friday.", CLERK, message.version),
    ]
    assert desk.notes[0].at.ToDatetime() <= desk.notes[1].at.ToDatetime()
    assert desk.order.version == message.version
    # What partners may read (the Order message) holds neither note.
    assert SECRET not in str(order_to_proto(loaded)) and "ships Friday" not in str(order_to_proto(loaded))

    events = await published(orders)
    # received, confirmed, message
    assert [e.type for e in events][-1] == "order.message" and len(events) == 3
    sent = events[-1]
    assert (sent.order.message.text, sent.order.message.visibility, sent.actor) == (
        "Your order ships Friday.",
        "customer",
        CLERK,
    )
    assert sent.aggregate_version == message.version
    assert all(SECRET not in str(e) for e in events)  # nowhere: not as a message, not in any snapshot


async def test_a_note_is_guarded_by_the_version_scoped_and_validated(orders):  # noqa: F811
    created = await orders.create(request("ORD-G"))
    with pytest.raises(errors.FailedPrecondition) as stale:
        await orders.add_note("ORD-G", "", CLERK, "late", expected_version=created.version - 1)
    assert stale.value.rule == "stale_version"
    with pytest.raises(errors.NotFound):
        await orders.add_note("ORD-G", "P-EDI", CLERK, "not theirs")
    with pytest.raises(errors.InvalidArgument) as bad:
        await orders.add_note("ORD-G", "", CLERK, "", "everyone")
    assert sorted(v.field for v in bad.value.violations) == ["text", "visibility"]
    again = await orders.get("ORD-G", "")
    assert again.version == created.version and again.notes == []  # nothing changed
