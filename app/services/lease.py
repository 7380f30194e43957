"""The worker's side of a stage: claim it, report progress and heartbeats, finish, fail, stop.

Each of the worker's transitions is one transaction straight on the
driver's connection (app/services/direct_sql.py), except that a finish may
share the transaction of the worker thread's next claim (`start_stage`'s
`finishing`); the rest (progress, heartbeats, checks) go through the Session.

Worker-side transitions are fenced by the stage's lease (stage index,
`dispatch_seq`, executing flag): a stage message that was superseded
(re-prioritised, cancelled, handed to another worker) can neither start
nor write its result.
"""

from dataclasses import dataclass

from sqlalchemy import bindparam, select

from app.constants import (
    ACTOR_WORKER,
    CANCELLED,
    CANCELLING,
    EV_CANCELLED,
    EV_STAGE_FAILED,
    EV_STAGE_FINISHED,
    EV_STAGE_RETRYING,
    EV_STAGE_STARTED,
    FAILED,
    PARTIAL_SUCCESS,
    QUEUED,
    RUNNING,
    STAGE_CANCELLED,
    STAGE_FAILED,
    STAGE_PENDING,
    STAGE_RUNNING,
    STAGE_SUCCEEDED,
    SUCCEEDED,
)
from app.extensions import db
from app.models import utcnow
from app.services import dispatch
from app.services.direct_sql import Transaction
from app.services.transitions import (
    LEASE_CLAUSES,
    STAGES,
    TASKS,
    lease,
    move,
    set_stage,
    skip_pending_stages,
)


@dataclass(frozen=True)
class StageRun:
    """What the worker needs to run one stage, read when the stage started."""

    task_id: str
    type: str
    params: dict
    stage_index: int
    stage_name: str
    # The stage after this one (None for the last): its priority offset is
    # looked up without reading the task again.
    next_stage: str | None
    # Fixed while a stage runs (changeable only while queued), so finishing
    # the stage needs no second read of the task.
    priority: int
    dispatch_seq: int
    retry_number: int
    outputs: dict
    # This execution's number, counting automatic retries and lost workers (1 = first).
    attempt: int = 1
    # Earlier executions that failed and were retried (hand-backs and lost workers are not).
    failures: int = 0
    saved: dict | None = None


_RUNNABLE = select(
    TASKS.c.state,
    TASKS.c.type,
    TASKS.c.params,
    TASKS.c.stage_names,
    TASKS.c.stage_index,
    TASKS.c.dispatch_seq,
    TASKS.c.stage_running,
    TASKS.c.priority,
    TASKS.c.retry_number,
).where(TASKS.c.id == bindparam("task_id"))
_OUTPUTS_BEFORE = select(STAGES.c.name, STAGES.c.output).where(
    STAGES.c.task_id == bindparam("task_id"), STAGES.c.position < bindparam("index")
)
_STOP_CHECK = select(TASKS.c.state, TASKS.c.dispatch_seq).where(TASKS.c.id == bindparam("task_id"))
_START_STAGE = (
    STAGES.update()
    .where(STAGES.c.task_id == bindparam("run_task"), STAGES.c.position == bindparam("index"))
    .values(
        state=STAGE_RUNNING,
        started_at=bindparam("now", type_=STAGES.c.started_at.type),
        worker=bindparam("run_worker", type_=STAGES.c.worker.type),
        attempts=STAGES.c.attempts + 1,
        error_code=None,
        error_message=None,
    )
    .returning(STAGES.c.attempts, STAGES.c.failures, STAGES.c.saved)
)
_ANY_ITEM_FAILED = select(
    select(STAGES.c.id)
    .where(STAGES.c.task_id == bindparam("task_id"), STAGES.c.items_failed > 0)
    .exists()
)
# The running stage's row of `tasks`, while this worker holds its lease.
_HELD = TASKS.update().where(TASKS.c.id == bindparam("task_id"), *LEASE_CLAUSES[True])
_PROGRESS = _HELD.values(
    stage_progress=bindparam("fraction", type_=TASKS.c.stage_progress.type),
    progress_message=bindparam("message", type_=TASKS.c.progress_message.type),
    heartbeat_at=bindparam("now", type_=TASKS.c.heartbeat_at.type),
)
_HEARTBEAT = _HELD.values(heartbeat_at=bindparam("now", type_=TASKS.c.heartbeat_at.type))


def _held(run: "StageRun") -> dict:
    return {"task_id": run.task_id, "lease_index": run.stage_index, "lease_seq": run.dispatch_seq}


def start_stage(
    task_id: str,
    index: int,
    seq: int,
    worker: str | None = None,
    finishing: tuple["StageRun", dict] | None = None,
) -> StageRun | None:
    """Claim a stage for execution; None when the message is stale or the task is not runnable.

    `finishing` is (run, output) of a stage this worker thread has just run
    to its end: it is finished in the same transaction, before the claim,
    and stays finished when the claim finds nothing to run. One commit less
    per stage when the queue is busy (tasks/runner.py, StageRunner._drain).
    """
    with Transaction() as tx:
        if finishing is not None:
            _finish(*finishing, tx)
        found = tx.rows(_RUNNABLE, {"task_id": task_id})
        if not found:
            return None
        state, task_type, params, names, *at, priority, retry_number = found[0]
        if state not in (QUEUED, RUNNING) or at != [index, seq, False] or index >= len(names):
            return None  # a stale message (cancelled, re-prioritised, taken over): one read
        now = utcnow()
        values = {"stage_running": True, "stage_progress": 0.0, "progress_message": None}
        if state == QUEUED:
            values["started_at"] = now
        if not move(
            task_id,
            state,
            RUNNING,
            where=lease(index, seq, running=False),
            values=values,
            action=EV_STAGE_STARTED,
            actor=ACTOR_WORKER,
            stage=names[index],
            on=tx,
        ):
            return None  # moved since the read: a cancel or another worker won
        claim = {"run_task": task_id, "index": index, "now": now, "run_worker": worker}
        ((attempt, failures, saved),) = tx.rows(_START_STAGE, claim)
        outputs = (
            dict(tx.rows(_OUTPUTS_BEFORE, {"task_id": task_id, "index": index})) if index else {}
        )
    # The task's priority and params cannot change while this lease holds.
    return StageRun(
        task_id=task_id,
        type=task_type,
        params=params,
        stage_index=index,
        stage_name=names[index],
        next_stage=names[index + 1] if index + 1 < len(names) else None,
        priority=priority,
        dispatch_seq=seq,
        retry_number=retry_number,
        outputs=outputs,
        attempt=attempt,
        failures=failures,
        saved=saved,
    )


def _worker_cancels(run: StageRun, now, reason: str, tx: Transaction, forced: bool = False) -> bool:
    """cancelling -> cancelled for the stage this worker holds; pending stages are skipped."""
    moved = move(
        run.task_id,
        CANCELLING,
        CANCELLED,
        where=lease(run.stage_index, run.dispatch_seq, running=True),
        values={"stage_running": False, "finished_at": now},
        action=EV_CANCELLED,
        actor=ACTOR_WORKER,
        stage=run.stage_name,
        reason=reason,
        forced=forced,
        on=tx,
    )
    if moved:
        skip_pending_stages(run.task_id, on=tx)
    return moved


def finish_stage(run: StageRun, output: dict) -> None:
    """Store the checkpoint, then succeed, move on (enqueueing the next stage) or cancel.

    Nothing is written when the lease is gone (the task was taken over).
    """
    with Transaction() as tx:
        _finish(run, output, tx)


def _finish(run: StageRun, output: dict, tx: Transaction) -> None:
    index, seq = run.stage_index, run.dispatch_seq
    held = lease(index, seq, running=True)
    now = utcnow()
    event = {
        "actor": ACTOR_WORKER,
        "stage": run.stage_name,
        "action": EV_STAGE_FINISHED,
        "on": tx,
    }
    if run.next_stage is None:
        failed_item = tx.rows(_ANY_ITEM_FAILED, {"task_id": run.task_id})[0][0]
        moved = move(
            run.task_id,
            RUNNING,
            PARTIAL_SUCCESS if failed_item else SUCCEEDED,
            where=held,
            values={"stage_running": False, "stage_progress": 1.0, "finished_at": now},
            **event,
        )
    else:
        moved = move(
            run.task_id,
            RUNNING,
            RUNNING,
            where=held,
            values={
                "stage_index": index + 1,
                "stage_running": False,
                "stage_progress": 0.0,
                "progress_message": None,
                "dispatch_seq": seq + 1,
            },
            **event,
        )
        if moved:
            dispatch.enqueue_stage(
                run.task_id,
                index + 1,
                seq + 1,
                run.priority,
                started=True,
                offset=dispatch.stage_offset(run.type, run.params, run.next_stage),
                outbox=tx.outbox,
            )
    if not moved:
        moved = _worker_cancels(run, now, "stopped after the stage finished", tx)
    if moved:
        set_stage(run.task_id, index, on=tx, state=STAGE_SUCCEEDED, finished_at=now, output=output)


def retry_stage_later(run: StageRun, error_code: str, message: str, delay: float) -> bool:
    """An automatic retry: the stage goes back to the queue as a message `delay` seconds away.

    While it waits the task is running-but-waiting, so a cancel cancels it at
    once and the delayed message, fenced by its dispatch number, is dropped.
    False when the lease was gone (a cancel won): the caller then fails or cancels.
    """
    index, seq = run.stage_index, run.dispatch_seq
    with Transaction() as tx:
        moved = move(
            run.task_id,
            RUNNING,
            RUNNING,
            where=lease(index, seq, running=True),
            values={
                "stage_running": False,
                "stage_progress": 0.0,
                "progress_message": None,
                "dispatch_seq": seq + 1,
            },
            action=EV_STAGE_RETRYING,
            actor=ACTOR_WORKER,
            stage=run.stage_name,
            reason=f"attempt {run.attempt} failed ({message}); again in {delay:.1f} s",
            on=tx,
        )
        if moved:
            set_stage(
                run.task_id,
                index,
                on=tx,
                state=STAGE_PENDING,
                error_code=error_code,
                error_message=message,
                failures=run.failures + 1,
            )
            dispatch.enqueue_stage(
                run.task_id,
                index,
                seq + 1,
                run.priority,
                started=True,
                delay=delay,
                offset=dispatch.stage_offset(run.type, run.params, run.stage_name),
                outbox=tx.outbox,
            )
    return moved


def fail_stage(run: StageRun, error_code: str, message: str, forced: bool = False) -> None:
    """Record a stage that failed for good: the task fails (retryable), or is cancelled if asked."""
    now = utcnow()
    stage_state = STAGE_FAILED
    with Transaction() as tx:
        moved = move(
            run.task_id,
            RUNNING,
            FAILED,
            where=lease(run.stage_index, run.dispatch_seq, running=True),
            action=EV_STAGE_FAILED,
            actor=ACTOR_WORKER,
            stage=run.stage_name,
            reason=message,
            forced=forced,
            values={
                "stage_running": False,
                "finished_at": now,
                "error_code": error_code,
                "error_message": message,
                "retryable": True,
            },
            on=tx,
        )
        if moved:
            skip_pending_stages(run.task_id, on=tx)
        else:
            stage_state = STAGE_CANCELLED
            reason = f"stage failed while cancelling: {message}"
            moved = _worker_cancels(run, now, reason, tx, forced)
        if moved:
            set_stage(
                run.task_id,
                run.stage_index,
                on=tx,
                state=stage_state,
                finished_at=now,
                error_code=error_code,
                error_message=message,
            )


def stop_cancelled_stage(run: StageRun, forced: bool = False, reason: str = "") -> None:
    """The stage stopped at a cancel (or was killed, `forced`): the task is now cancelled."""
    now = utcnow()
    with Transaction() as tx:
        if _worker_cancels(run, now, reason or "stopped inside the stage", tx, forced):
            set_stage(run.task_id, run.stage_index, on=tx, state=STAGE_CANCELLED, finished_at=now)


def report_progress(run: StageRun, fraction: float, message: str | None) -> bool:
    """Progress of the running stage (no event: not a transition); False once the lease is gone."""
    result = db.session.execute(
        _PROGRESS, {**_held(run), "fraction": fraction, "message": message, "now": utcnow()}
    )
    db.session.commit()
    return result.rowcount == 1


def should_stop(run: StageRun) -> bool:
    """True when a cancel was asked, or the stage's lease was superseded."""
    row = db.session.execute(_STOP_CHECK, {"task_id": run.task_id}).one_or_none()
    db.session.commit()  # end the read transaction (PostgreSQL would keep it open)
    return row is None or row.state != RUNNING or row.dispatch_seq != run.dispatch_seq


def hold(run: StageRun) -> bool:
    """Refresh the heartbeat if this worker still holds the stage's lease; the caller commits.

    The row stays locked (PostgreSQL) or the database write-locked (SQLite)
    until then, so what the caller writes meanwhile is fenced by the lease.
    """
    result = db.session.execute(_HEARTBEAT, {**_held(run), "now": utcnow()})
    return result.rowcount == 1


def heartbeat(run: StageRun) -> bool:
    """The worker still runs this stage; False once its lease was taken over (or it ended)."""
    held = hold(run)
    db.session.commit()
    return held
