"""Where pipelines come from: entry points (the built-ins' too), plug-in folders, a commands file.

The web app and the worker load the same set at start; anything wrong (a
module that fails to import, two pipelines with one name) is a LoadError
whose short message names the file(s), and start-up stops on it.
"""

import hashlib
import importlib.util
import sys
import traceback
from importlib.metadata import entry_points
from pathlib import Path

from tasks.pipelines import commands

GROUP = "taskdeck.pipelines"


class LoadError(RuntimeError):
    """A pipeline that cannot be loaded, or two with one name."""


def load(folders: list[str], commands_file: str | None) -> dict:
    """Every pipeline by name, from the entry points, then `folders`, then `commands_file`."""
    found: dict[str, object] = {}

    def add(pipeline, source: str, origin: dict) -> None:
        pipeline.source, pipeline.origin = source, origin
        if pipeline.name in found:
            first = found[pipeline.name].source
            raise LoadError(f"Two pipelines are named {pipeline.name!r}: {first} and {source}")
        found[pipeline.name] = pipeline

    for point in entry_points(group=GROUP):
        source = f"{point.value} (entry point {point.name!r})"
        try:
            pipeline = point.load()
        except Exception as exc:
            raise LoadError(f"Pipeline {source} failed to load: {_short(exc)}") from exc
        add(pipeline, source, {"entry_point": point.value})
    for folder in folders:
        path = Path(folder)
        if not path.is_dir():
            raise LoadError(f"TASKDECK_PIPELINES_PATH names {folder}, which is not a folder")
        if str(path) not in sys.path:  # so a plug-in can import the helper modules beside it
            sys.path.append(str(path))
        for file in sorted(path.glob("*.py")):
            for pipeline in _pipelines_in(file):
                add(pipeline, str(file), {"file": str(file)})
    if commands_file:
        try:
            for pipeline in commands.load(Path(commands_file)):
                add(
                    pipeline,
                    f"{commands_file} (pipelines.{pipeline.name})",
                    {"commands": commands_file},
                )
        except commands.CommandsFileError as exc:
            raise LoadError(str(exc)) from exc
    return found


def load_origin(origin: dict) -> dict:
    """Only the pipelines of one origin (as `load` recorded it), for an isolated stage's child.

    Loading every plug-in and entry point to run one stage cost the child
    about half its start-up; the parent has already checked the whole set.
    """
    if "entry_point" in origin:
        module, _, attribute = origin["entry_point"].partition(":")
        found = importlib.import_module(module.strip())
        for part in attribute.strip().split("."):
            found = getattr(found, part)
        pipelines = [found]
    elif "file" in origin:
        file = Path(origin["file"])
        if str(file.parent) not in sys.path:
            sys.path.append(str(file.parent))
        pipelines = _pipelines_in(file)
    else:
        pipelines = commands.load(Path(origin["commands"]))
    return {pipeline.name: pipeline for pipeline in pipelines}


def _pipelines_in(file: Path) -> list:
    """Import one plug-in file under a private name and return the pipelines it declares."""
    digest = hashlib.sha1(str(file.resolve()).encode()).hexdigest()[:10]
    name = f"taskdeck_plugins.{file.stem}_{digest}"
    if name in sys.modules:  # the web app and a test may load the same folder twice
        module = sys.modules[name]
    else:
        spec = importlib.util.spec_from_file_location(name, file)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException as exc:
            del sys.modules[name]
            raise LoadError(f"{file} failed to import: {_short(exc, file)}") from exc
    return [
        value
        for value in vars(module).values()
        if getattr(type(value), "__taskdeck_pipeline__", False)
        and value.module == name  # not one imported from elsewhere: it is counted there
    ]


def _short(exc: BaseException, file: Path | None = None) -> str:
    """`ExcType: message (line N)`: the error without the traceback wall."""
    text = f"{type(exc).__name__}: {exc}"
    frames = [
        f for f in traceback.extract_tb(exc.__traceback__) if file and f.filename == str(file)
    ]
    return f"{text} (line {frames[-1].lineno})" if frames else text
