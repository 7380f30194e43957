"""The worker's transactions on the driver's connection: whole commits or none, read as by the ORM.

Also the queue without Huey's revoke: a stale message reaches a real
consumer and is dropped there.
"""

import pytest
from sqlalchemy import select, update

from app.constants import EV_STAGE_STARTED
from app.extensions import db
from app.models import Task, TaskEvent
from app.queue import make_huey
from app.services import cancelling, commands, lease
from app.services.direct_sql import Transaction
from app.services.transitions import move
from tests.conftest import wait_for
from tests.drive import messages, submit, task


def _start_by_hand(tx, task_id):
    return move(
        task_id,
        "queued",
        "running",
        action=EV_STAGE_STARTED,
        actor="worker",
        stage="step 1",
        values={"stage_running": True},
        on=tx,
    )


def test_a_transaction_commits_then_sends_its_messages(ctx, users):
    t = submit(users("alice"))
    sent = []
    with Transaction() as tx:
        assert _start_by_hand(tx, t.id)
        tx.outbox.append((sent.append, ("message",)))
        assert sent == []  # not before the commit
    assert sent == ["message"]
    assert (task(t.id).state, task(t.id).stage_running) == ("running", True)
    assert db.engine.pool.checkedout() <= 1  # the borrowed connection went back


def test_a_transaction_that_raises_leaves_nothing_and_sends_nothing(ctx, users):
    t = submit(users("alice"))
    sent = []
    with pytest.raises(RuntimeError, match="midway"), Transaction() as tx:
        assert _start_by_hand(tx, t.id)
        tx.outbox.append((sent.append, ("message",)))
        raise RuntimeError("midway")
    assert sent == []
    assert task(t.id).state == "queued"
    events = db.session.scalars(select(TaskEvent.action).where(TaskEvent.task_id == t.id)).all()
    assert events == ["submitted"]
    # The write turn was given back: the next writer goes at once, on another connection.
    db.session.execute(update(Task).where(Task.id == t.id).values(priority=3))
    db.session.commit()
    assert task(t.id).priority == 3


def test_what_a_transition_reads_is_what_the_orm_reads(ctx, users):
    """JSON (Chinese included), booleans and timestamps come back as through the Session."""
    t = commands.submit(users("alice"), "demo", {"stages": 2, "message": "你好"}, 6, actor="alice")
    run = lease.start_stage(t.id, 0, 1, worker="here:1")
    stored = task(t.id)
    assert run.params == stored.params and run.params["message"] == "你好"
    assert (run.stage_name, run.next_stage) == ("step 1", "step 2")
    assert stored.started_at is not None and stored.stage_running is True
    lease.finish_stage(run, {"说": "完"})
    stage = task(t.id).stages[0]
    assert stage.output == {"说": "完"} and stage.finished_at >= stored.started_at
    later = lease.start_stage(t.id, 1, 2)
    assert later.outputs == {"step 1": {"说": "完"}} and later.next_stage is None


def test_a_finish_riding_with_a_claim_lands_with_it_or_alone(ctx, users):
    """The claim of the next message carries the finish of the stage before it: both are
    written, and the finish is written too when the claim finds a stale message."""
    alice = users("alice")
    one, two = submit(alice, stages=1), submit(alice, stages=1)
    first = lease.start_stage(one.id, 0, 1)
    second = lease.start_stage(two.id, 0, 1, finishing=(first, {"说": "一"}))
    assert task(one.id).state == "succeeded" and task(one.id).stages[0].output == {"说": "一"}
    assert task(two.id).state == "running" and second.stage_name == "step 1"
    assert lease.start_stage(one.id, 0, 1, finishing=(second, {"说": "二"})) is None  # stale
    assert task(two.id).state == "succeeded" and task(two.id).stages[0].output == {"说": "二"}


@pytest.mark.parametrize("fenced", [True, False])
def test_a_fenced_queue_never_looks_for_revoke_keys(tmp_path, fenced):
    """Taskdeck's Huey skips the revoke look-up and delete that plain Huey makes per message."""
    huey = make_huey(f"sqlite:///{tmp_path / 'queue.db'}", "fenced-test", fenced=fenced)
    ran, looked = [], []

    @huey.task()
    def job():
        ran.append(True)

    storage = huey.storage
    peek_many, delete_data = storage.peek_many, storage.delete_data
    storage.peek_many = lambda keys: looked.append(keys) or peek_many(keys)
    storage.delete_data = lambda key: looked.append(key) or delete_data(key)
    job()
    huey.execute(huey.dequeue())
    assert ran == [True]
    assert (looked == []) is fenced


@pytest.mark.parametrize("fenced", [True, False])
def test_the_sqlite_queue_syncs_as_the_data_database_does(tmp_path, fenced):
    """Taskdeck's queue file: WAL with synchronous=NORMAL (1), no fsync per message;
    Huey as it comes (the benchmark's reference) keeps SQLite's FULL (2)."""
    huey = make_huey(f"sqlite:///{tmp_path / 'queue.db'}", "sync-test", fenced=fenced)
    conn = huey.storage.conn
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute("PRAGMA synchronous").fetchone() == (1 if fenced else 2,)


def test_stale_messages_reach_a_real_consumer_and_are_dropped(app, users, worker):
    with app.app_context():
        alice = users("alice")
        cancelled = submit(alice, stages=1).id
        cancelling.request_cancel(alice, cancelled)
        moved = submit(alice, stages=1, priority=9).id
        commands.set_priority(alice, moved, 2)  # its first message is now stale
        assert len(messages()) == 3  # both stale messages are still queued
    worker(1)
    with app.app_context():
        wait_for(lambda: task(moved).state == "succeeded" and not messages())
        started = db.session.scalars(
            select(TaskEvent.task_id).where(TaskEvent.action == EV_STAGE_STARTED)
        ).all()
        assert started == [moved]  # once, from its new message; the cancelled task never started
        assert task(cancelled).state == "cancelled" and task(cancelled).started_at is None
