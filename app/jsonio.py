"""JSON in and out of the app: UTF-8 text, and bodies that cannot hurt us.

Flask's request parsing goes through `app.json.loads`, so every route
(signed in or not, API or page) refuses the same things with a 400:
nesting deeper than MAX_DEPTH (50,000 `[` used to escape as a
RecursionError, a 500), and lone surrogates (`"\\udc80"`), which no UTF-8
database, page or log can hold. NaN and infinities parse, so that the
field they sit in is named when validation refuses them (a 422 or 400).
"""

import json

from flask.json.provider import DefaultJSONProvider

MAX_DEPTH = 64


def _check(value) -> None:
    """Raise ValueError for nesting deeper than MAX_DEPTH or a string with a lone surrogate."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ValueError("text holds a lone surrogate (not valid Unicode)") from exc
        elif isinstance(item, dict):
            stack.extend((key, depth) for key in item)
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)


class StrictJSONProvider(DefaultJSONProvider):
    """Chinese stays Chinese (no \\u escapes), key order is kept, hostile bodies are refused."""

    ensure_ascii = False
    sort_keys = False

    def loads(self, s, **kwargs):
        try:
            value = json.loads(s, **kwargs)
        except RecursionError as exc:
            raise ValueError(f"nested deeper than {MAX_DEPTH} levels") from exc
        _check(value)
        return value
