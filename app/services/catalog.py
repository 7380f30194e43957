"""The pipelines this deck runs, loaded once per process, and their params in the deck's words.

Where they come from (entry points, TASKDECK_PIPELINES_PATH folders,
TASKDECK_COMMANDS_FILE) is the authoring package's business
(tasks/pipelines/sources.py, which imports nothing from app/); this module
turns pydantic's verdict on params into the messages forms and the API show.
"""

import os

from flask_babel import gettext, ngettext
from pydantic import ValidationError

from app import config
from app.services.errors import ParamsError
from tasks.pipelines.sources import LoadError, load

CatalogError = LoadError
_loaded: dict[tuple, dict] = {}


def pipelines(env=os.environ) -> dict[str, object]:
    """Every pipeline by name; loaded on first use (at app creation and in preflight)."""
    key = (tuple(config.pipeline_folders(env)), config.commands_file(env))
    if key not in _loaded:
        _loaded[key] = load(*key)
    return _loaded[key]


def get_pipeline(name: str):
    return pipelines().get(name)


def all_pipelines() -> list:
    return sorted(pipelines().values(), key=lambda p: p.name)


def coerce_params(task_type: str, raw: dict[str, str]) -> dict:
    """Text params (forms, command line) in the pipeline's types; unknown types pass through."""
    pipeline = get_pipeline(task_type)
    return pipeline.coerce(raw) if pipeline else raw


def validate_params(pipeline, params, uploads: set[str] = frozenset()) -> dict:
    """Params as stored: validated with defaults; ParamsError naming each bad field otherwise.

    `uploads` are the values naming files sent with this submit: the only
    `upload:` values an UploadParam takes here.
    """
    if params is not None and not isinstance(params, dict):
        raise ParamsError(["params: " + gettext("must be an object")])
    try:
        return pipeline.validate(params, context={"uploads": uploads})
    except ValidationError as exc:
        raise ParamsError(_messages(exc)) from exc


def _messages(exc: ValidationError) -> list[str]:
    """One "name: what is wrong" per error, in the request's language, sorted by name."""
    messages, unexpected = [], []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "params"
        if error["type"] == "extra_forbidden":
            unexpected.append(repr(where))
            continue
        messages.append(f"{where}: {_describe(error)}")
    if unexpected:
        names = ", ".join(unexpected)
        messages.append(
            "params: "
            + ngettext(
                "Additional properties are not allowed (%(names)s was unexpected)",
                "Additional properties are not allowed (%(names)s were unexpected)",
                len(unexpected),
                names=names,
            )
        )
    return sorted(messages)


_KINDS = {"int": "integer", "float": "number", "bool": "boolean", "string": "string"}


def _number(limit):
    return int(limit) if isinstance(limit, float) and limit.is_integer() else limit


def _describe(error: dict) -> str:
    kind, value, context = error["type"], repr(error.get("input")), error.get("ctx", {})
    if kind == "finite_number":
        return gettext("must be a finite number")
    if kind in ("less_than_equal", "less_than"):
        limit = _number(context.get("le", context.get("lt")))
        return gettext(
            "%(value)s is greater than the maximum of %(limit)s", value=value, limit=limit
        )
    if kind in ("greater_than_equal", "greater_than"):
        limit = _number(context.get("ge", context.get("gt")))
        return gettext("%(value)s is less than the minimum of %(limit)s", value=value, limit=limit)
    if kind == "string_too_long":
        return gettext("%(value)s is too long", value=value[:40])
    if kind == "string_too_short":
        return gettext("%(value)s is too short", value=value[:40])
    if kind == "missing":
        return gettext("is required")
    if kind == "literal_error":
        return gettext(
            "%(value)s is not one of %(limit)s", value=value, limit=context.get("expected")
        )
    prefix = kind.split("_")[0]
    if prefix in _KINDS and kind.endswith(("_type", "_parsing", "_from_float")):
        return gettext(
            "%(value)s is not of type %(limit)s", value=value, limit=repr(_KINDS[prefix])
        )
    return error["msg"].removeprefix("Value error, ")
