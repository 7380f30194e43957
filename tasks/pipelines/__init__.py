"""Pipelines: the registry, and the built-in pipelines registered on import."""

from tasks.pipelines.registry import (
    ParamsError,
    Pipeline,
    Stage,
    all_pipelines,
    coerce_params,
    get_pipeline,
    register,
)

# Built-ins register themselves when imported.
from tasks.pipelines import demo  # noqa: E402, F401  isort: skip

__all__ = [
    "ParamsError",
    "Pipeline",
    "Stage",
    "all_pipelines",
    "coerce_params",
    "get_pipeline",
    "register",
]
