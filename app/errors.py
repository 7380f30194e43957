"""Error responses: `{"detail": ...}` under /api, a plain page elsewhere; never a stack trace."""

from flask import current_app, jsonify, render_template, request
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_limiter import RateLimitExceeded
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from app.security import TOO_LARGE
from app.services.errors import ServiceError

MIB = 1024 * 1024

# Werkzeug's default descriptions are written for browsers; API clients get these.
SHORT_DETAILS = {
    404: "Not found",
    405: "Method not allowed",
    413: "Request body too large (limit 1 MiB)",
    415: "Unsupported media type: send application/json or form data",
    500: "Internal server error",
}


# What a person reads on the error page, in the page's language.
PAGE_DETAILS = {
    400: _l("Bad request"),
    403: _l("Forbidden"),
    404: _l("Not found"),
    405: _l("Method not allowed"),
    413: _l("Request body too large (limit 1 MiB)"),
    429: _l("Too many attempts; wait a minute and try again"),
    415: _l("Unsupported media type"),
    500: _l("Internal server error"),
}
CSRF_PAGE_DETAIL = _l(
    "The form has expired or did not come from this page; reload the page and try again"
)


def wants_json() -> bool:
    return request.path.startswith("/api/")


def error_response(status: int, detail: str):
    response = jsonify(detail=detail)
    response.status_code = status
    return response


def _error_page(status: int, detail: str):
    return render_template("error.html", status=status, detail=detail), status


def register(app) -> None:
    @app.errorhandler(ServiceError)
    def service_error(exc: ServiceError):
        if wants_json():
            return error_response(exc.status, exc.detail)
        return _error_page(exc.status, exc.detail)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if exc.code is None:
            return exc
        if exc.code == 413 and (detail := _upload_refusal()):
            return error_response(413, detail) if wants_json() else _error_page(413, detail)
        if wants_json():
            detail = (
                exc.description if _custom(exc) else SHORT_DETAILS.get(exc.code, exc.description)
            )
            return error_response(exc.code, detail)
        if isinstance(exc, CSRFError):
            return _error_page(exc.code, str(CSRF_PAGE_DETAIL))
        if isinstance(exc, RateLimitExceeded):  # Flask-Limiter adds Retry-After
            return _error_page(exc.code, str(PAGE_DETAILS[429]))
        detail = exc.description if _custom(exc) else PAGE_DETAILS.get(exc.code, exc.name)
        return _error_page(exc.code, str(detail))


def _upload_refusal() -> str | None:
    """Why a 413 came, for a request that was allowed files; None for any other request."""
    config = current_app.config
    limit = request.max_content_length or 0
    if limit <= config["MAX_CONTENT_LENGTH"]:
        return None
    if request.environ.get(TOO_LARGE) or (request.content_length or 0) > limit:
        return gettext(
            "Files too large (limit %(size)s MiB in all)", size=config["UPLOAD_MAX"] // MIB
        )
    return gettext("Too many form fields, or a text field over 500 KB")


def _custom(exc: HTTPException) -> bool:
    """True when the code that raised gave its own description."""
    return exc.description != type(exc).description
