"""The pipeline authoring API users write against: `Params`, `Pipeline` and `@pipeline.stage(...)`.

One pydantic model per pipeline gives validation, defaults, the JSON Schema
the API publishes and the form the new-task page builds. Stages run in
declaration order; a stage function's extra parameters name earlier
stages, whose outputs it receives, and are checked when the module is
imported, so a typo stops start-up instead of failing a task at 3 a.m.

This package imports nothing from `app/`: the web app and the worker both
load pipelines through it (tasks/pipelines/sources.py).
"""

import inspect
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict

NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
STAGE_NAME_MAX = 100


def N_(text: str) -> str:
    """Mark pipeline titles and help text for translation; pages translate them when shown."""
    return text


class Params(BaseModel):
    """Base of every pipeline's params: unknown names, NaN and infinities are refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


@dataclass(frozen=True)
class Stage:
    """One declared stage and how the worker must run it (README, "Writing a pipeline")."""

    name: str
    fn: Callable[..., dict | None] | None
    isolated: bool = False
    timeout: float | None = None
    cancel_grace: float = 10.0
    retries: int = 0
    retry_backoff: float = 2.0
    # Added to the task's priority for this stage's messages (capped at the lowest, 11):
    # background work such as thumbnails waits behind other tasks' main stages.
    priority_offset: int = 0
    # Earlier stages whose outputs the function takes by name; `every_output`
    # when it declares **outputs and takes them all.
    inputs: tuple[str, ...] = ()
    every_output: bool = False
    # A command stage (TASKDECK_COMMANDS_FILE): argv templates, run without a shell.
    argv: tuple[str, ...] | None = None
    cwd: str | None = None

    def __post_init__(self):
        """The options' rules, for decorated and command stages alike; a ValueError names them."""
        _check_stage_name(self.name)
        where = f"Stage {self.name!r}"
        if self.timeout is not None and not (_number(self.timeout) and self.timeout > 0):
            raise ValueError(f"{where}: timeout must be a positive number of seconds")
        for option in ("cancel_grace", "retry_backoff"):
            if not (_number(getattr(self, option)) and getattr(self, option) >= 0):
                raise ValueError(f"{where}: {option} must be a number of seconds, 0 or more")
        if not (isinstance(self.retries, int) and not isinstance(self.retries, bool)):
            raise ValueError(f"{where}: retries must be a whole number")
        if self.retries < 0:
            raise ValueError(f"{where}: retries must be 0 or more")
        offset = self.priority_offset
        if not (isinstance(offset, int) and not isinstance(offset, bool) and 0 <= offset <= 11):
            raise ValueError(f"{where}: priority_offset must be a whole number from 0 to 11")

    @property
    def in_child(self) -> bool:
        """Runs in its own process group, so cancel and timeout can kill it."""
        return self.isolated or self.argv is not None

    def named(self, name: str) -> "Stage":
        """The same stage under another name (for `Pipeline.plan`)."""
        _check_stage_name(name)
        return replace(self, name=name)

    def call(self, ctx, params: BaseModel, outputs: dict[str, dict]) -> dict | None:
        kwargs = dict(outputs) if self.every_output else {n: outputs[n] for n in self.inputs}
        return self.fn(ctx, params, **kwargs)


class Pipeline:
    """A named, ordered list of stages with one params model.

    `plan` is the escape hatch for pipelines whose stages depend on the
    params (demo runs N copies of one stage): a function of the params and
    the declared stages that returns the stages a task will run.
    """

    __taskdeck_pipeline__ = True  # how the loader recognises one without importing this module

    def __init__(
        self,
        name: str,
        title: str | None = None,
        params: type[Params] = Params,
        description: str = "",
    ):
        if not NAME.fullmatch(name):
            raise ValueError(
                f"Pipeline name {name!r} must be lower-case letters, digits and _ (at most 64)"
            )
        if not (isinstance(params, type) and issubclass(params, BaseModel)):
            raise TypeError(f"Pipeline {name!r}: params must be a pydantic model (a Params class)")
        secret = [n for n, f in params.model_fields.items() if "Secret" in repr(f.annotation)]
        if secret:  # stored with the task and shown on its page, and masked as "**********"
            raise TypeError(
                f"Pipeline {name!r}: params are stored and shown with the task, so they cannot be "
                f"secrets ({', '.join(secret)}); read credentials from the environment instead"
            )
        self.name, self.title, self.params, self.description = (
            name,
            title or name,
            params,
            description,
        )
        self.declared: list[Stage] = []
        # Where it was loaded from, set by the loader: `source` for people, `origin` for a child.
        self.source, self.origin = "", {}
        self._plan: Callable[[Any, list[Stage]], Sequence[Stage]] | None = None

    def stage(
        self,
        name: str | None = None,
        *,
        isolated: bool = False,
        timeout: float | None = None,
        cancel_grace: float = 10,
        retries: int = 0,
        retry_backoff: float = 2,
        priority_offset: int = 0,
    ):
        """Declare the decorated function as the next stage."""

        def declare(fn):
            stage_name = name or fn.__name__
            _check_stage_name(stage_name)
            inputs, every = self._inputs_of(fn, stage_name)
            self.add(
                Stage(
                    stage_name,
                    fn,
                    isolated=isolated,
                    timeout=timeout,
                    cancel_grace=cancel_grace,
                    retries=retries,
                    retry_backoff=retry_backoff,
                    priority_offset=priority_offset,
                    inputs=inputs,
                    every_output=every,
                )
            )
            return fn

        return declare

    def add(self, stage: Stage) -> None:
        if any(s.name == stage.name for s in self.declared):
            raise ValueError(f"Pipeline {self.name!r} declares stage {stage.name!r} twice")
        self.declared.append(stage)

    def plan(self, fn: Callable[[Any, list[Stage]], Sequence[Stage]]):
        """Decorate `fn(params, declared_stages) -> stages`: what a task with these params runs."""
        self._plan = fn
        return fn

    def _inputs_of(self, fn, stage_name: str) -> tuple[tuple[str, ...], bool]:
        """The earlier stages `fn` asks for; anything else is an error now, not at run time."""
        parameters = list(inspect.signature(fn).parameters.values())
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        if len(parameters) < 2 or any(p.kind not in positional for p in parameters[:2]):
            raise TypeError(
                f"Stage {stage_name!r} of pipeline {self.name!r} must take (ctx, params, ...)"
            )
        earlier = [s.name for s in self.declared]
        inputs, every = [], False
        for parameter in parameters[2:]:
            if parameter.kind is inspect.Parameter.VAR_KEYWORD:
                every = True
            elif parameter.name in earlier:
                inputs.append(parameter.name)
            else:
                raise TypeError(
                    f"Stage {stage_name!r} of pipeline {self.name!r} takes {parameter.name!r}, "
                    f"which is not an earlier stage (earlier: {', '.join(earlier) or 'none'})"
                )
        return tuple(inputs), every

    # --- what the deck asks of a pipeline ------------------------------------

    def parse(self, params: Any, context: dict | None = None) -> Params:
        """The params model; raises pydantic's ValidationError naming each bad field.

        Validated as JSON in strict mode: a number is a number, not text that
        looks like one (forms and the CLI convert their text first, `coerce`),
        while JSON's strings still make dates, paths and enums. `context` is
        given at submit: the files sent with the task (UploadParam).
        """
        if isinstance(params, self.params):
            return params
        if not isinstance(params, dict):
            params = {} if params is None else params
        else:
            params = self._whole_numbers(params)
        return self.params.model_validate_json(
            json.dumps(params, allow_nan=True), strict=True, context=context
        )

    def _whole_numbers(self, params: dict) -> dict:
        """3.0 for an integer param is 3, as JSON Schema counts it (clients may send either)."""
        properties = self.params_schema.get("properties", {})
        return {
            name: int(value)
            if isinstance(value, float)
            and value.is_integer()
            and "integer" in _kinds(properties.get(name, {}))
            else value
            for name, value in params.items()
        }

    def validate(self, params: Any, context: dict | None = None) -> dict:
        """Params as stored with the task: validated, defaults filled, JSON types."""
        return self.parse(params, context).model_dump(mode="json")

    def stages_for(self, params: Any) -> list[Stage]:
        if self._plan is None:
            return list(self.declared)
        stages = list(self._plan(self.parse(params), list(self.declared)))
        names = [s.name for s in stages]
        if len(set(names)) != len(names):
            raise ValueError(f"Pipeline {self.name!r} planned two stages with one name: {names}")
        return stages

    def stage_named(self, params: Any, name: str) -> Stage | None:
        return next((s for s in self.stages_for(params) if s.name == name), None)

    @cached_property
    def params_schema(self) -> dict:
        """JSON Schema of the params, with `X | None` written as `"type": [X, "null"]`."""
        schema = self.params.model_json_schema()
        schema.pop("title", None)
        for name, spec in schema.get("properties", {}).items():
            schema["properties"][name] = _flatten_optional(spec)
        return schema

    def coerce(self, raw: dict[str, str]) -> dict:
        """Form or command-line text in the params' types; a blank non-text field means default.

        Text that does not convert is passed on unchanged, so validation
        names it with the type it should have been.
        """
        properties = self.params_schema.get("properties", {})
        result: dict[str, Any] = {}
        for name, value in raw.items():
            kinds = _kinds(properties.get(name, {}))
            if value == "" and "string" not in kinds:
                continue
            result[name] = _convert(value, kinds)
        return result

    def _stages_by_default(self) -> list[Stage]:
        """The stages a task with default params runs; the declared ones if the plan needs more."""
        try:
            return self.stages_for({})
        except Exception:  # required params, or a plan that fails without real ones
            return list(self.declared)

    def describe(self) -> dict:
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "stages": [stage.name for stage in self._stages_by_default()],
            "params_schema": self.params_schema,
        }


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _kinds(spec: dict) -> list[str]:
    kind = spec.get("type", "string")
    return kind if isinstance(kind, list) else [kind]


# Text that is a number as a person types one in ASCII: not " 2 ", "1_0" or "٥",
# which Python's int() and float() would take. NaN and infinities convert, to
# be refused by name.
_INTEGER = re.compile(r"-?[0-9]{1,30}")
_NUMBER = re.compile(r"-?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?|-?(nan|inf|infinity)", re.I)


def _convert(value: str, kinds: list) -> Any:
    for kind in kinds:
        if kind in ("array", "object"):  # a form's text box holds them as JSON
            try:
                return json.loads(value)
            except ValueError:
                return value
        if kind == "integer" and _INTEGER.fullmatch(value):
            return int(value)
        if kind == "number" and _NUMBER.fullmatch(value):
            return float(value)
        if kind == "boolean" and value.lower() in ("true", "false", "on", "off", "1", "0"):
            return value.lower() in ("true", "on", "1")
    return value


def _check_stage_name(name: str) -> None:
    if not (isinstance(name, str) and 0 < len(name) <= STAGE_NAME_MAX and name.isprintable()):
        raise ValueError(f"Stage name {name!r} must be 1 to {STAGE_NAME_MAX} printable characters")


def _flatten_optional(spec: dict) -> dict:
    """`anyOf: [{type: integer, minimum: 1}, {type: null}]` -> `type: [integer, null], ...`."""
    options = spec.get("anyOf")
    if not options or len(options) != 2 or {"type": "null"} not in options:
        return spec
    (other,) = [o for o in options if o != {"type": "null"}]
    if "type" not in other or isinstance(other["type"], list):
        return spec
    flat = {k: v for k, v in spec.items() if k != "anyOf"}
    flat.update(other)
    flat["type"] = [other["type"], "null"]
    return flat
