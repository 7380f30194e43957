"""Overhead vs raw Huey: N no-op tasks through Taskdeck vs N raw Huey no-op tasks.

Same storage (the queue URL of the run), same consumer (threads, same count),
same process. Taskdeck's side is a one-stage demo task with `seconds: 0`,
timed from the first submit to the last `succeeded`. Goal: ratio ≥ 0.5.
"""

import threading
import time

from harness import figure, make_app, start_consumer
from sqlalchemy import func, select

from app import config
from app.extensions import db
from app.models import Task
from app.queue import make_huey
from app.services import accounts, commands

TASKS = 500
WORKERS = 4


def taskdeck_throughput(app) -> float:
    with app.app_context():
        user = accounts.find_user("bench")
        consumer = start_consumer(app, WORKERS)
        started = time.perf_counter()
        for _ in range(TASKS):
            commands.submit(user, "demo", {"stages": 1, "seconds": 0}, 6, actor="bench")
        while True:
            done = db.session.scalar(
                select(func.count()).select_from(Task).where(Task.state == "succeeded")
            )
            db.session.commit()
            if done == TASKS:
                break
            time.sleep(0.01)
        elapsed = time.perf_counter() - started
        consumer.stop(graceful=True)
    return TASKS / elapsed


def raw_throughput() -> float:
    raw = make_huey(config.queue_url(), "raw-huey-bench")
    raw.flush()
    finished = threading.Semaphore(0)

    @raw.task()
    def noop():
        finished.release()

    consumer = start_consumer(None, WORKERS, raw_huey=raw)
    started = time.perf_counter()
    for _ in range(TASKS):
        noop()
    for _ in range(TASKS):
        finished.acquire()
    elapsed = time.perf_counter() - started
    consumer.stop(graceful=True)
    raw.flush()
    return TASKS / elapsed


def main() -> None:
    app, _ = make_app()
    raw = raw_throughput()
    deck = taskdeck_throughput(app)
    figure(
        f"overhead: {TASKS} no-op tasks, {WORKERS} worker threads: raw Huey {raw:.0f}/s, "
        f"Taskdeck {deck:.0f}/s, ratio {deck / raw:.2f}"
    )


if __name__ == "__main__":
    main()
