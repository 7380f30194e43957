"""An isolated stage's child process: `python -m tasks.child`, leader of its own process group.

It reads the stage's spec as the first line of stdin, runs the stage (a
Python function, or a command as its own child) and reports to the parent
as JSON lines on the file descriptor named by TASKDECK_CHILD_FD. Later
stdin lines are the parent's orders: `cancel` or `handback`. When stdin
closes without an order (the worker died, even by SIGKILL) the child kills
its whole process group, so nothing outlives the stage.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import traceback
from pathlib import Path

from tasks.context import (
    ArtifactRefused,
    StageContext,
    StageHandedBack,
    TaskCancelled,
    call_stage,
)

FD_VARIABLE = "TASKDECK_CHILD_FD"
# Longest output line read from a pipe (stdout, stderr); the rest of a longer
# line is dropped (the log keeps TASKDECK_LOG_LINE_MAX_BYTES of it anyway), so
# one huge line costs no memory. Messages to the parent are never cut.
LINE_LIMIT = 64 * 1024
# What the codes of app.constants are called here (this module imports nothing from app/).
BAD_OUTPUT, STAGE_ERROR, EXIT_STATUS = "bad_stage_output", "stage_error", "exit_status"


def bounded_lines(stream):
    """Lines of a binary stream as text, each cut to LINE_LIMIT bytes (the rest skipped)."""
    skipping = False
    while chunk := stream.readline(LINE_LIMIT):
        whole = chunk.endswith(b"\n")
        if not skipping:
            yield chunk.decode("utf-8", "replace").rstrip("\r\n")
        skipping = not whole


class PipeChannel:
    """`ctx`'s channel in the child: every call is one JSON line to the parent."""

    def __init__(self, out, spec: dict):
        self._out, self._lock = out, threading.Lock()
        self._recorded = set(spec["recorded"])
        self._staging = Path(spec["staging_dir"])
        self.artifact_max = spec["artifact_max"]
        self.cancelled = threading.Event()
        self.handing_back = threading.Event()

    def send(self, op: str, *args) -> None:
        # ASCII JSON: a lone surrogate travels escaped; the parent stores it as U+FFFD.
        line = json.dumps([op, *args], allow_nan=False)
        with self._lock:
            self._out.write(line + "\n")
            self._out.flush()

    def progress(self, fraction, message):
        self.send("progress", fraction, message)

    def should_stop(self) -> bool:
        return self.cancelled.is_set()

    def log(self, stream, text):
        self.send("log", stream, text)

    def staging_dir(self) -> Path:
        return self._staging

    def artifact(self, name, staged):
        self.send("artifact", name, str(staged))

    def recorded_keys(self) -> set[str]:
        return set(self._recorded)

    def item(self, key, error):
        self._recorded.add(key)
        self.send("item", key, error)

    def items_total(self, total):
        self.send("items_total", total)

    def save(self, data):
        self.send("save", data)


def watch_parent(orders, channel: PipeChannel) -> None:
    """Take the parent's orders; when the parent is gone, take the whole group down."""
    for line in orders:
        order = line.strip()
        if order == "cancel":
            channel.cancelled.set()
        elif order == "handback":
            channel.handing_back.set()
    os.killpg(os.getpgid(0), signal.SIGKILL)


def run_python(spec: dict, channel: PipeChannel) -> None:
    from tasks.pipelines.sources import load_origin

    pipeline = load_origin(spec["origin"])[spec["type"]]
    stage = pipeline.stage_named(spec["params"], spec["stage"])
    ctx = StageContext(
        task_id=spec["task_id"],
        stage=spec["stage"],
        stage_index=spec["stage_index"],
        retry_number=spec["retry_number"],
        attempt=spec["attempt"],
        saved=spec["saved"],
        channel=channel,
        handing_back=channel.handing_back.is_set,
    )
    try:
        output = call_stage(stage, ctx, pipeline.parse(spec["params"]), spec["outputs"])
    except TaskCancelled:
        channel.send("end", "cancelled")
        return
    except StageHandedBack:
        channel.send("end", "handed_back")
        return
    except ArtifactRefused as exc:
        channel.send("end", "error", exc.code, str(exc))
        return
    except Exception as exc:
        channel.log("stderr", traceback.format_exc())
        channel.send("end", "error", STAGE_ERROR, f"{type(exc).__name__}: {exc}")
        return
    try:
        channel.send("end", "ok", {} if output is None else output)
    except (TypeError, ValueError) as exc:  # NaN, a set, an object: not JSON
        channel.send("end", "error", BAD_OUTPUT, f"Stage output is not JSON: {exc}")


def run_command(spec: dict, channel: PipeChannel) -> None:
    """Run the argv in this process group, its output as log lines, files it leaves as artifacts."""
    outbox = Path(spec["staging_dir"]) / "command"
    outbox.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "TASKDECK_TASK_ID": spec["task_id"],
        "TASKDECK_STAGE": spec["stage"],
        "TASKDECK_ARTIFACTS_DIR": str(outbox),
    }
    env.pop(FD_VARIABLE, None)
    try:
        process = subprocess.Popen(
            spec["argv"],
            cwd=spec["cwd"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    except OSError as exc:
        channel.send("end", "error", EXIT_STATUS, f"Cannot start {spec['argv'][0]!r}: {exc}")
        return

    def relay(stream, name):
        for line in bounded_lines(stream):
            channel.log(name, line)

    readers = [
        threading.Thread(target=relay, args=(process.stdout, "stdout"), daemon=True),
        threading.Thread(target=relay, args=(process.stderr, "stderr"), daemon=True),
    ]
    for reader in readers:
        reader.start()
    interrupted = False
    while process.poll() is None:
        if not interrupted and (channel.cancelled.is_set() or channel.handing_back.is_set()):
            process.send_signal(signal.SIGINT)  # the cooperative ask; the parent kills later
            interrupted = True
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=0.1)
    for reader in readers:  # a program it left in the background may hold its output open
        reader.join(timeout=1.0)
    if channel.handing_back.is_set():
        channel.send("end", "handed_back")
    elif channel.cancelled.is_set():
        channel.send("end", "cancelled")
    elif process.returncode != 0:
        how = (
            f"was killed by signal {-process.returncode}"
            if process.returncode < 0
            else f"exited with status {process.returncode}"
        )
        channel.send("end", "error", EXIT_STATUS, f"Command {spec['argv'][0]!r} {how}")
    else:
        for file in sorted(outbox.iterdir()):
            if file.is_file() and not file.name.startswith("."):  # not a tool's hidden leftovers
                channel.artifact(file.name, file)
        channel.send("end", "ok", {"exit_status": 0})


def main() -> None:
    # The orders come on stdin: keep them on a private descriptor, and give the
    # stage (and whatever it starts) an empty stdin, so nothing can read them.
    orders = os.fdopen(os.dup(0), "r", encoding="utf-8")
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115  (the process's whole life)
    out_fd = int(os.environ.pop(FD_VARIABLE))
    os.set_inheritable(out_fd, False)
    out = os.fdopen(out_fd, "w", encoding="utf-8")
    spec = json.loads(orders.readline())
    channel = PipeChannel(out, spec)
    threading.Thread(target=watch_parent, args=(orders, channel), daemon=True).start()
    if spec["argv"] is not None:
        run_command(spec, channel)
    else:
        run_python(spec, channel)
    out.close()


if __name__ == "__main__":
    main()
