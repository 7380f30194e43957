"""Pipelines the tests run through real workers, loaded from TASKDECK_PIPELINES_PATH."""

import os
import subprocess
import time
from pathlib import Path

from pydantic import Field

from tasks.pipelines import Params, Pipeline


class Marked(Params):
    """`mark`: a file the stage appends to, so a test sees what ran (pids, items)."""

    mark: str = ""
    seconds: float = Field(0, ge=0, le=600)
    count: int = Field(5, ge=0, le=100_000)
    fail: list[int] = []


def note(params: Marked, text: str) -> None:
    if params.mark:
        with open(params.mark, "a", encoding="utf-8") as fh:
            fh.write(text + "\n")


stubborn = Pipeline("stubborn", title="Ignores cancels", params=Marked)


@stubborn.stage(isolated=True, cancel_grace=1)
def sleep_in_c(ctx, params):
    """Never checks for a cancel: only a kill stops it."""
    note(params, f"pid {os.getpid()}")
    ctx.log("sleeping without checking")
    time.sleep(params.seconds)
    return {"slept": params.seconds}


slow = Pipeline("slow", title="Runs past its timeout", params=Marked)


@slow.stage(isolated=True, timeout=1)
def too_long(ctx, params):
    note(params, f"pid {os.getpid()}")
    time.sleep(params.seconds)
    return {}


flaky = Pipeline("flaky", title="Fails twice, then works", params=Marked)


@flaky.stage(retries=2, retry_backoff=0.2)
def wobble(ctx, params):
    ctx.log(f"attempt {ctx.attempt}")
    if ctx.attempt <= params.count:
        raise ConnectionError(f"upstream hiccup {ctx.attempt}")
    return {"attempt": ctx.attempt}


patient = Pipeline("patient", title="Fails once, then waits out a long back-off", params=Marked)


@patient.stage(retries=1, retry_backoff=30)
def hiccup(ctx, params):
    if ctx.attempt == 1:
        raise ConnectionError("upstream hiccup")
    return {"attempt": ctx.attempt}


chatty = Pipeline("chatty", title="Logs, prints and keeps files", params=Marked)


@chatty.stage(isolated=True)
def produce(ctx, params):
    ctx.log("第一行\n第二行")
    print("plain stdout, 标准输出", flush=True)
    os.write(2, "stderr 错误\n".encode())
    ctx.artifact("报告.txt", "中文内容\n")
    ctx.artifact("data.bin", bytes(range(256)))
    if params.mark:
        path = Path(params.mark)
        path.write_text("<html><script>alert(1)</script></html>", encoding="utf-8")
        ctx.artifact("page.html", path)
    ctx.save({"job": "remote-42"})
    return {"ok": True}


@chatty.stage()
def summarise(ctx, params, produce):
    ctx.log(f"after produce: {produce} saved={ctx.saved}")
    if 2 in params.fail and ctx.retry_number == 0:
        raise RuntimeError("summarise fails on the first run")
    return {"produced": produce}


batch = Pipeline("batch", title="Items, some failing", params=Marked)


@batch.stage()
def work_items(ctx, params):
    ctx.save({"started": ctx.saved.get("started", 0) + 1})
    for item in ctx.each(range(params.count)):
        note(params, f"item {item}")
        if item in params.fail:
            raise ValueError(f"item {item} is broken")
        if params.seconds:
            time.sleep(params.seconds)
    return {"count": params.count}


@batch.stage()
def after_items(ctx, params, work_items):
    return {"after": work_items}


isolated_batch = Pipeline("isolated_batch", title="Items in a child process", params=Marked)


@isolated_batch.stage(isolated=True)
def child_items(ctx, params):
    for item in ctx.each(range(params.count)):
        note(params, f"item {item}")
        if item in params.fail:
            raise ValueError(f"item {item} is broken")
        time.sleep(params.seconds)
    return {"count": params.count}


lingering = Pipeline("lingering", title="Returns, but leaves a thread running", params=Marked)


@lingering.stage(isolated=True)
def leave_a_thread(ctx, params):
    """A non-daemon thread keeps the child's interpreter alive after the stage returned."""
    import threading

    threading.Thread(target=time.sleep, args=(600,)).start()
    note(params, f"pid {os.getpid()}")
    return {"returned": True}


crasher = Pipeline("crasher", title="Its process dies", params=Marked)


@crasher.stage(isolated=True)
def die(ctx, params):
    """Exits with status `count`, or kills itself with signal 9 when `count` is 0."""
    ctx.log("about to die")
    if params.count:
        os._exit(params.count)
    os.kill(os.getpid(), 9)


ticker = Pipeline("ticker", title="Logs a numbered line now and then", params=Marked)


@ticker.stage()
def tick(ctx, params):
    """`count` numbered Chinese lines, `seconds` apart, stopping at once when cancelled."""
    for n in range(1, params.count + 1):
        ctx.check_cancelled()
        ctx.log(f"第 {n} 行")
        time.sleep(params.seconds)
    return {"lines": params.count}


def items_by_run(ctx, params):
    """Notes `run <pid>` at each start, then `item N` as each item begins."""
    note(params, f"run {os.getpid()}")
    for item in ctx.each(range(params.count)):
        note(params, f"item {item}")
        time.sleep(params.seconds)
    return {"count": params.count}


resumable = Pipeline("resumable", title="Items that say which run did them", params=Marked)
resumable.stage("items_by_run")(items_by_run)

resumable_isolated = Pipeline(
    "resumable_isolated", title="Items in a child, saying which run did them", params=Marked
)
resumable_isolated.stage("items_by_run", isolated=True)(items_by_run)


family = Pipeline("family", title="A child with a child of its own", params=Marked)


@family.stage(isolated=True, cancel_grace=1)
def sleep_with_a_grandchild(ctx, params):
    """Starts `sleep` (its own child, in the stage's process group) and waits for it."""
    grandchild = subprocess.Popen(["sleep", str(params.seconds)])
    note(params, f"pid {os.getpid()} {grandchild.pid}")
    grandchild.wait()
    return {}


large = Pipeline("large", title="Big output and saved state", params=Marked)


@large.stage(isolated=True)
def big(ctx, params):
    """Messages to the parent far over the 64 KiB an output line may have."""
    ctx.save({"cursor": "游标" * 50_000})
    return {"text": "大" * 100_000}
