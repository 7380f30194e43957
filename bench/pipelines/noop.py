"""A one-stage pipeline that does nothing: what the overhead benchmarks put through the deck.

Loaded through TASKDECK_PIPELINES_PATH, as a user's own pipeline would be.
"""

from tasks.pipelines.authoring import Params, Pipeline

noop = Pipeline("noop", title="No-op", description="One stage that returns at once.", params=Params)


@noop.stage(name="nothing")
def nothing(ctx, params: Params, **earlier) -> dict:
    return {}
