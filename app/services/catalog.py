"""The pipelines this deck runs: every object the `taskdeck.pipelines` entry points name.

Taskdeck's own pipelines are declared through the same entry-point group
as a plug-in's (pyproject.toml), so the web app and the service layer find
them without importing the worker package.
"""

from importlib.metadata import entry_points

GROUP = "taskdeck.pipelines"
_loaded: dict[str, object] | None = None


class CatalogError(RuntimeError):
    """A pipeline that cannot be loaded, or two with one name: start-up stops with this message."""


def _load() -> dict[str, object]:
    found: dict[str, tuple[object, str]] = {}
    for point in entry_points(group=GROUP):
        source = f"{point.value} (entry point {point.name!r})"
        try:
            pipeline = point.load()
        except Exception as exc:
            raise CatalogError(f"Pipeline {source} failed to load: {exc}") from exc
        if pipeline.name in found:
            raise CatalogError(
                f"Two pipelines are named {pipeline.name!r}: {found[pipeline.name][1]} and {source}"
            )
        found[pipeline.name] = (pipeline, source)
    return {name: pipeline for name, (pipeline, _) in found.items()}


def pipelines() -> dict[str, object]:
    """Every pipeline by name, loaded once per process (at app creation and in preflight)."""
    global _loaded
    if _loaded is None:
        _loaded = _load()
    return _loaded


def get_pipeline(name: str):
    return pipelines().get(name)


def all_pipelines() -> list:
    return sorted(pipelines().values(), key=lambda p: p.name)


def coerce_params(task_type: str, raw: dict[str, str]) -> dict:
    """Text params (forms, command line) in the pipeline's types; unknown types pass through."""
    pipeline = get_pipeline(task_type)
    return pipeline.coerce(raw) if pipeline else raw
