"""Polled fragments answer 304 Not Modified while nothing they show has changed.

A browser polling a task every 1.5 s mostly asks for the same block again.
The fragment's ETag is built from one cheap query (queries.task_version)
plus what else shapes the block (the viewer, the language, the state the
page already shows, the session's CSRF token that its forms carry); when
the browser's `If-None-Match` holds it, the answer is an empty 304 and
nothing is rendered. The browser's HTTP cache
turns that 304 back into the block it already has, so htmx swaps in the
same markup. `Cache-Control: private, no-cache` makes it ask every time and
keeps shared caches out.
"""

import hashlib
import time

from flask import current_app, make_response, request, session
from flask_babel import get_locale

# Blocks that show a countdown or an estimate change with time alone: their tag does too.
CLOCK_SECONDS = 10


def etag(*parts, clock: bool = False) -> str:
    """A tag for what `parts` (reprs that differ when the block would) say, per viewer language."""
    if clock:
        parts = (*parts, int(time.time() // CLOCK_SECONDS))
    # The forms in a block carry this session's CSRF token: a block from an older session won't do.
    token = session.get(current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"))
    text = repr((*parts, str(get_locale()), token))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def unchanged(tag: str):
    """The 304 answer if the browser already holds `tag`, else None."""
    if tag not in request.if_none_match:
        return None
    return tagged(make_response("", 304), tag)


def tagged(response, tag: str):
    response.set_etag(tag)
    response.headers["Cache-Control"] = "private, no-cache"
    return response
