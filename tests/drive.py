"""Driving tasks by hand, without a consumer: submit, run the due stage, read state and queue.

Call these inside an app context (the `ctx` fixture pushes one).
"""

from contextlib import contextmanager

from sqlalchemy import event, select

from app.extensions import db
from app.models import Task, TaskEvent
from app.services import commands, dispatch, lease


def submit(owner, **params):
    """A `demo` task of 3 instant stages unless params say otherwise."""
    priority = params.pop("priority", 6)
    return commands.submit(
        owner, "demo", {"stages": 3, "seconds": 0, **params}, priority, actor=owner.username
    )


def task(task_id) -> Task:
    return db.session.get(Task, task_id, populate_existing=True)


def events(task_id):
    rows = db.session.scalars(
        select(TaskEvent).where(TaskEvent.task_id == task_id).order_by(TaskEvent.id)
    )
    return [(e.action, e.from_state, e.to_state) for e in rows]


def run_stage_by_hand(task_id, fail=False):
    """Do what the worker does for the stage that is due: start it, then finish or fail it."""
    t = task(task_id)
    run = lease.start_stage(task_id, t.stage_index, t.dispatch_seq)
    assert run is not None
    if fail:
        lease.fail_stage(run, "stage_error", "boom")
    else:
        lease.finish_stage(run, {"done": run.stage_name})
    return run


def huey():
    """The current app's Huey instance, to look at the messages services sent."""
    return dispatch.stage_queue().huey


def messages():
    """Queued Huey messages as (id, args, huey priority), in the order a worker takes them."""
    return [(m.id, m.args, m.priority) for m in huey().pending()]


def live_messages():
    """Queued messages a worker would run: their task's row still names their stage and dispatch.

    The others stay queued until a worker takes and drops them (app/queue.py).
    """
    runnable = select(Task.id, Task.stage_index, Task.dispatch_seq).where(
        Task.state.in_(("queued", "running")), Task.stage_running.is_(False)
    )
    due = {(row.id, row.stage_index, row.dispatch_seq) for row in db.session.execute(runnable)}
    return [m for m in messages() if tuple(m[1]) in due]


@contextmanager
def statements_sent():
    """The (SQL, parameters) the engine sends while the block runs.

    The worker's transitions (app/services/direct_sql.py) bypass the engine's
    events: they are logged on `taskdeck.sql` instead.
    """
    sent = []

    def note(_conn, _cursor, statement, parameters, *_args):
        sent.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", note)
    try:
        yield sent
    finally:
        event.remove(db.engine, "before_cursor_execute", note)
