"""Stage work: what own pipelines cost, with a real consumer and a plug-in folder of pipelines.

The pipelines live in a plug-in file this script writes to a temporary
folder, named by TASKDECK_PIPELINES_PATH before the app loads its catalog
(isolated stages' child processes inherit it). Three figures:

- `ctx.each` throughput: one in-thread stage iterating 20,000 no-op items;
  items / (stage finished_at - started_at), read from the stage's row.
  Goal: ≥ 2,000 items/s on SQLite.
- Isolated-stage start overhead: 30 one-stage no-op tasks with
  isolated=True, then 30 with isolated=False, one worker thread. The extra
  cost per stage is the p50 of the stage rows' durations, isolated minus
  in-thread; the drain (first stage start → last stage finish) difference
  over N is shown beside it.
- Forced-cancel latency: isolated stages that sleep in C (time.sleep(600),
  never checking for a cancel), cancel_grace=0 (20 tasks) and
  cancel_grace=1 (10 tasks), cancelled one by one through the service
  layer while the others keep running, each after a random pause of up to
  one cancel poll (0.5 s) so cancels do not all land in step with the
  parents' polls. Timed from just before the cancel call to the stage's
  process being dead (it wrote its pid to a file; dead = exited, reaped or
  not) and to the task reading `cancelled`.
"""

import atexit
import contextlib
import os
import random
import shutil
import signal
import statistics
import tempfile
import time
from pathlib import Path

PLUGIN = '''\
"""Pipelines for bench/stage_work.py (written by it; deleted when it ends)."""

import os
import time
from pathlib import Path

from pydantic import Field

from tasks.pipelines import Params, Pipeline


class Work(Params):
    items: int = Field(0, ge=0, le=1_000_000)
    pid_dir: str = ""


bench_each = Pipeline("bench_each", params=Work)


@bench_each.stage()
def iterate(ctx, params):
    done = 0
    for _ in ctx.each(range(params.items)):
        done += 1
    return {"items": done}


bench_isolated = Pipeline("bench_isolated", params=Work)


@bench_isolated.stage(isolated=True)
def noop(ctx, params):
    return {}


bench_in_thread = Pipeline("bench_in_thread", params=Work)


@bench_in_thread.stage(isolated=False)
def noop_here(ctx, params):
    return {}


def sleep_in_c(ctx, params):
    """Tell the benchmark its pid, then sleep without ever checking for a cancel."""
    path = Path(params.pid_dir) / ctx.task_id
    path.with_suffix(".tmp").write_text(str(os.getpid()))
    path.with_suffix(".tmp").rename(path)
    time.sleep(600)
    return {}


bench_stubborn_0 = Pipeline("bench_stubborn_0", params=Work)
bench_stubborn_0.stage("sleep", isolated=True, cancel_grace=0)(sleep_in_c)
bench_stubborn_1 = Pipeline("bench_stubborn_1", params=Work)
bench_stubborn_1.stage("sleep", isolated=True, cancel_grace=1)(sleep_in_c)
'''

# Before the app (and its catalog) is imported: the worker and its children read the same folder.
SCRATCH = Path(tempfile.mkdtemp(prefix="taskdeck-stage-work-"))
atexit.register(shutil.rmtree, SCRATCH, ignore_errors=True)
(SCRATCH / "plugins").mkdir()
(SCRATCH / "plugins" / "stage_work_pipelines.py").write_text(PLUGIN)
PIDS = SCRATCH / "pids"
PIDS.mkdir()
os.environ["TASKDECK_PIPELINES_PATH"] = str(SCRATCH / "plugins")

from harness import figure, make_app, percentiles, start_consumer  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from app.extensions import db  # noqa: E402
from app.models import Task, TaskItem, TaskStage  # noqa: E402
from app.services import accounts, cancelling, commands  # noqa: E402
from tasks.isolation import CANCEL_POLL  # noqa: E402

ITEMS = 20_000
STARTS = 30
CANCELS = {0: (2, 10), 1: (1, 10)}  # cancel_grace: (rounds, tasks running at once)


def submit(user, pipeline: str, **params) -> str:
    return commands.submit(user, pipeline, params, 6, actor="bench").id


def wait_until(condition, timeout: float, what: str) -> None:
    give_up = time.monotonic() + timeout
    while not condition():
        db.session.commit()
        if time.monotonic() > give_up:
            raise RuntimeError(f"gave up waiting for {what} after {timeout:.0f} s")
        time.sleep(0.01)
    db.session.commit()


def count_in(ids: list[str], *states: str) -> int:
    return db.session.scalar(
        select(func.count()).select_from(Task).where(Task.id.in_(ids), Task.state.in_(states))
    )


def stage_rows(ids: list[str]) -> list[TaskStage]:
    rows = list(db.session.scalars(select(TaskStage).where(TaskStage.task_id.in_(ids))))
    db.session.commit()
    return rows


def seconds(row: TaskStage) -> float:
    return (row.finished_at - row.started_at).total_seconds()


def each_throughput(app, user) -> None:
    consumer = start_consumer(app, 1)
    task_id = submit(user, "bench_each", items=ITEMS)
    wait_until(lambda: count_in([task_id], "succeeded") == 1, 120, "the ctx.each task")
    consumer.stop(graceful=True)
    (row,) = stage_rows([task_id])
    stored = db.session.scalar(
        select(func.count()).select_from(TaskItem).where(TaskItem.task_id == task_id)
    )
    db.session.commit()
    if not row.items_done == stored == ITEMS:
        raise RuntimeError(f"items_done {row.items_done}, {stored} item rows, not {ITEMS}")
    took = seconds(row)
    figure(
        f"stage work: ctx.each, {ITEMS} no-op items in one in-thread stage: "
        f"{ITEMS / took:,.0f} items/s ({took:.2f} s, stage started → finished)"
    )


def drain(app, user, pipeline: str) -> tuple[float, float]:
    """Run STARTS one-stage tasks on one worker thread: (p50 stage seconds, drain seconds)."""
    ids = [submit(user, pipeline) for _ in range(STARTS)]
    consumer = start_consumer(app, 1)
    wait_until(lambda: count_in(ids, "succeeded") == STARTS, 120, f"{pipeline} tasks")
    consumer.stop(graceful=True)
    rows = stage_rows(ids)
    span = (max(r.finished_at for r in rows) - min(r.started_at for r in rows)).total_seconds()
    return statistics.median(seconds(r) for r in rows), span


def isolation_overhead(app, user) -> None:
    here, here_span = drain(app, user, "bench_in_thread")
    child, child_span = drain(app, user, "bench_isolated")
    figure(
        f"stage work: isolated stage start, {STARTS} one-stage no-op tasks, 1 worker thread: "
        f"stage p50 {child * 1000:.0f} ms isolated vs {here * 1000:.1f} ms in-thread, "
        f"+{(child - here) * 1000:.0f} ms per stage (p50 difference); drain "
        f"{child_span:.2f} s vs {here_span:.2f} s, +{(child_span - here_span) / STARTS * 1000:.0f} "
        f"ms per stage (difference / {STARTS})"
    )


def dead(pid: int) -> bool:
    """Exited: no such process, or a zombie its parent (a worker thread here) has not reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def forced_cancels(app, user, grace: int, rounds: int, at_once: int) -> None:
    to_dead, to_cancelled = [], []
    jitter = random.Random(grace)
    consumer = start_consumer(app, at_once)
    try:
        for _ in range(rounds):
            ids = [
                submit(user, f"bench_stubborn_{grace}", pid_dir=str(PIDS)) for _ in range(at_once)
            ]
            wait_until(
                lambda ids=ids: all((PIDS / i).exists() for i in ids), 60, "the stages' pid files"
            )
            for task_id in ids:
                pid = int((PIDS / task_id).read_text())
                # The parents poll for cancels in step (they started together), and each
                # cancel here follows the last one's end: without a random pause every
                # cancel would land just after a poll, and all measure the worst case.
                time.sleep(jitter.uniform(0, CANCEL_POLL))
                asked = time.perf_counter()
                outcome = cancelling.request_cancel(user, task_id)
                assert outcome.state == "cancelling", outcome
                gone = cancelled = None
                while gone is None or cancelled is None:
                    now = time.perf_counter()
                    if gone is None and dead(pid):
                        gone = now
                    if cancelled is None and count_in([task_id], "cancelled"):
                        cancelled = now
                    db.session.commit()
                    if now - asked > 30:
                        raise RuntimeError(f"task {task_id} not cancelled and killed in 30 s")
                    time.sleep(0.002)
                to_dead.append(gone - asked)
                to_cancelled.append(cancelled - asked)
    finally:
        # Whatever went wrong, no stage sleeps on (and the consumer's graceful stop returns).
        for file in PIDS.glob("*"):
            if file.suffix:  # a .tmp being written: that stage's pid is not known yet
                continue
            pid = int(file.read_text())
            if not dead(pid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
        consumer.stop(graceful=True)
    dead50, _, dead99 = percentiles(to_dead)
    done50, _, done99 = percentiles(to_cancelled)
    worst = max(to_cancelled)
    figure(
        f"stage work: forced cancel, {len(to_dead)} isolated stages sleeping in C, "
        f"cancel_grace={grace}, {at_once} running: cancel call → process dead "
        f"p50 {dead50 * 1000:.0f} ms, p99 {dead99 * 1000:.0f} ms; → cancelled "
        f"p50 {done50 * 1000:.0f} ms, p99 {done99 * 1000:.0f} ms, max {worst * 1000:.0f} ms"
    )


def main() -> None:
    app, _ = make_app()
    with app.app_context():
        user = accounts.find_user("bench")
        each_throughput(app, user)
        isolation_overhead(app, user)
        for grace, (rounds, at_once) in CANCELS.items():
            forced_cancels(app, user, grace, rounds, at_once)


if __name__ == "__main__":
    main()
