"""HTML pages. The full task pages arrive with the web UI; this is the landing page."""

from flask import Blueprint, render_template
from flask_login import login_required

bp = Blueprint("web", __name__)


@bp.get("/")
@login_required
def index():
    """Show where to go next: the API and its document."""
    return render_template("index.html")
