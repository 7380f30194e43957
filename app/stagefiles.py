"""Downloads of what stages left: one artifact, or a task's log as text; shared by pages and API.

Served as attachments (`nosniff` comes with every response); the routes
add a sandboxing CSP (app.security.sandboxed), so a stage's HTML or SVG is
never rendered as a page of this site.
"""

from flask import Response, send_file, stream_with_context
from flask_babel import gettext
from flask_login import current_user

from app.services import artifacts, logs
from app.services.errors import NotFound


def artifact_download(task_id: str, name: str) -> Response:
    row, path = artifacts.locate(current_user, task_id, name)
    response = send_file(
        path, mimetype=row.content_type, as_attachment=True, download_name=row.name
    )
    return response


def artifact_preview(task_id: str, name: str) -> Response:
    """An HTML artifact shown inline, in the task page's sandboxed frame (security.previewed)."""
    row, path = artifacts.locate(current_user, task_id, name)
    if row.content_type != "text/html":
        raise NotFound(gettext("Only HTML artifacts have a preview"))
    return send_file(path, mimetype="text/html; charset=utf-8")


def log_download(task_id: str) -> Response:
    """The kept log as UTF-8 text, one line per log line: time, stage, stream, text."""
    lines = logs.every_line(current_user, task_id)  # 404/403 here, before the response starts
    text = (_line(row) for row in lines)
    response = Response(stream_with_context(text), content_type="text/plain; charset=utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="{task_id}.log"'
    return response


def _line(row) -> str:
    at = row.at.isoformat(timespec="milliseconds")
    return f"{at}Z [{row.stage or '-'}] {row.stream}: {row.line}\n"
