"""The pipeline authoring API: what a pipeline module imports to declare its stages."""

from app.services.errors import ParamsError
from tasks.pipelines.registry import N_, Pipeline, Stage

__all__ = ["N_", "ParamsError", "Pipeline", "Stage"]
