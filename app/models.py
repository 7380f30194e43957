"""Database models. Timestamps are naive UTC; `iso()` renders them for clients.

State never changes here: app/services/ owns every transition.
"""

import uuid
from datetime import UTC, datetime

from flask_login import UserMixin
from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from app.constants import (
    PRIORITY_DEFAULT,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    TERMINAL_STATES,
)
from app.extensions import db


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="microseconds") + "Z"


def new_task_id() -> str:
    return uuid.uuid4().hex


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)


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

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "prefix": self.prefix,
            "created_at": iso(self.created_at),
            "last_used_at": iso(self.last_used_at),
            "revoked_at": iso(self.revoked_at),
        }


class Task(db.Model):
    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_created", "created_at", "id"),
        Index("ix_tasks_owner_created", "owner_id", "created_at", "id"),
        Index("ix_tasks_state_created", "state", "created_at"),
        Index("ix_tasks_type_created", "type", "created_at"),
        Index("ix_tasks_finished", "finished_at"),
        Index("ix_tasks_state_heartbeat", "state", "heartbeat_at"),
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
    retry_of: Mapped[str | None] = mapped_column(ForeignKey("tasks.id"), index=True)
    # Set once when the task is retried, so two racing retries make one task.
    retried_by: Mapped[str | None] = mapped_column(String(32))
    retry_number: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    cancel_requested_at: Mapped[datetime | None]
    archived: Mapped[bool] = mapped_column(default=False)

    owner: Mapped[User] = relationship(lazy="joined")
    stages: Mapped[list["TaskStage"]] = relationship(
        order_by="TaskStage.position", cascade="all, delete-orphan", back_populates="task"
    )

    @property
    def stage_count(self) -> int:
        return len(self.stage_names)

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def progress(self) -> float:
        if self.state == SUCCEEDED:
            return 1.0
        if not self.stage_count:
            return 0.0
        done = self.stage_index + (self.stage_progress if self.stage_running else 0.0)
        return round(min(done / self.stage_count, 1.0), 4)

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

    def to_dict(self) -> dict:
        name = self.stage_names[self.stage_index] if self.stage_index < self.stage_count else None
        return {
            "id": self.id,
            "type": self.type,
            "state": self.state,
            "stage": name,
            "stage_index": self.stage_index,
            "stage_count": self.stage_count,
            "progress": self.progress,
            "progress_message": self.progress_message,
            "eta_seconds": self.eta_seconds,
            "priority": self.priority,
            "params": self.params,
            "error_code": self.error_code,
            "error_message": self.error_message,
            "retryable": self.retryable,
            "retry_of": self.retry_of,
            "retried_by": self.retried_by,
            "owner": self.owner.username,
            "created_at": iso(self.created_at),
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "cancel_requested_at": iso(self.cancel_requested_at),
            "archived": self.archived,
        }


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

    task: Mapped[Task] = relationship(back_populates="stages")

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "state": self.state,
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "output": self.output,
            "reused": self.reused,
            "worker": self.worker,
        }


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

    def to_dict(self) -> dict:
        return {
            "action": self.action,
            "actor": self.actor,
            "from_state": self.from_state,
            "to_state": self.to_state,
            "stage": self.stage,
            "reason": self.reason,
            "at": iso(self.at),
        }


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
