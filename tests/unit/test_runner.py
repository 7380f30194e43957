"""The stage runner on a real app, called as the queue calls it (no consumer)."""

import threading
import time

from sqlalchemy import update

from app.extensions import db
from app.models import Task
from app.services import dispatch, lease
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


def _runner_pulling(app, stop: threading.Event) -> tuple[StageRunner, object]:
    """A runner bound to the app's queue as a worker binds it, and that queue's Huey."""
    runner = StageRunner(app)
    with app.app_context():
        queue = dispatch.stage_queue()
    queue.runner = runner
    runner.pull_from(queue.huey, stop)
    return runner, queue.huey


def test_a_worker_thread_runs_the_messages_at_hand_and_each_finish_rides_with_a_claim(app, users):
    """After a stage ends well the thread takes the next message itself (the finish is
    written with that message's claim); a finish goes in alone once the queue is empty."""
    with app.app_context():
        ids = [submit(users("alice")).id for _ in range(3)]
    runner, huey = _runner_pulling(app, threading.Event())
    handed = 0
    while (message := huey.dequeue()) is not None:  # Huey's worker loop, in this thread
        huey.execute(message)
        handed += 1
    # Nine stages; the loop handed over only those that were not at hand when a stage
    # ended (the next stage of a task is queued when its finish commits).
    assert handed < 9
    with app.app_context():
        for task_id in ids:
            done = task(task_id)
            assert (done.state, done.stage_running) == ("succeeded", False)
            assert [s.output["stage"] for s in done.stages] == [1, 2, 3]
            stages = [e for e in events(task_id) if e[0].startswith("stage_")]
            assert stages == [
                ("stage_started", "queued", "running"),
                *[("stage_finished", "running", "running"), ("stage_started", "running", "running")]
                * 2,
                ("stage_finished", "running", "succeeded"),
            ]


def test_a_stopping_worker_takes_no_message_of_its_own(app, users):
    """Once the consumer stops, a thread records its stage at once and goes back to Huey."""
    with app.app_context():
        first, second = submit(users("alice"), stages=1).id, submit(users("alice"), stages=1).id
    stop = threading.Event()
    runner, huey = _runner_pulling(app, stop)
    stop.set()
    huey.execute(huey.dequeue())
    with app.app_context():
        assert task(first).state == "succeeded"
        assert task(second).state == "queued"
    assert len(huey.pending()) == 1
