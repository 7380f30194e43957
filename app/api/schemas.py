"""Request and response shapes of the JSON API.

Request schemas validate bodies and query strings (unknown body fields are
refused by name); response schemas exist for the OpenAPI document and are
checked against real responses in the tests.
"""

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, validate

from app.constants import (
    BULK_RETRY_MAX,
    LIST_LIMIT_DEFAULT,
    LIST_LIMIT_MAX,
    PRIORITY_DEFAULT,
    PRIORITY_MAX,
    PRIORITY_MIN,
    STAGE_STATES,
    STATES,
)

PRIORITY_RANGE = validate.Range(PRIORITY_MIN, PRIORITY_MAX)


def _priority(**kwargs):
    return fields.Integer(
        validate=PRIORITY_RANGE,
        metadata={"description": "0 (most urgent) to 11 (lowest)"},
        **kwargs,
    )


# --- requests ---------------------------------------------------------------


class TaskCreate(Schema):
    type = fields.String(required=True, validate=validate.Length(1, 64))
    params = fields.Dict(keys=fields.String(), load_default=dict)
    priority = _priority(load_default=PRIORITY_DEFAULT)


class CancelRequest(Schema):
    reason = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=1000))


class RetryRequest(Schema):
    from_scratch = fields.Boolean(load_default=False)


class PriorityRequest(Schema):
    priority = _priority(required=True)


class CancelAllRequest(Schema):
    cancel_running = fields.Boolean(load_default=False)


class CancelByTypeRequest(CancelAllRequest):
    task_type = fields.String(required=True, validate=validate.Length(1, 64))


class BulkRetryRequest(Schema):
    task_ids = fields.List(
        fields.String(validate=validate.Length(1, 64)),
        required=True,
        validate=validate.Length(1, BULK_RETRY_MAX),
    )
    from_scratch = fields.Boolean(load_default=False)


class TokenCreate(Schema):
    name = fields.String(load_default="", validate=validate.Length(max=100))


class TaskListQuery(Schema):
    class Meta:
        unknown = EXCLUDE  # cache-busting parameters are harmless in a query string

    status = fields.String(
        metadata={"description": "One state or several, comma-separated: " + ", ".join(STATES)}
    )
    type = fields.String(validate=validate.Length(max=64))
    q = fields.String(
        validate=validate.Length(max=200),
        metadata={"description": "Text to find in the id, type or params"},
    )
    limit = fields.Integer(
        load_default=LIST_LIMIT_DEFAULT,
        validate=validate.Range(min=1),
        metadata={"description": f"Page size; values above {LIST_LIMIT_MAX} are capped"},
    )
    cursor = fields.String(validate=validate.Length(max=200))

    @post_load
    def _normalise(self, data, **_kwargs):
        states = [s.strip() for s in data.pop("status", "").split(",") if s.strip()]
        unknown = [s for s in states if s not in STATES]
        if unknown:
            raise ValidationError(
                f"Unknown status {', '.join(unknown)}; use {', '.join(STATES)}", "status"
            )
        data["states"] = states
        data["limit"] = min(data["limit"], LIST_LIMIT_MAX)
        return data


# --- responses --------------------------------------------------------------


def _text(**kwargs):
    return fields.String(required=True, allow_none=kwargs.pop("nullable", False), **kwargs)


def _time(nullable=True):
    return fields.String(required=True, allow_none=nullable, metadata={"format": "date-time"})


class Error(Schema):
    detail = _text()


class Task(Schema):
    id = _text()
    type = _text()
    state = _text(validate=validate.OneOf(STATES))
    stage = _text(nullable=True)
    stage_index = fields.Integer(required=True)
    stage_count = fields.Integer(required=True)
    progress = fields.Float(required=True, validate=validate.Range(0, 1))
    progress_message = _text(nullable=True)
    eta_seconds = fields.Float(required=True, allow_none=True)
    priority = _priority(required=True)
    params = fields.Dict(required=True)
    error_code = _text(nullable=True)
    error_message = _text(nullable=True)
    retryable = fields.Boolean(required=True)
    retry_of = _text(nullable=True)
    retried_by = _text(nullable=True)
    owner = _text()
    created_at = _time(nullable=False)
    started_at = _time()
    finished_at = _time()
    cancel_requested_at = _time()
    archived = fields.Boolean(required=True)


class Stage(Schema):
    name = _text()
    state = _text(validate=validate.OneOf(STAGE_STATES))
    started_at = _time()
    finished_at = _time()
    output = fields.Raw(required=True, allow_none=True)
    reused = fields.Boolean(required=True)
    worker = _text(nullable=True, metadata={"description": "host:pid that last started it"})


class Event(Schema):
    action = _text()
    actor = _text()
    from_state = _text(nullable=True)
    to_state = _text(nullable=True)
    stage = _text(nullable=True)
    reason = _text(nullable=True)
    at = _time(nullable=False)


class TaskDetail(Task):
    stages = fields.List(fields.Nested(Stage), required=True)
    events = fields.List(
        fields.Nested(Event), required=True, metadata={"description": "Newest last"}
    )


class TaskPage(Schema):
    items = fields.List(fields.Nested(Task), required=True)
    next_cursor = _text(nullable=True)


class _Done(Schema):
    success = fields.Boolean(required=True)
    message = _text()


class CancelResult(_Done):
    task_id = _text()
    previous_state = _text(validate=validate.OneOf(STATES))
    state = _text(validate=validate.OneOf(STATES))


class RetryResult(_Done):
    task_id = _text()
    new_task_id = _text()


class PriorityResult(_Done):
    task_id = _text()
    priority = _priority(required=True)


class BulkCancelCounts(Schema):
    cancelled = fields.Integer(required=True)
    failed = fields.Integer(required=True)
    total = fields.Integer(required=True)
    task_type = fields.String()


class BulkCancelResult(_Done):
    result = fields.Nested(BulkCancelCounts, required=True)


class BulkRetryCounts(Schema):
    retried = fields.Integer(required=True)
    skipped = fields.Integer(required=True)
    total = fields.Integer(required=True)
    new_task_ids = fields.List(fields.String(), required=True)
    errors = fields.Dict(keys=fields.String(), values=fields.String(), required=True)


class BulkRetryResult(_Done):
    result = fields.Nested(BulkRetryCounts, required=True)


class LastHour(Schema):
    since = _time(nullable=False)
    finished = fields.Integer(required=True)
    succeeded = fields.Integer(required=True)
    failed = fields.Integer(required=True)
    per_minute = fields.Float(required=True)


class HourBucket(Schema):
    hour = _time(nullable=False)
    succeeded = fields.Integer(required=True)
    failed = fields.Integer(required=True)
    cancelled = fields.Integer(required=True)


class SlowStage(Schema):
    type = _text()
    stage = _text()
    runs = fields.Integer(required=True)
    avg_seconds = fields.Float(required=True)
    max_seconds = fields.Float(required=True)
    slowest_task_id = _text()


class Stats(Schema):
    total = fields.Integer(required=True)
    by_state = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    by_type = fields.Dict(
        keys=fields.String(),
        values=fields.Dict(keys=fields.String(), values=fields.Integer()),
        required=True,
    )
    last_hour = fields.Nested(LastHour, required=True)
    finished_per_hour = fields.List(
        fields.Nested(HourBucket),
        required=True,
        metadata={"description": "Last 24 hours, oldest first; the last is the current hour"},
    )
    slowest_stages = fields.List(
        fields.Nested(SlowStage),
        required=True,
        metadata={"description": "Stages run in tasks finished in the last 24 h, slowest first"},
    )


class TaskType(Schema):
    name = _text()
    title = _text()
    description = _text()
    stages = fields.List(fields.String(), required=True)
    params_schema = fields.Dict(required=True, metadata={"description": "JSON Schema"})


class TaskTypeList(Schema):
    items = fields.List(fields.Nested(TaskType), required=True)


class OpenApiDocument(Schema):
    openapi = _text()
    info = fields.Dict(required=True)
    paths = fields.Dict(required=True)
    components = fields.Dict()


class Token(Schema):
    id = fields.Integer(required=True)
    name = _text()
    prefix = _text(metadata={"description": "First characters, to tell tokens apart"})
    created_at = _time(nullable=False)
    last_used_at = _time()
    revoked_at = _time()


class TokenList(Schema):
    items = fields.List(fields.Nested(Token), required=True)


class TokenCreated(Token):
    token = _text(metadata={"description": "The bearer token; shown only in this response"})


class TokenRevoked(_Done):
    token = fields.Nested(Token, required=True)
