"""Queued-cancel safety: 1,000 queued tasks cancelled one by one while workers drain the queue.

Counts the tasks whose cancel found them queued (so they must never run)
that still started a stage. Goal: 0.
"""

import random
import time

from harness import figure, make_app, start_consumer
from sqlalchemy import func, select

from app.extensions import db
from app.models import Task, TaskEvent
from app.services import accounts, cancelling, commands

TASKS = 1_000
WORKERS = 4


def main() -> None:
    app, _ = make_app()
    with app.app_context():
        user = accounts.find_user("bench")
        ids = [
            commands.submit(user, "demo", {"stages": 1, "seconds": 0}, 6, actor="bench").id
            for _ in range(TASKS)
        ]
        consumer = start_consumer(app, WORKERS)
        random.Random(3).shuffle(ids)
        previous = {}
        started = time.perf_counter()
        for task_id in ids:
            try:
                previous[task_id] = cancelling.request_cancel(user, task_id).previous_state
            except Exception:  # finished before its cancel came: not a cancelled task
                previous[task_id] = "finished"
        wall = time.perf_counter() - started
        consumer.stop(graceful=True)
        db.session.remove()
        was_queued = [t for t, state in previous.items() if state == "queued"]
        ran_anyway = db.session.scalar(
            select(func.count(func.distinct(TaskEvent.task_id))).where(
                TaskEvent.task_id.in_(was_queued), TaskEvent.action == "stage_started"
            )
        )
        states = dict(
            db.session.execute(select(Task.state, func.count()).group_by(Task.state)).all()
        )
    figure(
        f"queued-cancel safety: {ran_anyway} of {len(was_queued)} tasks cancelled while queued "
        f"started a stage (cancels took {wall:.1f} s with {WORKERS} workers draining; "
        f"final states {states})"
    )


if __name__ == "__main__":
    main()
