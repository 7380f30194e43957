"""POST actions of the HTML pages: call a service, flash the outcome, redirect back.

They work as plain forms with JavaScript off; htmx boosts them (hx-boost,
hx-confirm) without any server-side difference. A refused action (400, 403,
404) comes back as a visible error message on the page it was sent from.
"""

from functools import wraps

from flask import flash, redirect, request, url_for
from flask_babel import gettext
from flask_login import current_user, login_required

from app.services import bulk, lifecycle
from app.services.bulk import cancelled_message, retried_message
from app.services.errors import InvalidRequest, ServiceError
from app.web import bp
from app.web.forms import back, checked, priority_field


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


@action("/tasks/<task_id>/cancel")
def cancel(task_id):
    """Cancel a task, then show where the user was."""
    reason = (request.form.get("reason") or "").strip()[:1000] or None
    outcome = lifecycle.request_cancel(current_user, task_id, reason)
    return outcome.message, back("web.task_detail", task_id=task_id)


@action("/tasks/<task_id>/retry")
def retry(task_id):
    """Retry a task, then show the new task."""
    outcome = lifecycle.retry(current_user, task_id, checked("from_scratch"))
    return outcome.message, url_for("web.task_detail", task_id=outcome.new_task_id)


@action("/tasks/<task_id>/priority")
def priority(task_id):
    """Change a queued task's priority, then show it."""
    task = lifecycle.set_priority(current_user, task_id, priority_field())
    return gettext("Priority set to %(p)d", p=task.priority), back(
        "web.task_detail", task_id=task_id
    )


@action("/tasks/cancel-all")
def cancel_all():
    """Cancel all your queued (and optionally running) tasks."""
    result = bulk.cancel_all(current_user, checked("cancel_running"))
    return _counted(result), back()


@action("/tasks/cancel-by-type")
def cancel_by_type():
    """Cancel your queued (and optionally running) tasks of one type."""
    result = bulk.cancel_by_type(
        current_user, request.form.get("task_type", ""), checked("cancel_running")
    )
    return _counted(result), back()


@action("/tasks/bulk")
def bulk_action():
    """Cancel or retry the tasks ticked in the list."""
    task_ids = request.form.getlist("task_ids")
    if not task_ids:
        raise InvalidRequest(gettext("Select at least one task first"))
    if request.form.get("action") == "retry":
        result = bulk.retry_many(current_user, task_ids)
        return retried_message(result), back()
    result = bulk.cancel_many(current_user, task_ids)
    return _counted(result), back()


def _counted(result: dict) -> str:
    message = cancelled_message(result)
    if result["failed"]:
        message += gettext("; %(n)d could not be", n=result["failed"])
    return message
