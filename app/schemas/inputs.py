"""What clients send: one model per request, shared by the JSON API, the HTML forms and the CLI.

A JSON body, a form and command-line options all arrive as a mapping and go
through the same model, so a field is parsed the same way everywhere:

- a priority is a JSON integer or a string of ASCII digits, nothing else;
- `params.<name>` fields (forms, `--param name=value`) are text, converted
  to the pipeline's types; a `params` object (JSON) is taken as typed;
- a `csrf_token` form field is the web layer's business, not the model's.
"""

from typing import Annotated, Any

from flask_babel import gettext
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from werkzeug.datastructures import FileStorage

from app.constants import (
    BULK_RETRY_MAX,
    LINE_NUMBER_MAX,
    LIST_LIMIT_DEFAULT,
    LIST_LIMIT_MAX,
    PRIORITY_DEFAULT,
    PRIORITY_MAX,
    PRIORITY_MIN,
    QUEUED,
)
from app.services.catalog import coerce_params
from app.services.errors import InvalidRequest
from app.services.states import STATES

# Names other systems use for our states in filters (msearch's task API says `pending`).
STATE_ALIASES = {"pending": QUEUED}


def _priority(value: Any) -> int:
    """A JSON integer, or text of ASCII digits only: not 5.5, "1_0", "٥" or " 7 "."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 3:
        value = int(value)
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not PRIORITY_MIN <= value <= PRIORITY_MAX
    ):
        raise ValueError(
            gettext(
                "priority must be an integer from %(min)d (most urgent) to %(max)d (lowest)",
                min=PRIORITY_MIN,
                max=PRIORITY_MAX,
            )
        )
    return value


# The Field comes first so the JSON Schema says minimum/maximum.
Priority = Annotated[
    int,
    Field(
        ge=PRIORITY_MIN,
        le=PRIORITY_MAX,
        description=f"{PRIORITY_MIN} (most urgent) to {PRIORITY_MAX} (lowest)",
    ),
    BeforeValidator(_priority),
]


class Input(BaseModel):
    """A request shape: unknown fields are refused by name, numbers must be finite."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _drop_form_token(cls, data: Any) -> Any:
        """A form posted from a signed-in page carries its CSRF token: not a field of ours."""
        if not isinstance(data, dict):
            return data
        if not all(isinstance(key, str) for key in data):
            raise ValueError("a form field has no name that can be read")
        return {k: v for k, v in data.items() if k != "csrf_token"}


class TaskCreate(Input):
    type: str = Field(min_length=1, max_length=64)
    params: dict[str, Any] = Field(default_factory=dict)
    priority: Priority = PRIORITY_DEFAULT

    @model_validator(mode="before")
    @classmethod
    def _text_params(cls, data: Any) -> Any:
        """Fold `params.<name>` text fields into `params`, in the pipeline's types.

        File fields of the same names are the view's to read (app/sentfiles.py), not text.
        """
        named = [k for k in data if isinstance(k, str)] if isinstance(data, dict) else []
        if not any(k.startswith("params.") for k in named):
            return data  # (a key that is not text is refused by Input's own check)
        data = dict(data)
        text = {
            k.removeprefix("params."): value
            for k in named
            if k.startswith("params.") and (value := _without_files(data.pop(k))) is not None
        }
        repeated = sorted(name for name, value in text.items() if isinstance(value, list))
        if repeated:
            raise ValueError(f"give each param once: params.{', params.'.join(repeated)}")
        if any(not isinstance(value, str) for value in text.values()):
            raise ValueError("params.<name> fields are form text; in JSON send a params object")
        if "params" in data:
            raise ValueError("send params as one object or as params.<name> fields, not both")
        data["params"] = coerce_params(str(data.get("type", "")), text)
        return data


def _without_files(value: Any) -> Any:
    """A form field's value with any uploaded file left out (None if nothing is left)."""
    if isinstance(value, list):
        kept = [v for v in value if not isinstance(v, FileStorage)]
        return kept[0] if len(kept) == 1 else (kept or None)
    return None if isinstance(value, FileStorage) else value


class CancelRequest(Input):
    reason: str | None = Field(default=None, max_length=1000)

    @field_validator("reason")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return (value or "").strip() or None


class RetryRequest(Input):
    from_scratch: bool = False


class PriorityRequest(Input):
    priority: Priority


class CancelAllRequest(Input):
    cancel_running: bool = False


class CancelByTypeRequest(CancelAllRequest):
    task_type: str = Field(min_length=1, max_length=64)


class TaskIds(Input):
    task_ids: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        min_length=1, max_length=BULK_RETRY_MAX
    )

    @field_validator("task_ids", mode="before")
    @classmethod
    def _one_form_field(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class BulkRetryRequest(TaskIds):
    from_scratch: bool = False


class TokenCreate(Input):
    name: str = Field(default="", max_length=100)


class NoBody(Input):
    """A POST that takes nothing: any field sent is refused by name."""


class TaskListQuery(BaseModel):
    """The task list's filters; cache-busting and unknown query parameters are ignored."""

    model_config = ConfigDict(extra="ignore")

    status: str | list[str] | None = Field(
        default=None,
        description="One state or several, comma-separated: " + ", ".join(STATES),
    )
    type: str | None = Field(default=None, max_length=64)
    q: str | None = Field(
        default=None, max_length=200, description="Text to find in the id, type or params"
    )
    limit: int = Field(
        default=LIST_LIMIT_DEFAULT,
        ge=1,
        description=f"Page size; values above {LIST_LIMIT_MAX} are capped",
    )
    cursor: str | None = Field(default=None, max_length=200)

    @property
    def states(self) -> list[str]:
        return parse_states(self.status)

    @property
    def page_size(self) -> int:
        return min(self.limit, LIST_LIMIT_MAX)


class LogQuery(BaseModel):
    """Which log lines to read: those after line `after`, of one stage if given."""

    model_config = ConfigDict(extra="ignore")

    after: int = Field(
        default=0, ge=0, le=LINE_NUMBER_MAX, description="The last line number already read"
    )
    stage: str | None = Field(default=None, max_length=100)
    limit: int = Field(default=1000, ge=1, le=5000)


class SearchQuery(BaseModel):
    """A search in a task's index (media_index): words or part of one, Chinese or English."""

    model_config = ConfigDict(extra="ignore")

    q: str = Field(min_length=1, max_length=200, description="What to look for")
    limit: int = Field(default=20, ge=1, le=100)


def parse_states(status: str | list[str] | None, strict: bool = True) -> list[str]:
    """States from `queued,running`, repeated `status=` fields, or both; `pending` means queued.

    An unknown state is a 400 naming it, or, with strict=False (the pages'
    filter links), left out.
    """
    given = status if isinstance(status, list) else [status or ""]
    parts = [part.strip() for item in given for part in item.split(",")]
    states = [STATE_ALIASES.get(part, part) for part in parts if part]
    unknown = [s for s in states if s not in STATES]
    if not strict:
        states = [s for s in states if s in STATES]
    elif unknown:
        raise InvalidRequest(
            f"status: Unknown status {', '.join(unknown)}; use {', '.join(STATES)}"
        )
    return list(dict.fromkeys(states))


def parse(model: type[BaseModel], data: Any) -> BaseModel:
    """Validate `data` with `model`; a refusal is a 400 whose detail names every field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        fields = {str(e["loc"][0]) if e["loc"] else "params": _message(e) for e in exc.errors()}
        raise InvalidRequest(describe(exc), fields=fields) from exc


def describe(error: ValidationError) -> str:
    """Pydantic's errors as one readable line: "priority: …; Unknown field(s): x"."""
    unknown = [
        ".".join(map(str, e["loc"])) for e in error.errors() if e["type"] == "extra_forbidden"
    ]
    parts = [f"Unknown field(s): {', '.join(unknown)}"] if unknown else []
    for e in error.errors():
        if e["type"] == "extra_forbidden":
            continue
        where, message = ".".join(map(str, e["loc"])), _message(e)
        named = not where or message.startswith(f"{where} ")
        parts.append(message if named else f"{where}: {message}")
    return "; ".join(parts)


def _message(error: dict) -> str:
    return error["msg"].removeprefix("Value error, ")
