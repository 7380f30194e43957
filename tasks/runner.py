"""Runs one stage of one task inside the Flask app, through the service layer's lease protocol."""

import json
import logging
import os
import socket
import threading
import time

from app.constants import ERR_BAD_OUTPUT, ERR_STAGE_RAISED, ERR_UNKNOWN_PIPELINE
from app.services import lease, recovery
from app.services.catalog import get_pipeline
from tasks.context import StageContext, StageHandedBack, TaskCancelled

log = logging.getLogger("taskdeck.runner")


def worker_identity() -> str:
    """host:pid, recorded on each stage it starts (and on reaper runs) to show who did the work."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Heartbeat(threading.Thread):
    """Refreshes a running stage's heartbeat, also while the stage reports no progress.

    It stops by itself once the lease is gone (the stage ended, or the
    reaper gave it to another worker).
    """

    def __init__(self, app, run: lease.StageRun):
        super().__init__(name=f"heartbeat-{run.task_id[:8]}", daemon=True)
        self.app, self.run_, self.stopped = app, run, threading.Event()
        self.interval = app.config["HEARTBEAT_INTERVAL"]

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                with self.app.app_context():
                    if not lease.heartbeat(self.run_):
                        return
            except Exception:  # a locked database now and then must not end the beat
                log.exception("heartbeat of task %s failed", self.run_.task_id)


class StageRunner:
    """The function a worker's queue calls for each message, bound to one Flask app.

    `hand_back()` is the worker's way out at shutdown: running stages stop
    at their next check and go back to the queue from their checkpoint.
    """

    def __init__(self, app):
        self.app = app
        self.handing_back = threading.Event()
        self._busy = 0
        self._idle = threading.Condition()

    def __call__(self, task_id: str, stage_index: int, dispatch_seq: int) -> None:
        # Busy from before the claim, so a hand-back cannot miss a stage being claimed.
        with self._idle:
            self._busy += 1
        try:
            with self.app.app_context():
                self._claim_and_run(task_id, stage_index, dispatch_seq)
        finally:
            with self._idle:
                self._busy -= 1
                self._idle.notify_all()

    def _claim_and_run(self, task_id: str, stage_index: int, dispatch_seq: int) -> None:
        run = lease.start_stage(task_id, stage_index, dispatch_seq, worker_identity())
        if run is None:
            log.info("skipping stale or cancelled stage %s of %s", stage_index, task_id)
            return
        if self.handing_back.is_set():  # claimed as the worker stops: give it straight back
            recovery.hand_back_stage(run)
            return
        beat = Heartbeat(self.app, run)
        beat.start()
        try:
            self._run_stage(run)
        finally:
            beat.stopped.set()

    def hand_back(self, deadline: float) -> bool:
        """Ask running stages to hand themselves back; True if all did by `deadline` (monotonic)."""
        self.handing_back.set()
        with self._idle:
            return self._idle.wait_for(
                lambda: self._busy == 0, timeout=max(deadline - time.monotonic(), 0)
            )

    @staticmethod
    def _stage_of(run: lease.StageRun):
        """The stage by the name recorded at submit (a task keeps the shape it was given)."""
        pipeline = get_pipeline(run.type)
        if pipeline is None:
            raise LookupError(f"No pipeline named '{run.type}'")
        for stage in pipeline.stages_for(run.params):
            if stage.name == run.stage_name:
                return stage
        raise LookupError(f"Pipeline '{run.type}' has no stage '{run.stage_name}' any more")

    def _run_stage(self, run: lease.StageRun) -> None:
        """Run the stage's code and record how it ended, through the service layer."""
        try:
            stage = self._stage_of(run)
        except Exception as exc:  # the code changed since submit, or a plug-in broke
            lease.fail_stage(run, ERR_UNKNOWN_PIPELINE, str(exc))
            return
        ctx = StageContext(run, self.handing_back)
        try:
            # No check before the run: start_stage has just seen the task runnable.
            output = stage.run(ctx, run.params, run.outputs)
        except TaskCancelled:
            lease.stop_cancelled_stage(run)
            return
        except StageHandedBack:
            recovery.hand_back_stage(run)
            log.info("handed back stage %r of task %s", run.stage_name, run.task_id)
            return
        except Exception as exc:
            log.exception("stage %r of task %s raised", run.stage_name, run.task_id)
            lease.fail_stage(run, ERR_STAGE_RAISED, f"{type(exc).__name__}: {exc}")
            return
        output = {} if output is None else output
        try:
            json.dumps(output, allow_nan=False)
        except (TypeError, ValueError) as exc:
            lease.fail_stage(run, ERR_BAD_OUTPUT, f"Stage output is not JSON: {exc}")
            return
        lease.finish_stage(run, output)
