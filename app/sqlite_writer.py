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
sooner; durability does not change. Whatever goes wrong with the lock file,
the writer falls back to SQLite's own busy handler, as before: a thread
that already holds it through one connection and writes through a second
one, a lock file this process may not open (another user made it), or a
turn not handed over within the connection's busy timeout (a transaction
left open) — a wait never outlasts the timeout SQLite would have kept.
"""

import fcntl
import os
import sqlite3
import threading
import time

_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")
_held = threading.local()  # the connection through which this thread holds the lock


def _opens_write(sql: str) -> bool:
    return sql.lstrip()[:7].upper().startswith(_WRITES)


def _take(fd: int, deadline: float) -> bool:
    """The exclusive lock on `fd`, waited for until `deadline` (monotonic); False if not had.

    flock has no timeout, so the wait is non-blocking tries 0.1 ms apart at
    first, 1 ms at most: still far sooner than SQLite's busy handler.
    """
    pause = 0.0001
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(pause)
            pause = min(pause * 2, 0.001)


class _Cursor(sqlite3.Cursor):
    def execute(self, sql, parameters=(), /):
        self.connection._before(sql)
        return super().execute(sql, parameters)

    def executemany(self, sql, seq_of_parameters, /):
        self.connection._before(sql)
        return super().executemany(sql, seq_of_parameters)


class Connection(sqlite3.Connection):
    """A sqlite3 connection (pass as `factory=`) whose write transactions take turns."""

    def __init__(self, database, timeout=5.0, *args, **kwargs):
        super().__init__(database, timeout, *args, **kwargs)
        path = os.fspath(database)
        self._path = path if path and path != ":memory:" and not path.startswith("file:") else None
        self._timeout = timeout
        self._lock_fd: int | None = None
        self._holding = False

    def _lock_file(self) -> int | None:
        """The lock file, opened at the first write; None when it cannot be (no lock, then)."""
        if self._lock_fd is None and self._path is not None:
            try:
                self._lock_fd = os.open(f"{self._path}-writer", os.O_RDWR | os.O_CREAT, 0o600)
            except OSError:
                try:  # made by another user: flock needs no write access
                    self._lock_fd = os.open(f"{self._path}-writer", os.O_RDONLY)
                except OSError:
                    self._path = None
                    return None
            if os.geteuid() == 0:  # as SQLite does for its -wal file: owned as the database is
                stat = os.stat(self._path)
                os.fchown(self._lock_fd, stat.st_uid, stat.st_gid)
        return self._lock_fd

    def cursor(self, factory=_Cursor):
        return super().cursor(factory)

    # sqlite3's shortcuts make their cursor in C, past `cursor()`: route them through it.
    def execute(self, sql, parameters=(), /):
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql, seq_of_parameters, /):
        return self.cursor().executemany(sql, seq_of_parameters)

    def _before(self, sql: str) -> None:
        if self._holding or self.in_transaction or not _opens_write(sql):
            return
        if getattr(_held, "connection", None) is not None:
            return  # this thread writes through another connection: SQLite's busy handler decides
        fd = self._lock_file()
        if fd is not None and _take(fd, time.monotonic() + self._timeout):
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
