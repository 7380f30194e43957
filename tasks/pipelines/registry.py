"""Declaring pipelines: a name, a title, ordered stages and a params schema.

A pipeline object is found by the deck through the `taskdeck.pipelines`
entry-point group (pyproject.toml), not through a registry here.

Params schemas are JSON Schema objects, so the API can publish them as they
are and the HTML form can be generated from the same declaration.
"""

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask_babel import gettext, ngettext
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from app.services.errors import ParamsError

StageFn = Callable[[Any, dict, dict], dict | None]


def N_(text: str) -> str:
    """Mark pipeline titles and help text for translation; pages translate them when shown."""
    return text


def describe(error: ValidationError) -> str:
    """A schema error in the request's language; English matches jsonschema's own wording."""
    value, limit = repr(error.instance), repr(error.validator_value)
    templates = {
        "type": lambda: gettext("%(value)s is not of type %(limit)s", value=value, limit=limit),
        "minimum": lambda: gettext(
            "%(value)s is less than the minimum of %(limit)s", value=value, limit=limit
        ),
        "maximum": lambda: gettext(
            "%(value)s is greater than the maximum of %(limit)s", value=value, limit=limit
        ),
        "maxLength": lambda: gettext("%(value)s is too long", value=value[:40]),
        "minLength": lambda: gettext("%(value)s is too short", value=value[:40]),
        "enum": lambda: gettext("%(value)s is not one of %(limit)s", value=value, limit=limit),
        "additionalProperties": lambda: _unexpected(error),
    }
    template = templates.get(error.validator)
    return template() if template else error.message


def _unexpected(error: ValidationError) -> str:
    declared = error.schema.get("properties", {})
    extra = [repr(key) for key in error.instance if key not in declared]
    return ngettext(
        "Additional properties are not allowed (%(names)s was unexpected)",
        "Additional properties are not allowed (%(names)s were unexpected)",
        len(extra),
        names=", ".join(extra),
    )


@dataclass(frozen=True)
class Stage:
    name: str
    run: StageFn


@dataclass
class Pipeline:
    name: str
    title: str
    params_schema: dict
    # A fixed list, or a function of the validated params (e.g. demo's `stages`).
    stages: list[Stage] | Callable[[dict], list[Stage]]
    description: str = ""
    # Cross-field rules JSON Schema cannot say plainly; returns error messages.
    check: Callable[[dict], list[str]] = field(default=lambda params: [])

    def __post_init__(self):
        Draft202012Validator.check_schema(self.params_schema)
        self._validator = Draft202012Validator(self.params_schema)

    def stages_for(self, params: dict) -> list[Stage]:
        return self.stages(params) if callable(self.stages) else list(self.stages)

    def validate(self, params: Any) -> dict:
        """Return params with defaults filled in; raise ParamsError naming each bad field."""
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise ParamsError(["params: " + gettext("must be an object")])
        # JSON Schema bounds are false for NaN, so a NaN would pass them: refuse it by name.
        messages = [
            f"{path}: " + gettext("must be a finite number") for path in _non_finite(params)
        ]
        if messages:
            raise ParamsError(messages)
        errors = sorted(self._validator.iter_errors(params), key=lambda e: list(e.path))
        messages = [f"{'.'.join(map(str, e.path)) or 'params'}: {describe(e)}" for e in errors]
        if messages:
            raise ParamsError(messages)
        result = dict(params)
        for name, spec in self.params_schema.get("properties", {}).items():
            if name not in result and "default" in spec:
                result[name] = spec["default"]
            elif spec.get("type") == "integer" and isinstance(result.get(name), float):
                result[name] = int(result[name])  # JSON Schema counts 3.0 as an integer
        messages = self.check(result)
        if messages:
            raise ParamsError(messages)
        return result

    def coerce(self, raw: dict[str, str]) -> dict:
        """Turn form or command-line strings into the schema's types; blanks mean "default".

        A value that does not convert is passed on unchanged, so validate()
        reports it with the schema's own message.
        """
        properties = self.params_schema.get("properties", {})
        result: dict[str, Any] = {}
        for name, value in raw.items():
            kind = properties.get(name, {}).get("type")
            kinds = kind if isinstance(kind, list) else [kind]
            if value == "" and "string" not in kinds:
                continue
            result[name] = _convert(value, kinds)
        return result

    def describe(self) -> dict:
        defaults = self.validate({})
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "stages": [stage.name for stage in self.stages_for(defaults)],
            "params_schema": self.params_schema,
        }


def _non_finite(value: Any, path: str = "") -> list[str]:
    """Paths of the NaN and infinite numbers inside `value`."""
    if isinstance(value, float) and not math.isfinite(value):
        return [path or "params"]
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return []
    return [bad for key, item in items for bad in _non_finite(item, f"{path}.{key}".lstrip("."))]


# Text that is a number as a person types one in ASCII: not " 2 ", "1_0" or "٥",
# which Python's int() and float() would take. NaN and infinities convert, to
# be refused by name in validate().
_INTEGER = re.compile(r"-?[0-9]{1,30}")
_NUMBER = re.compile(r"-?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?|-?(nan|inf|infinity)", re.I)


def _convert(value: str, kinds: list) -> Any:
    for kind in kinds:
        if kind == "integer" and _INTEGER.fullmatch(value):
            return int(value)
        if kind == "number" and _NUMBER.fullmatch(value):
            return float(value)
        if kind == "boolean" and value.lower() in ("true", "false", "on", "off", "1", "0"):
            return value.lower() in ("true", "on", "1")
    return value
