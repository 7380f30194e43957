"""The OpenAPI layer (spectree): routes declare their shapes once; requests are validated,
responses serialised and the OpenAPI document generated from those declarations.

A request that fails validation becomes our usual 400 `{"detail": "..."}`
naming every field (the `before` hook), never spectree's own error list.
"""

import copy

from flask import request
from spectree import Response, SecurityScheme, SpecTree
from spectree.models import SecuritySchemeData

from app.models import TASK_ID_PATTERN
from app.schemas.inputs import describe
from app.schemas.outputs import Error
from app.services.errors import InvalidRequest

# Codes a route may answer besides its success, with what they mean.
ERRORS = {
    400: "Bad request: malformed body, invalid or unknown field, NUL character, or bad state",
    401: "Not authenticated",
    403: "The task belongs to another user",
    404: "No such task (or token)",
    413: "Body over 1 MiB (a multipart submit with files: over TASKDECK_UPLOAD_MAX, 200 MiB)",
    415: "Body neither JSON nor form data",
    422: "Unknown task type or params the pipeline refuses",
    507: "The server's disk could not take the files sent",
}


def _refuse(_request, _response, error, _instance, *_rest) -> None:
    if error is not None:
        raise InvalidRequest(describe(error))


spec = SpecTree(
    "flask",
    title="Taskdeck API",
    version="1.0.0",
    description="Submit, watch, cancel and retry multi-stage background tasks.",
    mode="strict",  # only the routes declared below; the HTML pages are not API
    naming_strategy=lambda model: model.__name__,  # "Task", not "Task.c660a61"
    page_templates={},  # no documentation pages (they load scripts from CDNs)
    validation_error_status=400,
    validation_error_model=Error,
    before=_refuse,
    security_schemes=[
        SecurityScheme(name="bearerAuth", data=SecuritySchemeData(type="http", scheme="bearer")),
        SecurityScheme(
            name="cookieAuth",
            data=SecuritySchemeData(type="apiKey", field_in="cookie", name="session"),
        ),
    ],
    security=[{"bearerAuth": []}, {"cookieAuth": []}],  # either one
)


def posted(model, response, *errors: int, status: int = 200):
    """Validate a POST whose body is `model`, sent as JSON or as form fields; `body()` reads it."""
    return spec.validate(json=model, form=model, resp=answers(status, response, 413, 415, *errors))


def body():
    """The validated body of the current POST (an empty body is the model's defaults)."""
    context = request.context
    return context.json if context.json is not None else context.form


def answers(status: int, model, *errors: int, public: bool = False) -> Response:
    """The success `status` with its `model`, and the error codes this route can give.

    Every route can give 400 (a NUL character anywhere); a route that is not
    public also 401.
    """
    codes = {400, *errors} | (set() if public else {401})
    models = {f"HTTP_{status}": model}
    models.update({f"HTTP_{code}": (Error, ERRORS[code]) for code in sorted(codes)})
    return Response(**models)


def streamed(response):
    """A file or streamed response, for a route spectree declares.

    spectree reads an app response's whole body (`get_data`) to validate
    it, which would load a 100 MiB artifact into memory and fails for a
    file; given the body's iterable, status and headers it passes them on.
    """
    return response.response, response.status_code, response.headers


def document() -> dict:
    """The OpenAPI document, with what spectree cannot know about our bodies.

    Every body is optional (an empty one means `{}`) unless its model has a
    required field; a form may be URL-encoded as well as multipart, and
    carries params as `params.<name>` text fields; a task id is 32 hex digits.
    """
    doc = copy.deepcopy(spec.spec)
    schemas = doc["components"]["schemas"]
    for operations in doc["paths"].values():
        for operation in operations.values():
            for parameter in operation["parameters"]:
                if parameter["name"] == "task_id":  # our converter; spectree knows werkzeug's
                    parameter["schema"] = {"type": "string", "pattern": f"^{TASK_ID_PATTERN}$"}
            body = operation.get("requestBody")
            if body is None:
                continue
            content = body["content"]
            model = content["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
            body["required"] = bool(schemas[model].get("required"))
            form = {"schema": {"$ref": f"#/components/schemas/{_form_schema(schemas, model)}"}}
            content["multipart/form-data"] = content["application/x-www-form-urlencoded"] = form
    return doc


def _form_schema(schemas: dict, model: str) -> str:
    """The form twin of a body schema: a `params` object travels as `params.<name>` fields."""
    shape = schemas[model]
    if "params" not in shape.get("properties", {}):
        return model
    name = f"{model}Form"
    properties = {k: v for k, v in shape["properties"].items() if k != "params"}
    schemas[name] = {
        **shape,
        "title": name,
        "properties": properties,
        "patternProperties": {r"^params\.\w+$": {"type": "string"}},
    }
    return name
