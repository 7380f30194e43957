"""The stage runner on a real app, called as the queue calls it (no consumer)."""

import threading
import time

import pytest
from sqlalchemy import select, update

from app.extensions import db
from app.models import Task, TaskEvent
from app.services import dispatch, lease
from tasks.channels import local_context
from tasks.runner import StageRunner
from tasks.worker import threads_pull
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
        if not threads_pull(queue.huey):
            pytest.skip("worker threads take messages themselves only with SQLite at both ends")
    queue.runner = runner
    runner.pull_from(queue.huey, stop)
    return runner, queue.huey


def test_a_worker_thread_runs_the_messages_at_hand_and_each_finish_rides_with_a_claim(app, users):
    """After a task's last stage ends well the thread takes the next message itself (the
    finish is written with that message's claim); the last finish goes in once the queue
    is empty."""
    with app.app_context():
        ids = [submit(users("alice"), stages=1).id for _ in range(3)]
    runner, huey = _runner_pulling(app, threading.Event())
    huey.execute(huey.dequeue())  # as Huey's worker loop would: one message
    assert huey.pending() == []  # the thread ran the other two itself
    assert runner.heartbeats._runs == {}  # each beaten for until its finish was written
    with app.app_context():
        for task_id in ids:
            done = task(task_id)
            assert (done.state, done.stage_running) == ("succeeded", False)
            assert done.stages[0].output["stage"] == 1
            assert [e for e in events(task_id) if e[0].startswith("stage_")] == [
                ("stage_started", "queued", "running"),
                ("stage_finished", "running", "succeeded"),
            ]


def test_a_finish_that_queues_the_next_stage_is_written_at_once(app, users):
    """A started task's next stage goes ahead of new tasks of its priority: the finish of
    a stage that is not the last is not held for the next claim, which would have taken a
    newcomer first."""
    with app.app_context():
        started = submit(users("alice"), stages=2).id
        newcomer = submit(users("alice"), stages=1).id
    runner, huey = _runner_pulling(app, threading.Event())
    while (message := huey.dequeue()) is not None:  # Huey's worker loop, in this thread
        huey.execute(message)
    with app.app_context():
        starts = db.session.execute(
            select(TaskEvent.task_id, TaskEvent.stage)
            .where(TaskEvent.action == "stage_started")
            .order_by(TaskEvent.id)
        ).all()
    assert [tuple(row) for row in starts] == [
        (started, "step 1"),
        (started, "step 2"),
        (newcomer, "step 1"),
    ]


def test_while_a_thread_drains_huey_loop_in_another_waits_at_the_gate(app, users):
    """Huey's own dequeue waits while another thread of the worker drains alone; the
    drainer's dequeue does not."""
    with app.app_context():
        first, second = submit(users("alice"), stages=1).id, submit(users("alice"), stages=1).id
    runner, huey = _runner_pulling(app, threading.Event())
    turn = runner._turn
    turn.PATIENCE = 60
    assert turn.take()  # this thread drains
    taken = []
    waited = threading.Thread(target=lambda: taken.append(huey.dequeue()), daemon=True)
    waited.start()
    waited.join(0.2)
    assert waited.is_alive() and taken == []
    mine = huey.dequeue_now()
    turn.leave()
    waited.join(10)
    assert {mine.args[0], taken[0].args[0]} == {first, second}


def test_a_thread_whose_turn_it_is_not_writes_its_finish_and_takes_nothing(app, users):
    """While another thread drains alone, a thread whose last stage ended well writes
    that finish at once and leaves the next message to the queue."""
    with app.app_context():
        first, second = submit(users("alice"), stages=1).id, submit(users("alice"), stages=1).id
    runner, huey = _runner_pulling(app, threading.Event())
    runner._turn.PATIENCE = 60
    other = threading.Thread(target=runner._turn.take)  # the drainer, still draining
    other.start()
    other.join()
    huey.execute(huey.dequeue_now())
    with app.app_context():
        assert (task(first).state, task(second).state) == ("succeeded", "queued")
    assert [message.args[0] for message in huey.pending()] == [second]


def test_after_a_long_stage_no_thread_drains_alone(app, users):
    """A stage that ran SHORT or longer: the thread pulling the next message does not
    keep Huey's loop in another thread waiting at the gate."""
    with app.app_context():
        ids = [submit(users("alice"), stages=1, seconds=s).id for s in (0, 3, 0)]
    runner, huey = _runner_pulling(app, threading.Event())
    runner._turn.PATIENCE = 60
    runner._turn.SHORT = 0  # every stage is long
    pulling = threading.Thread(target=lambda: huey.execute(huey.dequeue_now()), daemon=True)
    pulling.start()  # runs the first task, then pulls the second, which sleeps
    with app.app_context():
        wait_for(lambda: task(ids[1]).stage_running)
    taken = []
    gated = threading.Thread(target=lambda: taken.append(huey.dequeue()), daemon=True)
    gated.start()
    gated.join(10)
    assert pulling.is_alive()  # the second task's stage still sleeps
    assert [message.args[0] for message in taken] == [ids[2]]
    pulling.join(30)


def test_a_stopping_worker_takes_no_message_at_the_gate(app, users):
    with app.app_context():
        submit(users("alice"), stages=1)
    stop = threading.Event()
    _, huey = _runner_pulling(app, stop)
    stop.set()
    assert huey.dequeue() is None and len(huey.pending()) == 1


@pytest.mark.parametrize("how", ["consumer stops", "stages handed back"])
def test_a_stopping_worker_takes_no_message_of_its_own(app, users, how):
    """Once the consumer stops, a thread records its stage at once and goes back to Huey."""
    with app.app_context():
        first, second = submit(users("alice"), stages=1).id, submit(users("alice"), stages=1).id
    stop = threading.Event()
    runner, huey = _runner_pulling(app, stop)
    if how == "consumer stops":
        stop.set()
    else:  # after the grace period; the stage claimed then is given back at once
        runner.handing_back.set()
    huey.execute(huey.dequeue_now())  # a message the thread had taken as the worker stopped
    with app.app_context():
        if how == "consumer stops":
            assert task(first).state == "succeeded"
        else:
            assert events(first)[-1] == ("stage_requeued", "running", "running")
        assert task(second).state == "queued"
    # The second task's message is still there for another worker (and the first's again
    # when it was handed back).
    assert len(huey.pending()) == (1 if how == "consumer stops" else 2)
