"""Task routes of the JSON API: read the input model, call one service, return a shape."""

from flask_login import current_user

from app import stagefiles
from app.api import bp
from app.api.spec import answers, body, posted, spec, streamed
from app.schemas import inputs, outputs
from app.security import sandboxed, takes_uploads
from app.sentfiles import sent_files
from app.services import artifacts, bulk, cancelling, commands, logs, metrics, queries, search

OWN = (403, 404)


@bp.get("/tasks")
@spec.validate(query=inputs.TaskListQuery, resp=answers(200, outputs.TaskPage))
def list_tasks(query: inputs.TaskListQuery):
    """List tasks, newest first, with filters and a keyset cursor."""
    tasks, next_cursor = queries.list_tasks(
        current_user,
        states=query.states,
        task_type=query.type,
        q=query.q,
        limit=query.page_size,
        cursor=query.cursor,
    )
    return outputs.TaskPage(items=tasks, next_cursor=next_cursor)


@bp.post("/tasks")
@takes_uploads  # marks the view as registered, so outermost
@posted(inputs.TaskCreate, outputs.Task, 422, 507, status=201)
def create_task():
    """Submit a task: it is queued and its first stage enqueued.

    As multipart/form-data, files for upload params travel as `params.<name>` file fields.
    """
    data = body()
    task = commands.submit(
        current_user,
        data.type,
        data.params,
        data.priority,
        actor=current_user.username,
        uploads=sent_files(),
    )
    return outputs.Task.model_validate(task), 201


@bp.get("/tasks/<task_id:task_id>")
@spec.validate(resp=answers(200, outputs.TaskDetail, *OWN))
def get_task(task_id):
    """Show a task with its stages and recent events (newest last)."""
    return queries.task_detail(current_user, task_id)


@bp.post("/tasks/<task_id:task_id>/cancel")
@posted(inputs.CancelRequest, outputs.CancelResult, *OWN)
def cancel_task(task_id):
    """Cancel a task: a queued one never starts, a running one stops at its next check."""
    outcome = cancelling.request_cancel(current_user, task_id, body().reason)
    return outputs.CancelResult(
        message=outcome.message,
        task_id=outcome.task_id,
        previous_state=outcome.previous_state,
        state=outcome.state,
    )


@bp.post("/tasks/<task_id:task_id>/retry")
@posted(inputs.RetryRequest, outputs.RetryResult, *OWN)
def retry_task(task_id):
    """Retry a failed, cancelled or partly succeeded task as a new task, from where it stopped."""
    outcome = commands.retry(current_user, task_id, body().from_scratch)
    return outputs.RetryResult(
        message=outcome.message, task_id=outcome.task_id, new_task_id=outcome.new_task_id
    )


@bp.post("/tasks/<task_id:task_id>/priority")
@posted(inputs.PriorityRequest, outputs.PriorityResult, *OWN)
def set_task_priority(task_id):
    """Change the priority of a queued task (0 runs first)."""
    task = commands.set_priority(current_user, task_id, body().priority)
    return outputs.PriorityResult(
        message=commands.priority_message(task.priority),
        task_id=task.id,
        priority=task.priority,
    )


@bp.post("/tasks/cancel-all")
@posted(inputs.CancelAllRequest, outputs.BulkCancelResult)
def cancel_all_tasks():
    """Cancel every queued task you may act on, and running ones if `cancel_running`."""
    result = bulk.cancel_all(current_user, body().cancel_running)
    return outputs.BulkCancelResult(message=bulk.cancelled_message(result), result=result)


@bp.post("/tasks/cancel-by-type")
@posted(inputs.CancelByTypeRequest, outputs.BulkCancelByTypeResult, 422)
def cancel_tasks_by_type():
    """Cancel the queued (and, if asked, running) tasks of one type."""
    data = body()
    result = bulk.cancel_by_type(current_user, data.task_type, data.cancel_running)
    return outputs.BulkCancelByTypeResult(message=bulk.cancelled_message(result), result=result)


@bp.post("/tasks/retry")
@posted(inputs.BulkRetryRequest, outputs.BulkRetryResult)
def retry_tasks():
    """Retry several tasks; those that cannot be retried are skipped with a reason."""
    data = body()
    result = bulk.retry_many(current_user, data.task_ids, data.from_scratch)
    return outputs.BulkRetryResult(message=bulk.retried_message(result), result=result)


@bp.get("/tasks/stats")
@spec.validate(resp=answers(200, outputs.Stats))
def task_stats():
    """Counts by state and by type, the last hour, finished per hour over 24 h, slowest stages."""
    return outputs.Stats.model_validate(metrics.dashboard(current_user))


@bp.get("/tasks/<task_id:task_id>/logs")
@spec.validate(query=inputs.LogQuery, resp=answers(200, outputs.LogPage, *OWN))
def task_logs(task_id, query: inputs.LogQuery):
    """Log lines after line `after` (oldest first); ask again with `next_after` for more."""
    rows, next_after = logs.page(current_user, task_id, query.after, query.stage, query.limit)
    return outputs.LogPage(items=rows, next_after=next_after)


@bp.get("/tasks/<task_id:task_id>/logs.txt")
@sandboxed
@spec.validate(resp=answers(200, None, *OWN))
def task_log_text(task_id):
    """The whole kept log as a UTF-8 text file (an attachment)."""
    return streamed(stagefiles.log_download(task_id))


@bp.get("/tasks/<task_id:task_id>/search")
@spec.validate(query=inputs.SearchQuery, resp=answers(200, outputs.SearchResult, *OWN))
def task_search(task_id, query: inputs.SearchQuery):
    """Files in the task's index (media_index) matching `q`, with a snippet and thumbnail."""
    return outputs.SearchResult(items=search.search(current_user, task_id, query.q, query.limit))


@bp.get("/tasks/<task_id:task_id>/artifacts")
@spec.validate(resp=answers(200, outputs.ArtifactList, *OWN))
def task_artifacts(task_id):
    """Files the task's stages produced."""
    return outputs.ArtifactList(items=artifacts.listing(current_user, task_id))


@bp.get("/tasks/<task_id:task_id>/artifacts/<name>")
@sandboxed
@spec.validate(resp=answers(200, None, *OWN))
def task_artifact(task_id, name):
    """One artifact, as an attachment (never rendered as a page of this site)."""
    return streamed(stagefiles.artifact_download(task_id, name))
