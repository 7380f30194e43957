"""Reading HTML form input into the values the services take."""

from flask import request, url_for
from flask_babel import gettext

from app.auth import safe_next
from app.constants import LIST_LIMIT_DEFAULT, STATES
from app.services.errors import InvalidRequest


def checked(name: str) -> bool:
    return request.form.get(name) in ("1", "on", "true", "yes")


def priority_field(name: str = "priority") -> int:
    """Raise InvalidRequest for text that is not a whole number (range is the service's job)."""
    try:
        return int(request.form.get(name, ""))
    except ValueError as exc:
        raise InvalidRequest(gettext("priority must be a whole number from 0 to 11")) from exc


def back(default_endpoint: str = "web.task_list", **values) -> str:
    """Where a form asked to return to (same-site paths only), else a default page."""
    return safe_next(request.form.get("next"), url_for(default_endpoint, **values))


def list_filters() -> dict:
    """The task list's query string, cleaned: unknown states and blanks are dropped."""
    states = [s for s in request.args.getlist("status") if s in STATES]
    return {
        "status": states,
        "type": request.args.get("type") or None,
        "q": (request.args.get("q") or "").strip()[:200] or None,
        "cursor": request.args.get("cursor") or None,
        "newer": request.args.get("newer") or None,
        "limit": LIST_LIMIT_DEFAULT,
    }
