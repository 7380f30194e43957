"""Overhead vs raw Huey: N one-stage no-op tasks through Taskdeck vs N no-op raw Huey tasks.

Same storage (the queue URL of the run), same consumer (threads, same
count), same process. Two figures per side:

- drain: the tasks are queued first, then a consumer drains them; timed
  from the first stage's start to the last task's end (start-up excluded);
- with submits: submitted while the consumer runs; timed from the first
  submit to the last end.

Taskdeck's task is the `noop` pipeline of bench/pipelines (a user's own
pipeline, loaded through TASKDECK_PIPELINES_PATH). Goal: ratio ≥ 0.5.

The ratio is to Huey as it comes. On SQLite, Taskdeck's queue file runs
`synchronous=NORMAL` where Huey leaves SQLite's FULL (an fsync per
message; app/queue.py says why Taskdeck needs none), so raw Huey is also
measured on NORMAL: that second ratio is Taskdeck's own cost alone.
"""

import os
import threading
import time
from pathlib import Path

os.environ["TASKDECK_PIPELINES_PATH"] = str(Path(__file__).resolve().parent / "pipelines")

from harness import figure, make_app, start_consumer  # noqa: E402
from huey import SqliteHuey  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from app import config  # noqa: E402
from app.extensions import db  # noqa: E402
from app.models import Task, TaskStage  # noqa: E402
from app.queue import SqliteQueueConnection, make_huey  # noqa: E402
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


def raw_queues() -> dict:
    """Huey as it comes and, on SQLite, Huey on the queue file's pragmas of Taskdeck."""
    plain = make_huey(config.queue_url(), "raw-huey-bench", fenced=False)
    queues = {"raw Huey": plain}
    if isinstance(plain, SqliteHuey):
        queues["raw Huey on NORMAL"] = SqliteHuey(
            "raw-huey-normal",
            filename=plain.storage.filename,
            results=False,
            timeout=30,
            factory=SqliteQueueConnection,
        )
    return queues


def raw_rates(raw) -> tuple[float, float]:
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
    raw = {name: raw_rates(queue) for name, queue in raw_queues().items()}
    deck = taskdeck_rates(app)
    for i, what in enumerate(
        (
            f"drain: {TASKS} queued no-op tasks, {WORKERS} worker threads",
            f"with submits: {TASKS} no-op tasks submitted while {WORKERS} threads drain",
        )
    ):
        references = "; ".join(
            f"{name} {rate[i]:.0f}/s (ratio {deck[i] / rate[i]:.2f})" for name, rate in raw.items()
        )
        figure(f"overhead, {what}: Taskdeck {deck[i]:.0f}/s; {references}")


if __name__ == "__main__":
    main()
