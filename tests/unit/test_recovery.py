"""The reaper and hand-back: lost stage executions and lost messages, driven by hand.

Heartbeats are backdated instead of waiting; queue messages are read from Huey.
"""

from datetime import timedelta

import pytest
from sqlalchemy import update

from app.constants import CANCELLED, CANCELLING, FAILED, QUEUED, RUNNING
from app.extensions import db
from app.models import Task, utcnow
from app.queue import message_id
from app.services import cancelling, commands, dispatch, lease, recovery
from tests.drive import (
    events,
    huey,
    live_messages,
    run_stage_by_hand,
    statements_sent,
    submit,
    task,
)

TIMEOUT = 60


@pytest.fixture
def alice(app, users):
    with app.app_context():
        yield users("alice")


def go_silent(task_id, seconds=TIMEOUT + 5):
    """The worker holding the task stopped heart-beating `seconds` ago."""
    db.session.execute(
        update(Task)
        .where(Task.id == task_id)
        .values(heartbeat_at=utcnow() - timedelta(seconds=seconds))
    )
    db.session.commit()


def live_ids():
    return {message[0] for message in live_messages()}


def start(task_id):
    t = task(task_id)
    return lease.start_stage(task_id, t.stage_index, t.dispatch_seq)


def test_a_silent_stage_is_requeued_from_its_checkpoint_and_the_zombie_is_fenced(alice):
    t = submit(alice)
    run_stage_by_hand(t.id)  # stage 1 done: its checkpoint must not run again
    zombie = start(t.id)
    lease.report_progress(zombie, 0.5, "half")
    go_silent(t.id)

    assert recovery.reap(TIMEOUT, 3) == {
        "requeued": 1,
        "failed": 0,
        "cancelled": 0,
        "redispatched": 0,
    }
    now = task(t.id)
    assert (now.state, now.stage_index, now.stage_running) == (RUNNING, 1, False)
    assert (now.dispatch_seq, now.lost_attempts) == (zombie.dispatch_seq + 1, 1)
    assert [s.state for s in now.stages] == ["succeeded", "pending", "pending"]
    assert message_id(t.id, 1, zombie.dispatch_seq + 1) in live_ids()
    assert events(t.id)[-1] == ("stage_requeued", RUNNING, RUNNING)

    # The old worker wakes up: it cannot write anything, and it is told to stop.
    assert lease.heartbeat(zombie) is False
    before = task(t.id)
    assert lease.report_progress(zombie, 0.9, "late") is False
    after = task(t.id)
    assert (after.stage_progress, after.progress_message) == (0.0, None)
    assert after.heartbeat_at == before.heartbeat_at
    lease.finish_stage(zombie, {"late": True})
    assert lease.should_stop(zombie) is True
    assert task(t.id).stages[1].output is None and task(t.id).stage_index == 1

    run_stage_by_hand(t.id)
    run_stage_by_hand(t.id)
    assert task(t.id).state == "succeeded"
    finished = [e for e in events(t.id) if e[0] == "stage_finished"]
    assert len(finished) == 3  # each stage finished exactly once


def test_a_fresh_heartbeat_is_left_alone(alice):
    t = submit(alice)
    run = start(t.id)
    go_silent(t.id, seconds=TIMEOUT - 10)
    assert recovery.reap(TIMEOUT, 3)["requeued"] == 0
    assert lease.heartbeat(run) is True and task(t.id).stage_running is True


def test_after_max_lost_attempts_the_task_fails_retryable(alice):
    t = submit(alice)
    for attempt in range(1, 4):
        start(t.id)
        go_silent(t.id)
        done = recovery.reap(TIMEOUT, 3)
        assert task(t.id).lost_attempts == attempt
    assert done["failed"] == 1
    failed = task(t.id)
    assert (failed.state, failed.error_code, failed.retryable) == (FAILED, "worker_lost", True)
    assert "lost 3 time(s)" in failed.error_message
    assert [s.state for s in failed.stages] == ["failed", "skipped", "skipped"]
    assert events(t.id)[-1] == ("worker_lost", RUNNING, FAILED)
    retried = commands.retry(alice, t.id)
    assert task(retried.new_task_id).state == QUEUED


def test_a_cancelling_task_whose_worker_died_is_cancelled(alice):
    t = submit(alice)
    start(t.id)
    assert cancelling.request_cancel(alice, t.id).state == CANCELLING
    go_silent(t.id)
    assert recovery.reap(TIMEOUT, 3)["cancelled"] == 1
    assert task(t.id).state == CANCELLED
    assert [s.state for s in task(t.id).stages] == ["cancelled", "skipped", "skipped"]


def test_a_lost_message_is_sent_again_but_a_long_queue_is_not_touched(alice):
    lost, waiting = submit(alice), submit(alice)
    huey().storage.flush_queue()  # as if both enqueues never happened...
    dispatch.stage_queue().enqueue_stage(
        waiting.id, 0, 1, 6
    )  # ...but this one is just waiting in a long queue
    go_silent(lost.id)
    go_silent(waiting.id)
    assert recovery.reap(TIMEOUT, 3)["redispatched"] == 1
    assert task(lost.id).dispatch_seq == 2 and task(waiting.id).dispatch_seq == 1
    assert message_id(lost.id, 0, 2) in live_ids()
    assert events(lost.id)[-1] == ("redispatched", QUEUED, QUEUED)
    run_stage_by_hand(lost.id)  # the new message's dispatch number is the live one


def test_between_stages_a_lost_message_is_sent_again(alice):
    t = submit(alice)
    run_stage_by_hand(t.id)
    huey().storage.flush_queue()
    go_silent(t.id)
    assert recovery.reap(TIMEOUT, 3)["redispatched"] == 1
    assert message_id(t.id, 1, 3) in live_ids()


def test_shutdown_hands_a_stage_back_without_counting_a_loss(alice):
    t = submit(alice)
    run_stage_by_hand(t.id)
    run = start(t.id)
    assert recovery.hand_back_stage(run) == RUNNING
    back = task(t.id)
    assert (back.stage_index, back.stage_running, back.lost_attempts) == (1, False, 0)
    assert message_id(t.id, 1, run.dispatch_seq + 1) in live_ids()
    assert events(t.id)[-1][0] == "stage_requeued"


def test_periodic_work_is_claimed_once_per_interval(alice):
    assert recovery.claim_periodic("job", 60) is True
    assert recovery.claim_periodic("job", 60) is False
    db.session.execute(
        update(recovery.PeriodicRun).values(next_run_at=utcnow() - timedelta(seconds=1))
    )
    db.session.commit()
    assert recovery.claim_periodic("job", 60) is True
    assert recovery.reap_if_due(60, TIMEOUT, 3) is not None
    assert recovery.reap_if_due(60, TIMEOUT, 3) is None


def test_the_reaper_reads_unfinished_tasks_through_their_partial_index(alice):
    """The index of heartbeats holds unfinished tasks only; both reads of the reaper use it.

    SQLite uses a partial index only when the query repeats its condition,
    so without HEARTBEAT_STATES in the reads they scan the state index. On
    PostgreSQL sequential scans are switched off for the look: the plan
    must be able to use the index at all.
    """
    run_stage_by_hand(submit(alice, stages=1).id)
    submit(alice)
    with statements_sent() as sent:
        recovery.reap(TIMEOUT, 3)
    reads = [(sql, parameters) for sql, parameters in sent if "heartbeat_at <" in sql]
    assert len(reads) == 2
    connection = db.session.connection()
    postgres = connection.dialect.name == "postgresql"
    if postgres:
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
    for statement, parameters in reads:
        explain = "EXPLAIN " if postgres else "EXPLAIN QUERY PLAN "
        plan = str(connection.exec_driver_sql(explain + statement, parameters).all())
        assert "ix_tasks_state_heartbeat" in plan, plan
    db.session.rollback()
