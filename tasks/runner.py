"""Runs one stage of one task inside the Flask app, through the service layer's lease protocol.

A stage runs in the worker's thread, or in a child process group when it is
isolated (tasks/isolation.py); either way it ends as an `Ending`, which
`_record` turns into the one matching transition.
"""

import functools
import logging
import os
import random
import socket
import threading
import time
import traceback
from dataclasses import replace
from typing import NamedTuple

from app.constants import (
    ERR_EXIT_STATUS,
    ERR_STAGE_RAISED,
    ERR_STAGE_TIMEOUT,
    ERR_UNKNOWN_PIPELINE,
)
from app.extensions import db
from app.services import lease, recovery
from app.services.catalog import get_pipeline
from tasks.channels import LocalChannel, local_context
from tasks.context import (
    ArtifactRefused,
    StageContext,
    StageHandedBack,
    StageTimedOut,
    TaskCancelled,
    call_stage,
    clean,
)
from tasks.draining import DrainTurn
from tasks.isolation import Ending, checked_output, run_isolated

log = logging.getLogger("taskdeck.runner")


def worker_identity() -> str:
    """host:pid, recorded on each stage it starts (and on reaper runs) to show who did the work."""
    return f"{_hostname()}:{os.getpid()}"


@functools.cache
def _hostname() -> str:
    return socket.gethostname()


class Heartbeats(threading.Thread):
    """Refreshes the heartbeat of every stage this worker runs, also while they report nothing.

    One thread per worker process, started with its first stage: a thread
    per stage cost more than a short stage itself. A stage whose lease is
    gone (it ended, or the reaper gave it to another worker) is dropped.
    """

    def __init__(self, app):
        super().__init__(name="heartbeats", daemon=True)
        self.app, self.interval = app, app.config["HEARTBEAT_INTERVAL"]
        self._runs: dict[tuple[str, int], lease.StageRun] = {}
        self._lock = threading.Lock()

    def add(self, run: lease.StageRun) -> None:
        with self._lock:
            self._runs[run.task_id, run.dispatch_seq] = run
            if not self.is_alive():
                self.start()

    def discard(self, run: lease.StageRun) -> None:
        with self._lock:
            self._runs.pop((run.task_id, run.dispatch_seq), None)

    def run(self) -> None:
        while True:
            time.sleep(self.interval)
            with self._lock:
                runs = list(self._runs.values())
            for run in runs:
                try:
                    with self.app.app_context():
                        held = lease.heartbeat(run)
                except Exception:  # a locked database now and then must not end the beats
                    log.exception("heartbeat of task %s failed", run.task_id)
                    continue
                if not held:
                    self.discard(run)


class _Held(NamedTuple):
    """A last stage that ended well, its finish waiting for the thread's next claim."""

    run: lease.StageRun
    stage: object
    ending: Ending


class _ThreadState(threading.local):
    """Per worker thread: inside a call that pulls messages; the finish it holds."""

    draining = False
    held: _Held | None = None


class StageRunner:
    """The function a worker's queue calls for each message, bound to one Flask app.

    `hand_back()` is the worker's way out at shutdown: running stages stop
    at their next check and go back to the queue from their checkpoint.

    Once `pull_from()` names the queue (a worker does), a thread whose
    task's last stage ended well takes the next message itself, and that
    stage's finish shares the transaction of the next one's claim (`_drain`);
    one thread at a time, the others wait at the queue's gate (DrainTurn).
    Any other stage's finish is written at once: it queues the task's next
    stage, which must go ahead of new tasks of its priority (README, "Priority").
    """

    def __init__(self, app):
        self.app = app
        self.heartbeats = Heartbeats(app)
        self.handing_back = threading.Event()
        self._busy = 0
        self._idle = threading.Condition()
        self._huey = self._stop_flag = None
        # Unbound, a turn no thread waits at (no gate): it only times stages.
        self._turn = DrainTurn(threading.Event())
        self._thread = _ThreadState()

    def pull_from(self, huey, stop_flag: threading.Event) -> None:
        """The queue to take messages from, and the consumer's flag that says to take no more.

        Huey's loop in the other threads then waits at the queue's gate while one drains.
        """
        self._huey, self._stop_flag = huey, stop_flag
        self._turn = DrainTurn(stop_flag)
        huey.gate = self._turn.wait

    def __call__(self, task_id: str, stage_index: int, dispatch_seq: int) -> None:
        if self._thread.draining:
            # A message _drain pulled: the app context and the busy count of its call serve
            # (a context pushed per stage cost a tenth of a no-op task, bench/overhead.py).
            self._claim_and_run(task_id, stage_index, dispatch_seq)
            return
        # Busy from before the claim, so a hand-back cannot miss a stage being claimed.
        with self._idle:
            self._busy += 1
        try:
            with self.app.app_context():
                self._thread.draining = True
                try:
                    self._claim_and_run(task_id, stage_index, dispatch_seq)
                    self._drain()
                finally:
                    self._thread.draining = False
                    self._record_held()
        finally:
            with self._idle:
                self._busy -= 1
                self._idle.notify_all()

    def _drain(self) -> None:
        """While a last stage's finish waits and the queue has messages, run the next one here.

        A one-stage no-op task cost a worker three transactions: the queue's
        dequeue, the claim, the finish. Here the finish rides with the next
        claim, so a busy queue costs two (bench/overhead.py). Nothing waits
        for it: with no message at hand, the finish is written at once. Each
        message goes through Huey's own `execute` (a delayed one back to its
        schedule), which calls this runner again, in this thread. While
        stages are short, one thread of the worker drains at a time
        (tasks/draining.py); a thread whose turn it is not writes its finish.
        """
        try:
            while self._thread.held is not None and self._pulls() and self._turn.take():
                message = self._huey.dequeue_now()
                if message is None:
                    return
                try:
                    self._huey.execute(message)
                except Exception:  # as Huey's worker loop does
                    log.exception("unhandled error running message %s", message.id)
        finally:
            self._turn.leave()

    def _pulls(self) -> bool:
        """Bound to a queue (pull_from) and neither stopping nor handing back."""
        return self._huey is not None and not (
            self.handing_back.is_set() or self._stop_flag.is_set()
        )

    def _claim_and_run(self, task_id: str, stage_index: int, dispatch_seq: int) -> None:
        held, self._thread.held = self._thread.held, None
        finishing = None if held is None else (held.run, held.ending.output)
        try:
            run = lease.start_stage(
                task_id, stage_index, dispatch_seq, worker_identity(), finishing=finishing
            )
        except Exception:
            if held is not None:  # the claim failed: the finish goes in on its own
                self._record_safely(*held)
            raise
        finally:
            if held is not None:  # beaten for until its finish was written
                self.heartbeats.discard(held.run)
        if run is None:
            log.info("skipping stale or cancelled stage %s of %s", stage_index, task_id)
            return
        if self.handing_back.is_set():  # claimed as the worker stops: give it straight back
            recovery.hand_back_stage(run)
            return
        self.heartbeats.add(run)
        try:
            self._run_stage(run)
        finally:
            if self._thread.held is None:  # not held for the next claim
                self.heartbeats.discard(run)

    def hand_back(self, deadline: float) -> bool:
        """Ask running stages to hand themselves back; True if all did by `deadline` (monotonic)."""
        self.handing_back.set()
        with self._idle:
            return self._idle.wait_for(
                lambda: self._busy == 0, timeout=max(deadline - time.monotonic(), 0)
            )

    @staticmethod
    def _stage_of(run: lease.StageRun):
        """The pipeline and the stage by the name recorded at submit (a task keeps its shape)."""
        pipeline = get_pipeline(run.type)
        if pipeline is None:
            raise LookupError(f"No pipeline named '{run.type}'")
        stage = pipeline.stage_named(run.params, run.stage_name)
        if stage is None:
            raise LookupError(f"Pipeline '{run.type}' has no stage '{run.stage_name}' any more")
        return pipeline, stage

    def _run_stage(self, run: lease.StageRun) -> None:
        """Run the stage's code, here or in a child process group, and record how it ended."""
        try:
            pipeline, stage = self._stage_of(run)
        except Exception as exc:  # the code changed since submit, or a plug-in broke
            lease.fail_stage(run, ERR_UNKNOWN_PIPELINE, str(exc))
            return
        deadline = time.monotonic() + stage.timeout if stage.timeout else None
        channel = None
        self._turn.began_stage()
        try:
            ctx, channel = local_context(run, self.handing_back.is_set, deadline)
            if stage.in_child:
                ending = run_isolated(run, pipeline, stage, channel, self.handing_back.is_set)
            else:
                ending = self._run_here(run, pipeline, stage, ctx, channel)
        except Exception as exc:  # writing what the stage reported failed: never leave it running
            ending = self._unrecorded(run, exc)
        finally:
            self._turn.ended_stage()  # the stage's own time, not its finish's write
            if channel is not None:
                channel.discard_staged()
        # A last stage's finish queues nothing that must go first: it can wait for the next claim.
        last = ending.how == "ok" and run.next_stage is None
        if last and self._pulls():
            self._thread.held = _Held(run, stage, ending)
        else:
            self._record_safely(run, stage, ending)

    def _record_held(self) -> None:
        """The finish still waiting when this thread goes back to Huey's loop."""
        held, self._thread.held = self._thread.held, None
        if held is not None:
            try:
                self._record_safely(*held)
            finally:
                self.heartbeats.discard(held.run)

    def _record_safely(self, run: lease.StageRun, stage, ending: Ending) -> None:
        try:
            self._record(run, stage, ending)
        except Exception as exc:
            self._record(run, stage, self._unrecorded(run, exc))

    @staticmethod
    def _unrecorded(run: lease.StageRun, exc: Exception) -> Ending:
        db.session.rollback()
        log.exception(
            "could not record the work of stage %r of task %s", run.stage_name, run.task_id
        )
        # The database's own words (SQL, parameters) stay in the worker's log.
        message = f"Taskdeck could not store what the stage reported ({type(exc).__name__})"
        return Ending("failed", code=ERR_STAGE_RAISED, message=message)

    @staticmethod
    def _run_here(run, pipeline, stage, ctx: StageContext, channel: LocalChannel) -> Ending:
        try:
            # No check before the run: start_stage has just seen the task runnable.
            output = call_stage(stage, ctx, pipeline.parse(run.params), run.outputs)
        except TaskCancelled:
            ending = Ending("cancelled", message="; ".join(ctx.cancel_notes) or None)
        except StageHandedBack:
            ending = Ending("handed_back")
        except StageTimedOut:
            message = f"Stage {run.stage_name!r} ran past its timeout of {stage.timeout:g} s"
            ending = Ending("failed", code=ERR_STAGE_TIMEOUT, message=message)
        except ArtifactRefused as exc:
            ending = Ending("failed", code=exc.code, message=str(exc))
        except Exception as exc:
            log.exception("stage %r of task %s raised", run.stage_name, run.task_id)
            channel.log("stderr", traceback.format_exc())
            ending = Ending("failed", code=ERR_STAGE_RAISED, message=f"{type(exc).__name__}: {exc}")
        else:
            ending = checked_output({} if output is None else output)
        channel.flush()
        return ending

    @staticmethod
    def _record(run: lease.StageRun, stage, ending: Ending) -> None:
        """The one place a stage's ending becomes a transition, however the stage ran."""
        if ending.message is not None:  # a stage's error may hold NUL or a lone surrogate
            ending = replace(ending, message=clean(ending.message))
        if ending.how == "ok":
            lease.finish_stage(run, ending.output)
        elif ending.how == "cancelled":
            reason = (
                f"killed after its cancel_grace of {stage.cancel_grace:g} s"
                if ending.forced
                else "stopped inside the stage"
            ) + (f"; {ending.message}" if ending.message else "")
            lease.stop_cancelled_stage(run, forced=ending.forced, reason=reason)
        elif ending.how == "handed_back":
            recovery.hand_back_stage(run)
            log.info("handed back stage %r of task %s", run.stage_name, run.task_id)
        elif ending.code in RETRIED_CODES and run.failures < stage.retries:
            delay = backoff(stage.retry_backoff, run.failures + 1)
            if not lease.retry_stage_later(run, ending.code, ending.message, delay):
                lease.fail_stage(run, ending.code, ending.message, forced=ending.forced)
        else:
            lease.fail_stage(run, ending.code, ending.message, forced=ending.forced)


# Failures worth another attempt; a bad output or a missing pipeline would fail the same way again.
RETRIED_CODES = {ERR_STAGE_RAISED, ERR_STAGE_TIMEOUT, ERR_EXIT_STATUS}


def backoff(base: float, failure: int) -> float:
    """Seconds to wait after the `failure`-th failure: base, 2x, 4x... plus up to 25 % jitter."""
    delay = base * 2 ** (failure - 1)
    return delay + random.uniform(0, delay / 4)
