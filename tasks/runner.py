"""Runs one stage of one task inside the Flask app, through the service layer."""

import json
import logging
import os
import socket
import threading

from app.constants import ERR_BAD_OUTPUT, ERR_STAGE_RAISED, ERR_UNKNOWN_PIPELINE
from app.services import lifecycle
from tasks.context import StageContext, StageHandedBack, TaskCancelled
from tasks.pipelines import get_pipeline

log = logging.getLogger("taskdeck.runner")

_app = None


def bind_app(app) -> None:
    """Use this Flask app for stage runs (`taskdeck worker` and tests bind theirs)."""
    global _app
    _app = app


def _flask_app():
    global _app
    if _app is None:  # started by plain `huey_consumer tasks.queue.huey`
        from app import create_app

        _app = create_app()
    return _app


class Heartbeat(threading.Thread):
    """Refreshes a running stage's heartbeat, also while the stage reports no progress.

    It stops by itself once the lease is gone (the stage ended, or the
    reaper gave it to another worker).
    """

    def __init__(self, app, run: lifecycle.StageRun):
        super().__init__(name=f"heartbeat-{run.task_id[:8]}", daemon=True)
        self.app, self.run_, self.stopped = app, run, threading.Event()
        self.interval = app.config["HEARTBEAT_INTERVAL"]

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                with self.app.app_context():
                    if not lifecycle.heartbeat(self.run_):
                        return
            except Exception:  # a locked database now and then must not end the beat
                log.exception("heartbeat of task %s failed", self.run_.task_id)


def worker_identity() -> str:
    """host:pid, recorded on each stage it starts (and on reaper runs) to show who did the work."""
    return f"{socket.gethostname()}:{os.getpid()}"


def execute_stage(task_id: str, stage_index: int, dispatch_seq: int) -> None:
    app = _flask_app()
    with app.app_context():
        run = lifecycle.start_stage(task_id, stage_index, dispatch_seq, worker_identity())
        if run is None:
            log.info("skipping stale or cancelled stage %s of %s", stage_index, task_id)
            return
        beat = Heartbeat(app, run)
        beat.start()
        try:
            _run_stage(run)
        finally:
            beat.stopped.set()


def _run_stage(run: lifecycle.StageRun) -> None:
    """Run the stage's code and record how it ended, through the service layer."""
    pipeline = get_pipeline(run.type)
    if pipeline is None:
        lifecycle.fail_stage(run, ERR_UNKNOWN_PIPELINE, f"No pipeline named '{run.type}'")
        return
    stage = pipeline.stages_for(run.params)[run.stage_index]
    ctx = StageContext(run)
    try:
        # No check before the run: start_stage has just seen the task runnable.
        output = stage.run(ctx, run.params, run.outputs)
    except TaskCancelled:
        lifecycle.stop_cancelled_stage(run)
        return
    except StageHandedBack:
        lifecycle.hand_back_stage(run)
        log.info("handed back stage %r of task %s", run.stage_name, run.task_id)
        return
    except Exception as exc:
        log.exception("stage %r of task %s raised", run.stage_name, run.task_id)
        lifecycle.fail_stage(run, ERR_STAGE_RAISED, f"{type(exc).__name__}: {exc}")
        return
    output = {} if output is None else output
    try:
        json.dumps(output)
    except (TypeError, ValueError) as exc:
        lifecycle.fail_stage(run, ERR_BAD_OUTPUT, f"Stage output is not JSON: {exc}")
        return
    lifecycle.finish_stage(run, output)
