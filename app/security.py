"""HTTP hardening: security headers and CSP (Flask-Talisman), login rate limit (Flask-Limiter),
the proxy setting that makes both see the real client, and what a body may hold.

htmx needs no inline script, so the CSP allows only this site; its own
injected indicator <style> is switched off in base.html (htmx-config).
"""

import io
import tempfile
from collections.abc import Callable
from typing import BinaryIO

from flask import current_app, request
from flask_babel import gettext
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import current_user
from flask_talisman import Talisman
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wsgi import ClosingIterator

from app.services.errors import InvalidRequest

CSP = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}

talisman = Talisman()
# Downloads of what stages produced: a stage's HTML or SVG must never act as a page of this site.
sandboxed = talisman(content_security_policy="sandbox; default-src 'none'")
# A stage's HTML shown in a frame of the task page: sandboxed (no script, an origin of its
# own), its inline style and data: images only, framed by this site alone.
previewed = talisman(
    content_security_policy=(
        "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        "frame-ancestors 'self'"
    ),
    frame_options="SAMEORIGIN",
)
limiter = Limiter(key_func=get_remote_address)


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def refuse_nul_characters() -> None:
    """PostgreSQL text cannot hold NUL (0x00): refuse it at the door, the same on every backend."""
    texts = [request.path]
    for fields in (request.args, request.form):  # every value of a repeated field, and keys
        texts.extend(
            text
            for key, values in fields.lists()
            for text in (key, *values)
            if isinstance(text, str)  # a multipart part whose name does not parse has None
        )
    if request.is_json:
        texts.extend(_strings(request.get_json(silent=True)))
    if any("\x00" in text for text in texts):
        raise InvalidRequest(gettext("Text must not contain NUL (0x00) characters"))


class ChunkedBodyLimit:
    """WSGI middleware: a body sent without Content-Length (chunked) meets the same limit.

    Werkzeug reads such a body up to MAX_CONTENT_LENGTH and stops there, so a
    view would act on the first MiB of a longer body (a 201 for a cut-off
    JSON text). Here it is read once, up to one byte past the limit
    `limit_for(environ)` gives (`body_limit`: the upload limit for a
    multipart body to a route that takes files), spooled to a temporary
    file: longer is a 413 (raised in `refuse_oversized_bodies`, so it is
    rendered like any error), shorter is handed on with its length.
    """

    def __init__(self, wsgi_app, limit_for: Callable[[dict], int]):
        self.wsgi_app, self.limit_for = wsgi_app, limit_for

    def __call__(self, environ, start_response):
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if chunked and not environ.get("CONTENT_LENGTH"):
            limit = self.limit_for(environ)
            body, size = self._read(environ["wsgi.input"], limit)
            if size > limit:
                body.close()
                environ[TOO_LARGE], body, size = True, io.BytesIO(), 0
            environ["wsgi.input"], environ["CONTENT_LENGTH"] = body, str(size)
            # The server closes its own input, not this one: closed once the answer is sent.
            return ClosingIterator(self.wsgi_app(environ, start_response), body.close)
        return self.wsgi_app(environ, start_response)

    @staticmethod
    def _read(stream, limit: int) -> tuple[BinaryIO, int]:
        """Up to one byte past the limit (a server may hand it over in pieces), and its size."""
        # Handed on as the request's body and closed after the answer (__call__).
        body, size = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY), 0  # noqa: SIM115
        while size <= limit:
            part = stream.read(min(limit + 1 - size, SPOOL_IN_MEMORY))
            if not part:
                break
            body.write(part)
            size += len(part)
        body.seek(0)
        return body, size


TOO_LARGE = "taskdeck.body_too_large"
SPOOL_IN_MEMORY = 1024 * 1024
# A submit with files has a few params: the other fields are read into memory, so few.
UPLOAD_FORM_PARTS = 64


def takes_uploads(view):
    """Mark a view that takes files with a submit (multipart): its limit is UPLOAD_MAX."""
    view.takes_uploads = True
    return view


def route_takes_uploads(endpoint: str | None, app=None) -> bool:
    view = (app or current_app).view_functions.get(endpoint) if endpoint else None
    return getattr(view, "takes_uploads", False)


def upload_limit(config) -> int:
    """What a multipart submit with files may be: the files, and the usual 1 MiB of fields."""
    return config["UPLOAD_MAX"] + config["MAX_CONTENT_LENGTH"]


def body_limit(app) -> Callable[[dict], int]:
    """The limit of a request's body, before routing: the upload one for a multipart body to
    a route that takes files, else MAX_CONTENT_LENGTH (ChunkedBodyLimit's `limit_for`)."""

    def limit_for(environ) -> int:
        if environ.get("CONTENT_TYPE", "").startswith("multipart/form-data"):
            try:
                endpoint, _ = app.url_map.bind_to_environ(environ).match()
            except HTTPException:
                endpoint = None
            if route_takes_uploads(endpoint, app):
                return upload_limit(app.config)
        return app.config["MAX_CONTENT_LENGTH"]

    return limit_for


def limit_uploads(endpoint, _values) -> None:
    """A signed-in user's multipart body to a view that takes uploads may be UPLOAD_MAX more.

    Anyone else's is held to the usual 1 MiB: a 200 MiB body is not read
    before the login check. Its text fields are few (UPLOAD_FORM_PARTS).
    """
    if route_takes_uploads(endpoint) and request.mimetype == "multipart/form-data":
        request.max_form_parts = UPLOAD_FORM_PARTS
        if current_user.is_authenticated:
            request.max_content_length = upload_limit(current_app.config)


def refuse_oversized_bodies() -> None:
    if request.environ.get(TOO_LARGE):
        raise RequestEntityTooLarge()


def init_app(app) -> None:
    if app.config["PROXY_FIX"]:
        # One proxy in front (nginx, Caddy): trust its X-Forwarded-For and -Proto.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1)
    https = app.config["SESSION_COOKIE_SECURE"]
    talisman.init_app(
        app,
        content_security_policy=CSP,
        force_https=False,  # the proxy terminates TLS and redirects
        strict_transport_security=https,
        session_cookie_secure=https,
        frame_options="DENY",
        referrer_policy="same-origin",
    )
    limiter.init_app(app)
    app.wsgi_app = ChunkedBodyLimit(app.wsgi_app, body_limit(app))
    app.url_value_preprocessor(limit_uploads)  # before any hook reads the body
    app.before_request(refuse_oversized_bodies)
    app.before_request(refuse_nul_characters)
