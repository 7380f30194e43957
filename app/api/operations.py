"""Declaring API operations once: route, body/query parsing, and the OpenAPI entry.

`@operation(...)` registers the Flask route, parses and validates the body
or query with the given marshmallow schema (400 with a detail naming the
fields), and records what apispec needs, so the document cannot drift from
the code.
"""

import re
from dataclasses import dataclass

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import jsonify, request
from marshmallow import Schema, ValidationError, fields
from werkzeug.exceptions import BadRequest, UnsupportedMediaType

from app.services.errors import InvalidRequest

ERROR_DESCRIPTIONS = {
    400: "Bad request: malformed body, invalid or unknown field, NUL character, or bad state",
    401: "Not authenticated",
    403: "The task belongs to another user",
    404: "No such task (or token)",
    413: "Body over 1 MiB",
    415: "Body neither JSON nor form data",
    422: "Unknown task type or params the pipeline refuses",
}
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


@dataclass(frozen=True)
class Operation:
    path: str
    method: str
    view_name: str
    doc: str
    response: type[Schema]
    status: int
    body: type[Schema] | None
    query: type[Schema] | None
    errors: tuple[int, ...]
    public: bool


OPERATIONS: list[Operation] = []
# Endpoints served without authentication (the OpenAPI document).
PUBLIC_ENDPOINTS: set[str] = set()


def operation(
    bp, rule, method, *, response, status=200, body=None, query=None, errors=(), public=False
):
    """Register `fn` as the view for `method rule`; it gets `data`/`query`, returns a dict."""

    def decorator(fn):
        def view(**path_args):
            if body is not None:
                schema = body()
                path_args["data"] = _load(schema, read_body(schema))
            if query is not None:
                path_args["query"] = _load(query(), request.args.to_dict())
            return jsonify(fn(**path_args)), status

        view.__name__ = fn.__name__
        view.__doc__ = fn.__doc__
        bp.add_url_rule(rule, endpoint=fn.__name__, view_func=view, methods=[method])
        if public:
            PUBLIC_ENDPOINTS.add(f"{bp.name}.{fn.__name__}")
        auth_errors = () if public else (401,)
        OPERATIONS.append(
            Operation(
                rule,
                method,
                fn.__name__,
                fn.__doc__ or "",
                response,
                status,
                body,
                query,
                tuple(
                    sorted(
                        {
                            *errors,
                            *auth_errors,
                            400,  # any text with a NUL character (app/security.py)
                            *((400, 413, 415) if body else ()),
                            *((400,) if query else ()),
                        }
                    )
                ),
                public,
            )
        )
        return view

    return decorator


def read_body(schema: Schema) -> dict:
    """The request body as a dict: JSON object or form fields; empty body means {}."""
    if request.is_json:
        try:
            data = request.get_json()
        except BadRequest as exc:
            raise InvalidRequest("Malformed JSON body") from exc
        if not isinstance(data, dict):
            raise InvalidRequest("JSON body must be an object")
        return data
    if request.mimetype in FORM_TYPES:
        return _form_fields(schema)
    if not request.get_data(cache=True):
        return {}
    raise UnsupportedMediaType()


def _form_fields(schema: Schema) -> dict:
    """Form fields as the schema expects them: lists for List fields, `params.x` nested."""
    data: dict = {}
    for key in request.form:
        if key == "csrf_token":
            continue
        if key.startswith("params."):
            data.setdefault("params", {})[key.removeprefix("params.")] = request.form[key]
        elif isinstance(schema.fields.get(key), fields.List):
            data[key] = request.form.getlist(key)
        else:
            data[key] = request.form[key]
    return data


def _load(schema: Schema, data: dict) -> dict:
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise InvalidRequest(describe_errors(exc.messages)) from exc


def describe_errors(messages) -> str:
    """Flatten marshmallow's {"field": ["msg"]} into one readable line naming every field."""
    if not isinstance(messages, dict):
        return " ".join(map(str, messages))
    unknown = sorted(name for name, msgs in messages.items() if msgs == ["Unknown field."])
    parts = [f"Unknown field(s): {', '.join(unknown)}"] if unknown else []
    for name, msgs in messages.items():
        if name in unknown:
            continue
        text = describe_errors(msgs) if isinstance(msgs, dict) else " ".join(map(str, msgs))
        parts.append(f"{name}: {text}")
    return "; ".join(parts)


def _openapi_path(prefix: str, rule: str) -> str:
    return prefix + re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def build_spec(prefix: str) -> dict:
    """The OpenAPI 3 document of every registered operation."""
    spec = APISpec(
        title="Taskdeck API",
        version="1.0.0",
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={"description": "Submit, watch, cancel and retry multi-stage background tasks."},
    )
    spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    spec.components.security_scheme(
        "cookieAuth", {"type": "apiKey", "in": "cookie", "name": "session"}
    )
    from app.api import schemas

    spec.components.schema("Error", schema=schemas.Error)
    for code, description in ERROR_DESCRIPTIONS.items():
        spec.components.response(
            str(code),
            {"description": description, "content": {"application/json": {"schema": "Error"}}},
        )
    paths: dict[str, dict] = {}
    for op in OPERATIONS:
        summary, _, description = op.doc.strip().partition("\n")
        entry: dict = {
            "operationId": op.view_name,
            "summary": summary,
            "responses": {
                str(op.status): {
                    "description": "Success",
                    "content": {"application/json": {"schema": op.response}},
                },
                **{str(code): {"$ref": f"#/components/responses/{code}"} for code in op.errors},
            },
        }
        if description.strip():
            entry["description"] = description.strip()
        parameters = [
            {"in": "path", "name": name, "required": True, "schema": _path_type(converter)}
            for converter, name in re.findall(r"<(?:([^:<>]+):)?([^<>]+)>", op.path)
        ]
        if op.query is not None:
            parameters.append({"in": "query", "schema": op.query})
        if parameters:
            entry["parameters"] = parameters
        if op.body is not None:
            entry["requestBody"] = {
                "required": any(f.required for f in op.body().fields.values()),
                "content": {"application/json": {"schema": op.body}},
            }
        entry["security"] = [] if op.public else [{"bearerAuth": []}, {"cookieAuth": []}]
        paths.setdefault(_openapi_path(prefix, op.path), {})[op.method.lower()] = entry
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()


def _path_type(converter: str) -> dict:
    return {"type": "integer"} if converter == "int" else {"type": "string"}
