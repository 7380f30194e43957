"""Overhead vs raw Huey: N one-stage no-op tasks through Taskdeck vs N no-op raw Huey tasks.

Same storage (the queue URL of the run), same consumer (threads, same
count), same process. Two figures per side:

- drain: the tasks are queued first, then a consumer drains them; timed
  from the first stage's start to the last task's end (start-up excluded);
- with submits: submitted while the consumer runs; timed from the first
  submit to the last end.

Taskdeck's task is the `noop` pipeline of bench/pipelines (a user's own
pipeline, loaded through TASKDECK_PIPELINES_PATH). Goal: ratio ≥ 0.5.
"""

import os
import threading
import time
from pathlib import Path

os.environ["TASKDECK_PIPELINES_PATH"] = str(Path(__file__).resolve().parent / "pipelines")

from harness import figure, make_app, start_consumer  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from app import config  # noqa: E402
from app.extensions import db  # noqa: E402
from app.models import Task, TaskStage  # noqa: E402
from app.queue import make_huey  # noqa: E402
from app.services import accounts, commands  # noqa: E402

TASKS = int(os.environ.get("BENCH_TASKS", 2000))
WORKERS = int(os.environ.get("BENCH_WORKERS", 2))


def _wait_all_ended(count: int) -> None:
    while True:
        ended = db.session.scalar(
            select(func.count()).select_from(Task).where(Task.finished_at.is_not(None))
        )
        db.session.commit()
        if ended == count:
            return
        time.sleep(0.05)


def taskdeck_rates(app) -> tuple[float, float]:
    """(drain rate, rate with submits), tasks/s."""
    with app.app_context():
        user = accounts.find_user("bench")
        for _ in range(TASKS):
            commands.submit(user, "noop", {}, 6, actor="bench")
        consumer = start_consumer(app, WORKERS)
        _wait_all_ended(TASKS)
        first = db.session.scalar(select(func.min(TaskStage.started_at)))
        last = db.session.scalar(select(func.max(Task.finished_at)))
        drain = TASKS / (last - first).total_seconds()

        started = time.perf_counter()
        for _ in range(TASKS):
            commands.submit(user, "noop", {}, 6, actor="bench")
        _wait_all_ended(2 * TASKS)
        with_submits = TASKS / (time.perf_counter() - started)
        consumer.stop(graceful=True)
    return drain, with_submits


def raw_rates() -> tuple[float, float]:
    raw = make_huey(config.queue_url(), "raw-huey-bench", fenced=False)
    raw.flush()
    finished = threading.Semaphore(0)
    times: list[float] = []

    @raw.task()
    def noop():
        times.append(time.perf_counter())
        finished.release()

    for _ in range(TASKS):
        noop()
    consumer = start_consumer(None, WORKERS, raw_huey=raw)
    for _ in range(TASKS):
        finished.acquire()
    # From the first task's end (≈ its start: it is a no-op) to the last's.
    drain = (TASKS - 1) / (times[-1] - times[0])

    started = time.perf_counter()
    for _ in range(TASKS):
        noop()
    for _ in range(TASKS):
        finished.acquire()
    with_submits = TASKS / (time.perf_counter() - started)
    consumer.stop(graceful=True)
    raw.flush()
    return drain, with_submits


def main() -> None:
    app, _ = make_app()
    raw_drain, raw_submits = raw_rates()
    deck_drain, deck_submits = taskdeck_rates(app)
    figure(
        f"overhead, drain: {TASKS} queued no-op tasks, {WORKERS} worker threads: "
        f"raw Huey {raw_drain:.0f}/s, Taskdeck {deck_drain:.0f}/s, "
        f"ratio {deck_drain / raw_drain:.2f}"
    )
    figure(
        f"overhead, with submits: {TASKS} no-op tasks submitted while {WORKERS} threads drain: "
        f"raw Huey {raw_submits:.0f}/s, Taskdeck {deck_submits:.0f}/s, "
        f"ratio {deck_submits / raw_submits:.2f}"
    )


if __name__ == "__main__":
    main()
