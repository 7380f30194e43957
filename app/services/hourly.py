"""The dashboard's figures of a span of time: grouped live by the database, or rolled up per hour.

At a million tasks the dashboard's 24-hour window holds some 77,000
finished tasks and as many stage runs; grouping them on every view took
0.5 to 1 s (bench/million.py). A past hour does not change: its tasks are
finished, and a finished task keeps its state and end time (a retry is a
new task). So once an hour is over, and ROLL_MARGIN more for finishes
stamped just before the hour ended and committed after, the reaper sums
it once into `finished_hours` and `stage_hours` and marks it in
`rolled_hours`, all in one transaction (app/models.py). The dashboard
adds up those few rows for the hours rolled and groups live only what
finished since (app/services/metrics.py).

A rolled hour is a snapshot: a task deleted after its hour was rolled
(retention, a user's delete) still counts there until the hour leaves
the window.
"""

from datetime import datetime, timedelta

from sqlalchemy import DateTime, Float, delete, func, insert, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from app.constants import STAGE_SUCCEEDED
from app.extensions import db
from app.models import FinishedHour, RolledHour, StageHour, Task, TaskStage, utcnow
from app.services.queries import unindexed

WINDOW_HOURS = 24
HOUR = timedelta(hours=1)
ROLL_MARGIN = timedelta(minutes=10)
ROLLED, FINISHED, STAGES = RolledHour.__table__, FinishedHour.__table__, StageHour.__table__


class _seconds(FunctionElement):
    """Seconds from the first timestamp to the second, to the millisecond (so ties are ties)."""

    type = Float()
    inherit_cache = True


@compiles(_seconds, "sqlite")
def _seconds_sqlite(element, compiler, **kw):
    start, end = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"ROUND((julianday({end}) - julianday({start})) * 86400.0, 3)"


@compiles(_seconds, "postgresql")
def _seconds_postgresql(element, compiler, **kw):
    start, end = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"ROUND(EXTRACT(EPOCH FROM ({end} - {start})), 3)"


def window_start(now: datetime, hours: int = WINDOW_HOURS) -> datetime:
    """The start of the oldest whole hour in a window that ends with the current hour."""
    return now.replace(minute=0, second=0, microsecond=0) - (hours - 1) * HOUR


def _span(since: datetime, until: datetime | None) -> list:
    return [Task.finished_at >= since, *([Task.finished_at < until] if until else [])]


def finished_counts(since: datetime, until: datetime | None, scope: list, *groups):
    """SELECT *groups, state, COUNT(*) of the tasks that finished in [since, until)."""
    keys = (*groups, unindexed(Task.state))
    return select(*keys, func.count()).where(*_span(since, until), *scope).group_by(*keys)


def stage_runs(since: datetime, until: datetime | None, scope: list, by_owner: bool = False):
    """Per (owner,) type and stage: runs, their total seconds, and the slowest run and its task.

    The stages that ran (not reused from an earlier attempt) in tasks that
    finished in [since, until). Ties of the slowest go to the lowest task id.
    """
    ran = (
        select(
            Task.owner_id.label("owner_id"),
            unindexed(Task.type).label("type"),
            TaskStage.name.label("stage"),
            Task.id.label("task_id"),
            _seconds(TaskStage.started_at, TaskStage.finished_at).label("seconds"),
        )
        .join(TaskStage, TaskStage.task_id == unindexed(Task.id))
        .where(
            *_span(since, until),
            *scope,
            TaskStage.state == STAGE_SUCCEEDED,
            TaskStage.reused.is_(False),
            TaskStage.started_at.is_not(None),
            TaskStage.finished_at.is_not(None),
        )
        .subquery()
    )
    groups = (ran.c.owner_id,) * by_owner + (ran.c.type, ran.c.stage)
    return slowest_of(groups, ran.c.seconds, ran.c.task_id, func.count(), func.sum(ran.c.seconds))


def slowest_of(groups: tuple, seconds, task_id, runs, total, where=()):
    """Each group's `runs` and `total` (aggregates), beside the row of its largest `seconds`."""
    ranked = (
        select(
            *groups,
            runs.over(partition_by=groups).label("runs"),
            total.over(partition_by=groups).label("total"),
            seconds.label("seconds"),
            task_id.label("task_id"),
            func.row_number()
            .over(partition_by=groups, order_by=(seconds.desc(), task_id))
            .label("rank"),
        )
        .where(*where)
        .subquery()
    )
    columns = [ranked.c[group.name] for group in groups]
    return select(
        *columns, ranked.c.runs, ranked.c.total, ranked.c.seconds, ranked.c.task_id
    ).where(ranked.c.rank == 1)


def rolled_until(start: datetime, end: datetime) -> datetime:
    """The first hour in [start, end) not rolled up, else `end`: roll-ups serve those before it."""
    rolled = _rolled_since(start)
    hour = start
    while hour in rolled and hour < end:
        hour += HOUR
    return hour


def _rolled_since(start: datetime) -> set[datetime]:
    return set(db.session.scalars(select(ROLLED.c.hour).where(ROLLED.c.hour >= start)))


def _insert_new(table):
    """INSERT that skips a row whose key is taken (another worker rolled the hour first)."""
    dialect = postgresql if db.engine.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing()


def roll_hour(hour: datetime) -> bool:
    """Sum one past hour into the rolled tables, in one transaction; False if already rolled."""
    mark = _insert_new(ROLLED).values(hour=hour, rolled_at=utcnow()).returning(ROLLED.c.hour)
    if db.session.execute(mark).first() is None:
        db.session.rollback()
        return False
    at = literal(hour, DateTime())
    owner = unindexed(Task.owner_id)
    counted = finished_counts(hour, hour + HOUR, [], owner).subquery()
    db.session.execute(
        insert(FINISHED).from_select(["hour", "owner_id", "state", "tasks"], select(at, *counted.c))
    )
    runs = stage_runs(hour, hour + HOUR, [], by_owner=True).subquery()
    names = ["hour", "owner_id", "type", "stage", "runs", "seconds_total", "seconds_max"]
    db.session.execute(insert(STAGES).from_select([*names, "slowest_task_id"], select(at, *runs.c)))
    db.session.commit()
    return True


def roll(now: datetime | None = None) -> int:
    """Roll up the window's past hours not rolled yet, oldest first; how many it rolled.

    The reaper calls it every pass. When it rolls an hour, it deletes those
    older than two windows (nothing else can have expired since).
    """
    now = now or utcnow()
    first = window_start(now)
    last = (now - ROLL_MARGIN).replace(minute=0, second=0, microsecond=0) - HOUR
    rolled = _rolled_since(first)
    done = 0
    hour = first
    while hour <= last:
        done += hour not in rolled and roll_hour(hour)
        hour += HOUR
    if done:
        expired = first - WINDOW_HOURS * HOUR
        for table in (FINISHED, STAGES, ROLLED):
            db.session.execute(delete(table).where(table.c.hour < expired))
    db.session.commit()  # ends the read as well
    return done
