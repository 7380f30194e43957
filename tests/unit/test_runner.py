"""The stage runner on a real app, called as the queue calls it (no consumer)."""

import threading
import time

from sqlalchemy import update

from app.extensions import db
from app.models import Task
from app.services import lease
from tasks.channels import local_context
from tasks.runner import StageRunner
from tests.conftest import wait_for
from tests.drive import events, submit, task


def test_a_stage_the_pipeline_no_longer_has_fails_the_task_instead_of_holding_it(app, users):
    with app.app_context():
        task_id = submit(users("alice")).id
        # As if the pipeline's code had renamed its stages since this task was submitted.
        db.session.execute(
            update(Task).where(Task.id == task_id).values(stage_names=["gone", "step 2", "step 3"])
        )
        db.session.commit()
    StageRunner(app)(task_id, 0, 1)
    with app.app_context():
        failed = task(task_id)
        assert (failed.state, failed.error_code, failed.stage_running) == (
            "failed",
            "unknown_pipeline",
            False,
        )
        assert failed.error_message == "Pipeline 'demo' has no stage 'gone' any more"


def test_a_stage_claimed_while_the_worker_hands_back_goes_straight_back(app, users):
    with app.app_context():
        task_id = submit(users("alice")).id
    runner = StageRunner(app)
    assert runner.hand_back(deadline=0) is True  # nothing running: done at once
    runner(task_id, 0, 1)
    with app.app_context():
        back = task(task_id)
        assert (back.state, back.stage_running, back.dispatch_seq) == ("running", False, 2)
        assert events(task_id)[-1] == ("stage_requeued", "running", "running")


def test_hand_back_waits_for_a_stage_that_is_still_running(app, users):
    with app.app_context():
        task_id = submit(users("alice"), stages=1, seconds=30).id
    runner = StageRunner(app)
    worker = threading.Thread(target=runner, args=(task_id, 0, 1))
    worker.start()
    with app.app_context():
        wait_for(lambda: task(task_id).stage_running)
    assert runner.hand_back(deadline=time.monotonic() + 10) is True
    worker.join(10)
    with app.app_context():
        assert events(task_id)[-1] == ("stage_requeued", "running", "running")
        assert task(task_id).stages[0].state == "pending"


def test_what_a_run_staged_and_never_recorded_is_discarded_with_the_run(app, users):
    """A file a stage began to stage (it raised, or its child was killed) does not
    stay behind in the task's folder."""
    with app.app_context():
        run = lease.start_stage(submit(users("alice")).id, 0, 1)
        _, channel = local_context(run)
        folder = channel.staging_dir()
        (folder / "half-written").write_bytes(b"\x00" * 10)
        channel.discard_staged()
        assert not folder.exists()
