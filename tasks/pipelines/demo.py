"""The `demo` pipeline: N stages that sleep, report progress and honour cancels.

`fail_at` simulates a transient fault: the stage raises on the task's first
run only, so a retry resumes at that stage and gets past it. Its stage
count comes from the params, through `Pipeline.plan`.
"""

import time

from flask_babel import gettext
from pydantic import Field, ValidationInfo, field_validator

from tasks.pipelines.authoring import N_, Params, Pipeline

SLICE_SECONDS = 0.1


class DemoParams(Params):
    stages: int = Field(
        4, ge=1, le=20, title=N_("Stages"), description=N_("How many stages the task runs.")
    )
    seconds: float = Field(
        2, ge=0, le=600, title=N_("Seconds per stage"), description=N_("How long each stage works.")
    )
    fail_at: int | None = Field(
        None,
        ge=1,
        le=20,
        title=N_("Fail at stage"),
        description=N_("Stage number that raises on the first run (a retry gets past it)."),
    )
    message: str = Field(
        "",
        max_length=2000,
        title=N_("Message"),
        description=N_("Free text carried into every stage's output."),
    )

    @field_validator("fail_at")
    @classmethod
    def _within_the_stages(cls, fail_at: int | None, info: ValidationInfo) -> int | None:
        last = info.data.get("stages")
        if fail_at is not None and last is not None and fail_at > last:
            raise ValueError(
                gettext("%(n)d is beyond the last stage (%(last)d)", n=fail_at, last=last)
            )
        return fail_at


class DemoFailure(RuntimeError):
    pass


demo = Pipeline(
    "demo",
    title=N_("Demo"),
    description=N_("Stages that sleep, report progress and can be made to fail."),
    params=DemoParams,
)


@demo.stage(name="step")
def run_step(ctx, params: DemoParams, **earlier) -> dict:
    """Sleep in slices of at most 100 ms, reporting progress and checking for a cancel."""
    number = ctx.stage_index + 1
    if params.fail_at == number and ctx.retry_number == 0:
        raise DemoFailure(f"Demo failure at stage {number}")
    seconds = params.seconds
    deadline = time.monotonic() + seconds
    while True:
        ctx.check_cancelled()
        remaining = deadline - time.monotonic()
        done = 1.0 if seconds == 0 else min(1.0, 1.0 - remaining / seconds)
        ctx.progress(done, params.message or None)
        if remaining <= 0:
            break
        time.sleep(min(SLICE_SECONDS, remaining))
    return {
        "stage": number,
        "seconds": seconds,
        "message": params.message,
        "after": sorted(earlier),
    }


@demo.plan
def _numbered_steps(params: DemoParams, declared):
    (step,) = declared
    return [step.named(f"step {i}") for i in range(1, params.stages + 1)]
