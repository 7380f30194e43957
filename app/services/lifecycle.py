"""Task lifecycle: every state transition lives here.

Each transition is ONE conditional UPDATE (`... WHERE state = :from AND
<guard>`) plus an event row in the same transaction, so when two actors race
(a cancel and a stage finishing, two retries) exactly one UPDATE matches and
the loser sees rowcount 0 and reports what happened instead.

Worker-side transitions are fenced by `dispatch_seq`: a stage message that
was superseded (re-prioritised, cancelled, handed to another worker) cannot
write its result.

Queue messages are sent only after the commit, so a worker never receives a
message for a row it cannot see yet.
"""

import functools
from dataclasses import dataclass

from flask_babel import gettext
from sqlalchemy import any_, bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import ARRAY

from app.constants import (
    ACTOR_SYSTEM,
    ACTOR_WORKER,
    CANCELLED,
    CANCELLING,
    ERR_WORKER_LOST,
    EV_CANCEL_REQUESTED,
    EV_CANCELLED,
    EV_PRIORITY_CHANGED,
    EV_REDISPATCHED,
    EV_RETRIED,
    EV_STAGE_FAILED,
    EV_STAGE_FINISHED,
    EV_STAGE_REQUEUED,
    EV_STAGE_STARTED,
    EV_SUBMITTED,
    EV_WORKER_LOST,
    FAILED,
    PRIORITY_MAX,
    PRIORITY_MIN,
    QUEUED,
    RETRYABLE_STATES,
    RUNNING,
    STAGE_CANCELLED,
    STAGE_FAILED,
    STAGE_PENDING,
    STAGE_RUNNING,
    STAGE_SKIPPED,
    STAGE_SUCCEEDED,
    SUCCEEDED,
    TERMINAL_STATES,
)
from app.extensions import db
from app.models import Task, TaskEvent, TaskStage, User, new_task_id, utcnow
from app.services.errors import InvalidRequest, Unprocessable
from app.services.queries import get_task
from tasks import queue
from tasks.pipelines import ParamsError, get_pipeline

# A cancel re-tries when the task moved between its statements; each pass
# sees a newer state, and a task has only a few states to move through.
CANCEL_ATTEMPTS = 5

# cancel_set's tasks per transaction: short enough not to hold SQLite's write
# lock for long, and far below either backend's limit on bound parameters.
BULK_CHUNK = 500


@dataclass(frozen=True)
class CancelOutcome:
    task_id: str
    previous_state: str
    state: str
    message: str


@dataclass(frozen=True)
class RetryOutcome:
    task_id: str
    new_task_id: str
    resume_index: int
    message: str


@dataclass(frozen=True)
class StageRun:
    """What the worker needs to run one stage, read when the stage started."""

    task_id: str
    type: str
    params: dict
    stage_index: int
    stage_name: str
    stage_count: int
    # Fixed while a stage runs (changeable only while queued), so finishing
    # the stage needs no second read of the task.
    priority: int
    dispatch_seq: int
    retry_number: int
    outputs: dict


# --- building blocks -------------------------------------------------------

# The worker's statements go through the tables (SQLAlchemy Core), not the
# ORM: the ORM's bookkeeping cost more than the statements themselves, on
# every stage (bench/overhead.py). Those with a fixed shape are built once.
TASKS, STAGES, EVENTS = Task.__table__, TaskStage.__table__, TaskEvent.__table__
_EVENT_FIELDS = ("at", "actor", "action", "from_state", "to_state", "stage", "reason")


def _on_postgres() -> bool:
    return db.engine.dialect.name == "postgresql"


def _one_of(column, name: str, postgres: bool):
    """`column` is one of the ids bound to `name` (a list).

    On PostgreSQL `= ANY(:name)`, one array parameter; elsewhere `IN (...)`,
    a parameter per id. Cancel-all binds 500 ids per statement, and
    rendering and parsing those placeholders was a fifth of its time.
    """
    if postgres:
        return column == any_(bindparam(name, type_=ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True))


@functools.cache
def _add_events(postgres: bool):
    """One INSERT ... SELECT records the same event for one task or ten thousand."""
    return insert(EVENTS).from_select(
        ["task_id", *_EVENT_FIELDS],
        select(
            TASKS.c.id,
            *(bindparam(f"event_{name}", type_=EVENTS.c[name].type) for name in _EVENT_FIELDS),
        ).where(_one_of(TASKS.c.id, "event_ids", postgres)),
    )


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


def _transition(
    task_id, from_state, to_state, *, action, actor, where=(), values=None, stage=None, reason=None
) -> bool:
    """Move the task if it is in `from_state` and `where` holds; add the event. Caller commits."""
    return bool(
        _transition_set(
            [task_id],
            from_state,
            to_state,
            action=action,
            actor=actor,
            where=where,
            values=values,
            stage=stage,
            reason=reason,
        )
    )


def _transition_set(
    task_ids, from_state, to_state, *, action, actor, where=(), values=None, stage=None, reason=None
) -> set[str]:
    """_transition for many tasks: one UPDATE ... RETURNING, one INSERT of their events.

    Returns the ids that moved. Every transition is also a sign of life
    (`heartbeat_at`), which is what the reaper measures staleness from.
    """
    now, postgres = utcnow(), _on_postgres()
    moved = db.session.scalars(
        TASKS.update()
        .where(_one_of(TASKS.c.id, "ids", postgres), TASKS.c.state == from_state, *where)
        .values(state=to_state, heartbeat_at=now, **(values or {}))
        .returning(TASKS.c.id),
        {"ids": list(task_ids)},
    ).all()
    if moved:
        db.session.execute(
            _add_events(postgres),
            {
                "event_ids": moved,
                "event_at": now,
                "event_actor": actor,
                "event_action": action,
                "event_from_state": from_state,
                "event_to_state": to_state,
                "event_stage": stage,
                "event_reason": reason,
            },
        )
    return set(moved)


def _set_stage(task_id: str, position: int, **values) -> None:
    db.session.execute(
        STAGES.update()
        .where(STAGES.c.task_id == task_id, STAGES.c.position == position)
        .values(**values)
    )


def _skip_pending_stages(*task_ids: str) -> None:
    db.session.execute(
        STAGES.update()
        .where(_one_of(STAGES.c.task_id, "ids", _on_postgres()), STAGES.c.state == STAGE_PENDING)
        .values(state=STAGE_SKIPPED),
        {"ids": list(task_ids)},
    )


def _current_state(task_id: str) -> str | None:
    return db.session.scalar(select(Task.state).where(Task.id == task_id))


def check_priority(value) -> int:
    """Return a valid priority or raise InvalidRequest (400)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not (PRIORITY_MIN <= value <= PRIORITY_MAX)
    ):
        raise InvalidRequest(
            gettext(
                "priority must be an integer from %(min)d (most urgent) to %(max)d (lowest)",
                min=PRIORITY_MIN,
                max=PRIORITY_MAX,
            )
        )
    return value


# --- submitting and retrying -----------------------------------------------


def submit(owner: User, task_type: str, params, priority: int, *, actor: str) -> Task:
    """Validate, store and enqueue a new task; raise Unprocessable (422) on bad type/params."""
    pipeline = get_pipeline(task_type)
    if pipeline is None:
        raise Unprocessable(gettext("Unknown task type '%(type)s'", type=task_type))
    try:
        params = pipeline.validate(params)
    except ParamsError as exc:
        raise Unprocessable(
            gettext("Invalid params: %(errors)s", errors=exc), fields=exc.by_field
        ) from exc
    priority = check_priority(priority)
    names = [stage.name for stage in pipeline.stages_for(params)]
    task = Task(
        id=new_task_id(),
        type=task_type,
        state=QUEUED,
        owner_id=owner.id,
        priority=priority,
        params=params,
        stage_names=names,
        dispatch_seq=1,
        stages=[TaskStage(position=i, name=n, state=STAGE_PENDING) for i, n in enumerate(names)],
    )
    db.session.add(task)
    db.session.add(TaskEvent(task_id=task.id, actor=actor, action=EV_SUBMITTED, to_state=QUEUED))
    task_id = task.id  # read before the commit expires it: a reload costs a query
    db.session.commit()
    queue.enqueue_stage(task_id, 0, 1, priority)
    return task


def retry(actor: User, task_id: str, from_scratch: bool = False) -> RetryOutcome:
    """Create a new task from a failed/cancelled one, resuming after its last completed stage.

    Raises NotFound/Forbidden, or InvalidRequest when the task is not retryable
    or was retried already (two racing retries make exactly one task).
    """
    get_task(actor, task_id)
    new_id = new_task_id()
    claimed = db.session.execute(
        update(Task)
        .where(Task.id == task_id, Task.state.in_(RETRYABLE_STATES), Task.retried_by.is_(None))
        .values(retried_by=new_id)
        .execution_options(synchronize_session=False)
    )
    original = db.session.get(Task, task_id, populate_existing=True)
    if claimed.rowcount != 1:
        db.session.rollback()
        if original.retried_by:
            raise InvalidRequest(
                gettext("Task was already retried as %(id)s", id=original.retried_by)
            )
        raise InvalidRequest(
            gettext(
                "Task in state '%(state)s' cannot be retried; only failed or cancelled tasks can",
                state=original.state,
            )
        )
    resume = 0
    if not from_scratch:
        for stage in original.stages:
            if stage.state != STAGE_SUCCEEDED:
                break
            resume += 1
    # A task cancelled just as its last stage finished has nothing left to
    # resume; run its last stage again rather than "succeed" without work.
    resume = min(resume, original.stage_count - 1)
    stages = [
        TaskStage(
            position=old.position,
            name=old.name,
            state=STAGE_SUCCEEDED,
            started_at=old.started_at,
            finished_at=old.finished_at,
            output=old.output,
            reused=True,
        )
        if old.position < resume
        else TaskStage(position=old.position, name=old.name, state=STAGE_PENDING)
        for old in original.stages
    ]
    new = Task(
        id=new_id,
        type=original.type,
        state=QUEUED,
        owner_id=original.owner_id,
        priority=original.priority,
        params=original.params,
        stage_names=original.stage_names,
        stage_index=resume,
        resume_index=resume,
        retry_of=original.id,
        retry_number=original.retry_number + 1,
        dispatch_seq=1,
        stages=stages,
    )
    # The event keeps English (it is stored); the message is in the asker's language.
    how = "from scratch" if resume == 0 else f"resuming at '{original.stage_names[resume]}'"
    if resume == 0:
        message = gettext("Retried as a new task, from scratch")
    else:
        message = gettext(
            "Retried as a new task, resuming at '%(stage)s'", stage=original.stage_names[resume]
        )
    db.session.add(new)
    db.session.add_all(
        [
            TaskEvent(
                task_id=original.id,
                actor=actor.username,
                action=EV_RETRIED,
                from_state=original.state,
                to_state=original.state,
                reason=f"retried as {new_id}",
            ),
            TaskEvent(
                task_id=new_id,
                actor=actor.username,
                action=EV_SUBMITTED,
                to_state=QUEUED,
                reason=f"retry of {original.id}, {how}",
            ),
        ]
    )
    priority = original.priority
    db.session.commit()
    queue.enqueue_stage(new_id, resume, 1, priority)
    return RetryOutcome(task_id, new_id, resume, message)


# --- cancelling and re-prioritising ----------------------------------------


def request_cancel(actor: User, task_id: str, reason: str | None = None) -> CancelOutcome:
    """Cancel a task `actor` may act on; raise InvalidRequest (400) for a finished one."""
    get_task(actor, task_id)
    return cancel(task_id, actor=actor.username, reason=reason)


def cancel(
    task_id: str, *, actor: str, reason: str | None, allow_running: bool = True
) -> CancelOutcome:
    """Cancel without a permission check (callers did it).

    Queued, or running with no stage executing: cancelled at once and its
    queued message revoked. Running a stage: `cancelling`, and the worker
    stops at its next check. With allow_running=False a running task is
    left alone and InvalidRequest is raised.
    """
    for _ in range(CANCEL_ATTEMPTS):
        at_once, requested = _cancel_moves(
            [task_id], actor=actor, reason=reason, allow_running=allow_running
        )
        if task_id in at_once:
            return _finish_cancel_at_once(task_id, at_once[task_id])
        if requested:
            db.session.commit()
            return CancelOutcome(
                task_id,
                RUNNING,
                CANCELLING,
                gettext("Cancellation requested; the worker stops at its next check"),
            )
        state = _current_state(task_id)
        if state == CANCELLING:
            db.session.rollback()
            return CancelOutcome(
                task_id, CANCELLING, CANCELLING, gettext("Cancellation was already requested")
            )
        if state in TERMINAL_STATES or (state == RUNNING and not allow_running):
            db.session.rollback()
            raise InvalidRequest(
                gettext("Task in state '%(state)s' cannot be cancelled", state=state)
            )
    db.session.rollback()
    raise InvalidRequest(gettext("Task changed state while being cancelled; try again"))


def _cancel_moves(
    task_ids: list[str], *, actor: str, reason: str | None, allow_running: bool
) -> tuple[dict[str, str], set[str]]:
    """The cancel transitions, shared by `cancel` and `cancel_set`. Caller commits.

    Queued -> cancelled; with allow_running, also running between stages ->
    cancelled and running in a stage -> cancelling. Each is one conditional
    UPDATE over the tasks the earlier ones did not move. Returns
    ({id: state before} for those cancelled at once, ids now cancelling).
    """
    now = utcnow()
    common = {
        "action": EV_CANCELLED,
        "actor": actor,
        "reason": reason,
        "values": {"finished_at": now, "cancel_requested_at": now},
    }
    at_once = dict.fromkeys(_transition_set(task_ids, QUEUED, CANCELLED, **common), QUEUED)
    rest = [i for i in task_ids if i not in at_once]
    if not (allow_running and rest):
        return at_once, set()
    between_stages = (Task.stage_running.is_(False),)
    moved = _transition_set(rest, RUNNING, CANCELLED, where=between_stages, **common)
    at_once.update(dict.fromkeys(moved, RUNNING))
    rest = [i for i in rest if i not in moved]
    if not rest:
        return at_once, set()
    requested = _transition_set(
        rest,
        RUNNING,
        CANCELLING,
        where=(Task.stage_running.is_(True),),
        values={"cancel_requested_at": now},
        action=EV_CANCEL_REQUESTED,
        actor=actor,
        reason=reason,
    )
    return at_once, requested


def _finish_cancel_at_once(task_id: str, previous: str) -> CancelOutcome:
    index, seq = db.session.execute(
        select(Task.stage_index, Task.dispatch_seq).where(Task.id == task_id)
    ).one()
    _skip_pending_stages(task_id)
    db.session.commit()
    queue.revoke_stage(task_id, index, seq)
    return CancelOutcome(task_id, previous, CANCELLED, gettext("Task cancelled"))


def cancel_set(
    task_ids: list[str], *, actor: str, reason: str | None, allow_running: bool
) -> tuple[int, int]:
    """`cancel` for many tasks (callers checked permission): (cancelled or cancelling, left alone).

    A few set-based statements per chunk of BULK_CHUNK tasks, each chunk its
    own short transaction. The few tasks those statements did not move go
    through the one-by-one `cancel`. Queue messages are not revoked: a worker
    drops a cancelled task's message after one read (start_stage), which is
    cheaper than thousands of revokes on the request's clock.
    """
    cancelled = left = 0
    for start in range(0, len(task_ids), BULK_CHUNK):
        chunk = task_ids[start : start + BULK_CHUNK]
        at_once, requested = _cancel_moves(
            chunk, actor=actor, reason=reason, allow_running=allow_running
        )
        if at_once:
            _skip_pending_stages(*at_once)
        db.session.commit()
        cancelled += len(at_once) + len(requested)
        # Left over: already cancelling, finished, running while allow_running
        # is off, or moved between the statements above. `cancel` tells which.
        for task_id in chunk:
            if task_id in at_once or task_id in requested:
                continue
            try:
                cancel(task_id, actor=actor, reason=reason, allow_running=allow_running)
            except InvalidRequest:
                left += 1
            else:
                cancelled += 1
    return cancelled, left


def set_priority(actor: User, task_id: str, priority) -> Task:
    """Change a queued task's priority and re-enqueue it under the same task id."""
    priority = check_priority(priority)
    task = get_task(actor, task_id)
    old = task.priority
    changed = _transition(
        task_id,
        QUEUED,
        QUEUED,
        values={"priority": priority, "dispatch_seq": Task.dispatch_seq + 1},
        action=EV_PRIORITY_CHANGED,
        actor=actor.username,
        reason=f"{old} → {priority}",
    )
    if not changed:
        state = _current_state(task_id)
        db.session.rollback()
        raise InvalidRequest(
            gettext(
                "Priority can only be changed while the task is queued (it is '%(state)s')",
                state=state,
            )
        )
    db.session.commit()
    task = db.session.get(Task, task_id)
    # The old message may already be on its way to a worker: its stale
    # dispatch_seq makes start_stage ignore it.
    queue.revoke_stage(task_id, task.stage_index, task.dispatch_seq - 1)
    queue.enqueue_stage(task_id, task.stage_index, task.dispatch_seq, priority)
    return task


# --- the worker's transitions ---------------------------------------------


def _lease(index: int, seq: int, running: bool) -> tuple:
    return (
        Task.stage_index == index,
        Task.dispatch_seq == seq,
        Task.stage_running.is_(running),
    )


def start_stage(task_id: str, index: int, seq: int, worker: str | None = None) -> StageRun | None:
    """Claim a stage for execution; None when the message is stale or the task is not runnable."""
    task = db.session.execute(_RUNNABLE, {"task_id": task_id}).one_or_none()
    if (
        task is None
        or task.state not in (QUEUED, RUNNING)
        or (task.stage_index, task.dispatch_seq, task.stage_running) != (index, seq, False)
        or index >= len(task.stage_names)
    ):
        # A stale message (cancelled, re-prioritised, taken over) costs one read, no write lock.
        db.session.rollback()
        return None
    name = task.stage_names[index]
    now = utcnow()
    values = {"stage_running": True, "stage_progress": 0.0, "progress_message": None}
    if task.state == QUEUED:
        values["started_at"] = now
    if not _transition(
        task_id,
        task.state,
        RUNNING,
        where=_lease(index, seq, running=False),
        values=values,
        action=EV_STAGE_STARTED,
        actor=ACTOR_WORKER,
        stage=name,
    ):
        db.session.rollback()  # moved since the read: a cancel or another worker won
        return None
    _set_stage(task_id, index, state=STAGE_RUNNING, started_at=now, worker=worker)
    outputs = {}
    if index:
        outputs = dict(
            db.session.execute(_OUTPUTS_BEFORE, {"task_id": task_id, "index": index}).all()
        )
    db.session.commit()
    # The task's priority and params cannot change while this lease holds.
    return StageRun(
        task_id=task_id,
        type=task.type,
        params=task.params,
        stage_index=index,
        stage_name=name,
        stage_count=len(task.stage_names),
        priority=task.priority,
        dispatch_seq=seq,
        retry_number=task.retry_number,
        outputs=outputs,
    )


def _worker_cancels(run: StageRun, now, reason: str) -> bool:
    """cancelling -> cancelled for the stage this worker holds; pending stages are skipped."""
    moved = _transition(
        run.task_id,
        CANCELLING,
        CANCELLED,
        where=_lease(run.stage_index, run.dispatch_seq, running=True),
        values={"stage_running": False, "finished_at": now},
        action=EV_CANCELLED,
        actor=ACTOR_WORKER,
        stage=run.stage_name,
        reason=reason,
    )
    if moved:
        _skip_pending_stages(run.task_id)
    return moved


def finish_stage(run: StageRun, output: dict) -> None:
    """Store the checkpoint, then succeed, move on (enqueueing the next stage) or cancel."""
    index, seq = run.stage_index, run.dispatch_seq
    lease = _lease(index, seq, running=True)
    now = utcnow()
    event = {"actor": ACTOR_WORKER, "stage": run.stage_name}
    last = index == run.stage_count - 1
    if last:
        moved = _transition(
            run.task_id,
            RUNNING,
            SUCCEEDED,
            where=lease,
            action=EV_STAGE_FINISHED,
            values={"stage_running": False, "stage_progress": 1.0, "finished_at": now},
            **event,
        )
    else:
        moved = _transition(
            run.task_id,
            RUNNING,
            RUNNING,
            where=lease,
            action=EV_STAGE_FINISHED,
            values={
                "stage_index": index + 1,
                "stage_running": False,
                "stage_progress": 0.0,
                "progress_message": None,
                "dispatch_seq": seq + 1,
            },
            **event,
        )
    enqueue_next = moved and not last
    if not moved:
        moved = _worker_cancels(run, now, "stopped after the stage finished")
    if not moved:
        db.session.rollback()
        return
    _set_stage(run.task_id, index, state=STAGE_SUCCEEDED, finished_at=now, output=output)
    db.session.commit()
    if enqueue_next:
        queue.enqueue_stage(run.task_id, index + 1, seq + 1, run.priority)


def fail_stage(run: StageRun, error_code: str, message: str) -> None:
    """Record a stage that raised: the task fails (retryable), or is cancelled if that was asked."""
    lease = _lease(run.stage_index, run.dispatch_seq, running=True)
    now = utcnow()
    event = {"actor": ACTOR_WORKER, "stage": run.stage_name}
    stage_state = STAGE_FAILED
    moved = _transition(
        run.task_id,
        RUNNING,
        FAILED,
        where=lease,
        action=EV_STAGE_FAILED,
        reason=message,
        values={
            "stage_running": False,
            "finished_at": now,
            "error_code": error_code,
            "error_message": message,
            "retryable": True,
        },
        **event,
    )
    if moved:
        _skip_pending_stages(run.task_id)
    else:
        stage_state = STAGE_CANCELLED
        moved = _worker_cancels(run, now, f"stage raised while cancelling: {message}")
    if not moved:
        db.session.rollback()
        return
    _set_stage(run.task_id, run.stage_index, state=stage_state, finished_at=now)
    db.session.commit()


def stop_cancelled_stage(run: StageRun) -> None:
    """The stage saw the cancel flag and stopped: the task is now cancelled."""
    now = utcnow()
    if not _worker_cancels(run, now, "stopped inside the stage"):
        db.session.rollback()
        return
    _set_stage(run.task_id, run.stage_index, state=STAGE_CANCELLED, finished_at=now)
    db.session.commit()


def report_progress(run: StageRun, fraction: float, message: str | None) -> None:
    """Progress of the running stage; not a transition, so no event."""
    db.session.execute(
        TASKS.update()
        .where(TASKS.c.id == run.task_id, *_lease(run.stage_index, run.dispatch_seq, running=True))
        .values(stage_progress=fraction, progress_message=message, heartbeat_at=utcnow())
    )
    db.session.commit()


def should_stop(run: StageRun) -> bool:
    """True when a cancel was asked, or the stage's lease was superseded."""
    row = db.session.execute(_STOP_CHECK, {"task_id": run.task_id}).one_or_none()
    db.session.commit()  # end the read transaction (PostgreSQL would keep it open)
    return row is None or row.state != RUNNING or row.dispatch_seq != run.dispatch_seq


def heartbeat(run: StageRun) -> bool:
    """The worker still runs this stage; False once its lease was taken over (or it ended)."""
    result = db.session.execute(
        TASKS.update()
        .where(TASKS.c.id == run.task_id, *_lease(run.stage_index, run.dispatch_seq, running=True))
        .values(heartbeat_at=utcnow())
    )
    db.session.commit()
    return result.rowcount == 1


# --- recovery: stages whose worker died or left, messages that got lost ----


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
    lease = _lease(held.stage_index, held.dispatch_seq, running=True)
    now = utcnow()
    event = {"actor": actor, "stage": held.stage_name, "reason": reason}
    ended = {"stage_running": False, "finished_at": now}
    lost = max_lost is not None
    if _transition(
        held.task_id, CANCELLING, CANCELLED, where=lease, values=ended, action=EV_CANCELLED, **event
    ):
        _skip_pending_stages(held.task_id)
        _set_stage(held.task_id, held.stage_index, state=STAGE_CANCELLED, finished_at=now)
        db.session.commit()
        return CANCELLED
    if lost and _transition(
        held.task_id,
        RUNNING,
        FAILED,
        where=(*lease, Task.lost_attempts >= max_lost - 1),
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
        _skip_pending_stages(held.task_id)
        _set_stage(held.task_id, held.stage_index, state=STAGE_FAILED, finished_at=now)
        db.session.commit()
        return FAILED
    if _transition(
        held.task_id,
        RUNNING,
        RUNNING,
        where=lease,
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
        _set_stage(held.task_id, held.stage_index, state=STAGE_PENDING, started_at=None)
        db.session.commit()
        queue.enqueue_stage(held.task_id, held.stage_index, held.dispatch_seq + 1, held.priority)
        return RUNNING
    db.session.rollback()
    return None


def redispatch(held: HeldStage, state: str) -> bool:
    """Send a waiting stage's lost message again; a fresh dispatch number fences the old one."""
    if not _transition(
        held.task_id,
        state,
        state,
        where=_lease(held.stage_index, held.dispatch_seq, running=False),
        values={"dispatch_seq": held.dispatch_seq + 1},
        action=EV_REDISPATCHED,
        actor=ACTOR_SYSTEM,
        stage=held.stage_name,
        reason="its queue message was missing",
    ):
        db.session.rollback()
        return False
    db.session.commit()
    queue.enqueue_stage(held.task_id, held.stage_index, held.dispatch_seq + 1, held.priority)
    return True
