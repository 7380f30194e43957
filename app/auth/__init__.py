"""Who is asking: session logins (browser) and bearer tokens (scripts)."""

import unicodedata
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext
from flask_login import current_user, login_user, logout_user

from app.errors import error_response, wants_json
from app.extensions import csrf, login_manager
from app.models import User
from app.security import limiter
from app.services import accounts

bp = Blueprint("auth", __name__)

UNAUTHENTICATED = "Authentication required: log in, or send 'Authorization: Bearer <token>'"


def bearer_token() -> str | None:
    auth = request.authorization
    if auth is not None and auth.type == "bearer" and auth.token:
        return auth.token
    return None


# What Flask-Login keeps in the session and the remember cookie: the login's
# own token, not the user id, so each login can be ended on its own.
login_manager.id_attribute = "get_login_token"


@login_manager.user_loader
def load_user(login_token: str) -> User | None:
    """The session's user, unless the request names a bearer token: then only the token counts.

    Otherwise a revoked token would still work from a browser that is logged
    in, and a bearer request (which skips CSRF) could ride on the cookie.
    A login that has ended (logout, password change) loads nobody.
    """
    if bearer_token() is not None:
        return None
    return accounts.user_for_login(login_token)


@login_manager.request_loader
def load_user_from_token(_request) -> User | None:
    token = bearer_token()
    if token is None:
        return None
    user = accounts.user_for_token(token)
    if user is None:
        g.auth_error = "Invalid or revoked API token"
    return user


@login_manager.unauthorized_handler
def unauthorized():
    if wants_json():
        response = error_response(401, g.get("auth_error", UNAUTHENTICATED))
        response.headers["WWW-Authenticate"] = 'Bearer realm="taskdeck"'
        return response
    return redirect(url_for("auth.login", next=request.full_path))


def register(app) -> None:
    @app.before_request
    def csrf_for_cookie_sessions():
        """Cookies ride along on forged requests; bearer tokens don't, so they skip CSRF.

        An API call with no session at all gets its 401, and an unknown route
        its 404/405, rather than a CSRF error that hides the real problem.
        """
        if not current_app.config["WTF_CSRF_ENABLED"]:
            return
        if request.method in ("GET", "HEAD", "OPTIONS") or bearer_token() is not None:
            return
        if request.routing_exception is not None:
            return
        if wants_json() and not current_user.is_authenticated:
            return
        csrf.protect()


def safe_next(target: str | None, default: str) -> str:
    """Only same-site relative paths, so a form cannot bounce users to another site.

    No backslash and no control character: browsers read `\\` as `/` and drop
    tabs and newlines ("/\\t/evil" is "//evil"), and a CR or LF cannot go in
    a Location header at all (Werkzeug refuses it: a 500 after the action ran).
    """
    if not target or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target or any(unicodedata.category(char) == "Cc" for char in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"])
def login():
    """Show the login form; on POST check the password and start a session."""
    if request.method == "POST":
        user = accounts.check_login(
            request.form.get("username", ""), request.form.get("password", "")
        )
        if user is None:
            flash(gettext("Invalid username or password"), "error")
            return render_template("auth/login.html"), 401
        _end_current_login()
        accounts.start_login(user)
        login_user(user, remember=bool(request.form.get("remember")))
        return redirect(safe_next(request.args.get("next"), url_for("web.index")))
    return render_template("auth/login.html")


@bp.post("/logout")
def logout():
    """End the session, here and on the server, then show the login form."""
    _end_current_login()
    logout_user()
    return redirect(url_for("auth.login"))


def _end_current_login() -> None:
    """Forget this browser's login, if it has one (a bearer token's user has none)."""
    token = getattr(current_user, "login_token", None)
    if token is not None:
        accounts.end_login(token)
