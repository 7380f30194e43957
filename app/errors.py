"""Error responses: `{"detail": ...}` under /api, a plain page elsewhere; never a stack trace."""

from flask import jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from app.services.errors import ServiceError

# Werkzeug's default descriptions are written for browsers; API clients get these.
SHORT_DETAILS = {
    404: "Not found",
    405: "Method not allowed",
    413: "Request body too large (limit 1 MiB)",
    415: "Unsupported media type: send application/json or form data",
    500: "Internal server error",
}


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
        if _custom(exc):
            detail = exc.description
        else:
            detail = SHORT_DETAILS.get(exc.code, exc.description) if wants_json() else exc.name
        if wants_json():
            return error_response(exc.code, detail)
        return _error_page(exc.code, detail)


def _custom(exc: HTTPException) -> bool:
    """True when the code that raised gave its own description."""
    return exc.description != type(exc).description
