"""HTTP hardening: security headers and CSP (Flask-Talisman), login rate limit (Flask-Limiter),
and the proxy setting that makes both see the real client.

htmx needs no inline script, so the CSP allows only this site; its own
injected indicator <style> is switched off in base.html (htmx-config).
"""

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_talisman import Talisman
from werkzeug.middleware.proxy_fix import ProxyFix

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
