"""Log lines stages write (`ctx.log`, a child's stdout and stderr), kept with their task, bounded.

Each task keeps its last LOG_LINES_MAX lines, each cut to LOG_LINE_MAX_BYTES
of UTF-8; lines are numbered from 1 per task so a reader can ask for what
came after the last line it saw (`after=N`).
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy import delete, insert, select

from app.extensions import db
from app.models import TaskLog
from app.services.queries import get_task
from app.services.transitions import TASKS

LOGS = TaskLog.__table__
PAGE_MAX = 5000
DOWNLOAD_PAGE = 500  # lines held at once while a log downloads (up to 2 MiB of text)


@dataclass(frozen=True)
class Line:
    at: datetime
    stage: str | None
    stream: str
    line: str


def clip(text: str, max_bytes: int) -> str:
    """At most `max_bytes` of UTF-8, cut on a character boundary, with an ellipsis if cut."""
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return text
    return data[: max_bytes - 3].decode("utf-8", "ignore") + "…"


def split(message: str) -> list[str]:
    """One stored line per line of text (CR, LF and CRLF all end a line)."""
    return message.splitlines() or [""]


def append(task_id: str, lines: list[Line]) -> None:
    """Store a batch of lines and drop the task's oldest beyond the cap; caller's transaction."""
    if not lines:
        return
    limit = current_app.config["LOG_LINES_MAX"]
    size = current_app.config["LOG_LINE_MAX_BYTES"]
    last = db.session.execute(
        TASKS.update()
        .where(TASKS.c.id == task_id)
        .values(log_lines=TASKS.c.log_lines + len(lines))
        .returning(TASKS.c.log_lines)
    ).scalar_one()
    first = last - len(lines) + 1
    db.session.execute(
        insert(LOGS),
        [
            {
                "task_id": task_id,
                "n": first + i,
                "at": line.at,
                "stage": line.stage,
                "stream": line.stream,
                "line": clip(line.line, size),
            }
            for i, line in enumerate(lines)
        ],
    )
    if last > limit:
        db.session.execute(delete(LOGS).where(LOGS.c.task_id == task_id, LOGS.c.n <= last - limit))


def page(actor, task_id: str, after: int = 0, stage: str | None = None, limit: int = 1000):
    """Lines after number `after`, oldest first, and the number to ask after next time."""
    get_task(actor, task_id)  # 404 / 403 as for the task itself
    rows = _after(task_id, after, stage, min(limit, PAGE_MAX))
    return rows, (rows[-1].n if rows else after)


def every_line(actor, task_id: str) -> Iterator[TaskLog]:
    """All kept lines, oldest first, for the download; permission is checked before the first."""
    get_task(actor, task_id)

    def lines():
        after = 0
        while rows := _after(task_id, after, None, DOWNLOAD_PAGE):
            yield from rows
            after = rows[-1].n

    return lines()


def _after(task_id: str, after: int, stage: str | None, limit: int) -> list[TaskLog]:
    query = select(TaskLog).where(TaskLog.task_id == task_id, TaskLog.n > after)
    if stage:
        query = query.where(TaskLog.stage == stage)
    return list(db.session.scalars(query.order_by(TaskLog.n).limit(limit)))
