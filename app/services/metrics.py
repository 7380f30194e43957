"""Dashboard figures over recent history: throughput per hour and the slowest stages.

Both read only tasks finished in the window (the `finished_at` index), and
do the date arithmetic in Python so the same code runs on SQLite and
PostgreSQL.
"""

from datetime import datetime, timedelta

from sqlalchemy import select

from app.constants import STAGE_SUCCEEDED
from app.extensions import db
from app.models import Task, TaskStage, User, utcnow
from app.services.queries import stats, visible_to
from app.services.states import TERMINAL_STATES

WINDOW_HOURS = 24
SLOWEST_LIMIT = 8


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
    rows = db.session.execute(
        select(Task.finished_at, Task.state).where(
            Task.finished_at >= start, Task.state.in_(TERMINAL_STATES), *visible_to(actor)
        )
    )
    for finished_at, state in rows:
        index = int((finished_at - start).total_seconds() // 3600)
        if 0 <= index < hours:
            buckets[index][state] += 1
    return buckets


def slowest_stages(
    actor: User, hours: int = WINDOW_HOURS, limit: int = SLOWEST_LIMIT, now: datetime | None = None
) -> list:
    """Stages that ran (not reused) in tasks finished in the window, slowest average first."""
    start = _window_start(now or utcnow(), hours)
    rows = db.session.execute(
        select(Task.type, TaskStage.name, TaskStage.started_at, TaskStage.finished_at, Task.id)
        .join(TaskStage, TaskStage.task_id == Task.id)
        .where(
            Task.finished_at >= start,
            *visible_to(actor),
            TaskStage.state == STAGE_SUCCEEDED,
            TaskStage.reused.is_(False),
            TaskStage.started_at.is_not(None),
            TaskStage.finished_at.is_not(None),
        )
    )
    groups: dict[tuple[str, str], dict] = {}
    for task_type, stage, started, finished, task_id in rows:
        seconds = (finished - started).total_seconds()
        group = groups.setdefault(
            (task_type, stage),
            {"type": task_type, "stage": stage, "runs": 0, "total": 0.0, "max_seconds": -1.0},
        )
        group["runs"] += 1
        group["total"] += seconds
        if seconds > group["max_seconds"]:
            group["max_seconds"], group["slowest_task_id"] = seconds, task_id
    ranked = sorted(groups.values(), key=lambda g: g["total"] / g["runs"], reverse=True)
    return [
        {
            "type": g["type"],
            "stage": g["stage"],
            "runs": g["runs"],
            "avg_seconds": round(g["total"] / g["runs"], 3),
            "max_seconds": round(g["max_seconds"], 3),
            "slowest_task_id": g["slowest_task_id"],
        }
        for g in ranked[:limit]
    ]


def dashboard(actor: User) -> dict:
    """Everything the dashboard page and GET /tasks/stats show: counts plus the 24 h figures."""
    return {
        **stats(actor),
        "finished_per_hour": finished_per_hour(actor),
        "slowest_stages": slowest_stages(actor),
    }
