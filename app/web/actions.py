"""POST actions of the HTML pages: call a service, flash the outcome, redirect back.

They work as plain forms with JavaScript off; htmx boosts them (hx-boost,
hx-confirm) without any server-side difference. A refused action (400, 403,
404) comes back as a visible error message on the page it was sent from.
Each reads its form with the input model its JSON twin uses.
"""

from functools import wraps

from flask import flash, redirect, request, url_for
from flask_babel import gettext
from flask_login import current_user, login_required

from app.schemas import inputs
from app.services import bulk, cancelling, commands
from app.services.bulk import cancelled_message, retried_message
from app.services.errors import InvalidRequest, ServiceError
from app.web import bp
from app.web.forms import back, read_form


def action(rule, fallback="web.task_list"):
    """Register a POST action; a ServiceError becomes a flashed error and a redirect back.

    Back means the form's `next` field, else the task's page for a task
    action, else the `fallback` endpoint.
    """

    def decorator(fn):
        @wraps(fn)
        def view(**kwargs):
            try:
                message, target = fn(**kwargs)
            except ServiceError as exc:
                flash(exc.detail, "error")
                return redirect(back(**_detail_of(kwargs, fallback)))
            flash(message, "success")
            return redirect(target)

        return bp.post(rule)(login_required(view))

    return decorator


def _detail_of(kwargs, fallback):
    if "task_id" in kwargs:
        return {"default_endpoint": "web.task_detail", "task_id": kwargs["task_id"]}
    return {"default_endpoint": fallback}


@action("/tasks/<task_id:task_id>/cancel")
def cancel(task_id):
    """Cancel a task, then show where the user was."""
    form = read_form(inputs.CancelRequest)
    outcome = cancelling.request_cancel(current_user, task_id, form.reason)
    return outcome.message, back("web.task_detail", task_id=task_id)


@action("/tasks/<task_id:task_id>/retry")
def retry(task_id):
    """Retry a task, then show the new task."""
    form = read_form(inputs.RetryRequest)
    outcome = commands.retry(current_user, task_id, form.from_scratch)
    return outcome.message, url_for("web.task_detail", task_id=outcome.new_task_id)


@action("/tasks/<task_id:task_id>/priority")
def priority(task_id):
    """Change a queued task's priority, then show it."""
    form = read_form(inputs.PriorityRequest)
    task = commands.set_priority(current_user, task_id, form.priority)
    return commands.priority_message(task.priority), back("web.task_detail", task_id=task_id)


@action("/tasks/cancel-all")
def cancel_all():
    """Cancel every queued (and optionally running) task the user may act on (an admin: all)."""
    form = read_form(inputs.CancelAllRequest)
    return _counted(bulk.cancel_all(current_user, form.cancel_running)), back()


@action("/tasks/cancel-by-type")
def cancel_by_type():
    """cancel_all for one type: the user's own tasks, or everyone's for an admin."""
    form = read_form(inputs.CancelByTypeRequest)
    return _counted(bulk.cancel_by_type(current_user, form.task_type, form.cancel_running)), back()


@action("/tasks/bulk")
def bulk_action():
    """Cancel or retry the tasks ticked in the list."""
    if not request.form.getlist("task_ids"):
        raise InvalidRequest(gettext("Select at least one task first"))
    if request.form.get("action") == "retry":
        form = read_form(inputs.BulkRetryRequest)
        result = bulk.retry_many(current_user, form.task_ids, form.from_scratch)
        return retried_message(result), back()
    form = read_form(inputs.TaskIds)
    return _counted(bulk.cancel_many(current_user, form.task_ids)), back()


def _counted(result: dict) -> str:
    message = cancelled_message(result)
    if result["failed"]:
        message += gettext("; %(n)d could not be", n=result["failed"])
    return message
