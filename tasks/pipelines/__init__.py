"""The pipeline authoring API: what a pipeline module imports to declare its stages (README)."""

from tasks.context import TaskCancelled
from tasks.pipelines.authoring import N_, Params, Pipeline, Stage
from tasks.pipelines.files import FileParam, FolderParam, UploadParam, located, open_inside

__all__ = [
    "N_",
    "FileParam",
    "FolderParam",
    "Params",
    "Pipeline",
    "Stage",
    "TaskCancelled",
    "UploadParam",
    "located",
    "open_inside",
]
