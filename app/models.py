"""Database models. Timestamps are naive UTC; `iso()` renders them for clients.

State never changes here: app/services/ owns every transition.
"""

import uuid
from datetime import UTC, datetime

from flask_login import UserMixin
from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from app.constants import CANCELLING, PARTIAL_SUCCESS, PRIORITY_DEFAULT, QUEUED, RUNNING, SUCCEEDED
from app.extensions import db


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z, as clients get every time: 2026-11-24T21:28:21.123456Z."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds") + "Z"


# What new_task_id() makes: 32 lower-case hex digits.
TASK_ID_PATTERN = "[0-9a-f]{32}"


def new_task_id() -> str:
    return uuid.uuid4().hex


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    # Not a column: the token of the browser login this object was loaded
    # through (app.auth sets it). Flask-Login keeps it in the session and the
    # remember cookie, so each login has its own; get_id() stays the user id.
    login_token = None

    def get_login_token(self) -> str | None:
        return self.login_token

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)


class LoginSession(db.Model):
    """A browser login; only its token's SHA-256 is stored.

    Logging out deletes it, a password change deletes all of the user's: a
    copied session or remember cookie then names no login and is refused.
    """

    __tablename__ = "login_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship(lazy="joined")


class ApiToken(db.Model):
    """A bearer token; only its SHA-256 is stored, the plain text is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()


# The states whose heartbeat the reaper reads (app/services/recovery.py), and the
# condition of the index it reads them by: a task leaves that index as it ends, so the
# index is as big as the work in flight, and a finish writes one entry less into it.
# SQLite uses a partial index only for a query that repeats its condition word for word.
HEARTBEAT_STATES = text(f"state IN ('{QUEUED}', '{RUNNING}', '{CANCELLING}')")
# Most tasks are no retry: only those that are sit in the index of what they retry.
IS_RETRY = text("retry_of IS NOT NULL")


def _partial(condition) -> dict:
    return {"sqlite_where": condition, "postgresql_where": condition}


class Task(db.Model):
    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_created", "created_at", "id"),
        Index("ix_tasks_owner_created", "owner_id", "created_at", "id"),
        Index("ix_tasks_state_created", "state", "created_at"),
        Index("ix_tasks_type_created", "type", "created_at"),
        # Finished tasks only, with what the dashboard groups them by (app/services/metrics.py).
        Index(
            "ix_tasks_finished",
            "finished_at",
            "state",
            "owner_id",
            **_partial(text("finished_at IS NOT NULL")),
        ),
        Index("ix_tasks_state_heartbeat", "state", "heartbeat_at", **_partial(HEARTBEAT_STATES)),
        Index("ix_tasks_retry_of", "retry_of", **_partial(IS_RETRY)),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_task_id)
    type: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default=QUEUED)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    priority: Mapped[int] = mapped_column(default=PRIORITY_DEFAULT)
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    # Stage names are fixed at submit time, so a later code change to a
    # pipeline cannot reshape a task already in flight.
    stage_names: Mapped[list] = mapped_column(JSON, default=list)
    # Index of the stage running now, or to run next.
    stage_index: Mapped[int] = mapped_column(default=0)
    # True only while a worker executes stage_index; a running task with
    # this False has its next stage waiting in the queue.
    stage_running: Mapped[bool] = mapped_column(default=False)
    stage_progress: Mapped[float] = mapped_column(default=0.0)
    progress_message: Mapped[str | None] = mapped_column(Text)
    # First stage this task runs itself; earlier ones were reused by a retry.
    resume_index: Mapped[int] = mapped_column(default=0)
    # Bumped each time a stage message is enqueued: a stale message (revoked,
    # re-prioritised) carries an old number and is ignored by the worker.
    dispatch_seq: Mapped[int] = mapped_column(default=0)
    # Last sign of life: set by every transition (a dispatch included) and
    # refreshed by the worker while a stage runs. The reaper acts on old ones.
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=utcnow)
    # Stage executions lost with their worker (kill -9, OOM, power loss).
    lost_attempts: Mapped[int] = mapped_column(default=0)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    retryable: Mapped[bool] = mapped_column(default=False)
    retry_of: Mapped[str | None] = mapped_column(ForeignKey("tasks.id"))
    # Set once when the task is retried, so two racing retries make one task.
    retried_by: Mapped[str | None] = mapped_column(String(32))
    retry_number: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    cancel_requested_at: Mapped[datetime | None]
    # Log lines written so far: the next line is number log_lines + 1.
    log_lines: Mapped[int] = mapped_column(default=0)

    owner: Mapped[User] = relationship(lazy="joined")
    stages: Mapped[list["TaskStage"]] = relationship(
        order_by="TaskStage.position", cascade="all, delete-orphan", back_populates="task"
    )

    @property
    def stage_count(self) -> int:
        return len(self.stage_names)

    @property
    def stage(self) -> str | None:
        """The stage running now or next; None once every stage is done."""
        return self.stage_names[self.stage_index] if self.stage_index < self.stage_count else None

    @property
    def progress(self) -> float:
        if self.state in (SUCCEEDED, PARTIAL_SUCCESS):
            return 1.0
        if not self.stage_count:
            return 0.0
        done = self.stage_index + (self.stage_progress if self.stage_running else 0.0)
        return round(min(done / self.stage_count, 1.0), 4)

    @property
    def waiting(self) -> bool:
        """Running, but its next stage waits in the queue for a worker (DESIGN: not "working")."""
        return self.state == RUNNING and not self.stage_running

    @property
    def eta_seconds(self) -> float | None:
        """Extrapolate from the progress this task made itself since it started."""
        if self.state != RUNNING or self.started_at is None:
            return None
        start_fraction = self.resume_index / self.stage_count
        gained = self.progress - start_fraction
        if gained <= 0.001:
            return None
        elapsed = (utcnow() - self.started_at).total_seconds()
        return round(elapsed * (1.0 - self.progress) / gained, 1)


class TaskStage(db.Model):
    """One row per stage per task; `output` is the checkpoint later stages and retries reuse."""

    __tablename__ = "task_stages"
    __table_args__ = (UniqueConstraint("task_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    position: Mapped[int]
    name: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    output: Mapped[dict | None] = mapped_column(JSON)
    reused: Mapped[bool] = mapped_column(default=False)
    # host:pid of the worker that last started this stage.
    worker: Mapped[str | None] = mapped_column(String(100))
    # Executions started (automatic retries and lost workers count too).
    attempts: Mapped[int] = mapped_column(default=0)
    # Of those, the ones that failed and were retried: what `retries` is measured against.
    failures: Mapped[int] = mapped_column(default=0)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    # For stages that iterate items (ctx.each): null total until the stage tells it.
    items_total: Mapped[int | None]
    items_done: Mapped[int] = mapped_column(default=0)
    items_failed: Mapped[int] = mapped_column(default=0)
    # ctx.save(): a small dict kept across crashes, hand-backs and retries.
    saved: Mapped[dict | None] = mapped_column(JSON)

    task: Mapped[Task] = relationship(back_populates="stages")

    @property
    def items(self) -> dict | None:
        if self.items_total is None and not (self.items_done or self.items_failed):
            return None
        return {"total": self.items_total, "done": self.items_done, "failed": self.items_failed}


class TaskItem(db.Model):
    """An item a stage finished (ok) or gave up on (error), so a resumed stage skips it."""

    __tablename__ = "task_items"

    task_id: Mapped[str] = mapped_column(
        ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(500), primary_key=True)
    ok: Mapped[bool]
    error: Mapped[str | None] = mapped_column(Text)


class TaskLog(db.Model):
    """A line a stage wrote (`log`, `stdout` or `stderr`); `n` counts from 1 per task."""

    __tablename__ = "task_logs"

    task_id: Mapped[str] = mapped_column(
        ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True
    )
    n: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    stage: Mapped[str | None] = mapped_column(String(100))
    stream: Mapped[str] = mapped_column(String(8))
    line: Mapped[str] = mapped_column(Text)


class TaskArtifact(db.Model):
    """A file a stage produced; `path` (under ARTIFACTS_DIR) may be shared with its retries."""

    __tablename__ = "task_artifacts"
    __table_args__ = (UniqueConstraint("task_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    stage: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(100))
    path: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TaskEvent(db.Model):
    """Audit trail: who moved a task from which state to which, and why."""

    __tablename__ = "task_events"
    __table_args__ = (Index("ix_task_events_task", "task_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str | None] = mapped_column(String(16))
    stage: Mapped[str | None] = mapped_column(String(100))
    reason: Mapped[str | None] = mapped_column(Text)
    # A cancel or timeout that had to kill the stage's process group.
    forced: Mapped[bool] = mapped_column(default=False)


class PeriodicRun(db.Model):
    """When a piece of periodic work (the reaper) may run next, shared by all workers.

    A worker runs it only if its conditional UPDATE moves `next_run_at`
    forward, so N workers on N boxes still run it once per interval.
    """

    __tablename__ = "periodic_runs"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_run_at: Mapped[datetime]
    runs: Mapped[int] = mapped_column(default=0)
    last_run_by: Mapped[str | None] = mapped_column(String(100))


class TaskCount(db.Model):
    """How many tasks each owner has of each type in each state, as insert-only changes.

    Database triggers on `tasks` (TASK_COUNT_TRIGGERS) add a row of +1 or
    -1 whenever a task is inserted, deleted or changes state, whatever
    statement did it (a bulk cancel's UPDATE included), in the same
    transaction; rows are only ever added, so concurrent transitions never
    wait on one counter row. The sum of `delta` per owner, type and state
    is the count; the reaper folds the rows into one per group now and
    then (app/services/counts.py), so the dashboard sums a few thousand
    rows instead of counting a million tasks.
    """

    __tablename__ = "task_counts"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int]
    type: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    delta: Mapped[int]


# The dashboard's past hours, rolled up once each (app/services/hourly.py).


class RolledHour(db.Model):
    """An hour whose finished tasks and stage runs are summed in the two tables below."""

    __tablename__ = "rolled_hours"

    hour: Mapped[datetime] = mapped_column(primary_key=True)
    rolled_at: Mapped[datetime] = mapped_column(default=utcnow)


class FinishedHour(db.Model):
    """How many of an owner's tasks ended in each terminal state within one rolled hour."""

    __tablename__ = "finished_hours"

    hour: Mapped[datetime] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(primary_key=True)
    state: Mapped[str] = mapped_column(String(16), primary_key=True)
    tasks: Mapped[int]


class StageHour(db.Model):
    """Runs of one stage of one pipeline, in the tasks of an owner that ended in a rolled hour."""

    __tablename__ = "stage_hours"

    hour: Mapped[datetime] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(64), primary_key=True)
    stage: Mapped[str] = mapped_column(String(100), primary_key=True)
    runs: Mapped[int]
    seconds_total: Mapped[float]
    seconds_max: Mapped[float]
    slowest_task_id: Mapped[str] = mapped_column(String(32))


_COUNT_CHANGED = (
    "OLD.state IS DISTINCT FROM NEW.state OR OLD.type IS DISTINCT FROM NEW.type"
    " OR OLD.owner_id IS DISTINCT FROM NEW.owner_id"
)


def _count(row: str, delta: int) -> str:
    return (
        "INSERT INTO task_counts (owner_id, type, state, delta)"
        f" VALUES ({row}.owner_id, {row}.type, {row}.state, {delta})"
    )


# The triggers that keep task_counts, per dialect (created with the tables,
# and by migration 0006).
_ON_UPDATE = "AFTER UPDATE OF state, type, owner_id ON tasks"
TASK_COUNT_TRIGGERS = {
    "sqlite": [
        "CREATE TRIGGER IF NOT EXISTS task_counts_insert AFTER INSERT ON tasks"
        f" BEGIN {_count('NEW', 1)}; END",
        "CREATE TRIGGER IF NOT EXISTS task_counts_delete AFTER DELETE ON tasks"
        f" BEGIN {_count('OLD', -1)}; END",
        f"CREATE TRIGGER IF NOT EXISTS task_counts_update {_ON_UPDATE}"
        f" WHEN {_COUNT_CHANGED.replace('IS DISTINCT FROM', 'IS NOT')}"
        f" BEGIN {_count('OLD', -1)}; {_count('NEW', 1)}; END",
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION task_counts_track() RETURNS trigger LANGUAGE plpgsql AS $$"
        f" BEGIN IF TG_OP <> 'INSERT' THEN {_count('OLD', -1)}; END IF;"
        f" IF TG_OP <> 'DELETE' THEN {_count('NEW', 1)}; END IF; RETURN NULL; END $$",
        "DROP TRIGGER IF EXISTS task_counts_insert ON tasks",
        "CREATE TRIGGER task_counts_insert AFTER INSERT ON tasks"
        " FOR EACH ROW EXECUTE FUNCTION task_counts_track()",
        "DROP TRIGGER IF EXISTS task_counts_delete ON tasks",
        "CREATE TRIGGER task_counts_delete AFTER DELETE ON tasks"
        " FOR EACH ROW EXECUTE FUNCTION task_counts_track()",
        "DROP TRIGGER IF EXISTS task_counts_update ON tasks",
        f"CREATE TRIGGER task_counts_update {_ON_UPDATE}"
        f" FOR EACH ROW WHEN ({_COUNT_CHANGED}) EXECUTE FUNCTION task_counts_track()",
    ],
}


@event.listens_for(db.metadata, "after_create")
def _create_count_triggers(metadata, connection, **_kw) -> None:
    """`create_all` (tests, benchmarks) makes the triggers too; migrations make them in 0006."""
    for statement in TASK_COUNT_TRIGGERS.get(connection.dialect.name, ()):
        connection.exec_driver_sql(statement)
