"""The one way a task changes state: a conditional UPDATE plus its event, checked against the table.

Each transition is ONE conditional UPDATE (`... WHERE state = :from AND
<guard>`) plus an event row in the same transaction, so when two actors race
(a cancel and a stage finishing, two retries) exactly one UPDATE matches and
the loser sees rowcount 0 and reports what happened instead. Callers commit;
queue messages go out after the commit (app/services/dispatch.py).

The statements go through the tables (SQLAlchemy Core), not the ORM: the
ORM's bookkeeping cost more than the statements themselves on every stage
(bench/overhead.py). Those with a fixed shape are built once.
"""

import functools

from sqlalchemy import any_, bindparam, insert, select
from sqlalchemy.dialects.postgresql import ARRAY

from app.constants import STAGE_PENDING, STAGE_SKIPPED
from app.extensions import db
from app.models import Task, TaskEvent, TaskStage, utcnow
from app.services import states

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


def record(task_id: str, action: str, source: str | None, target: str, **fields) -> TaskEvent:
    """The event of a move made by an INSERT (submit) or noted beside one (retried)."""
    states.check(action, source, target, fields["actor"])
    event = TaskEvent(task_id=task_id, action=action, from_state=source, to_state=target, **fields)
    db.session.add(event)
    return event


def move(task_id, from_state, to_state, **fields) -> bool:
    """Move the task if it is in `from_state` and `where` holds; add the event. Caller commits.

    The one-task case of `move_set` (same keyword arguments).
    """
    return bool(move_set([task_id], from_state, to_state, **fields))


def move_set(
    task_ids,
    from_state,
    to_state,
    *,
    action,
    actor,
    where=(),
    values=None,
    stage=None,
    reason=None,
    forced=False,
) -> set[str]:
    """`move` for many tasks: one UPDATE ... RETURNING, one INSERT of their events.

    Returns the ids that moved. A move the state table lacks raises
    IllegalMove before touching anything. Every transition is also a sign
    of life (`heartbeat_at`), which is what the reaper measures staleness from.
    """
    states.check(action, from_state, to_state, actor)
    now, postgres = utcnow(), on_postgres()
    moved = db.session.scalars(
        TASKS.update()
        .where(one_of(TASKS.c.id, "ids", postgres), TASKS.c.state == from_state, *where)
        .values(state=to_state, heartbeat_at=now, **(values or {}))
        .returning(TASKS.c.id),
        {"ids": list(task_ids)},
    ).all()
    if moved:
        db.session.execute(
            _add_events(postgres),
            {
                "event_ids": moved,
                "event_at": now,
                "event_actor": actor,
                "event_action": action,
                "event_from_state": from_state,
                "event_to_state": to_state,
                "event_stage": stage,
                "event_reason": reason,
                "event_forced": forced,
            },
        )
    return set(moved)


def set_stage(task_id: str, position: int, **values) -> None:
    db.session.execute(
        STAGES.update()
        .where(STAGES.c.task_id == task_id, STAGES.c.position == position)
        .values(**values)
    )


def skip_pending_stages(*task_ids: str) -> None:
    db.session.execute(
        STAGES.update()
        .where(one_of(STAGES.c.task_id, "ids", on_postgres()), STAGES.c.state == STAGE_PENDING)
        .values(state=STAGE_SKIPPED),
        {"ids": list(task_ids)},
    )


def current_state(task_id: str) -> str | None:
    return db.session.scalar(select(Task.state).where(Task.id == task_id))


def lease(index: int, seq: int, running: bool) -> tuple:
    """The guard that fences a stage execution: this stage, this dispatch, (not) executing."""
    return (
        Task.stage_index == index,
        Task.dispatch_seq == seq,
        Task.stage_running.is_(running),
    )
