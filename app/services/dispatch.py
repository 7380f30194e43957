"""Queue messages leave after the commit that made them true, and only then: the one seam.

Services call `enqueue_stage` while their transaction is open; the
messages wait in the session's outbox and go to the app's queue
(app/queue.py) when the transaction commits, or are dropped when it rolls
back. So a worker never receives a message for a row it cannot see yet.

A queue that cannot be reached does not undo the commit: the task stays
recorded as waiting, and the reaper sends its message again once the
queue answers (README, "Crash safety").
"""

import logging

from flask import current_app
from sqlalchemy import event
from sqlalchemy.orm import Session

from app.constants import PRIORITY_MAX
from app.extensions import db
from app.models import Task
from app.queue import StageQueue
from app.services import catalog

log = logging.getLogger("taskdeck.dispatch")

EXTENSION = "taskdeck.queue"
_OUTBOX = "taskdeck.outbox"


def init_app(app, queue: StageQueue) -> None:
    app.extensions[EXTENSION] = queue


def stage_queue() -> StageQueue:
    """The current app's queue."""
    return current_app.extensions[EXTENSION]


def enqueue_stage(
    task_id: str,
    stage_index: int,
    dispatch_seq: int,
    priority: int,
    *,
    started: bool = False,
    delay: float | None = None,
    offset: int | None = None,
    outbox: list | None = None,
) -> None:
    """Queue a stage after the commit; `started` tasks go first within their priority.

    The stage's own `priority_offset` is added here, for every caller (capped at
    the lowest); a caller that holds the stage passes it as `offset`, sparing a lookup.
    `outbox` is that of a transaction made outside the Session
    (app/services/direct_sql.py), whose callers pass `offset` too.
    """
    if offset is None:
        offset = _offset(task_id, stage_index)
    priority = min(priority + offset, PRIORITY_MAX)
    args = (task_id, stage_index, dispatch_seq, priority, started, delay)
    (_outbox() if outbox is None else outbox).append((stage_queue().enqueue_stage, args))


def _offset(task_id: str, stage_index: int) -> int:
    """The stage's `priority_offset`, found by the name the task was submitted with."""
    task = db.session.get(Task, task_id)
    if task is None or stage_index >= len(task.stage_names):
        return 0
    return stage_offset(task.type, task.params, task.stage_names[stage_index])


def stage_offset(task_type: str, params: dict, stage_name: str) -> int:
    """The `priority_offset` of a task's stage, by name.

    0 when it cannot be known (the pipeline is gone, or its plan fails now):
    a message must go out whatever, so this never raises.
    """
    pipeline = catalog.get_pipeline(task_type)
    if pipeline is None:
        return 0
    try:
        stage = pipeline.stage_named(params, stage_name)
    except Exception:  # a plan or a params check that fails today: the message still goes
        log.warning("no priority offset for stage %r of %s", stage_name, task_type, exc_info=True)
        return 0
    return stage.priority_offset if stage else 0


def _outbox() -> list:
    """This transaction's messages; a transaction is begun if none is open yet.

    Without one, a rollback would end nothing and the messages would go out
    with the next, unrelated commit.
    """
    session = db.session()  # the session itself, not its thread-local proxy
    if not session.in_transaction():
        session.begin()
    return session.info.setdefault(_OUTBOX, [])


@event.listens_for(Session, "after_commit")
def _send(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint was released; the transaction around it may still roll back
    send(session.info.pop(_OUTBOX, None) or ())


def send(outbox) -> None:
    """Send the messages of a transaction that has committed."""
    for message, args in outbox:
        try:
            message(*args)
        except Exception as exc:  # the queue is down: the database already holds the truth
            log.warning("queue unreachable (%s); the reaper will send %s again", exc, args[:3])


@event.listens_for(Session, "after_transaction_end")
def _drop(session: Session, transaction) -> None:
    """The outermost transaction ended without sending (rolled back or closed): drop them."""
    if transaction.parent is None:
        session.info.pop(_OUTBOX, None)
