"""Racing actors on one task: every transition is one conditional UPDATE, so one wins.

Each race starts its callers at the same instant (a barrier) in threads with
their own sessions, against a real SQLite file, and repeats a few rounds.
"""

import threading
from datetime import timedelta

from sqlalchemy import update

from app.extensions import db
from app.models import Task, utcnow
from app.queue import message_id
from app.services import cancelling, commands, lease, recovery
from app.services.errors import InvalidRequest
from tests.drive import events, huey, live_messages, submit, task

ROUNDS = 5


def race(app, *calls):
    """Run the calls at once, each in its app context; return each result or raised error."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(i, call):
        with app.app_context():
            barrier.wait()
            try:
                results[i] = call()
            except InvalidRequest as exc:
                results[i] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_two_cancels_racing_cancel_once(app, users):
    for _ in range(ROUNDS):
        with app.app_context():
            task_id = submit(users("alice")).id
        outcomes = race(app, *[lambda t=task_id: cancelling.request_cancel(users("alice"), t)] * 4)
        refused = [o for o in outcomes if isinstance(o, InvalidRequest)]
        won = [o for o in outcomes if not isinstance(o, InvalidRequest)]
        assert len(won) == 1 and won[0].state == "cancelled" and len(refused) == 3
        with app.app_context():
            assert [e for e in events(task_id) if e[0] == "cancelled"] == [
                ("cancelled", "queued", "cancelled")
            ]


def test_retry_racing_retry_makes_exactly_one_new_task(app, users):
    for _ in range(ROUNDS):
        with app.app_context():
            task_id = submit(users("alice")).id
            cancelling.request_cancel(users("alice"), task_id)
            before = db.session.query(Task).count()
        outcomes = race(app, *[lambda t=task_id: commands.retry(users("alice"), t)] * 4)
        won = [o for o in outcomes if not isinstance(o, InvalidRequest)]
        assert len(won) == 1
        with app.app_context():
            assert db.session.query(Task).count() == before + 1
            assert task(task_id).retried_by == won[0].new_task_id


def test_priority_change_racing_the_stage_start_never_does_both(app, users):
    for _ in range(ROUNDS):
        with app.app_context():
            huey().flush()
            task_id = submit(users("alice")).id
        start, change = race(
            app,
            lambda t=task_id: lease.start_stage(t, 0, 1),
            lambda t=task_id: commands.set_priority(users("alice"), t, 1).priority,
        )
        with app.app_context():
            now = task(task_id)
            live = [message[0] for message in live_messages()]
            if start is not None:  # the worker won: the change was refused
                assert isinstance(change, InvalidRequest)
                assert (now.state, now.stage_running, now.priority) == ("running", True, 6)
            else:  # the change won: the old message is stale, the new one carries priority 1
                assert change == 1 and (now.state, now.priority) == ("queued", 1)
                assert message_id(task_id, 0, 2) in live


def test_the_reaper_racing_a_late_finish_has_one_winner(app, users):
    for _ in range(ROUNDS):
        with app.app_context():
            task_id = submit(users("alice"), stages=1).id
            run = lease.start_stage(task_id, 0, 1)
            db.session.execute(
                update(Task)
                .where(Task.id == task_id)
                .values(heartbeat_at=utcnow() - timedelta(minutes=5))
            )
            db.session.commit()
        race(app, lambda r=run: lease.finish_stage(r, {"late": 1}), lambda: recovery.reap(60, 3))
        with app.app_context():
            now, trail = task(task_id), [e[0] for e in events(task_id)]
            finished, requeued = trail.count("stage_finished"), trail.count("stage_requeued")
            assert finished + requeued == 1, trail
            if finished:
                assert now.state == "succeeded" and now.stages[0].output == {"late": 1}
            else:
                assert (now.state, now.dispatch_seq, now.stages[0].output) == ("running", 2, None)
