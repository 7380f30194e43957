"""Running a stage in a child process group, so a cancel or a timeout can stop it for real.

The parent (a worker thread) starts `python -m tasks.child` in a new
session, relays its messages (progress, log lines, items, artifacts,
saved state) to the database, and watches the clock and the task: on a
cancel it tells the child, waits `cancel_grace` seconds, then SIGTERMs and
SIGKILLs the whole group. A timeout kills the same way at once. Huey's own
revoke cannot stop a running task (huey #803); a process group can.
"""

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from app.constants import (
    ERR_BAD_OUTPUT,
    ERR_EXIT_STATUS,
    ERR_STAGE_RAISED,
    ERR_STAGE_TIMEOUT,
)
from app.services import artifacts, lease
from tasks.channels import LocalChannel
from tasks.child import FD_VARIABLE, bounded_lines
from tasks.context import ArtifactRefused, storable
from tasks.pipelines.commands import render_argv

# How often the parent reads the task for a cancel; and how long SIGTERM may take before SIGKILL.
CANCEL_POLL = 0.5
TERM_WAIT = 2.0
# How long a child that has finished (or whose leader exited) may keep its pipes open.
LINGER = 2.0
# A stopping worker waits HAND_BACK_WAIT (tasks/worker.py) for its stages: an
# isolated one gets at most this long to hand itself back before it is killed.
HAND_BACK_GRACE = 5.0
QUEUE_SIZE = 2000


@dataclass
class Ending:
    """How a stage ended: ok, cancelled, handed_back, or failed (with a code and a message)."""

    how: str
    output: dict | None = None
    code: str | None = None
    message: str | None = None
    forced: bool = False


def checked_output(output) -> Ending:
    """A stage's return value as an ending: ok if it stores as JSON, else a bad_stage_output."""
    try:
        storable(output)
    except (TypeError, ValueError) as exc:
        return Ending("failed", code=ERR_BAD_OUTPUT, message=f"Stage output is not JSON: {exc}")
    return Ending("ok", output=output)


def _exited(process: subprocess.Popen) -> bool:
    """Has the child's leader exited? Asked without reaping it (WNOWAIT).

    Until it is reaped its pid cannot be reused, so signalling the group by
    that id can never reach an unrelated process; `run_isolated` reaps last.
    """
    try:
        found = os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return found is not None


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def kill_group(process: subprocess.Popen) -> None:
    """SIGTERM the child's process group, give it TERM_WAIT seconds, then SIGKILL all of it."""
    _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + TERM_WAIT
    while not _exited(process) and time.monotonic() < deadline:
        time.sleep(0.02)
    _signal_group(process, signal.SIGKILL)  # the leader if it held out, and any stragglers


def _spec(run: lease.StageRun, pipeline, stage, channel: LocalChannel) -> dict:
    return {
        "type": run.type,
        "stage": run.stage_name,
        "stage_index": run.stage_index,
        "task_id": run.task_id,
        "retry_number": run.retry_number,
        "attempt": run.attempt,
        "params": run.params,
        "outputs": run.outputs,
        "saved": run.saved,
        "recorded": sorted(channel.recorded_keys()),
        "staging_dir": str(channel.staging_dir()),
        "artifact_max": channel.artifact_max,
        "origin": pipeline.origin,
        "argv": render_argv(stage.argv, run.params) if stage.argv else None,
        "cwd": stage.cwd,
    }


# The deck's own secrets and server addresses: a stage never talks to the database.
PRIVATE = (
    "TASKDECK_SECRET_KEY",
    "TASKDECK_ADMIN_PASSWORD",
    "TASKDECK_DATABASE_URL",
    "TASKDECK_QUEUE_URL",
    "TASKDECK_RATELIMIT_STORAGE_URL",
    # Credentials only the worker's own pipelines (document, remote_job) may read.
    "TASKDECK_LLM_KEY",
    "TASKDECK_LLM_KEY_FILE",
    "TASKDECK_SECRETS_FILE",
)


def _child_env(fd: int) -> dict:
    """The worker's environment without PRIVATE, plus the message pipe; output unbuffered,
    so print() shows as it happens and is not lost when the stage is killed."""
    env = {k: v for k, v in os.environ.items() if k not in PRIVATE}
    return {**env, FD_VARIABLE: str(fd), "PYTHONUNBUFFERED": "1"}


def _message(line: str) -> list:
    """One JSON message from the child; anything else written to that pipe is kept as a log line."""
    try:
        message = json.loads(line)
    except ValueError:
        message = None
    if isinstance(message, list) and message and isinstance(message[0], str):
        return message
    return ["log", "stderr", line]


def _read_lines(stream, events: queue.Queue, wrap, bounded: bool = True) -> None:
    """Queue each line of a pipe; output lines are cut to 64 KiB, messages are read whole."""
    lines = bounded_lines(stream) if bounded else (raw.decode("utf-8", "replace") for raw in stream)
    try:
        with stream:
            for line in lines:
                events.put(wrap(line))
    finally:
        events.put(None)  # this stream is done


def run_isolated(
    run: lease.StageRun, pipeline, stage, channel: LocalChannel, handing_back
) -> Ending:
    """Run the stage in a child process group and say how it ended."""
    read_fd, write_fd = os.pipe()
    process = subprocess.Popen(
        [sys.executable, "-m", "tasks.child"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        pass_fds=[write_fd],
        env=_child_env(write_fd),
        start_new_session=True,
    )
    os.close(write_fd)
    # Bounded: a child writing faster than the database takes its lines waits.
    events: queue.Queue = queue.Queue(maxsize=QUEUE_SIZE)
    readers = [
        (process.stdout, lambda line: ["log", "stdout", line], True),
        (process.stderr, lambda line: ["log", "stderr", line], True),
        (os.fdopen(read_fd, "rb"), _message, False),  # an output or a saved dict may be large
    ]
    for stream, wrap, bounded in readers:
        args = (stream, events, wrap, bounded)
        threading.Thread(target=_read_lines, args=args, daemon=True).start()
    try:
        process.stdin.write((json.dumps(_spec(run, pipeline, stage, channel)) + "\n").encode())
        process.stdin.flush()
        return _supervise(run, stage, channel, handing_back, process, events, len(readers))
    finally:
        if not _exited(process):
            kill_group(process)
        _signal_group(process, signal.SIGKILL)  # nothing of the group outlives the stage
        process.wait()  # reaped only now: the group's id was ours until here
        process.stdin.close()
        channel.flush()


def _supervise(run, stage, channel, handing_back, process, events, open_streams) -> Ending:
    started = time.monotonic()
    deadline = started + stage.timeout if stage.timeout else None
    kill_at, why, ending, next_check = None, None, None, started + CANCEL_POLL
    linger_until = None  # once it has said how it ended, or its leader has exited
    while open_streams:
        wait = 0.1
        if kill_at is not None and ending is None and not _exited(process):
            wait = max(0.0, min(0.1, kill_at - time.monotonic()))
        try:
            event = events.get(timeout=wait)
        except queue.Empty:
            event = ()
        if event is None:
            open_streams -= 1
        elif event and ending and ending.how == "failed" and event[0] != "log":
            continue  # it has failed: keep its last words, record nothing more of its work
        elif event:
            try:
                result = _apply(event, channel)
            except (TypeError, ValueError) as exc:  # a message of the wrong shape: kept, not fatal
                channel.log("stderr", f"unreadable message from the stage's process: {exc}")
                result = None
            if result and not (ending and ending.how == "failed"):
                ending = result  # a refused artifact stays the verdict
                if ending.how == "failed" and not _exited(process):
                    kill_group(process)
        now = time.monotonic()
        if ending is not None or _exited(process):
            # Drain what is left; a leader that lingers (a thread that never
            # ends) or a grandchild holding the pipes open gets LINGER seconds.
            linger_until = linger_until or now + LINGER
            if now >= linger_until:
                kill_group(process)
                break
            continue
        if kill_at is None:
            if deadline is not None and now >= deadline:
                why = "timeout"
                kill_group(process)
            elif handing_back():
                why, kill_at = "handback", now + min(stage.cancel_grace, HAND_BACK_GRACE)
                _order(process, "handback")
            elif now >= next_check:
                next_check = now + CANCEL_POLL
                channel.flush()
                if lease.should_stop(run):
                    why, kill_at = "cancel", now + stage.cancel_grace
                    _order(process, "cancel")
        elif now >= kill_at:
            kill_group(process)
    if ending is not None:
        return checked_output(ending.output) if ending.how == "ok" else ending
    if why == "timeout":
        return Ending(
            "failed",
            code=ERR_STAGE_TIMEOUT,
            message=f"Stage {run.stage_name!r} ran past its timeout of {stage.timeout:g} s",
            forced=True,
        )
    if why == "cancel":
        return Ending("cancelled", forced=True)
    if why == "handback":
        return Ending("handed_back", forced=True)
    if not _exited(process):  # it closed its pipes but lives on
        kill_group(process)
    info = os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
    killed = info.si_code in (os.CLD_KILLED, os.CLD_DUMPED)
    how = (
        f"was killed by signal {info.si_status}"
        if killed
        else f"exited with status {info.si_status}"
    )
    if not killed and info.si_status == 0:
        how += " before it said how the stage ended"
    return Ending("failed", code=ERR_EXIT_STATUS, message=f"The stage's process {how}")


def _order(process: subprocess.Popen, order: str) -> None:
    try:
        process.stdin.write(f"{order}\n".encode())
        process.stdin.flush()
    except BrokenPipeError:
        pass  # it ended meanwhile


def _apply(event: list, channel: LocalChannel) -> Ending | None:
    """One message from the child, written through the channel; the last one says how it ended."""
    op, *args = event
    if op == "end":
        how, *rest = args
        if how == "ok":
            return Ending("ok", output=rest[0])
        if how == "error":
            code, message = rest
            return Ending("failed", code=code or ERR_STAGE_RAISED, message=message)
        return Ending(how)
    if op == "artifact":
        name, path = args
        try:
            channel.artifact(name, _staged(path, channel))
        except ArtifactRefused as exc:
            return Ending("failed", code=exc.code, message=str(exc))
        return None
    handlers = {
        "progress": channel.progress,
        "log": channel.log,
        "item": channel.item,
        "items_total": channel.items_total,
        "save": channel.save,
    }
    if op in handlers:
        handlers[op](*args)
    return None


def _staged(path: str, channel: LocalChannel) -> Path:
    """The child's staged file, only if it is inside this task's staging folder."""
    staged = Path(path).resolve()
    if channel.staging_dir().resolve() not in staged.parents:
        raise artifacts.ArtifactError(f"Artifact file {path!r} is outside the staging folder")
    return staged
