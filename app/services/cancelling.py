"""Cancelling: one task or a set, queued (never starts) or running (stops at its next check).

A queued task, or a running one whose next stage only waits in the queue,
is cancelled at once; one whose stage is executing becomes `cancelling` and
the worker finishes the move. The three moves are in app/services/states.py.
"""

from dataclasses import dataclass

from flask_babel import gettext

from app.constants import CANCELLED, CANCELLING, EV_CANCEL_REQUESTED, EV_CANCELLED, QUEUED, RUNNING
from app.extensions import db
from app.models import Task, User, utcnow
from app.services import states
from app.services.errors import InvalidRequest
from app.services.queries import get_task
from app.services.transitions import current_state, move_set, skip_pending_stages

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


def request_cancel(actor: User, task_id: str, reason: str | None = None) -> CancelOutcome:
    """Cancel a task `actor` may act on; raise InvalidRequest (400) for a finished one."""
    get_task(actor, task_id)
    return cancel(task_id, actor=actor.username, reason=reason)


def cancel(
    task_id: str, *, actor: str, reason: str | None, allow_running: bool = True
) -> CancelOutcome:
    """Cancel without a permission check (callers did it).

    Queued, or running with no stage executing: cancelled at once (its
    queued message is dropped by the worker that takes it, after one read).
    Running a stage: `cancelling`, and the worker
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
        state = current_state(task_id)
        if state == CANCELLING:
            db.session.rollback()
            return CancelOutcome(
                task_id, CANCELLING, CANCELLING, gettext("Cancellation was already requested")
            )
        if state not in states.CANCELLABLE_STATES or (state == RUNNING and not allow_running):
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
    at_once = dict.fromkeys(move_set(task_ids, QUEUED, CANCELLED, **common), QUEUED)
    rest = [i for i in task_ids if i not in at_once]
    if not (allow_running and rest):
        return at_once, set()
    between_stages = (Task.stage_running.is_(False),)
    moved = move_set(rest, RUNNING, CANCELLED, where=between_stages, **common)
    at_once.update(dict.fromkeys(moved, RUNNING))
    rest = [i for i in rest if i not in moved]
    if not rest:
        return at_once, set()
    requested = move_set(
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
    """The waiting message stays queued: a worker drops it after one read (app/queue.py)."""
    skip_pending_stages(task_id)
    db.session.commit()
    return CancelOutcome(task_id, previous, CANCELLED, gettext("Task cancelled"))


def cancel_set(
    task_ids: list[str], *, actor: str, reason: str | None, allow_running: bool
) -> tuple[int, int]:
    """`cancel` for many tasks (callers checked permission): (cancelled or cancelling, left alone).

    A few set-based statements per chunk of BULK_CHUNK tasks, each chunk its
    own short transaction. The few tasks those statements did not move go
    through the one-by-one `cancel`. As for one task, the queue messages
    stay: a worker drops a cancelled task's message after one read.
    """
    cancelled = left = 0
    for start in range(0, len(task_ids), BULK_CHUNK):
        chunk = task_ids[start : start + BULK_CHUNK]
        at_once, requested = _cancel_moves(
            chunk, actor=actor, reason=reason, allow_running=allow_running
        )
        if at_once:
            skip_pending_stages(*at_once)
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
