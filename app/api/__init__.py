"""JSON API v1: thin views over app/services; every error is `{"detail": ...}`."""

from flask import Blueprint, request
from flask_login import current_user
from werkzeug.exceptions import BadRequest, UnsupportedMediaType

from app.extensions import login_manager
from app.security import route_takes_uploads
from app.sentfiles import sent_files
from app.services.errors import InvalidRequest

bp = Blueprint("api", __name__)

# Served without authentication.
PUBLIC_ENDPOINTS = {"api.openapi"}
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


@bp.before_request
def require_login():
    if request.endpoint not in PUBLIC_ENDPOINTS and not current_user.is_authenticated:
        return login_manager.unauthorized()
    return None


@bp.before_request
def check_body():
    """A body is a JSON object or form fields; an empty body is `{}` whatever its type.

    Checked before the route's model sees it, so malformed JSON is a 400
    and a body of another type a 415, never an empty object by accident.
    Clients that send `Content-Type: application/json` with no body (a
    plain `fetch(url, {method: "POST"})`) get `{}`.
    """
    if request.method != "POST":
        return
    if request.mimetype in FORM_TYPES:  # parsed already (the NUL check reads every field)
        if request.files and not route_takes_uploads(request.endpoint):
            raise InvalidRequest(f"This route takes no files (got {', '.join(request.files)})")
        sent_files()  # their field names, before the body's model sees the fields
        return
    if not request.get_data(cache=True):
        return
    if request.is_json:
        try:
            data = request.get_json()
        except BadRequest as exc:
            raise InvalidRequest(f"Malformed JSON body: {_reason(exc)}") from exc
        if not isinstance(data, dict):
            raise InvalidRequest("JSON body must be an object")
    else:
        raise UnsupportedMediaType()


def _reason(exc: BadRequest) -> str:
    """What the JSON parser said, from the chain Flask and Werkzeug re-raise it in."""
    cause = exc
    while cause.__cause__ is not None:
        cause = cause.__cause__
    text = cause.description if isinstance(cause, BadRequest) else str(cause)
    return (text or "not JSON").removeprefix("Failed to decode JSON object: ")


from app.api import meta, tasks, tokens  # noqa: E402, F401  (routes register on import)
