"""A fake unit of work for use-case tests without a database (after cosmicpython's FakeUnitOfWork).

    db = FakeDatabase({ShipmentRepository: FakeShipments()})
    service = ShippingService(db)
    await service.record_event(...)
    assert db.committed == 1 and [e.type for e in db.events] == ["shipment.picked"]

A repository fake implements the methods the use case calls; state lives in the fake, so a
test reads it back from there. A transaction whose body raises publishes nothing (its events are
dropped and its after-commit callbacks never run); the fakes' own state is not rolled back, as a
real repository's would be, so a test of a failure path asserts on the events, not on the fake.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any


class FakeWork:
    def __init__(self, repos: dict[type, Any]):
        self._repos = repos
        self.events: list[Any] = []
        self.after_commit: list = []
        self.emitted = 0

    def repo(self, kind: type) -> Any:
        try:
            return self._repos[kind]
        except KeyError:
            raise AssertionError(f"the fake unit of work has no {kind.__name__}") from None

    async def emit(self, event) -> None:
        self.events.append(event)
        self.emitted += 1


class FakeDatabase:
    """Stands in for orderdesk.db.Database in a use case's unit test."""

    def __init__(self, repos: dict[type, Any]):
        self.repos = repos
        self.events: list[Any] = []
        self.committed = 0
        self.rolled_back = 0

    @asynccontextmanager
    async def transaction(self):
        work = FakeWork(self.repos)
        try:
            yield work
        except BaseException:
            self.rolled_back += 1
            raise
        self.committed += 1
        self.events.extend(work.events)
        for callback in work.after_commit:
            callback()

    @asynccontextmanager
    async def reading(self):
        yield FakeWork(self.repos)


class FakeCalendars:
    """orderdesk.calendar_store.CalendarRepository in memory: holidays and lanes as given."""

    def __init__(self, holidays=(), lanes=()):
        self.holidays_, self.lanes_ = list(holidays), list(lanes)

    async def book(self, warehouses):
        from orderdesk.calendar import CalendarBook

        return CalendarBook(warehouses, self.holidays_, self.lanes_)
