"""Command pipelines: programs listed in a TOML file (TASKDECK_COMMANDS_FILE) become pipelines.

Each stage is an argv run without a shell; `{param}` is replaced inside
one argv element only, so a value can never become a second argument or a
shell command. stdout and stderr become log lines; exit status 0 succeeds.
"""

import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, TypeAdapter, create_model, field_validator

from tasks.pipelines.authoring import Params, Pipeline, Stage

TYPES: dict[str, type] = {"string": str, "integer": int, "number": float, "boolean": bool}
PARAM_KEYS = {"type", "default", "title", "description", "minimum", "maximum", "max_length", "enum"}
STAGE_KEYS = {"name", "argv", "timeout", "cancel_grace", "retries", "retry_backoff"}
PIPELINE_KEYS = {"title", "description", "params", "stages"}
PLACEHOLDER = re.compile(r"\{(\w+)\}")


class CommandsFileError(ValueError):
    """The file cannot be turned into pipelines; the message names the file and the key."""


def load(path: Path) -> list[Pipeline]:
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise CommandsFileError(f"{path}: cannot read it ({exc.strerror})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise CommandsFileError(f"{path}: not valid TOML ({exc})") from exc
    extra = set(data) - {"pipelines"}
    if extra:
        raise CommandsFileError(f"{path}: unknown top-level key(s) {sorted(extra)}")
    result = []
    for name, spec in data.get("pipelines", {}).items():
        try:
            result.append(_pipeline(name, spec, path.parent))
        except (TypeError, ValueError) as exc:
            raise CommandsFileError(f"{path}: pipelines.{name}: {exc}") from exc
    return result


def _pipeline(name: str, spec: dict, folder: Path) -> Pipeline:
    _only(spec, PIPELINE_KEYS, "")
    stages = spec.get("stages") or []
    leading = {
        match.group(1)
        for stage in stages
        if isinstance(stage, dict) and isinstance(stage.get("argv"), list)
        for element in stage["argv"]
        if isinstance(element, str) and (match := PLACEHOLDER.match(element))
    }
    params = _params_model(name, spec.get("params", {}), leading)
    pipeline = Pipeline(
        name, title=spec.get("title"), params=params, description=spec.get("description", "")
    )
    if not stages:
        raise ValueError("declares no [[stages]]")
    for number, stage in enumerate(stages, 1):
        _only(stage, STAGE_KEYS, f"stages[{number}].")
        argv = stage.get("argv")
        if not (isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv)):
            raise ValueError(f"stages[{number}].argv must be a non-empty list of strings")
        if PLACEHOLDER.search(argv[0]):
            raise ValueError(f"stages[{number}].argv[0], the program, cannot come from a param")
        for element in argv:
            for placeholder in PLACEHOLDER.findall(element):
                if placeholder not in params.model_fields:
                    raise ValueError(
                        f"stages[{number}].argv names an undeclared param {{{placeholder}}}"
                    )
        pipeline.add(
            Stage(
                stage.get("name", f"step {number}"),
                fn=None,
                timeout=stage.get("timeout"),
                cancel_grace=stage.get("cancel_grace", 10),
                retries=stage.get("retries", 0),
                retry_backoff=stage.get("retry_backoff", 2),
                argv=tuple(argv),
                cwd=str(folder),
            )
        )
    return pipeline


def _params_model(pipeline: str, declared: dict, leading: set[str]) -> type[Params]:
    """The params model; text params that begin an argv element may not begin with "-".

    Otherwise a value such as `-delete` would reach the program as an option.
    """
    fields: dict[str, Any] = {}
    for name, spec in declared.items():
        if not isinstance(spec, dict):
            raise ValueError(f'params.{name} must be a table such as {{ type = "string" }}')
        _only(spec, PARAM_KEYS, f"params.{name}.")
        kind = TYPES.get(spec.get("type", "string"))
        if kind is None:
            raise ValueError(f"params.{name}.type must be one of {sorted(TYPES)}")
        constraints = {
            key: spec[value]
            for key, value in (("ge", "minimum"), ("le", "maximum"), ("max_length", "max_length"))
            if value in spec
        }
        if "enum" in spec:
            if not (isinstance(spec["enum"], list) and spec["enum"]):
                raise ValueError(f"params.{name}.enum must be a non-empty list")
            kind = Literal[tuple(spec["enum"])]
        default = spec.get("default", ...)
        if default is not ...:
            TypeAdapter(kind).validate_python(default, strict=True)
        field = Field(
            default, title=spec.get("title"), description=spec.get("description"), **constraints
        )
        fields[name] = (kind, field)
    guarded = [n for n in leading if fields.get(n, (None,))[0] is str]
    validators = {"_not_an_option": field_validator(*guarded)(_not_an_option)} if guarded else {}
    return create_model(f"{pipeline}_params", __base__=Params, __validators__=validators, **fields)


def _not_an_option(cls, value: str) -> str:
    if value.startswith("-"):
        raise ValueError("must not start with '-' (the command would read it as an option)")
    return value


def _only(table: dict, allowed: set[str], prefix: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(prefix + k for k in unknown)}")


def render_argv(argv: tuple[str, ...], params: dict) -> list[str]:
    """Each `{name}` replaced by the param's text, inside its own element."""

    def value(match: re.Match) -> str:
        name = match.group(1)
        if name not in params:
            return match.group(0)
        item = params[name]
        if isinstance(item, bool):
            return "true" if item else "false"
        return str(item)

    return [PLACEHOLDER.sub(value, element) for element in argv]
