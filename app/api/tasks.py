"""Task routes of the JSON API (DESIGN.md section 4)."""

from flask import request
from flask_babel import gettext
from flask_login import current_user

from app.api import bp, schemas
from app.api.operations import operation
from app.services import bulk, lifecycle, metrics, queries
from tasks.pipelines import coerce_params

OWN = (403, 404)


@operation(bp, "/tasks", "GET", query=schemas.TaskListQuery, response=schemas.TaskPage)
def list_tasks(query):
    """List tasks, newest first, with filters and a keyset cursor."""
    tasks, next_cursor = queries.list_tasks(
        current_user,
        states=query["states"],
        task_type=query.get("type"),
        q=query.get("q"),
        limit=query["limit"],
        cursor=query.get("cursor"),
    )
    return {"items": [task.to_dict() for task in tasks], "next_cursor": next_cursor}


@operation(
    bp,
    "/tasks",
    "POST",
    body=schemas.TaskCreate,
    response=schemas.Task,
    status=201,
    errors=(422,),
)
def create_task(data):
    """Submit a task: it is queued and its first stage enqueued."""
    params = data["params"]
    if not request.is_json:  # form fields arrive as text
        params = coerce_params(data["type"], params)
    task = lifecycle.submit(
        current_user, data["type"], params, data["priority"], actor=current_user.username
    )
    return task.to_dict()


@operation(bp, "/tasks/<task_id>", "GET", response=schemas.TaskDetail, errors=OWN)
def get_task(task_id):
    """Show a task with its stages and recent events (newest last)."""
    return queries.task_detail(current_user, task_id)


@operation(
    bp,
    "/tasks/<task_id>/cancel",
    "POST",
    body=schemas.CancelRequest,
    response=schemas.CancelResult,
    errors=OWN,
)
def cancel_task(task_id, data):
    """Cancel a task: a queued one never starts, a running one stops at its next check."""
    outcome = lifecycle.request_cancel(current_user, task_id, data["reason"])
    return {
        "success": True,
        "message": outcome.message,
        "task_id": outcome.task_id,
        "previous_state": outcome.previous_state,
        "state": outcome.state,
    }


@operation(
    bp,
    "/tasks/<task_id>/retry",
    "POST",
    body=schemas.RetryRequest,
    response=schemas.RetryResult,
    errors=OWN,
)
def retry_task(task_id, data):
    """Retry a failed or cancelled task as a new task, resuming after its last completed stage."""
    outcome = lifecycle.retry(current_user, task_id, data["from_scratch"])
    return {
        "success": True,
        "message": outcome.message,
        "task_id": outcome.task_id,
        "new_task_id": outcome.new_task_id,
    }


@operation(
    bp,
    "/tasks/<task_id>/priority",
    "POST",
    body=schemas.PriorityRequest,
    response=schemas.PriorityResult,
    errors=OWN,
)
def set_task_priority(task_id, data):
    """Change the priority of a queued task (0 runs first)."""
    task = lifecycle.set_priority(current_user, task_id, data["priority"])
    return {
        "success": True,
        "message": gettext("Priority set to %(p)d", p=task.priority),
        "task_id": task.id,
        "priority": task.priority,
    }


def _bulk_cancel_response(result: dict) -> dict:
    return {
        "success": True,
        "message": bulk.cancelled_message(result),
        "result": result,
    }


@operation(
    bp,
    "/tasks/cancel-all",
    "POST",
    body=schemas.CancelAllRequest,
    response=schemas.BulkCancelResult,
)
def cancel_all_tasks(data):
    """Cancel every queued task you may act on, and running ones if `cancel_running`."""
    return _bulk_cancel_response(bulk.cancel_all(current_user, data["cancel_running"]))


@operation(
    bp,
    "/tasks/cancel-by-type",
    "POST",
    body=schemas.CancelByTypeRequest,
    response=schemas.BulkCancelResult,
    errors=(422,),
)
def cancel_tasks_by_type(data):
    """Cancel the queued (and, if asked, running) tasks of one type."""
    result = bulk.cancel_by_type(current_user, data["task_type"], data["cancel_running"])
    return _bulk_cancel_response(result)


@operation(
    bp, "/tasks/retry", "POST", body=schemas.BulkRetryRequest, response=schemas.BulkRetryResult
)
def retry_tasks(data):
    """Retry several tasks; those that cannot be retried are skipped with a reason."""
    result = bulk.retry_many(current_user, data["task_ids"], data["from_scratch"])
    return {
        "success": True,
        "message": bulk.retried_message(result),
        "result": result,
    }


@operation(bp, "/tasks/stats", "GET", response=schemas.Stats)
def task_stats():
    """Counts by state and by type, the last hour, finished per hour over 24 h, slowest stages."""
    return metrics.dashboard(current_user)
