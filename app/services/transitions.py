"""The one way a task changes state: a conditional UPDATE plus its event, checked against the table.

Each transition is ONE conditional UPDATE (`... WHERE state = :from AND
<guard>`) plus an event row in the same transaction, so when two actors race
(a cancel and a stage finishing, two retries) exactly one UPDATE matches and
the loser sees rowcount 0 and reports what happened instead. Callers commit;
queue messages go out after the commit (app/services/dispatch.py).

The statements go through the tables (SQLAlchemy Core), not the ORM: the
ORM's bookkeeping cost more than the statements themselves on every stage
(bench/overhead.py). Those with a fixed shape are built once. The worker
runs them straight on the driver's connection (`on=`, a
direct_sql.Transaction); everyone else on the Session.
"""

import functools
from dataclasses import dataclass, field

from sqlalchemy import ClauseElement, any_, bindparam, insert, select
from sqlalchemy.dialects.postgresql import ARRAY

from app.constants import STAGE_PENDING, STAGE_SKIPPED
from app.extensions import db
from app.models import Task, TaskEvent, TaskStage, utcnow
from app.services import states
from app.services.direct_sql import SessionStatements

TASKS, STAGES, EVENTS = Task.__table__, TaskStage.__table__, TaskEvent.__table__
_EVENT_FIELDS = ("at", "actor", "action", "from_state", "to_state", "stage", "reason", "forced")


def on_postgres() -> bool:
    return db.engine.dialect.name == "postgresql"


def one_of(column, name: str, postgres: bool):
    """`column` is one of the ids bound to `name` (a list).

    On PostgreSQL `= ANY(:name)`, one array parameter; elsewhere `IN (...)`,
    a parameter per id. Cancel-all binds 500 ids per statement, and
    rendering and parsing those placeholders was a fifth of its time.
    """
    if postgres:
        return column == any_(bindparam(name, type_=ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True))


@functools.cache
def _add_events(postgres: bool):
    """One INSERT ... SELECT records the same event for one task or ten thousand."""
    return insert(EVENTS).from_select(
        ["task_id", *_EVENT_FIELDS],
        select(
            TASKS.c.id,
            *(bindparam(f"event_{name}", type_=EVENTS.c[name].type) for name in _EVENT_FIELDS),
        ).where(one_of(TASKS.c.id, "event_ids", postgres)),
    )


# The event of a one-task move: a plain INSERT.
_ADD_EVENT = insert(EVENTS).values(
    task_id=bindparam("event_task"),
    **{name: bindparam(f"event_{name}", type_=EVENTS.c[name].type) for name in _EVENT_FIELDS},
)


def _event_params(at, **fields) -> dict:
    """The bind parameters of an event INSERT: every field, unset ones empty (forced: False)."""
    event = dict.fromkeys(_EVENT_FIELDS) | {"forced": False} | fields | {"at": at}
    return {f"event_{name}": value for name, value in event.items()}


def record(task_id: str, action: str, source: str | None, target: str, **fields) -> None:
    """The event of a move made by an INSERT (submit) or noted beside one (retried).

    Written at once: the task's row must exist (flush an ORM-added task first).
    """
    states.check(action, source, target, fields["actor"])
    event = _event_params(utcnow(), action=action, from_state=source, to_state=target, **fields)
    db.session.connection().execute(_ADD_EVENT, {**event, "event_task": task_id})


def move(task_id, from_state, to_state, **fields) -> bool:
    """Move the task if it is in `from_state` and `where` holds; add the event. Caller commits.

    The one-task case of `move_set` (same keyword arguments); `on=` a
    direct_sql.Transaction runs it there (one task only: IN lists are
    rendered per call, so a set moves on the Session).
    """
    return bool(_move([task_id], from_state, to_state, **fields))


def move_set(task_ids, from_state, to_state, **fields) -> set[str]:
    """`move` for many tasks: one UPDATE ... RETURNING, one INSERT of their events.

    Returns the ids that moved.
    """
    return set(_move(list(task_ids), from_state, to_state, **fields))


def _move(
    task_ids: list,
    from_state,
    to_state,
    *,
    action,
    actor,
    where: "Guard | tuple" = (),
    values=None,
    stage=None,
    reason=None,
    forced=False,
    on=SessionStatements,
) -> list:
    """The conditional UPDATE ... RETURNING id, and the events of the tasks it moved; their ids.

    A move the state table lacks raises IllegalMove before touching anything.
    Every transition is also a sign of life (`heartbeat_at`), which is what
    the reaper measures staleness from. `where` is a Guard (or a tuple of
    conditions) beyond the from-state.
    """
    states.check(action, from_state, to_state, actor)
    now, postgres, one = utcnow(), on_postgres(), len(task_ids) == 1
    guard = where if isinstance(where, Guard) else Guard(None, tuple(where))
    values = values or {}
    params = {"from_state": from_state, "to_state": to_state, "now": now, **guard.params}
    params.update({f"set_{name}": value for name, value in values.items()})
    params.update({"id_": task_ids[0]} if one else {"ids": task_ids})
    shape = (one, postgres)
    if guard.key is None or any(isinstance(v, ClauseElement) for v in values.values()):
        statement = _update(guard.clauses, values, *shape)  # rare shapes: built each time
    else:
        statement = _cached_update(guard.key, guard.clauses, tuple(values), *shape)
    moved = [row[0] for row in on.rows(statement, params)]
    if moved:
        event = _event_params(
            now,
            actor=actor,
            action=action,
            from_state=from_state,
            to_state=to_state,
            stage=stage,
            reason=reason,
            forced=forced,
        )
        if one:
            on.execute(_ADD_EVENT, {**event, "event_task": task_ids[0]})
        else:
            on.execute(_add_events(postgres), {**event, "event_ids": moved})
    return moved


def _update(clauses: tuple, values: dict, one: bool, postgres: bool):
    """UPDATE tasks SET state, heartbeat_at, `values` WHERE id (in) ... AND state = :from_state."""
    assigned = {
        name: value if isinstance(value, ClauseElement) else _bound(name)
        for name, value in values.items()
    }
    return (
        TASKS.update()
        .where(
            TASKS.c.id == bindparam("id_") if one else one_of(TASKS.c.id, "ids", postgres),
            TASKS.c.state == bindparam("from_state", type_=TASKS.c.state.type),
            *clauses,
        )
        .values(
            state=bindparam("to_state", type_=TASKS.c.state.type),
            heartbeat_at=bindparam("now", type_=TASKS.c.heartbeat_at.type),
            **assigned,
        )
        .returning(TASKS.c.id)
    )


@functools.cache
def _cached_update(_key: str, clauses: tuple, names: tuple, *shape):
    """`_update` for a named Guard and plain values, built once per shape.

    Building a statement cost more than running it on SQLite (bench/overhead.py).
    """
    return _update(clauses, dict.fromkeys(names), *shape)


def _bound(name: str):
    return bindparam(f"set_{name}", type_=TASKS.c[name].type)


def set_stage(task_id: str, position: int, on=SessionStatements, **values) -> None:
    """UPDATE one stage row; plain values go through a statement built once per set of names."""
    params = {"stage_task": task_id, "stage_position": position}
    if any(isinstance(v, ClauseElement) for v in values.values()):
        statement = _stage_update().values(**values)
    else:
        statement = _cached_stage_update(tuple(values))
        params.update({f"stage_{name}": value for name, value in values.items()})
    on.execute(statement, params)


def _stage_update():
    return STAGES.update().where(
        STAGES.c.task_id == bindparam("stage_task"),
        STAGES.c.position == bindparam("stage_position"),
    )


@functools.cache
def _cached_stage_update(names: tuple):
    return _stage_update().values(
        {name: bindparam(f"stage_{name}", type_=STAGES.c[name].type) for name in names}
    )


def skip_pending_stages(*task_ids: str, on=SessionStatements) -> None:
    """The stages not reached yet are skipped (the task failed or was cancelled)."""
    if len(task_ids) == 1:
        on.execute(_SKIP_PENDING, {"skip_task": task_ids[0]})
    else:
        on.execute(_skip_pending_of(on_postgres()), {"ids": list(task_ids)})


def _skip_pending(task_match):
    return (
        STAGES.update()
        .where(task_match, STAGES.c.state == STAGE_PENDING)
        .values(state=STAGE_SKIPPED)
    )


_SKIP_PENDING = _skip_pending(STAGES.c.task_id == bindparam("skip_task"))


@functools.cache
def _skip_pending_of(postgres: bool):
    return _skip_pending(one_of(STAGES.c.task_id, "ids", postgres))


def current_state(task_id: str) -> str | None:
    return db.session.scalar(select(Task.state).where(Task.id == task_id))


@dataclass(frozen=True)
class Guard:
    """Conditions a move needs beyond its from-state, with the values of their bind parameters.

    A Guard with a `key` is built once (its clauses use bind parameters), so
    the statements of the worker's moves are built once too.
    """

    key: str | None
    clauses: tuple
    params: dict = field(default_factory=dict)

    def also(self, *clauses) -> "Guard":
        """This guard and more conditions (a shape built each time)."""
        return Guard(None, (*self.clauses, *clauses), self.params)


LEASE_CLAUSES = {
    running: (
        TASKS.c.stage_index == bindparam("lease_index"),
        TASKS.c.dispatch_seq == bindparam("lease_seq"),
        TASKS.c.stage_running.is_(running),
    )
    for running in (True, False)
}


def lease(index: int, seq: int, running: bool) -> Guard:
    """The guard that fences a stage execution: this stage, this dispatch, (not) executing."""
    return Guard(
        f"lease-running={running}", LEASE_CLAUSES[running], {"lease_index": index, "lease_seq": seq}
    )
