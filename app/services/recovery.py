"""The reaper: find stage executions whose worker died, and waiting stages whose message is lost.

Huey pops a message before running it, so a worker killed with SIGKILL
takes its stage with it. The database is the source of truth: a running
stage whose heartbeat went stale is requeued from its checkpoint (never
re-running a completed stage), and a waiting stage that has no message in
the queue gets one again. The transitions themselves live in lifecycle.py.
"""

from datetime import timedelta

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from app.constants import CANCELLED, CANCELLING, FAILED, QUEUED, RUNNING
from app.extensions import db
from app.models import PeriodicRun, Task, utcnow
from app.services import lifecycle
from app.services.lifecycle import HeldStage
from tasks import queue

REAPER = "reaper"


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
    stale = db.session.execute(
        select(*columns).where(
            Task.state.in_((RUNNING, CANCELLING)),
            Task.stage_running.is_(True),
            Task.heartbeat_at < cutoff,
        )
    ).all()
    for row in stale:
        silent = (now - row.heartbeat_at).total_seconds()
        outcome = lifecycle.recover_lost_stage(_held(row), silent_for=silent, max_lost=max_lost)
        key = {RUNNING: "requeued", FAILED: "failed", CANCELLED: "cancelled"}.get(outcome)
        if key:
            done[key] += 1
    waiting = db.session.execute(
        select(*columns).where(
            or_(Task.state == QUEUED, and_(Task.state == RUNNING, Task.stage_running.is_(False))),
            Task.heartbeat_at < cutoff,
        )
    ).all()
    db.session.commit()  # end the read transaction
    if waiting:
        pending = queue.pending_message_ids()
        for row in waiting:
            held = _held(row)
            if queue.message_id(row.id, held.stage_index, held.dispatch_seq) in pending:
                continue  # a long queue, not a lost message
            done["redispatched"] += lifecycle.redispatch(held, row.state)
    return done


def reap_if_due(interval: float, timeout: float, max_lost: int, by: str = "") -> dict | None:
    """Run the reaper if no worker anywhere ran it in the last `interval` seconds."""
    if not claim_periodic(REAPER, interval, by):
        return None
    return reap(timeout, max_lost)
