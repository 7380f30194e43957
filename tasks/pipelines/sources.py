"""Where pipelines come from: entry points (the built-ins' too), plug-in folders, a commands file.

The web app and the worker load the same set at start; anything wrong (a
module that fails to import, two pipelines with one name) is a LoadError
whose short message names the file(s), and start-up stops on it.
"""

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
        if found.get(pipeline.name) is pipeline:
            return  # the same object met again (a plug-in imported it): counted where first seen
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
    """Import a plug-in file as the module its name says, and return the pipelines it holds.

    Its folder is on sys.path, so a plug-in importing another (or a helper
    beside it) gets this very module: a pipeline made there, by a factory
    or imported, is one object, counted once. A file named like a module
    that exists elsewhere (`json.py`) is refused rather than shadowing it.
    """
    name = file.stem
    if not name.isidentifier():
        raise LoadError(f"{file}: a plug-in's file name must be a Python module name")
    module = sys.modules.get(name)
    if module is None:
        found = importlib.util.find_spec(name)
        if found is not None and Path(found.origin or "").resolve() != file.resolve():
            raise LoadError(
                f"{file} is named like the module {name!r} ({found.origin}); rename the file"
            )
        spec = importlib.util.spec_from_file_location(name, file)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException as exc:
            del sys.modules[name]
            raise LoadError(f"{file} failed to import: {_short(exc, file)}") from exc
    elif Path(getattr(module, "__file__", None) or "").resolve() != file.resolve():
        raise LoadError(f"{file} is named like the module {name!r} ({module}); rename the file")
    return [v for v in vars(module).values() if getattr(type(v), "__taskdeck_pipeline__", False)]


def _short(exc: BaseException, file: Path | None = None) -> str:
    """`ExcType: message (line N)`: the error without the traceback wall."""
    text = f"{type(exc).__name__}: {exc}"
    frames = [
        f for f in traceback.extract_tb(exc.__traceback__) if file and f.filename == str(file)
    ]
    return f"{text} (line {frames[-1].lineno})" if frames else text
