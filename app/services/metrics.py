"""Dashboard figures over recent history: throughput per hour and the slowest stages.

Each figure adds up two parts: the hours rolled up once they were over
(app/services/hourly.py), and, grouped live by the database, what
finished since the last rolled hour (the `ix_tasks_finished` partial
index holds each finished task's time, state and owner). Hour arithmetic
differs between SQLite and PostgreSQL: `_hour_of` is compiled per dialect.
"""

from datetime import datetime

from sqlalchemy import DateTime, Integer, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from app.extensions import db
from app.models import FinishedHour, StageHour, Task, User, utcnow
from app.services import hourly
from app.services.hourly import HOUR, WINDOW_HOURS, window_start
from app.services.queries import stats, visible_finished, visible_to
from app.services.states import TERMINAL_STATES

SLOWEST_LIMIT = 8


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


def finished_per_hour(actor: User, hours: int = WINDOW_HOURS, now: datetime | None = None) -> list:
    """One bucket per hour, oldest first, the last being the current (partial) hour."""
    start = window_start(now or utcnow(), hours)
    end = start + hours * HOUR
    live_from = hourly.rolled_until(start, end)
    buckets = [
        {"hour": start + i * HOUR, **dict.fromkeys(TERMINAL_STATES, 0)} for i in range(hours)
    ]
    rolled = (
        select(FinishedHour.hour, FinishedHour.state, func.sum(FinishedHour.tasks))
        .where(FinishedHour.hour >= start, FinishedHour.hour < live_from)
        .where(*visible_to(actor, FinishedHour.owner_id))
        .group_by(FinishedHour.hour, FinishedHour.state)
    )
    for hour, state, count in db.session.execute(rolled):
        buckets[(hour - start) // HOUR][state] += int(count)
    hour = _hour_of(db.literal(start, DateTime()), Task.finished_at)
    live = hourly.finished_counts(live_from, end, visible_finished(actor), hour)
    for index, state, count in db.session.execute(live):  # finished: terminal
        if 0 <= index < hours and state in TERMINAL_STATES:
            buckets[index][state] += count
    return buckets


def slowest_stages(
    actor: User, hours: int = WINDOW_HOURS, limit: int = SLOWEST_LIMIT, now: datetime | None = None
) -> list:
    """Stages that ran (not reused) in tasks finished in the window, slowest average first."""
    start = window_start(now or utcnow(), hours)
    end = start + hours * HOUR
    live_from = hourly.rolled_until(start, end)
    rolled = hourly.slowest_of(
        (StageHour.type, StageHour.stage),
        StageHour.seconds_max,
        StageHour.slowest_task_id,
        func.sum(StageHour.runs),
        func.sum(StageHour.seconds_total),
        where=(
            StageHour.hour >= start,
            StageHour.hour < live_from,
            *visible_to(actor, StageHour.owner_id),
        ),
    )
    live = hourly.stage_runs(live_from, end, visible_finished(actor))
    merged: dict[tuple, list] = {}
    for query in (rolled, live):
        for task_type, stage, runs, total, seconds, task_id in db.session.execute(query):
            seen = merged.setdefault((task_type, stage), [0, 0.0, float("-inf"), ""])
            seen[0] += int(runs)
            seen[1] += float(total)
            if (-float(seconds), task_id) < (-seen[2], seen[3]):  # slower, or as slow and first
                seen[2:] = [float(seconds), task_id]
    ranked = sorted(merged.items(), key=lambda item: (-item[1][1] / item[1][0], *item[0]))
    return [
        {
            "type": task_type,
            "stage": stage,
            "runs": runs,
            "avg_seconds": round(total / runs, 3),
            "max_seconds": round(slowest, 3),
            "slowest_task_id": task_id,
        }
        for (task_type, stage), (runs, total, slowest, task_id) in ranked[:limit]
    ]


def dashboard(actor: User) -> dict:
    """Everything the dashboard page and GET /tasks/stats show: counts plus the 24 h figures."""
    return {
        **stats(actor),
        "finished_per_hour": finished_per_hour(actor),
        "slowest_stages": slowest_stages(actor),
    }
