"""HTTP hardening: security headers and CSP (Flask-Talisman), login rate limit (Flask-Limiter),
and the proxy setting that makes both see the real client.

htmx needs no inline script, so the CSP allows only this site; its own
injected indicator <style> is switched off in base.html (htmx-config).
"""

from flask import request
from flask_babel import gettext
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_talisman import Talisman
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
    texts = [request.path, *request.args.values(), *request.form.values()]
    if request.is_json:
        texts.extend(_strings(request.get_json(silent=True)))
    if any("\x00" in text for text in texts):
        raise InvalidRequest(gettext("Text must not contain NUL (0x00) characters"))


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
    app.before_request(refuse_nul_characters)
