"""The pipeline authoring API: what a pipeline module imports to declare its stages (README)."""

from tasks.context import TaskCancelled
from tasks.pipelines.authoring import N_, Params, Pipeline, Stage

__all__ = ["N_", "Params", "Pipeline", "Stage", "TaskCancelled"]
