"""The Huey queue, built from the app's config: the one Huey task and the messages it takes.

Messages carry ids only, never ORM objects; the database is the source of
truth and a message is a nudge. The web process only sends; the worker's
entry point (`taskdeck worker`) binds the function that runs a stage.
"""

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

from huey import PostgresHuey, PriorityRedisHuey, SqliteHuey

from app.constants import PRIORITY_MAX

RUN_STAGE = "taskdeck.run_stage"


class _Fenced:
    """Huey without its revocation: Taskdeck's messages are fenced by the database instead.

    Each message names its stage's dispatch number, and a worker claims a
    stage only while the task's row still names that number
    (app/services/lease.py); so a message of a cancelled or re-prioritised
    task costs the worker one read and is dropped. Huey's own check cost
    every message a look-up before it ran and a delete after (on SQLite,
    the delete is a `begin exclusive` transaction of the queue file): more
    than the worker's claim of the stage (bench/overhead.py).
    """

    # Called before each dequeue of Huey's own worker loop, when set: a worker
    # thread waits there while another one drains (tasks/draining.py), and
    # takes no message when it answers False (the worker is stopping).
    gate: Callable[[], bool] | None = None

    def is_revoked(self, task, timestamp=None, peek=True) -> bool:
        return False

    def dequeue(self):
        if self.gate is not None and not self.gate():
            return None
        return super().dequeue()

    def dequeue_now(self):
        """The next message, past the gate: for the thread that drains."""
        return super().dequeue()

    def delete(self, key):
        if key.startswith("r:"):  # a message's revoke key (huey.api.Task.revoke_id): none are set
            return False
        return super().delete(key)


class SqliteQueueConnection(sqlite3.Connection):
    """The SQLite queue's connection: `synchronous=NORMAL` in WAL, as the data database has.

    Huey leaves SQLite's default, FULL, so every enqueue and every dequeue
    waited for an fsync: that wait was most of a worker's dequeue and of a
    submit's enqueue (bench/overhead.py). NORMAL keeps the queue whole
    through a crash of any process; only a power loss or an OS crash may
    take the last messages back, as it may the data database's last
    commits. The database is the truth and a message only a nudge: the
    reaper re-sends the message of a stage that waits without one
    (app/services/recovery.py), and a message that comes back after it ran
    is dropped by its dispatch number.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.execute("PRAGMA synchronous=NORMAL")


_FENCED = {
    kind: type(kind.__name__, (_Fenced, kind), {})
    for kind in (SqliteHuey, PriorityRedisHuey, PostgresHuey)
}


def make_huey(url: str, name: str = "taskdeck", fenced: bool = True):
    """Build the Huey instance a queue URL names: SQLite (default), Redis or PostgreSQL.

    All three keep priorities (Redis through PriorityRedisHuey). `name`
    separates queues that share one Redis or PostgreSQL. `fenced=False`
    gives Huey as it comes, SQLite's default fsync included (the reference
    of bench/overhead.py).
    """
    kind = _FENCED.get if fenced else lambda plain: plain
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        # sqlite:////abs/path -> /abs/path
        path = Path(url[len("sqlite:///") :])
        path.parent.mkdir(parents=True, exist_ok=True)
        # Web and worker processes share the file: wait on locks instead of failing.
        tuned = {"factory": SqliteQueueConnection} if fenced else {}
        return kind(SqliteHuey)(name, filename=str(path), results=False, timeout=30, **tuned)
    if parsed.scheme in ("redis", "rediss"):
        return kind(PriorityRedisHuey)(name, url=url, results=False)
    if parsed.scheme in ("postgresql", "postgres") or parsed.scheme.startswith("postgresql+"):
        dsn = parsed._replace(scheme="postgresql").geturl()
        return kind(PostgresHuey)(name, dsn=dsn, results=False)
    raise ValueError(
        f"Unsupported TASKDECK_QUEUE_URL scheme {parsed.scheme!r}: "
        "use sqlite:///path, redis://host:port/db or postgresql://…"
    )


def huey_priority(priority: int, started: bool) -> int:
    """Huey runs the higher number first; ours runs 0 first.

    Within one priority, the next stage of a task that has started goes
    before the first stage of one that has not, so a stream of new
    submissions cannot starve tasks already half done (README, "Priority").
    """
    return (PRIORITY_MAX - priority) * 2 + (1 if started else 0)


def message_id(task_id: str, stage_index: int, dispatch_seq: int) -> str:
    """Derived ids: the reaper finds a stage's message in the queue without storing one."""
    return f"{task_id}.{stage_index}.{dispatch_seq}"


class StageQueue:
    """One Huey instance and its one task, `run_stage(task_id, stage_index, dispatch_seq)`."""

    def __init__(self, huey):
        self.huey = huey
        self.runner: Callable[[str, int, int], None] | None = None
        self._run_stage = huey.task(name=RUN_STAGE)(self._run)

    def _run(self, task_id: str, stage_index: int, dispatch_seq: int) -> None:
        if self.runner is None:
            raise RuntimeError("No stage runner bound: start workers with `taskdeck worker`")
        self.runner(task_id, stage_index, dispatch_seq)

    def enqueue_stage(
        self,
        task_id: str,
        stage_index: int,
        dispatch_seq: int,
        priority: int,
        started: bool = False,
        delay: float | None = None,
    ):
        """Send one stage; `delay` seconds later if given (Huey's schedule holds it till then)."""
        message = self._run_stage.task_class(
            (task_id, stage_index, dispatch_seq),
            id=message_id(task_id, stage_index, dispatch_seq),
            priority=huey_priority(priority, started),
            eta=datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=delay)
            if delay
            else None,
        )
        self.huey.enqueue(message)

    def pending_message_ids(self) -> set[str]:
        """Ids of the stage messages waiting in the queue or its schedule (not those executing)."""
        return {message.id for message in (*self.huey.pending(), *self.huey.scheduled())}
