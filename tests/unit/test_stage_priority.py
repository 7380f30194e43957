"""A stage's `priority_offset`: its messages wait behind other tasks' main stages."""

from pathlib import Path

import pytest

from app.extensions import db
from app.models import Task
from app.queue import huey_priority
from app.services import accounts, commands, dispatch, lease
from tasks.pipelines import Pipeline


def message_priorities(task_id: str) -> list[int]:
    pending = dispatch.stage_queue().huey.pending()
    return [m.priority for m in pending if m.args[0] == task_id]


def advance(task_id: str) -> None:
    """A worker runs the task's current stage to its end (the next one is queued)."""
    t = db.session.get(Task, task_id, populate_existing=True)
    lease.finish_stage(lease.start_stage(t.id, t.stage_index, t.dispatch_seq), {})


@pytest.mark.parametrize(("priority", "expected"), [(6, 9), (10, 11)])
def test_thumbnails_run_three_priorities_lower_capped_at_the_lowest(app, priority, expected):
    Path(app.config["FILES_ROOT"], "photos").mkdir()
    with app.app_context():
        alice = accounts.find_user("alice")
        task = commands.submit(alice, "media_index", {"folder": "photos"}, priority, actor="alice")
        assert message_priorities(task.id) == [huey_priority(priority, started=False)]
        dispatch.stage_queue().huey.flush()  # (the test plays the worker: it takes none)
        advance(task.id)  # scan
        dispatch.stage_queue().huey.flush()
        advance(task.id)  # preprocess: now thumbnails (offset 3) waits in the queue
        assert message_priorities(task.id) == [huey_priority(expected, started=True)]
        dispatch.stage_queue().huey.flush()
        advance(task.id)  # thumbnails: index has no offset
        assert message_priorities(task.id) == [huey_priority(priority, started=True)]


def test_the_offset_is_checked_where_the_stage_is_declared():
    demo = Pipeline("offsets")
    for bad in (-1, 12, 1.5, True):
        with pytest.raises(ValueError, match="priority_offset"):
            demo.stage("s", priority_offset=bad)(lambda ctx, params: {})
