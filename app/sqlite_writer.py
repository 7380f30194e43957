"""SQLite writers take turns through a lock file: a waiting writer starts as the last one commits.

SQLite lets one connection write at a time. When a second connection wants
to write, SQLite's busy handler makes it sleep 1 ms, 2 ms, 5 ms, 10 ms ...
and try again, so under contention (worker threads starting and finishing
stages, the web submitting) most of the time went to sleeping past the
moment the lock was free: a profile of the worker showed 40 % of a stage's
time inside sqlite3's `execute`, waiting. Here each connection takes an
exclusive `flock` on `<database>-writer` right before the statement that
opens its write transaction, and drops it when the transaction ends; the
kernel wakes the next writer at once, in this process or another one (the
web, the workers, the CLI). Readers never take it: WAL lets them read
while one connection writes.

It is the same lock SQLite takes, taken a moment earlier and handed over
sooner; durability does not change. A thread that already holds it through
one connection and writes through a second one does not wait on itself: it
falls back to SQLite's own busy handler, as before.
"""

import fcntl
import os
import sqlite3
import threading

_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")
_held = threading.local()  # the connection through which this thread holds the lock


def _opens_write(sql: str) -> bool:
    return sql.lstrip()[:7].upper().startswith(_WRITES)


class _Cursor(sqlite3.Cursor):
    def execute(self, sql, parameters=(), /):
        self.connection._before(sql)
        return super().execute(sql, parameters)

    def executemany(self, sql, seq_of_parameters, /):
        self.connection._before(sql)
        return super().executemany(sql, seq_of_parameters)


class Connection(sqlite3.Connection):
    """A sqlite3 connection (pass as `factory=`) whose write transactions take turns."""

    def __init__(self, database, *args, **kwargs):
        super().__init__(database, *args, **kwargs)
        path = os.fspath(database)
        self._lock_fd = None
        if path and path != ":memory:" and not path.startswith("file:"):
            self._lock_fd = os.open(f"{path}-writer", os.O_RDWR | os.O_CREAT, 0o600)
        self._holding = False

    def cursor(self, factory=_Cursor):
        return super().cursor(factory)

    # sqlite3's shortcuts make their cursor in C, past `cursor()`: route them through it.
    def execute(self, sql, parameters=(), /):
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql, seq_of_parameters, /):
        return self.cursor().executemany(sql, seq_of_parameters)

    def _before(self, sql: str) -> None:
        if self._lock_fd is None or self._holding or self.in_transaction or not _opens_write(sql):
            return
        if getattr(_held, "connection", None) is not None:
            return  # this thread writes through another connection: SQLite's busy handler decides
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        self._holding, _held.connection = True, self

    def _release(self) -> None:
        if self._holding:
            self._holding = False
            if getattr(_held, "connection", None) is self:
                _held.connection = None
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def commit(self):
        try:
            super().commit()
        finally:
            self._release()

    def rollback(self):
        try:
            super().rollback()
        finally:
            self._release()

    def __exit__(self, *exc_info):  # `with connection:` commits or rolls back in C
        try:
            return super().__exit__(*exc_info)
        finally:
            self._release()

    def close(self):
        try:
            super().close()
        finally:
            self._release()
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None
