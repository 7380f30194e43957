"""The dashboard's counts are sums of deltas the database's triggers write: what COUNT(*) says."""

import threading
from datetime import timedelta

from sqlalchemy import delete, func, select, update

from app.extensions import db
from app.models import Task, TaskCount
from app.services import bulk, cancelling, counts, lease, retention
from tests.drive import run_stage_by_hand, submit


def counted(owner=None) -> list[tuple[str, str, int]]:
    """What COUNT(*) over the tasks says, as counts.by_type_and_state answers it."""
    query = select(Task.type, Task.state, func.count()).group_by(Task.type, Task.state)
    if owner is not None:
        query = query.where(Task.owner_id == owner.id)
    return sorted((t, s, n) for t, s, n in db.session.execute(query))


def test_counts_follow_every_kind_of_change(ctx, users):
    alice, bob, root = users("alice"), users("bob"), users("root")
    done = submit(alice, stages=1)
    run_stage_by_hand(done.id)
    failed = submit(alice, stages=2)
    run_stage_by_hand(failed.id, fail=True)
    running = submit(bob)
    lease.start_stage(running.id, 0, 1)
    cancelling.request_cancel(bob, running.id)  # cancelling: the worker stops it later
    for _ in range(3):
        submit(bob, stages=1)
    bulk.cancel_all(bob)  # one UPDATE for many rows
    submit(alice)
    # A statement the services never make, on a column the triggers watch.
    db.session.execute(update(Task).where(Task.id == done.id).values(type="other"))
    db.session.commit()
    for who in (alice, bob):
        assert sorted(counts.by_type_and_state(who)) == counted(who)
    assert sorted(counts.by_type_and_state(root)) == counted()

    db.session.execute(update(Task).values(finished_at=Task.created_at - timedelta(days=30)))
    db.session.commit()
    retention.prune(timedelta(days=1))  # DELETEs
    assert sorted(counts.by_type_and_state(root)) == counted()
    assert ("demo", "queued", 1) in counted()


def test_a_rolled_back_change_takes_its_deltas_with_it(ctx, users):
    alice = users("alice")
    t = submit(alice)
    before = db.session.scalar(select(func.count()).select_from(TaskCount))
    db.session.execute(update(Task).where(Task.id == t.id).values(state="failed"))
    db.session.execute(delete(Task).where(Task.id == t.id))
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(TaskCount)) == before
    assert counts.by_type_and_state(alice) == [("demo", "queued", 1)]


def test_fold_leaves_one_row_per_group_and_the_same_sums(ctx, users, monkeypatch):
    monkeypatch.setattr(counts, "FOLD_CHUNK", 2)  # several chunks in the one transaction
    alice, bob = users("alice"), users("bob")
    for owner in (alice, alice, bob):
        run_stage_by_hand(submit(owner, stages=1).id)
    submit(bob)
    rows = db.session.scalar(select(func.count()).select_from(TaskCount))
    assert counts.fold() > 0
    kept = db.session.execute(select(TaskCount.owner_id, TaskCount.state, TaskCount.delta)).all()
    # Nothing is left of the queued and running steps the three finished tasks went through.
    assert sorted(kept) == sorted(
        [(alice.id, "succeeded", 2), (bob.id, "succeeded", 1), (bob.id, "queued", 1)]
    )
    assert len(kept) < rows
    assert sorted(counts.by_type_and_state(users("root"))) == counted()
    assert counts.fold() == 0  # folded already


def test_folds_racing_transitions_lose_and_double_nothing(app, users):
    """Workers finish stages and users submit while the reaper folds, over and over."""
    with app.app_context():
        ids = [submit(users("alice"), stages=2).id for _ in range(30)]
    stop = threading.Event()
    errors = []

    def guarded(work):
        def run():
            with app.app_context():
                try:
                    work()
                except Exception as exc:  # noqa: BLE001 - the assertion below shows it
                    errors.append(exc)

        return run

    def work_through():
        for task_id in ids:
            run_stage_by_hand(task_id)
            run_stage_by_hand(task_id)
            submit(users("bob"), stages=1)

    def fold_again_and_again():
        while not stop.is_set():
            counts.fold()

    worker = threading.Thread(target=guarded(work_through))
    folder = threading.Thread(target=guarded(fold_again_and_again))
    worker.start()
    folder.start()
    worker.join()
    stop.set()
    folder.join()
    assert errors == []
    with app.app_context():
        assert sorted(counts.by_type_and_state(users("root"))) == counted()
        assert ("demo", "succeeded", 30) in counted() and ("demo", "queued", 30) in counted()
