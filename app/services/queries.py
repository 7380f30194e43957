"""Reading tasks: visibility, lookup with permission checks, listing, stats."""

import base64
import binascii
import json
import re
from datetime import datetime, timedelta

from flask_babel import gettext
from sqlalchemy import Integer, String, bindparam, cast, func, literal_column, or_, select, tuple_

from app.constants import CANCELLING, QUEUED, RECENT_EVENTS, RUNNING
from app.extensions import db
from app.models import TASK_ID_PATTERN, Task, TaskArtifact, TaskEvent, TaskStage, User, utcnow
from app.schemas import outputs
from app.services import catalog, counts, items
from app.services.errors import Forbidden, InvalidRequest, NotFound
from app.services.states import ACTIVE_STATES, STATES, TERMINAL_STATES

CURSOR_MAX = 200
TASK_ID = re.compile(TASK_ID_PATTERN)


def visible_to(actor: User, owner=Task.owner_id) -> list:
    """Where-clauses limiting a query to the tasks `actor` may see (admins see all).

    `owner` is the owner column of the table queried (tasks by default).
    """
    return [] if actor.is_admin else [owner == actor.id]


def visible_finished(actor: User) -> list:
    """`visible_to` for queries of recently finished tasks: read through the index of
    finished tasks (a short range of time), not the owner's index (all their tasks)."""
    return visible_to(actor, unindexed(Task.owner_id))


def unindexed(column):
    """`column` as an expression no index can serve: steers SQLite's planner, changes no value.

    SQLite's own idiom (`x || ''`, see its query planner's notes). Without
    statistics its planner read a million tasks through a state-first
    index to spare the sort of a `GROUP BY state`, or all the stages to
    look their tasks up, where the index of finished tasks gives the few
    thousand rows wanted. PostgreSQL plans by its statistics and gets the
    same values. Numbers get SQLite's numeric form of the idiom (`x + 0`).
    """
    if isinstance(column.type, Integer):
        return column + 0
    return column.concat(literal_column("''"))


def get_task(actor: User, task_id: str) -> Task:
    """Load a task `actor` may act on; raise NotFound (404) or Forbidden (403)."""
    task = db.session.get(Task, task_id)
    _check_may_see(actor, task)
    return task


def _check_may_see(actor: User, task) -> None:
    """NotFound (404) for no task, Forbidden (403) for another user's unless `actor` is an admin."""
    if task is None:
        raise NotFound()
    if not actor.is_admin and task.owner_id != actor.id:
        raise Forbidden()


def _version_query():
    """One row that changes whenever the task's status block would.

    Its state, progress and priority; its last event (every transition adds
    one); items counted and executions started per stage; files produced.
    """
    tasks, stages = Task.__table__, TaskStage.__table__
    events, files = TaskEvent.__table__, TaskArtifact.__table__
    mine = bindparam("task_id")
    return select(
        tasks.c.owner_id,
        tasks.c.state,
        tasks.c.stage_progress,
        tasks.c.progress_message,
        tasks.c.priority,
        select(func.max(events.c.id)).where(events.c.task_id == mine).scalar_subquery(),
        select(
            func.sum(
                stages.c.items_done
                + stages.c.items_failed
                + stages.c.attempts
                + func.coalesce(stages.c.items_total, -1) * 1_000_003
            )
        )
        .where(stages.c.task_id == mine)
        .scalar_subquery(),
        select(func.count()).where(files.c.task_id == mine).scalar_subquery(),
        select(func.max(files.c.id)).where(files.c.task_id == mine).scalar_subquery(),
    ).where(tasks.c.id == mine)


_VERSION = _version_query()


def task_version(actor: User, task_id: str) -> tuple[str, tuple]:
    """The task's state, and a key that changes whenever its status block would; one query.

    Progress counts in whole percents, as the block shows it: a stage that
    reports every 0.25 s does not make every poll a new page. Raises
    NotFound / Forbidden as `get_task` does, so a poll for another user's
    task learns nothing more than the page would tell.
    """
    row = db.session.execute(_VERSION, {"task_id": task_id}).one_or_none()
    _check_may_see(actor, row)
    return row.state, (*row[:2], int(row.stage_progress * 100), *row[3:])


def task_detail(actor: User, task_id: str) -> outputs.TaskDetail:
    """The task with its stages and its most recent events, oldest first."""
    task = get_task(actor, task_id)
    events = db.session.scalars(
        select(TaskEvent)
        .where(TaskEvent.task_id == task.id)
        .order_by(TaskEvent.id.desc())
        .limit(RECENT_EVENTS)
    ).all()
    names = dict(enumerate(task.stage_names))
    failed = [
        outputs.FailedItem(stage=names.get(item.position, "?"), key=item.key, error=item.error)
        for item in items.failed_items(task.id)
    ]
    return outputs.TaskDetail(
        **dict(outputs.Task.model_validate(task)),
        stages=task.stages,
        events=list(reversed(events)),
        failed_items=failed,
        force_stop_at=_force_stop_at(task),
    )


def _force_stop_at(task: Task) -> datetime | None:
    """When a cancelling isolated stage gets killed: the cancel plus the stage's cancel_grace."""
    if task.state != CANCELLING or task.cancel_requested_at is None:
        return None
    pipeline = catalog.get_pipeline(task.type)
    try:
        stage = pipeline and pipeline.stage_named(task.params, task.stage or "")
    except Exception:  # a plan() that fails on these params: no countdown, never a 500
        return None
    if stage is None or not stage.in_child:
        return None
    return task.cancel_requested_at + timedelta(seconds=stage.cancel_grace)


def encode_cursor(task: Task) -> str:
    raw = json.dumps([task.created_at.isoformat(), task.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (created_at, id) a cursor points after; anything else is a 400, never a 500.

    Cursors come back from clients, so a crafted one is refused here: too
    long, not base64 JSON, not [naive ISO time, task id].
    """
    try:
        if len(cursor) > CURSOR_MAX:
            raise ValueError("too long")
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, task_id = json.loads(raw)
        when = datetime.fromisoformat(created)
        if when.tzinfo is not None or not TASK_ID.fullmatch(task_id):
            raise ValueError("not a cursor of this list")
        return when, task_id
    except (binascii.Error, ValueError, TypeError, RecursionError) as exc:
        raise InvalidRequest(gettext("Invalid cursor")) from exc


def list_tasks(
    actor: User,
    *,
    states: list[str] | None = None,
    task_type: str | None = None,
    q: str | None = None,
    limit: int,
    cursor: str | None = None,
    newer_than: str | None = None,
) -> tuple[list[Task], str | None]:
    """Newest first, keyset-paginated on (created_at, id).

    `cursor` pages to older tasks; `newer_than` (a cursor) pages back to the
    page of newer tasks just before it. Returns the page and the cursor of
    its oldest row when older rows exist.
    """
    stmt = select(Task).where(*visible_to(actor))
    if states:
        stmt = stmt.where(Task.state.in_(states))
    if task_type:
        stmt = stmt.where(Task.type == task_type)
    if q:
        stmt = stmt.where(
            or_(
                Task.id.startswith(q, autoescape=True),
                Task.type.contains(q, autoescape=True),
                cast(Task.params, String).contains(q, autoescape=True),
            )
        )
    if cursor:
        created, task_id = decode_cursor(cursor)
        # A row-value comparison, so both databases walk the (created_at, id) index from there.
        stmt = stmt.where(tuple_(Task.created_at, Task.id) < tuple_(created, task_id))
    if newer_than:
        created, task_id = decode_cursor(newer_than)
        newer = stmt.where(tuple_(Task.created_at, Task.id) > tuple_(created, task_id))
        rows = db.session.scalars(newer.order_by(Task.created_at, Task.id).limit(limit)).all()
        tasks = list(reversed(rows))
        return tasks, encode_cursor(tasks[-1]) if tasks else newer_than
    stmt = stmt.order_by(Task.created_at.desc(), Task.id.desc()).limit(limit + 1)
    tasks = list(db.session.scalars(stmt))
    next_cursor = encode_cursor(tasks[limit - 1]) if len(tasks) > limit else None
    return tasks[:limit], next_cursor


def active_tasks(actor: User, limit: int = 10) -> list[Task]:
    """The actor's own queued, running and cancelling tasks, newest first (the layout widget)."""
    return db.session.scalars(
        select(Task)
        .where(Task.owner_id == actor.id, Task.state.in_(ACTIVE_STATES))
        .order_by(Task.created_at.desc(), Task.id.desc())
        .limit(limit)
    ).all()


def count_active(actor: User) -> int:
    """How many of the actor's own tasks are queued, running or cancelling."""
    return db.session.scalar(
        select(func.count())
        .select_from(Task)
        .where(Task.owner_id == actor.id, Task.state.in_(ACTIVE_STATES))
    )


def stats(actor: User) -> dict:
    """Counts by state and by type, and what finished in the last hour."""
    rows = counts.by_type_and_state(actor)
    by_state = dict.fromkeys(STATES, 0)
    by_type: dict[str, dict] = {}
    for task_type, state, count in rows:
        by_state[state] += count
        entry = by_type.setdefault(task_type, {"total": 0, **dict.fromkeys(STATES, 0)})
        entry[state] += count
        entry["total"] += count
    since = utcnow() - timedelta(hours=1)
    finished = dict(
        db.session.execute(
            select(unindexed(Task.state), func.count())
            .where(*visible_finished(actor), Task.finished_at >= since)
            .group_by(unindexed(Task.state))
        ).all()
    )
    total_finished = sum(finished.values())
    return {
        "total": sum(by_state.values()),
        "by_state": by_state,
        "by_type": by_type,
        "last_hour": {
            "since": since,
            "finished": total_finished,
            "per_minute": round(total_finished / 60, 2),
            **{state: finished.get(state, 0) for state in TERMINAL_STATES},
        },
    }


def cancellable_counts(actor: User) -> dict[str, dict[str, int]]:
    """{type: {"queued": n, "running": m}} of the tasks a bulk cancel by `actor` would reach.

    For the bulk-cancel confirmations, which say how many tasks they stop.
    """
    reached: dict[str, dict[str, int]] = {}
    for task_type, state, count in counts.by_type_and_state(actor, (QUEUED, RUNNING)):
        reached.setdefault(task_type, {QUEUED: 0, RUNNING: 0})[state] = count
    return reached
