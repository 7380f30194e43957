"""JSON API v1: thin views over app/services; every error is `{"detail": ...}`."""

from flask import Blueprint, request
from flask_login import current_user

from app.api.operations import PUBLIC_ENDPOINTS
from app.extensions import login_manager

bp = Blueprint("api", __name__)


@bp.before_request
def require_login():
    if request.endpoint not in PUBLIC_ENDPOINTS and not current_user.is_authenticated:
        return login_manager.unauthorized()
    return None


from app.api import meta, tasks, tokens  # noqa: E402, F401  (routes register on import)
