"""Sustained load: 10,000 submits a minute for 5 minutes, 2 worker processes × 4 threads.

`taskdeck web` (gunicorn, its default settings) takes the submits from wrk
(`bench/submit.lua`: 32 connections, each submitting a no-op task 155 ms
after its last answer, through the API with a bearer token); two `taskdeck worker
--workers 4` processes run them. Figures: submits a minute achieved, submit
latency (wrk, in C), queue wait (a task's submit to its stage's start, from
the database afterwards), and the resident memory of the web and worker
processes 20 s into the load and at its end (no growth is the goal).
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import figure, percentiles, wrk_result
from sqlalchemy import create_engine, func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.models import Task, TaskStage  # noqa: E402
from tests.live import Deck  # noqa: E402

HERE = Path(__file__).resolve().parent
SECONDS = int(os.environ.get("BENCH_SUSTAINED_SECONDS", 300))
CONNECTIONS, PERIOD_MS = 32, 155  # with ~35 ms answers: ≈ 32 / 0.19 s ≈ 10,000 a minute
WORKERS, THREADS = 2, 4


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        return int(next(line for line in status if line.startswith("VmRSS:")).split()[1]) / 1024


def web_pids(master: int) -> list[int]:
    with open(f"/proc/{master}/task/{master}/children") as children:
        return [master, *(int(pid) for pid in children.read().split())]


def memory(deck: Deck) -> str:
    web = sum(rss_mib(pid) for pid in web_pids(deck.web.pid))
    workers = ", ".join(f"{rss_mib(w.pid):.0f}" for w in deck.workers)
    return f"web {web:.0f} MiB (master + workers), workers {workers} MiB"


def submit_load(deck: Deck) -> subprocess.Popen:
    argv = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "--timeout", "5s"]
    argv += ["-s", str(HERE / "submit.lua"), "-H", f"Authorization: Bearer {deck.http.token}"]
    env = {**os.environ, "SUBMIT_PERIOD_MS": str(PERIOD_MS)}
    return subprocess.Popen(
        [*argv, f"{deck.http.base}/api/v1/tasks"], env=env, stdout=subprocess.PIPE, text=True
    )


def queue_waits(url: str, deadline: float) -> tuple[int, int, list[float]]:
    """(tasks, ended, seconds from submit to stage start), once all ended or at `deadline`."""
    engine = create_engine(url)
    with engine.connect() as conn:
        while True:
            total, ended = conn.execute(
                select(func.count(), func.count(Task.finished_at)).select_from(Task)
            ).one()
            conn.commit()
            if ended == total or time.monotonic() > deadline:
                break
            time.sleep(1)
        rows = conn.execute(
            select(Task.created_at, TaskStage.started_at)
            .join(TaskStage, TaskStage.task_id == Task.id)
            .where(TaskStage.started_at.is_not(None))
        ).all()
    engine.dispose()
    return total, ended, [(started - created).total_seconds() for created, started in rows]


def main() -> None:
    if shutil.which("wrk") is None:
        sys.exit("the sustained-load benchmark needs wrk: apt-get install -y wrk")
    with tempfile.TemporaryDirectory(prefix="taskdeck-sustained-") as folder:
        deck = Deck(Path(folder), {"TASKDECK_PIPELINES_PATH": str(HERE / "pipelines")})
        try:
            for _ in range(WORKERS):
                deck.start_worker(threads=THREADS)
            load = submit_load(deck)
            time.sleep(20)
            early = memory(deck)
            output, _ = load.communicate()
            late = memory(deck)
            url = deck.env["TASKDECK_DATABASE_URL"]
            total, ended, waits = queue_waits(url, time.monotonic() + 120)
        finally:
            deck.close()
    result, errors = wrk_result(output)
    figure(
        f"sustained load: {result['requests'] / SECONDS * 60:.0f} submits/min for {SECONDS} s "
        f"({WORKERS} workers × {THREADS} threads): submit p50 {result['p50_us'] / 1000:.1f} ms, "
        f"p95 {result['p95_us'] / 1000:.1f} ms, p99 {result['p99_us'] / 1000:.1f} ms, "
        f"errors {sum(errors.values())} {errors}"
    )
    p50, p95, p99 = percentiles(waits)
    figure(
        f"sustained load: queue wait (submit → stage start) p50 {p50 * 1000:.0f} ms, "
        f"p95 {p95 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms; {ended} of {total} tasks ended "
        f"within 120 s of the load's end"
    )
    figure(f"sustained load: memory 20 s in: {early}; at the end: {late}")


if __name__ == "__main__":
    main()
