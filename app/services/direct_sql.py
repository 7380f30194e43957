"""The worker's transitions run straight on the driver's connection: Core statements compiled once.

A short stage costs the worker two transactions (start, finish) of a few
statements each, or one when its finish rides with the next claim. Run
through the Session, SQLAlchemy's own work per statement (execution
context, parameter and result set-up) and per commit
cost about four times what SQLite spent on the statements themselves
(cProfile and py-spy of bench/overhead.py): a one-stage no-op task took
1.3 ms of the worker's time against 0.18 ms for the same statements on a
bare sqlite3 connection.

So here a Core statement, the very declaration the Session path runs, is
compiled once per dialect into the driver's SQL, the order of its
parameters and the type conversions of its parameters and result columns
(SQLAlchemy's own processors: JSON, datetimes and booleans come out as
through the ORM). A `Transaction` borrows one DBAPI connection from the
engine's pool, so connect-time pragmas and SQLite's writer turns
(app/sqlite_writer.py) apply as to every other connection, and queue
messages wait for its commit as the Session's do (app/services/dispatch.py).

`SessionStatements` offers the same two calls on the Session, so the
transition code (app/services/transitions.py) is written once for both.
The engine's echo does not see these statements: they are logged at
DEBUG on `taskdeck.sql`.
"""

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass

from app.extensions import db
from app.services import dispatch

log = logging.getLogger("taskdeck.sql")


@dataclass(frozen=True)
class _Compiled:
    sql: str
    defaults: dict  # values the statement itself binds (`.values(state="running")`)
    positional: bool
    binds: tuple  # (name, processor or None), in the driver's order when positional
    results: tuple  # a processor or None per result column


def _processor(type_, dialect, result: bool) -> Callable | None:
    impl = type_.dialect_impl(dialect)
    if not result:
        return impl.bind_processor(dialect)
    try:
        return impl.result_processor(dialect, None)
    except TypeError as exc:  # Float on psycopg: its conversion depends on the column's type
        message = f"A {type_} result needs the driver's type code: read it on the Session"
        raise ValueError(message) from exc


@functools.lru_cache(maxsize=512)
def _compile(statement, dialect) -> _Compiled:
    """Keyed by the statement object: callers pass statements they built once."""
    sql = statement.compile(dialect=dialect)
    if any(bind.expanding for bind in sql.binds.values()):
        raise ValueError("IN lists are rendered per call: run such statements on the Session")
    names = sql.positiontup if dialect.positional else list(sql.binds)
    return _Compiled(
        sql=sql.string,
        defaults={n: b.value for n, b in sql.binds.items() if not b.required},
        positional=dialect.positional,
        binds=tuple((n, _processor(sql.binds[n].type, dialect, False)) for n in names),
        results=tuple(
            _processor(column.type, dialect, True)
            for column in getattr(statement, "exported_columns", ())
        ),
    )


class Transaction:
    """One transaction on a pooled DBAPI connection; `with Transaction() as tx:` commits it.

    `outbox` holds the queue messages to send once it has committed.
    """

    def __init__(self):
        self.outbox: list = []

    def __enter__(self) -> "Transaction":
        engine = db.engine
        self.dialect = engine.dialect
        self._connection = engine.raw_connection()
        try:
            self._cursor = self._connection.cursor()
        except BaseException as error:
            self._abandon(error)
            raise
        return self

    def __exit__(self, kind, exc, traceback) -> None:
        if kind is not None:
            self._abandon(exc)
            return
        try:
            self._cursor.close()
            self._connection.commit()
        except BaseException as error:
            self._abandon(error)
            raise
        self._connection.close()  # back to the pool
        dispatch.send(self.outbox)

    def _abandon(self, error: BaseException) -> None:
        """Roll back and give the connection back; one the database dropped is thrown away.

        As SQLAlchemy's own Connection does, so a restarted PostgreSQL costs
        the pool its dead connections, not one failed transition each.
        """
        connection = self._connection
        try:
            dbapi_error = isinstance(error, self.dialect.loaded_dbapi.Error)
            if dbapi_error and self.dialect.is_disconnect(error, connection.dbapi_connection, None):
                connection.invalidate(error)
            else:
                connection.rollback()
        finally:
            connection.close()

    def _run(self, statement, params: dict) -> _Compiled:
        compiled = _compile(statement, self.dialect)
        values = compiled.defaults | params if compiled.defaults else params
        converted = [
            (name, process(values[name]) if process else values[name])
            for name, process in compiled.binds
        ]
        args = tuple(v for _, v in converted) if compiled.positional else dict(converted)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %r", compiled.sql, args)
        self._cursor.execute(compiled.sql, args)
        return compiled

    def rows(self, statement, params: dict) -> list[tuple]:
        """The rows a SELECT or an UPDATE ... RETURNING gave, converted as the ORM would."""
        processors = self._run(statement, params).results
        return [
            tuple(
                process(value) if process else value
                for process, value in zip(processors, row, strict=True)
            )
            for row in self._cursor.fetchall()
        ]

    def execute(self, statement, params: dict) -> int:
        """Run a statement; the number of rows it changed."""
        self._run(statement, params)
        return self._cursor.rowcount


class SessionStatements:
    """`rows` and `execute` on the Session's connection, for transitions made outside the worker."""

    @staticmethod
    def rows(statement, params: dict) -> list[tuple]:
        return [tuple(row) for row in db.session.connection().execute(statement, params)]

    @staticmethod
    def execute(statement, params: dict) -> int:
        return db.session.connection().execute(statement, params).rowcount
