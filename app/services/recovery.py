"""Recovery: stages handed back at shutdown, stages whose worker died, messages that got lost.

Huey pops a message before running it, so a worker killed with SIGKILL
takes its stage with it. The database is the source of truth: a running
stage whose heartbeat went stale is requeued from its checkpoint (never
re-running a completed stage), and a waiting stage that has no message in
the queue gets one again (the reaper, below). A worker that shuts down
hands its stages back the same way.
"""

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from app.constants import (
    ACTOR_SYSTEM,
    ACTOR_WORKER,
    CANCELLED,
    CANCELLING,
    ERR_WORKER_LOST,
    EV_CANCELLED,
    EV_REDISPATCHED,
    EV_STAGE_REQUEUED,
    EV_WORKER_LOST,
    FAILED,
    QUEUED,
    RUNNING,
    STAGE_CANCELLED,
    STAGE_FAILED,
    STAGE_PENDING,
)
from app.extensions import db
from app.models import HEARTBEAT_STATES, PeriodicRun, Task, utcnow
from app.queue import message_id
from app.services import counts, dispatch, hourly
from app.services.lease import StageRun
from app.services.transitions import lease, move, set_stage, skip_pending_stages

REAPER = "reaper"


@dataclass(frozen=True)
class HeldStage:
    """A stage execution as the database records it: enough to take it over."""

    task_id: str
    stage_index: int
    stage_name: str
    dispatch_seq: int
    priority: int


def hand_back_stage(run: StageRun) -> str | None:
    """The worker is shutting down mid-stage: requeue the stage (it resumes from its checkpoint)."""
    held = HeldStage(run.task_id, run.stage_index, run.stage_name, run.dispatch_seq, run.priority)
    return _requeue(held, actor=ACTOR_WORKER, reason="handed back: the worker is shutting down")


def recover_lost_stage(held: HeldStage, *, silent_for: float, max_lost: int) -> str | None:
    """The stage's worker stopped heart-beating: requeue it, or fail it after `max_lost` losses.

    Returns the task's new state, or None when someone else moved it first.
    A `cancelling` task whose worker died is simply cancelled.
    """
    reason = f"worker lost: no heartbeat for {silent_for:.0f} s"
    return _requeue(held, actor=ACTOR_SYSTEM, reason=reason, max_lost=max_lost)


def _requeue(held: HeldStage, *, actor: str, reason: str, max_lost: int | None = None):
    held_lease = lease(held.stage_index, held.dispatch_seq, running=True)
    now = utcnow()
    event = {"actor": actor, "stage": held.stage_name, "reason": reason}
    ended = {"stage_running": False, "finished_at": now}
    lost = max_lost is not None
    if move(
        held.task_id,
        CANCELLING,
        CANCELLED,
        where=held_lease,
        values=ended,
        action=EV_CANCELLED,
        **event,
    ):
        skip_pending_stages(held.task_id)
        set_stage(held.task_id, held.stage_index, state=STAGE_CANCELLED, finished_at=now)
        db.session.commit()
        return CANCELLED
    if lost and move(
        held.task_id,
        RUNNING,
        FAILED,
        where=held_lease.also(Task.lost_attempts >= max_lost - 1),
        values={
            **ended,
            "lost_attempts": Task.lost_attempts + 1,
            "error_code": ERR_WORKER_LOST,
            "error_message": f"The worker running stage '{held.stage_name}' was lost "
            f"{max_lost} time(s); last: {reason}",
            "retryable": True,
        },
        action=EV_WORKER_LOST,
        **event,
    ):
        skip_pending_stages(held.task_id)
        set_stage(held.task_id, held.stage_index, state=STAGE_FAILED, finished_at=now)
        db.session.commit()
        return FAILED
    if move(
        held.task_id,
        RUNNING,
        RUNNING,
        where=held_lease,
        values={
            "stage_running": False,
            "stage_progress": 0.0,
            "progress_message": None,
            "dispatch_seq": held.dispatch_seq + 1,
            "lost_attempts": Task.lost_attempts + (1 if lost else 0),
        },
        action=EV_STAGE_REQUEUED,
        **event,
    ):
        set_stage(held.task_id, held.stage_index, state=STAGE_PENDING, started_at=None)
        dispatch.enqueue_stage(
            held.task_id, held.stage_index, held.dispatch_seq + 1, held.priority, started=True
        )
        db.session.commit()
        return RUNNING
    db.session.rollback()
    return None


def redispatch(held: HeldStage, state: str) -> bool:
    """Send a waiting stage's lost message again; a fresh dispatch number fences the old one."""
    if not move(
        held.task_id,
        state,
        state,
        where=lease(held.stage_index, held.dispatch_seq, running=False),
        values={"dispatch_seq": held.dispatch_seq + 1},
        action=EV_REDISPATCHED,
        actor=ACTOR_SYSTEM,
        stage=held.stage_name,
        reason="its queue message was missing",
    ):
        db.session.rollback()
        return False
    dispatch.enqueue_stage(
        held.task_id,
        held.stage_index,
        held.dispatch_seq + 1,
        held.priority,
        started=state != QUEUED,
    )
    db.session.commit()
    return True


# --- the reaper --------------------------------------------------------------


def claim_periodic(name: str, interval: float, by: str = "") -> bool:
    """True for exactly one caller per `interval` seconds, across all workers and boxes."""
    now = utcnow()
    claimed = db.session.execute(
        update(PeriodicRun)
        .where(PeriodicRun.name == name, PeriodicRun.next_run_at <= now)
        .values(
            next_run_at=now + timedelta(seconds=interval),
            runs=PeriodicRun.runs + 1,
            last_run_by=by,
        )
    )
    if claimed.rowcount == 1:
        db.session.commit()
        return True
    exists = db.session.scalar(select(PeriodicRun.name).where(PeriodicRun.name == name))
    if exists:
        db.session.rollback()
        return False
    try:  # the first run ever: whoever inserts the row runs
        db.session.execute(
            insert(PeriodicRun).values(
                name=name, next_run_at=now + timedelta(seconds=interval), runs=1, last_run_by=by
            )
        )
        db.session.commit()
        return True
    except IntegrityError:
        db.session.rollback()
        return False


def _held(row) -> HeldStage:
    return HeldStage(
        row.id, row.stage_index, row.stage_names[row.stage_index], row.dispatch_seq, row.priority
    )


def reap(timeout: float, max_lost: int) -> dict:
    """One pass: recover lost stage executions and lost messages. Returns what it did."""
    now = utcnow()
    cutoff = now - timedelta(seconds=timeout)
    columns = (
        Task.id,
        Task.state,
        Task.stage_index,
        Task.stage_names,
        Task.dispatch_seq,
        Task.priority,
        Task.heartbeat_at,
    )
    done = {"requeued": 0, "failed": 0, "cancelled": 0, "redispatched": 0}
    # Both reads say HEARTBEAT_STATES word for word: SQLite then reads the partial index of them.
    stale = db.session.execute(
        select(*columns).where(
            HEARTBEAT_STATES,
            Task.state.in_((RUNNING, CANCELLING)),
            Task.stage_running.is_(True),
            Task.heartbeat_at < cutoff,
        )
    ).all()
    for row in stale:
        silent = (now - row.heartbeat_at).total_seconds()
        outcome = recover_lost_stage(_held(row), silent_for=silent, max_lost=max_lost)
        key = {RUNNING: "requeued", FAILED: "failed", CANCELLED: "cancelled"}.get(outcome)
        if key:
            done[key] += 1
    waiting = db.session.execute(
        select(*columns).where(
            HEARTBEAT_STATES,
            or_(Task.state == QUEUED, and_(Task.state == RUNNING, Task.stage_running.is_(False))),
            Task.heartbeat_at < cutoff,
        )
    ).all()
    db.session.commit()  # end the read transaction
    if waiting:
        pending = dispatch.stage_queue().pending_message_ids()
        for row in waiting:
            held = _held(row)
            if message_id(row.id, held.stage_index, held.dispatch_seq) in pending:
                continue  # a long queue, not a lost message
            done["redispatched"] += redispatch(held, row.state)
    return done


def reap_if_due(interval: float, timeout: float, max_lost: int, by: str = "") -> dict | None:
    """Run the reaper if no worker anywhere ran it in the last `interval` seconds."""
    if not claim_periodic(REAPER, interval, by):
        return None
    done = reap(timeout, max_lost)
    counts.fold()  # the dashboard's counts: as many rows as groups again (app/services/counts.py)
    hourly.roll()  # the dashboard's past hours, summed once (app/services/hourly.py)
    return done
