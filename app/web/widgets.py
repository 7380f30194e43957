"""The active-tasks widget shown in the layout of every page."""

from flask import render_template
from flask_login import current_user, login_required
from markupsafe import Markup

from app.schemas import outputs
from app.services import queries
from app.web import bp

# Polling cadence: quick while something runs, a slow heartbeat otherwise
# (so a task submitted from a script still shows up).
BUSY_POLL = "every 2s"
IDLE_POLL = "every 30s"


def _render() -> Markup:
    tasks = [outputs.Task.model_validate(t) for t in queries.active_tasks(current_user)]
    trigger = BUSY_POLL if tasks else IDLE_POLL
    return Markup(render_template("partials/active_tasks.html", tasks=tasks, trigger=trigger))


@bp.app_context_processor
def active_widget():
    """Let base.html render the widget in place on every page for a signed-in user."""
    return {"render_active_tasks": lambda: _render() if current_user.is_authenticated else ""}


@bp.get("/widgets/active")
@login_required
def active_tasks():
    """The widget alone, for polling."""
    return _render()
