"""What the pages say is true, through the Flask test client: the shown state
(waiting, retrying, a stage with failed items), flash messages cleared when
the task moves on, readable values, empty lists that say why, the widget's
limit, the dashboard's live fragment, confirmations worded for who asks."""

from datetime import UTC, datetime

from app.extensions import db
from app.models import Task
from app.schemas import outputs
from app.services import lease
from app.web.filters import shown_value
from app.web.labels import stage_shown_state
from tests.conftest import submit_demo


def start(app, task_id):
    """Let a worker take the task's next stage (its run, for finishing or retrying it)."""
    with app.app_context():
        t = db.session.get(Task, task_id, populate_existing=True)
        return lease.start_stage(t.id, t.stage_index, t.dispatch_seq)


def test_a_poll_that_finds_another_state_clears_flashes_and_triggers_the_widget(browser, app):
    task_id = submit_demo(app)
    browser.login("alice")
    same = browser.get(f"/tasks/{task_id}/status?seen=queued")
    assert "HX-Trigger" not in same.headers
    assert 'hx-swap-oob="innerHTML"' not in same.data.decode()
    start(app, task_id)
    moved = browser.get(f"/tasks/{task_id}/status?seen=queued")
    assert moved.headers["HX-Trigger"] == "task-changed"
    html = moved.data.decode()
    assert '<div id="messages" hx-swap-oob="innerHTML"></div>' in html
    assert f"Task {task_id[:8]} is now: Running" in html  # into the page's one live region
    assert "seen=running" in html  # the next poll compares with what is shown now
    unasked = browser.get(f"/tasks/{task_id}/status")  # no `seen`: nothing to compare
    assert "HX-Trigger" not in unasked.headers


def test_a_task_between_stages_is_waiting_and_one_in_back_off_is_retrying(browser, app):
    task_id = submit_demo(app)
    browser.login("alice")
    with app.app_context():
        lease.finish_stage(start(app, task_id), {})  # stage 2 now waits in the queue
    html = browser.get(f"/tasks/{task_id}/status").data.decode()
    assert '<span class="badge st-waiting">Waiting</span>' in html
    assert "Waiting for a worker" in html
    row = browser.get("/tasks/rows").data.decode()
    assert '<span class="badge st-waiting">Waiting</span>' in row
    with app.app_context():
        assert lease.retry_stage_later(start(app, task_id), "boom", "upstream hiccup", 30)
    html = browser.get(f"/tasks/{task_id}/status").data.decode()
    assert "Retrying: attempt 1 failed" in html and "Waiting for a worker" not in html


def test_a_stage_whose_items_partly_failed_shows_partly_succeeded():
    now = datetime.now(UTC)
    stage = outputs.Stage(
        name="index",
        state="succeeded",
        started_at=now,
        finished_at=now,
        output={},
        reused=False,
        worker=None,
        attempts=1,
        error_code=None,
        error_message=None,
        items={"total": 8, "done": 6, "failed": 2},
    )
    assert stage_shown_state(stage) == "partial_success"
    clean = stage.model_copy(update={"items": outputs.Items(total=8, done=8, failed=0)})
    assert stage_shown_state(clean) == "succeeded"


def test_values_read_as_a_person_would_write_them(app):
    with app.test_request_context():
        assert shown_value(5.0) == "5" and shown_value(2.5) == "2.5" and shown_value(7) == "7"
        assert shown_value(None) == "—" and shown_value("") == "—"
        assert shown_value(True) == "Yes" and shown_value(False) == "No"
        assert shown_value(["中文", 1]) == '["中文", 1]'
        assert shown_value({"a": "会议"}) == '{"a": "会议"}'


def test_params_are_shown_by_their_titles(browser, app):
    task_id = submit_demo(app, seconds=1.0, message="会议录音")
    html = browser.login("alice").get(f"/tasks/{task_id}").data.decode()
    assert "<dt>Seconds per stage</dt><dd>1</dd>" in html
    assert "<dt>Message</dt><dd>会议录音</dd>" in html
    assert "<dt>Fail at stage</dt><dd>—</dd>" in html


def test_an_empty_list_says_why_and_offers_a_way_back(browser, app):
    browser.login("alice")
    html = browser.get("/tasks").data.decode()
    assert "No tasks yet" in html and "Submit your first task" in html
    submit_demo(app)
    html = browser.get("/tasks?status=failed").data.decode()
    assert "No failed tasks" in html and 'href="/tasks">Show all tasks' in html
    assert "No tasks being cancelled" in browser.get("/tasks?status=cancelling").data.decode()
    html = browser.get("/tasks?status=failed&q=nothing-like-this").data.decode()
    assert "No tasks match these filters" in html
    browser.post("/language", data={"lang": "zh_Hans_CN"})
    assert "没有失败的任务" in browser.get("/tasks?status=failed").data.decode()


def test_the_widget_shows_six_and_counts_the_rest(browser, app):
    for _ in range(8):
        submit_demo(app)
    html = browser.login("alice").get("/widgets/active").data.decode()
    assert html.count("<li>") == 6
    assert "and 2 more of yours" in html


def test_the_dashboard_refreshes_its_tiles_with_the_chart_out_of_band(browser, app):
    submit_demo(app)
    browser.login("alice")
    page = browser.get("/").data.decode()
    assert 'hx-get="/dashboard/live"' in page and 'hx-disinherit="*"' in page
    assert '<svg id="chart-svg"  viewBox' in page  # drawn in place, not out of band
    live = browser.get("/dashboard/live")
    html = live.data.decode()
    assert live.status_code == 200
    assert 'id="live-stats"' in html and 'id="tile-queued"' in html
    assert '<svg id="chart-svg" hx-swap-oob="true"' in html
    assert "The same figures as a table" not in html  # an opened table is left alone


def test_bulk_cancel_questions_say_whose_tasks_they_reach(browser, app):
    mine = browser.login("alice").get("/tasks").data.decode()
    assert 'data-all-queued="Cancel your {q} queued task(s) of every type?"' in mine
    assert "of every user" not in mine
    everyone = browser.login("root").get("/tasks").data.decode()
    assert 'data-all-queued="Cancel {q} queued task(s) of every user and type?"' in everyone
