"""HTML pages and HTMX fragments through the Flask test client, with CSRF on."""

import re

import pytest

from app.extensions import db
from app.models import Task
from app.services import lease
from app.services.states import TERMINAL_STATES
from tests.conftest import submit_demo, write_secrets


def finish(app, task_id):
    with app.app_context():
        while True:
            t = db.session.get(Task, task_id, populate_existing=True)
            if t.state in TERMINAL_STATES:
                return
            run = lease.start_stage(t.id, t.stage_index, t.dispatch_seq)
            lease.finish_stage(run, {})


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/tasks",
        "/tasks/new",
        "/tasks/rows",
        "/widgets/active",
        "/tasks/X",
        "/tasks/X/status",
        "/tokens",
    ],
)
def test_pages_need_a_login(client, app, path):
    task_id = submit_demo(app)
    response = client.get(path.replace("X", task_id))
    assert response.status_code == 302 and "/login" in response.location


@pytest.mark.parametrize(
    "path", ["/", "/tasks", "/tasks/new", "/tasks/new?type=demo", "/tasks/X", "/tokens"]
)
def test_every_page_renders_with_htmx_served_locally(browser, app, path):
    task_id = submit_demo(app)
    page = browser.login("alice").get(path.replace("X", task_id))
    assert page.status_code == 200
    assert '<script src="/static/vendor/htmx.min.js' in page.data.decode()


def test_the_widget_fragment_is_a_fragment_not_a_page(browser, app):
    submit_demo(app)
    widget = browser.login("alice").get("/widgets/active")
    html = widget.data.decode()
    assert widget.status_code == 200 and html.lstrip().startswith('<aside id="active-tasks"')
    assert "<html" not in html and "htmx.min.js" not in html


def test_htmx_is_vendored_with_its_licence(client):
    with client.get("/static/vendor/htmx.min.js") as script:
        assert script.status_code == 200 and b'version:"2.0.11"' in script.data
    with client.get("/static/vendor/htmx.LICENSE") as licence:
        assert b"Zero-Clause BSD" in licence.data


def test_status_fragment_polls_while_active_and_stops_when_terminal(browser, app):
    task_id = submit_demo(app)
    browser.login("alice")
    active = browser.get(f"/tasks/{task_id}/status")
    assert active.status_code == 200 and 'hx-trigger="every 1500ms"' in active.data.decode()
    page = browser.get(f"/tasks/{task_id}").data.decode()
    assert 'id="task-status"' in page and "hx-trigger" in page and 'id="task-progress"' in page
    finish(app, task_id)
    done = browser.get(f"/tasks/{task_id}/status")
    assert done.status_code == 286 and "hx-trigger" not in done.data.decode()
    assert (
        "hx-get"
        not in browser.get(f"/tasks/{task_id}")
        .data.decode()
        .split('id="task-status"')[1]
        .split(">")[0]
    )


def test_list_rows_poll_while_any_visible_row_is_active(browser, app):
    task_id = submit_demo(app)
    browser.login("alice")
    assert 'hx-trigger="every 3s"' in browser.get("/tasks").data.decode()
    finish(app, task_id)
    rows = browser.get("/tasks/rows")
    assert rows.status_code == 286 and "hx-trigger" not in rows.data.decode()
    assert "HX-Request" not in rows.headers.get("Vary", "")  # no route reads it


def test_list_rows_show_stage_progress_and_actions(browser, app):
    submit_demo(app)
    html = browser.login("alice").get("/tasks").data.decode()
    assert "1/2 · step 1" in html and "<progress" in html
    assert "Cancel" in html and 'name="task_ids"' in html and 'form="bulk-form"' in html


def test_active_widget_lists_active_tasks_and_hides_when_none(browser, app):
    browser.login("alice")
    empty = browser.get("/widgets/active").data.decode()
    root = empty.split(">")[0]
    assert " hidden" in root and 'hx-trigger="every 30s, task-changed from:body"' in root
    task_id = submit_demo(app)
    page = browser.get("/tasks").data.decode()
    assert '<aside id="active-tasks"' in page  # rendered as markup in the layout, not as text
    busy = browser.get("/widgets/active").data.decode()
    root = busy.split(">")[0]
    assert (
        task_id[:8] in busy
        and 'hx-trigger="every 2s, task-changed from:body"' in root
        and " hidden" not in root
    )


def test_user_text_is_escaped_everywhere(browser, app):
    task_id = submit_demo(app, message='<script>alert("x")</script>')
    browser.login("alice")
    for path in (f"/tasks/{task_id}", "/tasks", "/tasks?q=<script>"):
        html = browser.get(path).data.decode()
        assert '<script>alert("x")</script>' not in html
    assert "&lt;script&gt;" in browser.get(f"/tasks/{task_id}").data.decode()


def test_another_users_task_is_a_403_page(browser, app):
    task_id = submit_demo(app, owner="bob")
    response = browser.login("alice").get(f"/tasks/{task_id}")
    assert response.status_code == 403
    assert b"You don&#39;t have permission to access this task" in response.data
    assert browser.get("/tasks/" + "0" * 32).status_code == 404


def test_posts_without_a_csrf_token_are_refused(browser, client, app):
    task_id = submit_demo(app)
    browser.login("alice")
    refused = client.post(f"/tasks/{task_id}/cancel", data={"reason": "forged"})
    assert refused.status_code == 400 and b"The form has expired" in refused.data
    with app.app_context():
        assert db.session.get(Task, task_id).state == "queued"
    via_header = client.post(f"/tasks/{task_id}/cancel", headers={"X-CSRFToken": browser.token})
    assert via_header.status_code == 302  # what htmx sends, from the layout's hx-headers


def test_cancel_works_without_javascript_and_says_what_happened(browser, app):
    task_id = submit_demo(app)
    browser.login("alice")
    response = browser.post(f"/tasks/{task_id}/cancel", {"reason": "no longer needed"})
    assert response.status_code == 302 and response.location == f"/tasks/{task_id}"
    page = browser.get(response.location).data.decode()
    assert "Task cancelled</p>" in page and "no longer needed" in page
    again = browser.post(f"/tasks/{task_id}/cancel", follow_redirects=True)
    assert again.status_code == 200
    assert "Task in state &#39;cancelled&#39; cannot be cancelled" in again.data.decode()


def test_retry_lands_on_the_new_task_showing_reused_stages(browser, app):
    task_id = submit_demo(app, stages=3, fail_at=2)
    with app.app_context():
        t = db.session.get(Task, task_id)
        lease.finish_stage(lease.start_stage(t.id, 0, 1), {"n": 1})
        lease.fail_stage(lease.start_stage(t.id, 1, 2), "stage_error", "boom")
    browser.login("alice")
    response = browser.post(f"/tasks/{task_id}/retry")
    page = browser.get(response.location).data.decode()
    assert "resuming at &#39;step 2&#39;" in page and "reused" in page
    assert "retry of" in page


@pytest.mark.parametrize(
    "pipeline", ["demo", "document", "media_index", "remote_job", "transcribe"]
)
def test_every_built_in_pipeline_s_form_renders_a_field_per_param(browser, pipeline):
    from app.services.catalog import get_pipeline

    browser.login("alice")
    response = browser.get(f"/tasks/new?type={pipeline}")
    assert response.status_code == 200  # remote_job's `input` (a default_factory) was a 500
    form = response.data.decode()
    for name in get_pipeline(pipeline).params_schema["properties"]:
        assert f'id="p-{name}"' in form and f'name="params.{name}"' in form


def test_an_object_param_without_a_default_starts_empty_and_is_read_as_json(
    browser, app, tmp_path, monkeypatch
):
    secrets = write_secrets(tmp_path / "secrets.toml", deck=("", "http://127.0.0.1:9"))
    monkeypatch.setenv("TASKDECK_SECRETS_FILE", secrets)
    browser.login("alice")
    form = browser.get("/tasks/new?type=remote_job").data.decode()
    assert re.search(r'<textarea id="p-input"[^>]*>\s*</textarea>', form)
    # An address, a name with a pattern and a short title are one-line fields, not text boxes.
    assert '<input id="p-url" name="params.url" type="url"' in form
    assert '<input id="p-secret" name="params.secret" type="text"' in form
    job = '{"type": "demo", "params": {"message": "你好"}}'
    sent = browser.post(
        "/tasks/new",
        {
            "type": "remote_job",
            "params.adapter": "taskdeck",
            "params.url": "http://127.0.0.1:9",
            "params.secret": "deck",
            "params.input": job,
        },
    )
    assert sent.status_code == 302, sent.data.decode()
    with app.app_context():
        (task,) = db.session.query(Task).all()
        assert task.params["input"] == {"type": "demo", "params": {"message": "你好"}}


def test_new_task_form_is_built_from_the_schema_and_keeps_values_on_error(browser, app):
    browser.login("alice")
    form = browser.get("/tasks/new?type=demo").data.decode()
    assert 'name="params.stages" type="number"' in form and 'min="1"' in form and 'max="20"' in form
    assert "How many stages the task runs." in form and "0 · urgent" in form
    bad = browser.post(
        "/tasks/new",
        {"type": "demo", "params.stages": "99", "params.message": "保留我", "priority": "2"},
    )
    html = bad.data.decode()
    assert bad.status_code == 422
    assert (
        "99 is greater than the maximum of 20" in html and "保留我" in html and 'value="99"' in html
    )
    good = browser.post(
        "/tasks/new", {"type": "demo", "params.stages": "2", "params.seconds": "0", "priority": "0"}
    )
    assert good.status_code == 302
    with app.app_context():
        (task,) = db.session.query(Task).all()
        assert task.priority == 0 and task.params["stages"] == 2


def test_bulk_cancel_of_selected_tasks_and_cancel_all(browser, app):
    first, second, third = (submit_demo(app) for _ in range(3))
    browser.login("alice")
    response = browser.post(
        "/tasks/bulk",
        {"action": "cancel", "task_ids": [first, second], "next": "/tasks"},
        follow_redirects=True,
    )
    assert "Cancelled 2 of 2 task(s)</p>" in response.data.decode()
    response = browser.post("/tasks/cancel-all", {"next": "/tasks"}, follow_redirects=True)
    assert "Cancelled 1 of 1 task(s)" in response.data.decode()
    with app.app_context():
        assert {db.session.get(Task, i).state for i in (first, second, third)} == {"cancelled"}
    nothing = browser.post("/tasks/bulk", {"action": "cancel"}, follow_redirects=True)
    assert "Select at least one task first" in nothing.data.decode()


def test_priority_change_from_the_detail_page(browser, app):
    task_id = submit_demo(app)
    browser.login("alice")
    browser.post(f"/tasks/{task_id}/priority", {"priority": "1"})
    with app.app_context():
        assert db.session.get(Task, task_id).priority == 1
    refused = browser.post(f"/tasks/{task_id}/priority", {"priority": "x"}, follow_redirects=True)
    assert "priority must be an integer from 0" in refused.data.decode()
