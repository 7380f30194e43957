"""What users ask of one task besides cancelling: submit, retry, re-prioritise.

Each command is one or a few conditional transitions (app/services/
transitions.py); queue messages follow the commit (dispatch.py).
"""

from dataclasses import dataclass

from flask_babel import gettext
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import insert, select, update
from sqlalchemy.orm import make_transient_to_detached

from app.constants import (
    EV_PRIORITY_CHANGED,
    EV_RETRIED,
    EV_SUBMITTED,
    QUEUED,
    STAGE_PENDING,
    STAGE_SUCCEEDED,
)
from app.extensions import db
from app.models import Task, TaskStage, User, new_task_id
from app.schemas.inputs import Priority
from app.services import artifacts, catalog, dispatch, items, states
from app.services import uploads as uploaded
from app.services.catalog import get_pipeline
from app.services.errors import InvalidRequest, ParamsError, Unprocessable
from app.services.queries import get_task
from app.services.transitions import (
    STAGES,
    TASKS,
    current_state,
    move,
    record,
)

_PRIORITY = TypeAdapter(Priority)
_INSERT_TASK = insert(TASKS).returning(*TASKS.c)


@dataclass(frozen=True)
class RetryOutcome:
    task_id: str
    new_task_id: str
    resume_index: int
    message: str


def check_priority(value) -> int:
    """Return a valid priority (the input rule, app/schemas/inputs.Priority) or raise a 400."""
    try:
        return _PRIORITY.validate_python(value)
    except ValidationError as exc:
        detail = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise InvalidRequest(detail, fields={"priority": detail}) from exc


# --- submitting and retrying -----------------------------------------------


def submit(
    owner: User,
    task_type: str,
    params,
    priority: int,
    *,
    actor: str,
    uploads: dict[str, uploaded.Upload] | None = None,
) -> Task:
    """Validate, store and enqueue a new task; raise Unprocessable (422) on bad type/params.

    `uploads` are files sent for UploadParam params (by name); they are
    written only once everything else is accepted, and removed again if
    the task cannot be stored.
    """
    pipeline = get_pipeline(task_type)
    if pipeline is None:
        raise Unprocessable(gettext("Unknown task type '%(type)s'", type=task_type))
    task_id, uploads = new_task_id(), uploads or {}
    sent = uploaded.named(pipeline, task_id, uploads)
    if sent and isinstance(params, dict | None):
        params = {**(params or {}), **sent}
    try:
        params = catalog.validate_params(pipeline, params, uploads=set(sent.values()))
    except ParamsError as exc:
        raise Unprocessable(
            gettext("Invalid params: %(errors)s", errors=exc), fields=exc.by_field
        ) from exc
    priority = check_priority(priority)
    stages = pipeline.stages_for(params)
    folder = uploaded.store(task_id, uploads, sent) if uploads else None
    try:
        row = _insert(task_id, task_type, owner.id, priority, params, [s.name for s in stages])
        record(task_id, EV_SUBMITTED, None, QUEUED, actor=actor)
        offset = stages[0].priority_offset if stages else 0
        dispatch.enqueue_stage(task_id, 0, 1, priority, offset=offset)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        uploaded.discard(folder)
        raise
    return _as_loaded(row, owner)


def _as_loaded(row, owner: User) -> Task:
    """The new task as the Session would load it, from the row its INSERT returned.

    Read back after the commit, it cost a third of a submit (bench/overhead.py).
    It is the task as submitted: a worker may have started it since.
    """
    task = Task(**row._mapping, owner=owner)
    make_transient_to_detached(task)  # as if loaded: clean, relationships still load
    db.session.add(task)
    return task


def _insert(task_id: str, task_type: str, owner_id: int, priority: int, params, names):
    """A new task's row and its stages' rows, as two INSERTs (the ORM's flush cost more).

    Returns the task's row as stored, defaults included.
    """
    connection = db.session.connection()
    row = connection.execute(
        _INSERT_TASK,
        {
            "id": task_id,
            "type": task_type,
            "state": QUEUED,
            "owner_id": owner_id,
            "priority": priority,
            "params": params,
            "stage_names": names,
            "dispatch_seq": 1,
        },
    ).one()
    connection.execute(
        insert(STAGES),
        [
            {"task_id": task_id, "position": i, "name": name, "state": STAGE_PENDING}
            for i, name in enumerate(names)
        ],
    )
    return row


def retry(actor: User, task_id: str, from_scratch: bool = False) -> RetryOutcome:
    """A new task from a failed, cancelled or partly succeeded one, resuming where it stopped.

    Raises NotFound/Forbidden, or InvalidRequest when the task is not retryable
    or was retried already (two racing retries make exactly one task).
    """
    get_task(actor, task_id)
    new_id = new_task_id()
    claimed = db.session.execute(
        update(Task)
        .where(
            Task.id == task_id,
            Task.state.in_(states.RETRYABLE_STATES),
            Task.retried_by.is_(None),
        )
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
                "Task in state '%(state)s' cannot be retried; only failed, cancelled or partly "
                "succeeded tasks can",
                state=original.state,
            )
        )
    resume = 0
    if not from_scratch:
        for stage in original.stages:
            # A stage whose items partly failed is resumed: only those items run again.
            if stage.state != STAGE_SUCCEEDED or stage.items_failed:
                break
            resume += 1
    # A task cancelled just as its last stage finished has nothing left to
    # resume; run its last stage again rather than "succeed" without work.
    resume = min(resume, original.stage_count - 1)
    stages = [_carried(old, resume, from_scratch) for old in original.stages]
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
    # A first stage with done items or saved state resumes mid-way: not "from scratch".
    fresh = from_scratch or (resume == 0 and not (stages[0].items_done or stages[0].saved))
    how = "from scratch" if fresh else f"resuming at '{original.stage_names[resume]}'"
    if fresh:
        message = gettext("Retried as a new task, from scratch")
    else:
        message = gettext(
            "Retried as a new task, resuming at '%(stage)s'", stage=original.stage_names[resume]
        )
    db.session.add(new)
    db.session.flush()  # the new task's rows first: its event, items and artifacts refer to it
    who = actor.username
    record(
        original.id,
        EV_RETRIED,
        original.state,
        original.state,
        actor=who,
        reason=f"retried as {new_id}",
    )
    record(new_id, EV_SUBMITTED, None, QUEUED, actor=who, reason=f"retry of {original.id}, {how}")
    if not from_scratch:
        items.carry_over(original.id, new_id, resume)
        artifacts.carry_over(original.id, new_id, original.stage_names[: resume + 1])
    dispatch.enqueue_stage(new_id, resume, 1, original.priority)
    db.session.commit()
    return RetryOutcome(task_id, new_id, resume, message)


def _carried(old: TaskStage, resume: int, from_scratch: bool) -> TaskStage:
    """The retry's row for one of the original's stages: reused, resumed mid-way, or fresh."""
    if old.position < resume:
        return TaskStage(
            position=old.position,
            name=old.name,
            state=STAGE_SUCCEEDED,
            started_at=old.started_at,
            finished_at=old.finished_at,
            output=old.output,
            items_total=old.items_total,
            items_done=old.items_done,
            reused=True,
        )
    fresh = TaskStage(position=old.position, name=old.name, state=STAGE_PENDING)
    if old.position == resume and not from_scratch:
        fresh.saved, fresh.items_total, fresh.items_done = (
            old.saved,
            old.items_total,
            old.items_done,
        )
    return fresh


# --- re-prioritising ----------------------------------------------------------


def priority_message(priority: int) -> str:
    """The one-line outcome of a priority change, for the API and the pages alike."""
    return gettext("Priority set to %(p)d", p=priority)


def set_priority(actor: User, task_id: str, priority) -> Task:
    """Change a queued task's priority and re-enqueue it under the same task id."""
    priority = check_priority(priority)
    task = get_task(actor, task_id)
    old = task.priority
    changed = move(
        task_id,
        QUEUED,
        QUEUED,
        values={"priority": priority, "dispatch_seq": Task.dispatch_seq + 1},
        action=EV_PRIORITY_CHANGED,
        actor=actor.username,
        reason=f"{old} → {priority}",
    )
    if not changed:
        state = current_state(task_id)
        db.session.rollback()
        raise InvalidRequest(
            gettext(
                "Priority can only be changed while the task is queued (it is '%(state)s')",
                state=state,
            )
        )
    index, seq = db.session.execute(
        select(Task.stage_index, Task.dispatch_seq).where(Task.id == task_id)
    ).one()
    # The old message stays queued: its stale dispatch_seq makes start_stage drop it.
    dispatch.enqueue_stage(task_id, index, seq, priority)
    db.session.commit()
    return db.session.get(Task, task_id)
