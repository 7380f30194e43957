"""What a task's stages produced, on its page: the live log tail and the artifact downloads."""

from flask import render_template, request
from flask_login import current_user, login_required

from app import stagefiles
from app.constants import LINE_NUMBER_MAX
from app.security import previewed, sandboxed
from app.services import logs, queries
from app.services.states import TERMINAL_STATES
from app.web import bp
from app.web.pages import TAIL_LINES, polled


@bp.get("/tasks/<task_id:task_id>/log-tail")
@login_required
def log_tail(task_id):
    """Log lines after `after`, appended by htmx below those shown; polling stops when it ends."""
    after = request.args.get("after", "0")
    after = min(int(after), LINE_NUMBER_MAX) if after.isascii() and after.isdigit() else 0
    task = queries.get_task(current_user, task_id)
    rows, next_after = logs.page(current_user, task_id, after, limit=TAIL_LINES)
    active = task.state not in TERMINAL_STATES
    html = render_template(
        "partials/log_tail.html",
        task_id=task_id,
        lines=rows,
        after=next_after,
        active=active,
    )
    return polled(html, active or bool(rows))


@bp.get("/tasks/<task_id:task_id>/logs.txt")
@sandboxed
@login_required
def log_download(task_id):
    return stagefiles.log_download(task_id)


@bp.get("/tasks/<task_id:task_id>/artifacts/<name>")
@sandboxed
@login_required
def artifact_download(task_id, name):
    return stagefiles.artifact_download(task_id, name)


@bp.get("/tasks/<task_id:task_id>/preview/<name>")
@previewed
@login_required
def artifact_preview(task_id, name):
    return stagefiles.artifact_preview(task_id, name)
