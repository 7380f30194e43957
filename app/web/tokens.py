"""The API tokens page: create (the secret is shown once), list, revoke."""

from flask import render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user, login_required

from app.services import accounts
from app.services.errors import ServiceError
from app.web import bp
from app.web.actions import action


def _page(status=200, **extra):
    tokens = accounts.list_tokens(current_user)
    return render_template("tokens.html", tokens=tokens, **extra), status


@bp.get("/tokens")
@login_required
def tokens():
    """List your API tokens with when each was last used."""
    return _page()


@bp.post("/tokens")
@login_required
def token_create():
    """Create a token and show its secret in this response only.

    No redirect here: the secret must not travel through the session cookie
    or a flash message, and it cannot be shown again.
    """
    try:
        token, plain = accounts.create_token(current_user, request.form.get("name", ""))
    except ServiceError as exc:
        return _page(exc.status, error=exc.detail, name=request.form.get("name", ""))
    return _page(201, created=token, secret=plain)


@action("/tokens/<int:token_id>/revoke", fallback="web.tokens")
def token_revoke(token_id):
    """Revoke a token; scripts using it get 401 from now on."""
    token = accounts.revoke_token(current_user, token_id)
    message = gettext("Token %(name)s revoked", name=token.name or token.prefix)
    return message, url_for("web.tokens")
