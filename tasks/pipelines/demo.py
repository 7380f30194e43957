"""The `demo` pipeline: N stages that sleep, report progress and honour cancels.

`fail_at` simulates a transient fault: the stage raises on the task's first
run only, so a retry resumes at that stage and gets past it.
"""

import time

from flask_babel import gettext

from tasks.pipelines.registry import N_, Pipeline, Stage

SLICE_SECONDS = 0.1

PARAMS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "stages": {
            "type": "integer",
            "minimum": 1,
            "maximum": 20,
            "default": 4,
            "title": N_("Stages"),
            "description": N_("How many stages the task runs."),
        },
        "seconds": {
            "type": "number",
            "minimum": 0,
            "maximum": 600,
            "default": 2,
            "title": N_("Seconds per stage"),
            "description": N_("How long each stage works."),
        },
        "fail_at": {
            "type": ["integer", "null"],
            "minimum": 1,
            "maximum": 20,
            "default": None,
            "title": N_("Fail at stage"),
            "description": N_("Stage number that raises on the first run (a retry gets past it)."),
        },
        "message": {
            "type": "string",
            "maxLength": 2000,
            "default": "",
            "title": N_("Message"),
            "description": N_("Free text carried into every stage's output."),
        },
    },
}


class DemoFailure(RuntimeError):
    pass


def run_step(ctx, params: dict, state: dict) -> dict:
    """Sleep in slices of at most 100 ms, reporting progress and checking for a cancel."""
    number = ctx.stage_index + 1
    if params["fail_at"] == number and ctx.retry_number == 0:
        raise DemoFailure(f"Demo failure at stage {number}")
    seconds = params["seconds"]
    deadline = time.monotonic() + seconds
    while True:
        ctx.check_cancelled()
        remaining = deadline - time.monotonic()
        done = 1.0 if seconds == 0 else min(1.0, 1.0 - remaining / seconds)
        ctx.progress(done, params["message"] or None)
        if remaining <= 0:
            break
        time.sleep(min(SLICE_SECONDS, remaining))
    return {
        "stage": number,
        "seconds": seconds,
        "message": params["message"],
        "after": sorted(state),
    }


def _stages(params: dict) -> list[Stage]:
    return [Stage(f"step {i}", run_step) for i in range(1, params["stages"] + 1)]


def _check(params: dict) -> list[str]:
    fail_at = params["fail_at"]
    if fail_at is not None and fail_at > params["stages"]:
        last = params["stages"]
        return [
            "fail_at: " + gettext("%(n)d is beyond the last stage (%(last)d)", n=fail_at, last=last)
        ]
    return []


demo = Pipeline(
    name="demo",
    title=N_("Demo"),
    description=N_("Stages that sleep, report progress and can be made to fail."),
    params_schema=PARAMS_SCHEMA,
    stages=_stages,
    check=_check,
)
