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


# The widget shows a few, compactly, and links to the rest on the task list.
SHOWN = 6


def _render() -> Markup:
    rows = queries.active_tasks(current_user, limit=SHOWN + 1)
    tasks = [outputs.Task.model_validate(t) for t in rows[:SHOWN]]
    more = queries.count_active(current_user) - SHOWN if len(rows) > SHOWN else 0
    trigger = BUSY_POLL if tasks else IDLE_POLL
    html = render_template("partials/active_tasks.html", tasks=tasks, more=more, trigger=trigger)
    return Markup(html)


@bp.app_context_processor
def active_widget():
    """Let base.html render the widget in place on every page for a signed-in user."""
    return {"render_active_tasks": lambda: _render() if current_user.is_authenticated else ""}


@bp.get("/widgets/active")
@login_required
def active_tasks():
    """The widget alone, for polling."""
    return _render()
