"""Dashboard figures over recent history: throughput per hour and the slowest stages.

Both read only tasks finished in the window (the `ix_tasks_finished`
partial index, which also holds each finished task's state and owner) and
let the database group and add up: at a million tasks the window holds
some 86,000 finished tasks and 260,000 stages, too many to bring into
Python. Time arithmetic differs between SQLite and PostgreSQL, so it is
two small SQL functions compiled per dialect (`_seconds`, `_hour_of`).
"""

from datetime import datetime, timedelta

from sqlalchemy import DateTime, Float, Integer, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from app.constants import STAGE_SUCCEEDED
from app.extensions import db
from app.models import Task, TaskStage, User, utcnow
from app.services.queries import stats, unindexed, visible_to
from app.services.states import TERMINAL_STATES

WINDOW_HOURS = 24
SLOWEST_LIMIT = 8


class _seconds(FunctionElement):
    """Seconds from the first timestamp to the second, as a float."""

    type = Float()
    inherit_cache = True


@compiles(_seconds, "sqlite")
def _seconds_sqlite(element, compiler, **kw):
    start, end = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"((julianday({end}) - julianday({start})) * 86400.0)"


@compiles(_seconds, "postgresql")
def _seconds_postgresql(element, compiler, **kw):
    start, end = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"EXTRACT(EPOCH FROM ({end} - {start}))"


class _hour_of(FunctionElement):
    """Whole hours from the first timestamp to the second (both naive UTC), exactly."""

    type = Integer()
    inherit_cache = True


@compiles(_hour_of, "sqlite")
def _hour_of_sqlite(element, compiler, **kw):
    start, end = (compiler.process(arg, **kw) for arg in element.clauses)
    epoch = "CAST(strftime('%s', {}) AS INTEGER)"
    return f"(({epoch.format(end)} - {epoch.format(start)}) / 3600)"


@compiles(_hour_of, "postgresql")
def _hour_of_postgresql(element, compiler, **kw):
    start, end = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"CAST(FLOOR(EXTRACT(EPOCH FROM ({end} - {start})) / 3600) AS INTEGER)"


def _window_start(now: datetime, hours: int) -> datetime:
    """The start of the oldest whole hour in a window that ends with the current hour."""
    return now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)


def finished_per_hour(actor: User, hours: int = WINDOW_HOURS, now: datetime | None = None) -> list:
    """One bucket per hour, oldest first, the last being the current (partial) hour."""
    start = _window_start(now or utcnow(), hours)
    buckets = [
        {"hour": start + timedelta(hours=i), **dict.fromkeys(TERMINAL_STATES, 0)}
        for i in range(hours)
    ]
    hour = _hour_of(db.literal(start, DateTime()), Task.finished_at)
    rows = db.session.execute(
        select(hour, unindexed(Task.state), func.count())
        .where(Task.finished_at >= start, *visible_to(actor))  # finished: terminal
        .group_by(hour, unindexed(Task.state))
    )
    for index, state, count in rows:
        if 0 <= index < hours and state in TERMINAL_STATES:
            buckets[index][state] += count
    return buckets


def slowest_stages(
    actor: User, hours: int = WINDOW_HOURS, limit: int = SLOWEST_LIMIT, now: datetime | None = None
) -> list:
    """Stages that ran (not reused) in tasks finished in the window, slowest average first."""
    start = _window_start(now or utcnow(), hours)
    seconds = _seconds(TaskStage.started_at, TaskStage.finished_at)
    ran = (
        select(
            Task.type.label("type"),
            TaskStage.name.label("stage"),
            Task.id.label("task_id"),
            seconds.label("seconds"),
        )
        .join(TaskStage, TaskStage.task_id == unindexed(Task.id))
        .where(
            Task.finished_at >= start,
            *visible_to(actor),
            TaskStage.state == STAGE_SUCCEEDED,
            TaskStage.reused.is_(False),
            TaskStage.started_at.is_not(None),
            TaskStage.finished_at.is_not(None),
        )
        .subquery()
    )
    # Each group's figures, and its slowest run (the first by duration) beside them.
    ranked = select(
        ran,
        func.count().over(partition_by=(ran.c.type, ran.c.stage)).label("runs"),
        func.avg(ran.c.seconds).over(partition_by=(ran.c.type, ran.c.stage)).label("avg"),
        func.row_number()
        .over(
            partition_by=(ran.c.type, ran.c.stage), order_by=(ran.c.seconds.desc(), ran.c.task_id)
        )
        .label("rank"),
    ).subquery()
    rows = db.session.execute(
        select(
            ranked.c.type,
            ranked.c.stage,
            ranked.c.runs,
            ranked.c.avg,
            ranked.c.seconds,
            ranked.c.task_id,
        )
        .where(ranked.c.rank == 1)
        .order_by(ranked.c.avg.desc(), ranked.c.type, ranked.c.stage)
        .limit(limit)
    )
    return [
        {
            "type": task_type,
            "stage": stage,
            "runs": runs,
            "avg_seconds": round(float(avg), 3),
            "max_seconds": round(float(slowest), 3),
            "slowest_task_id": task_id,
        }
        for task_type, stage, runs, avg, slowest, task_id in rows
    ]


def dashboard(actor: User) -> dict:
    """Everything the dashboard page and GET /tasks/stats show: counts plus the 24 h figures."""
    return {
        **stats(actor),
        "finished_per_hour": finished_per_hour(actor),
        "slowest_stages": slowest_stages(actor),
    }
