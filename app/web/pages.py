"""Pages and the polling fragments they include."""

from flask import flash, make_response, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user, login_required

from app.constants import CANCELLING, PRIORITY_DEFAULT, RUNNING
from app.schemas import inputs, outputs
from app.security import takes_uploads
from app.sentfiles import sent_files
from app.services import commands, logs, metrics, queries
from app.services.catalog import all_pipelines, get_pipeline
from app.services.errors import ServiceError
from app.web import bp, conditional, results
from app.web.charts import bar_chart
from app.web.forms import list_filters, read_form
from app.web.labels import shown_state, translated
from tasks.pipelines import files

# htmx 2 stops polling when a poll is answered with this status.
STOP_POLLING = 286


def polled(html: str, keep_polling: bool):
    """A fragment answer: 286 tells htmx to stop when nothing on it can change any more."""
    return html, 200 if keep_polling else STOP_POLLING


@bp.get("/favicon.ico")
def favicon():
    """Browsers and feed readers ask for this path whatever the page's <link rel=icon> says."""
    return redirect(url_for("static", filename="favicon.svg"), 301)


@bp.get("/")
@login_required
def index():
    """Counts by state and type, finished per hour over 24 h as an SVG chart, slowest stages."""
    stats = metrics.dashboard(current_user)
    chart = bar_chart(stats["finished_per_hour"])
    return render_template("index.html", stats=stats, chart=chart)


@bp.get("/dashboard/live")
@login_required
def dashboard_live():
    """The dashboard's tiles, polled, with its chart out of band (the rest stays as drawn)."""
    stats = metrics.dashboard(current_user)
    chart = bar_chart(stats["finished_per_hour"])
    return render_template("partials/live_stats.html", stats=stats, chart=chart, oob=True)


def _task_page():
    filters = list_filters()
    tasks, older = queries.list_tasks(
        current_user,
        states=filters["status"],
        task_type=filters["type"],
        q=filters["q"],
        limit=filters["limit"],
        cursor=filters["cursor"],
        newer_than=filters["newer"],
    )
    paged = bool(filters["cursor"] or filters["newer"])
    newer = queries.encode_cursor(tasks[0]) if tasks and paged else None
    return filters, [outputs.Task.model_validate(t) for t in tasks], older, newer


@bp.get("/tasks")
@login_required
def task_list():
    """List tasks with filters, keyset paging, row actions and the bulk bar."""
    filters, tasks, older, newer = _task_page()
    return render_template(
        "tasks/list.html",
        filters=filters,
        tasks=tasks,
        older=older,
        newer=newer,
        pipelines=all_pipelines(),
        cancellable=queries.cancellable_counts(current_user),
    )


@bp.get("/tasks/rows")
@login_required
def task_rows():
    """The list's table body, polled while any row on it is active."""
    filters, tasks, _, _ = _task_page()
    html = render_template("partials/task_rows.html", tasks=tasks, filters=filters)
    return polled(html, any(not t.is_terminal for t in tasks))


@bp.route("/tasks/new", methods=["GET", "POST"])
@takes_uploads  # marks the view as registered, so outermost
@login_required
def task_new():
    """Show the params form of a pipeline; on POST submit the task or show field errors."""
    pipelines = all_pipelines()
    chosen = get_pipeline(request.values.get("type", "")) or pipelines[0]
    values, errors = {}, {}
    priority = PRIORITY_DEFAULT
    if request.method == "POST":
        values = {k.removeprefix("params."): v for k, v in request.form.items()}
        try:
            data = read_form(inputs.TaskCreate)  # an unknown type is the service's 422
            priority = data.priority
            task = commands.submit(
                current_user,
                data.type,
                data.params,
                data.priority,
                actor=current_user.username,
                uploads=sent_files(),
            )
        except ServiceError as exc:
            errors = _by_field(exc, {*chosen.params_schema.get("properties", {}), "priority"})
        else:
            flash(gettext("Task %(id)s submitted", id=task.id[:8]), "success")
            return redirect(url_for("web.task_detail", task_id=task.id))
    status = 422 if errors else 200
    properties = chosen.params_schema.get("properties", {})
    return render_template(
        "tasks/new.html",
        pipelines=pipelines,
        pipeline=chosen,
        path_choices={
            name: files.suggestions(spec["format"])
            for name, spec in properties.items()
            if spec.get("format") in files.PATH_FORMATS
        },
        takes_files=any(spec.get("format") == files.UPLOAD for spec in properties.values()),
        values=values,
        errors=errors,
        priority=priority,
    ), status


def _by_field(error: ServiceError, fields: set[str]) -> dict[str, str]:
    """Messages for the form's own fields, the rest (type, params as a whole) under "params"."""
    mine = {name: text for name, text in error.fields.items() if name in fields}
    rest = [text for name, text in error.fields.items() if name not in fields]
    if rest or not mine:
        mine["params"] = "; ".join(rest) or error.detail
    return mine


# The log lines a task page opens with; newer ones are appended as they come.
TAIL_LINES = 200


@bp.get("/tasks/<task_id:task_id>")
@login_required
def task_detail(task_id):
    """Show a task: header, stage timeline, params, error, artifacts, log tail, events, actions."""
    detail = queries.task_detail(current_user, task_id)
    lines, after = logs.page(current_user, task_id, max(detail.log_lines - TAIL_LINES, 0))
    pipeline = get_pipeline(detail.type)
    listed = results.files(task_id)
    return render_template(
        "tasks/detail.html",
        task=detail,
        pipeline=pipeline,
        param_titles=_param_titles(pipeline),
        artifacts=listed,
        **results.context(task_id, listed),
        lines=lines,
        after=after,
        task_id=task_id,
        active=not detail.is_terminal,
    )


def _param_titles(pipeline) -> dict[str, str]:
    """Each param's title from the pipeline's schema, in the page's language (name if none)."""
    properties = pipeline.params_schema.get("properties", {}) if pipeline else {}
    return {name: translated(spec["title"]) for name, spec in properties.items() if "title" in spec}


@bp.get("/tasks/<task_id:task_id>/status")
@login_required
def task_status(task_id):
    """The detail page's status block, polled until the task is terminal.

    `seen` is the state the page showed; when the task has moved on, the
    answer clears the flash messages (they spoke of the old state) and
    triggers `task-changed`, which refreshes the active-tasks widget at once.
    """
    state, version = queries.task_version(current_user, task_id)
    ticking = state in (RUNNING, CANCELLING)  # an estimate or a countdown shows
    tag = conditional.etag(version, current_user.id, request.args.get("seen"), clock=ticking)
    if (answer := conditional.unchanged(tag)) is not None:
        return answer
    detail = queries.task_detail(current_user, task_id)
    shown = shown_state(detail)
    changed = request.args.get("seen", shown) != shown
    listed = results.files(task_id)
    ended = changed and detail.is_terminal  # its results are final: draw them once more
    html = render_template(
        "partials/task_status.html",
        task=detail,
        changed=changed,
        artifacts=listed,
        **(results.context(task_id, listed) if ended else {}),
        ended=ended,
    )
    body, status = polled(html, not detail.is_terminal)
    headers = {"HX-Trigger": "task-changed"} if changed else {}
    return conditional.tagged(make_response(body, status, headers), tag)
