"""HTTP hardening: security headers and CSP (Flask-Talisman), login rate limit (Flask-Limiter),
the proxy setting that makes both see the real client, and what a body may hold.

htmx needs no inline script, so the CSP allows only this site; its own
injected indicator <style> is switched off in base.html (htmx-config).
"""

import io

from flask import request
from flask_babel import gettext
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_talisman import Talisman
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix

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
    JSON text). Here it is read once, up to one byte past the limit: longer is
    a 413 (raised in `refuse_oversized_bodies`, so it is rendered like any
    error), shorter is handed on with its length.
    """

    def __init__(self, wsgi_app, limit: int):
        self.wsgi_app, self.limit = wsgi_app, limit

    def __call__(self, environ, start_response):
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if chunked and not environ.get("CONTENT_LENGTH"):
            body = self._read(environ["wsgi.input"])
            if len(body) > self.limit:
                environ[TOO_LARGE], body = True, b""
            environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
        return self.wsgi_app(environ, start_response)

    def _read(self, stream) -> bytes:
        """Up to one byte past the limit (a server may hand it over in pieces)."""
        parts, size = [], 0
        while size <= self.limit:
            part = stream.read(self.limit + 1 - size)
            if not part:
                break
            parts.append(part)
            size += len(part)
        return b"".join(parts)


TOO_LARGE = "taskdeck.body_too_large"


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
    app.wsgi_app = ChunkedBodyLimit(app.wsgi_app, app.config["MAX_CONTENT_LENGTH"])
    app.before_request(refuse_oversized_bodies)
    app.before_request(refuse_nul_characters)
