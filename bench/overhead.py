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

Rates move with the machine from run to run; on SQLite the pages a task
writes do not: the WAL frames per submitted and per drained task are
printed too (written by all connections, counted from the WAL's size).
"""

import os
import sqlite3
import statistics
import struct
import threading
import time
from pathlib import Path

os.environ["TASKDECK_PIPELINES_PATH"] = str(Path(__file__).resolve().parent / "pipelines")

from harness import backend, figure, make_app, start_consumer  # noqa: E402
from huey import SqliteHuey  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from app import config  # noqa: E402
from app.extensions import db  # noqa: E402
from app.models import Task, TaskStage, utcnow  # noqa: E402
from app.queue import SqliteQueueConnection, make_huey  # noqa: E402
from app.services import accounts, commands, dispatch  # noqa: E402

TASKS = int(os.environ.get("BENCH_TASKS", 2000))
WORKERS = int(os.environ.get("BENCH_WORKERS", 2))
# Taskdeck's drain rate varied by a third from run to run where raw Huey's held:
# each figure is the median of rounds that take turns on the machine.
ROUNDS = int(os.environ.get("BENCH_ROUNDS", 3))


def _ended() -> int:
    ended = db.session.scalar(
        select(func.count()).select_from(Task).where(Task.finished_at.is_not(None))
    )
    db.session.commit()
    return ended


def _wait_ended(count: int) -> None:
    while _ended() < count:
        time.sleep(0.05)


def _submit_noops(count: int) -> None:
    user = accounts.find_user("bench")
    for _ in range(count):
        commands.submit(user, "noop", {}, 6, actor="bench")


def taskdeck_rates(app) -> tuple[float, float]:
    """(drain rate, rate with submits), tasks/s."""
    with app.app_context():
        before = _ended()
        _submit_noops(TASKS)
        since = utcnow()
        consumer = start_consumer(app, WORKERS)
        _wait_ended(before + TASKS)
        first = db.session.scalar(
            select(func.min(TaskStage.started_at)).where(TaskStage.started_at >= since)
        )
        last = db.session.scalar(select(func.max(Task.finished_at)))
        drain = TASKS / (last - first).total_seconds()

        started = time.perf_counter()
        _submit_noops(TASKS)
        _wait_ended(before + 2 * TASKS)
        with_submits = TASKS / (time.perf_counter() - started)
        consumer.stop(graceful=True)
    return drain, with_submits


class RawHuey:
    """One no-op task on a Huey as it comes, and the times its runs ended."""

    def __init__(self, huey):
        self.huey, self.finished, self.times = huey, threading.Semaphore(0), []

        @huey.task()
        def noop():
            self.times.append(time.perf_counter())
            self.finished.release()

        self.noop = noop

    def _wait(self) -> None:
        for _ in range(TASKS):
            self.finished.acquire()

    def rates(self) -> tuple[float, float]:
        self.huey.flush()
        self.times.clear()
        for _ in range(TASKS):
            self.noop()
        consumer = start_consumer(None, WORKERS, raw_huey=self.huey)
        self._wait()
        # From the first task's end (≈ its start: it is a no-op) to the last's.
        drain = (TASKS - 1) / (self.times[-1] - self.times[0])

        started = time.perf_counter()
        for _ in range(TASKS):
            self.noop()
        self._wait()
        with_submits = TASKS / (time.perf_counter() - started)
        consumer.stop(graceful=True)
        self.huey.flush()
        return drain, with_submits


def raw_hueys() -> dict[str, RawHuey]:
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
    return {name: RawHuey(huey) for name, huey in queues.items()}


# Few enough that no automatic checkpoint (at 1,000 pages) restarts the WAL between looks.
PAGED = 50


class Wal:
    """The pages written to one SQLite file's WAL since `restart()` emptied it.

    Counted from the WAL's size, which only an emptying checkpoint brings
    down: past the automatic checkpoint's threshold the count is refused.
    """

    def __init__(self, path: str):
        self.path = path
        with sqlite3.connect(path) as connection:
            self.threshold = connection.execute("PRAGMA wal_autocheckpoint").fetchone()[0]

    def restart(self) -> None:
        with sqlite3.connect(self.path) as connection:
            busy = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        assert not busy, f"{self.path}: the WAL was in use and could not be emptied"

    def pages(self) -> int:
        with open(f"{self.path}-wal", "rb") as wal:
            header = wal.read(32)  # the WAL's header; the page size at bytes 8–11
        frame = 24 + struct.unpack(">I", header[8:12])[0]  # a frame: its header and a page
        pages = (os.path.getsize(f"{self.path}-wal") - len(header)) // frame
        assert pages < self.threshold, f"{self.path}: checkpointed while counted; fewer tasks"
        return pages


def pages_per_task(app) -> None:
    """WAL pages per submitted and per drained one-stage task, data and queue files (SQLite)."""

    def drain() -> None:
        consumer = start_consumer(app, 1)
        _wait_ended(before + PAGED)
        consumer.stop(graceful=True)

    with app.app_context():
        wals = {
            "data": Wal(db.engine.url.database),
            "queue": Wal(dispatch.stage_queue().huey.storage.filename),
        }
        before = _ended()
        counted = {}
        for phase, work in (("submit", lambda: _submit_noops(PAGED)), ("drain", drain)):
            for wal in wals.values():
                wal.restart()
            work()
            counted[phase] = {name: wal.pages() / PAGED for name, wal in wals.items()}
    figure(
        "pages written per task (WAL frames, a page each): "
        + "; ".join(
            f"{phase} {pages['data']:.1f} data + {pages['queue']:.1f} queue"
            for phase, pages in counted.items()
        )
    )


def main() -> None:
    app, _ = make_app()
    raw = raw_hueys()
    rounds = []  # per round: {"Taskdeck": (drain, with submits), name: (...), ...}
    for _ in range(ROUNDS):
        rates = {name: probe.rates() for name, probe in raw.items()}
        rates["Taskdeck"] = taskdeck_rates(app)
        rounds.append(rates)
    for i, what in enumerate(
        (
            f"drain: {TASKS} queued no-op tasks, {WORKERS} worker threads",
            f"with submits: {TASKS} no-op tasks submitted while {WORKERS} threads drain",
        )
    ):
        deck = statistics.median(r["Taskdeck"][i] for r in rounds)
        references = []
        for name in raw:
            ratios = sorted(r["Taskdeck"][i] / r[name][i] for r in rounds)
            rate = statistics.median(r[name][i] for r in rounds)
            references.append(
                f"{name} {rate:.0f}/s (ratio {statistics.median(ratios):.2f}, "
                f"rounds {ratios[0]:.2f}–{ratios[-1]:.2f})"
            )
        figure(
            f"overhead, {what}, median of {ROUNDS} rounds: Taskdeck {deck:.0f}/s; "
            + "; ".join(references)
        )
    if backend() == "sqlite":
        pages_per_task(app)


if __name__ == "__main__":
    main()
