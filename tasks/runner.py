"""Runs one stage of one task inside the Flask app, through the service layer."""

import json
import logging

from app.constants import ERR_BAD_OUTPUT, ERR_STAGE_RAISED, ERR_UNKNOWN_PIPELINE
from app.services import lifecycle
from tasks.context import StageContext, TaskCancelled
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


def execute_stage(task_id: str, stage_index: int, dispatch_seq: int) -> None:
    with _flask_app().app_context():
        run = lifecycle.start_stage(task_id, stage_index, dispatch_seq)
        if run is None:
            log.info("skipping stale or cancelled stage %s of %s", stage_index, task_id)
            return
        pipeline = get_pipeline(run.type)
        if pipeline is None:
            lifecycle.fail_stage(run, ERR_UNKNOWN_PIPELINE, f"No pipeline named '{run.type}'")
            return
        stage = pipeline.stages_for(run.params)[stage_index]
        ctx = StageContext(run)
        try:
            ctx.check_cancelled()
            output = stage.run(ctx, run.params, run.outputs)
        except TaskCancelled:
            lifecycle.stop_cancelled_stage(run)
            return
        except Exception as exc:
            log.exception("stage %r of task %s raised", run.stage_name, task_id)
            lifecycle.fail_stage(run, ERR_STAGE_RAISED, f"{type(exc).__name__}: {exc}")
            return
        output = {} if output is None else output
        try:
            json.dumps(output)
        except (TypeError, ValueError) as exc:
            lifecycle.fail_stage(run, ERR_BAD_OUTPUT, f"Stage output is not JSON: {exc}")
            return
        lifecycle.finish_stage(run, output)
