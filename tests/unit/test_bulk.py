"""Cancel-all is set-based (a few statements per chunk of tasks) and keeps cancel's guarantees."""

import logging
import threading

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import TaskStage
from app.services import bulk, cancelling, lease
from tests.drive import events, run_stage_by_hand, statements_sent, submit, task


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 2, so a handful of tasks crosses several chunk transactions."""
    monkeypatch.setattr(cancelling, "BULK_CHUNK", 2)


def stage_states(task_id):
    rows = select(TaskStage.state).where(TaskStage.task_id == task_id).order_by(TaskStage.position)
    return list(db.session.scalars(rows))


def test_cancel_all_over_several_chunks_moves_each_task_once(ctx, users, small_chunks):
    alice = users("alice")
    queued = [submit(alice).id for _ in range(5)]
    between = submit(alice).id  # stage 1 done, stage 2 waiting in the queue
    run_stage_by_hand(between)
    in_stage = submit(alice).id
    t = task(in_stage)
    lease.start_stage(in_stage, t.stage_index, t.dispatch_seq)
    done = submit(alice, stages=1).id
    run_stage_by_hand(done)

    assert bulk.cancel_all(alice) == {"cancelled": 5, "failed": 2, "total": 7}
    for task_id in queued:
        assert task(task_id).state == "cancelled"
        assert events(task_id) == [
            ("submitted", None, "queued"),
            ("cancelled", "queued", "cancelled"),
        ]
        assert stage_states(task_id) == ["skipped"] * 3
    assert task(between).state == task(in_stage).state == "running"

    assert bulk.cancel_all(alice, cancel_running=True) == {"cancelled": 2, "failed": 0, "total": 2}
    assert task(between).state == "cancelled"
    assert stage_states(between) == ["succeeded", "skipped", "skipped"]
    assert events(between)[-1] == ("cancelled", "running", "cancelled")
    assert task(in_stage).state == "cancelling"
    assert stage_states(in_stage) == ["running", "pending", "pending"]
    assert events(in_stage)[-1] == ("cancel_requested", "running", "cancelling")
    assert task(done).state == "succeeded"


def test_a_bulk_cancelled_tasks_message_is_dropped_with_reads_only(ctx, users, caplog):
    alice = users("alice")
    task_id = submit(alice).id
    bulk.cancel_all(alice)
    # The worker's statements skip the engine's events and are logged on taskdeck.sql instead.
    with statements_sent() as sent, caplog.at_level(logging.DEBUG, logger="taskdeck.sql"):
        assert lease.start_stage(task_id, 0, 1) is None
    statements = [sql.split()[0].upper() for sql, _ in sent]
    statements += [
        r.getMessage().split()[0].upper() for r in caplog.records if r.name == "taskdeck.sql"
    ]
    assert statements and set(statements) == {"SELECT"}


def test_cancel_all_racing_a_worker_cancels_every_task_once(app, users, small_chunks):
    """A worker starts and ends stages while cancel-all runs: no task escapes or moves twice."""
    with app.app_context():
        ids = [submit(users("alice"), stages=2).id for _ in range(30)]
    barrier = threading.Barrier(2)
    result = {}

    def cancel_everything():
        with app.app_context():
            barrier.wait()
            result.update(bulk.cancel_all(users("alice"), cancel_running=True))

    def work():
        with app.app_context():
            barrier.wait()
            for task_id in ids:
                run = lease.start_stage(task_id, 0, 1)
                if run is not None:
                    lease.finish_stage(run, {})

    threads = [threading.Thread(target=cancel_everything), threading.Thread(target=work)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert result == {"cancelled": 30, "failed": 0, "total": 30}
    with app.app_context():
        for task_id in ids:
            assert task(task_id).state == "cancelled"
            trail = events(task_id)
            assert [e for e in trail if e[2] == "cancelled"] == [trail[-1]]
            if ("cancelled", "queued", "cancelled") in trail:
                assert all(e[0] != "stage_started" for e in trail)
