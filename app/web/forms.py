"""Reading HTML form input into the same input models the JSON API and the CLI use."""

from flask import request, url_for
from pydantic import BaseModel
from spectree.utils import get_multidict_items

from app.auth import safe_next
from app.constants import LIST_LIMIT_DEFAULT
from app.schemas.inputs import parse, parse_states

# Fields of the page, not of the request model: where to go back, which bulk action.
# (The CSRF token is left out by the input models themselves.)
PAGE_FIELDS = ("next", "action")


def read_form(model: type[BaseModel]) -> BaseModel:
    """The posted form as `model`; a refusal is an InvalidRequest naming the fields."""
    # Read as spectree reads the API's form bodies, so both parse a field the same way.
    data = get_multidict_items(request.form, model)
    return parse(model, {key: value for key, value in data.items() if key not in PAGE_FIELDS})


def back(default_endpoint: str = "web.task_list", **values) -> str:
    """Where a form asked to return to (same-site paths only), else a default page."""
    return safe_next(request.form.get("next"), url_for(default_endpoint, **values))


def list_filters() -> dict:
    """The task list's query string, cleaned: unknown states and blanks are dropped.

    Cursors are checked where they are decoded (queries.decode_cursor): a
    crafted one is a 400 there, on the pages as on the API.
    """
    states = parse_states(request.args.getlist("status"), strict=False)
    return {
        "status": states,
        "type": request.args.get("type") or None,
        "q": (request.args.get("q") or "").strip()[:200] or None,
        "cursor": request.args.get("cursor") or None,
        "newer": request.args.get("newer") or None,
        "limit": LIST_LIMIT_DEFAULT,
    }
