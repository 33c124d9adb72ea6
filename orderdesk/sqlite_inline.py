"""SQLite for the async engine, called inline on the event loop instead of through a thread.

aiosqlite sends every call (cursor, execute, fetch, close, commit) to a worker
thread and back: about four thread hops and event-loop wake-ups per statement.
On a service's own WAL database with one connection (orderdesk.db), a statement
takes tens of microseconds, so the hops cost several times the work itself (the
bench showed it: ~0.35 ms of CPU per statement). This shim gives SQLAlchemy's
aiosqlite dialect (through `async_creator`) an object with aiosqlite's async
surface whose coroutines simply run the sqlite3 call and return.

The trade-off, and why it is acceptable here: a call blocks the loop for its
duration. That is microseconds for the short statements services issue, and the
occasional WAL checkpoint is milliseconds; a process never waits on another
writer because every service owns its file and uses one connection
(`busy_timeout` still guards against an operator's sqlite3 shell). Deployments
that need more use PostgreSQL. Set ORDERDESK_SQLITE_DRIVER=aiosqlite to go back
to the thread-based driver.
"""

from __future__ import annotations

import sqlite3
from typing import Any


class _Cursor:
    __slots__ = ("_cursor",)

    def __init__(self, cursor: sqlite3.Cursor):
        self._cursor = cursor

    async def __aenter__(self) -> _Cursor:
        return self

    async def __aexit__(self, *exc) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Any = ()) -> _Cursor:
        self._cursor.execute(sql, parameters if parameters is not None else ())
        return self

    async def executemany(self, sql: str, seq_of_parameters) -> _Cursor:
        self._cursor.executemany(sql, seq_of_parameters)
        return self

    async def fetchone(self):
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None):
        return self._cursor.fetchmany(size) if size is not None else self._cursor.fetchmany()

    async def fetchall(self):
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    async def nextset(self):
        return None

    @property
    def description(self):
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self):
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class _RunNow:
    """Stands in for aiosqlite's request queue: SQLAlchemy puts (future, function) on it."""

    def __init__(self):
        pass

    @staticmethod
    def put_nowait(item) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as exc:  # handed back to the awaiting caller
            future.set_exception(exc)


class InlineConnection:
    def __init__(self, conn: sqlite3.Connection):
        self._conn = conn
        self._connection: sqlite3.Connection | None = (
            conn  # SQLAlchemy checks this to know the connection is open
        )
        self._tx = _RunNow()

    @property
    def isolation_level(self):
        return self._conn.isolation_level

    def cursor(self) -> _Cursor:
        return _Cursor(self._conn.cursor())

    async def execute(self, sql: str, parameters: Any = ()) -> _Cursor:
        return await self.cursor().execute(sql, parameters)

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        if self._connection is not None:
            self._conn.close()
            self._connection = None

    def stop(self) -> None:
        if self._connection is not None:
            self._conn.close()
            self._connection = None

    async def create_function(self, *args, **kwargs) -> None:
        self._conn.create_function(*args, **kwargs)


def async_creator(database: str):
    """The `async_creator` for create_async_engine: opens `database` with sqlite3."""

    async def connect() -> InlineConnection:
        # check_same_thread=False: the pool may close a connection from another thread at exit.
        # DEFERRED: sqlite3 opens transactions with BEGIN DEFERRED, the same as its default plain BEGIN.
        return InlineConnection(
            sqlite3.connect(database, check_same_thread=False, isolation_level="DEFERRED")
        )

    return connect
