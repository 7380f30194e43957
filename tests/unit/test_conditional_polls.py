"""The task's status fragment answers 304 while nothing it shows has changed, and
the full block again as soon as anything does: a transition, progress, an item,
a file, the viewer's language. Another user's task stays hidden behind the tag."""

from app.extensions import db
from app.models import Task
from app.services import artifacts, items, lease
from tests.conftest import submit_demo


def start(app, task_id):
    with app.app_context():
        t = db.session.get(Task, task_id, populate_existing=True)
        return lease.start_stage(t.id, t.stage_index, t.dispatch_seq)


def poll(browser, task_id, tag=None, **headers):
    if tag:
        headers["If-None-Match"] = tag
    return browser.get(f"/tasks/{task_id}/status?seen=queued", headers=headers)


def test_an_unchanged_task_answers_304_with_no_body_and_a_change_answers_the_block(browser, app):
    task_id = submit_demo(app)
    browser.login("alice")
    first = poll(browser, task_id)
    tag = first.headers["ETag"]
    assert first.status_code == 200 and "Queued" in first.data.decode()
    assert first.headers["Cache-Control"] == "private, no-cache"  # asked again every poll
    again = poll(browser, task_id, tag)
    assert again.status_code == 304 and again.data == b"" and again.headers["ETag"] == tag

    run = start(app, task_id)  # a transition: a new event
    moved = poll(browser, task_id, tag)
    assert moved.status_code == 200 and "Running" in moved.data.decode()
    tag = moved.headers["ETag"]
    assert poll(browser, task_id, tag).status_code == 304

    with app.app_context():
        lease.report_progress(run, 0.5, "半程")  # progress alone
    halfway = poll(browser, task_id, tag)
    assert halfway.status_code == 200 and "半程" in halfway.data.decode()
    tag = halfway.headers["ETag"]

    with app.app_context():
        items.record(run, ["a.jpg"], {"b.jpg": "unreadable"}, 2)  # items, no task-row change
    counted = poll(browser, task_id, tag)
    assert counted.status_code == 200 and "unreadable" in counted.data.decode()
    tag = counted.headers["ETag"]

    with app.app_context():
        staged = artifacts.staging_dir(task_id, run.dispatch_seq) / "报告.txt"
        staged.parent.mkdir(parents=True, exist_ok=True)
        staged.write_text("完成", encoding="utf-8")
        assert lease.hold(run)
        artifacts.store(task_id, run.stage_name, "报告.txt", staged)
        db.session.commit()
    produced = poll(browser, task_id, tag)
    assert produced.status_code == 200 and "报告.txt" in produced.data.decode()


def test_the_tag_differs_by_language_and_by_the_state_the_page_shows(browser, app):
    task_id = submit_demo(app)
    browser.login("alice")
    tag = poll(browser, task_id).headers["ETag"]
    chinese = poll(browser, task_id, tag, **{"Accept-Language": "zh-CN"})
    assert chinese.status_code == 200 and "排队" in chinese.data.decode()
    other_seen = browser.get(
        f"/tasks/{task_id}/status?seen=running", headers={"If-None-Match": tag}
    )
    assert other_seen.status_code == 200  # it must say "now: Queued" to that page


def test_another_users_task_is_refused_whatever_tag_is_sent(browser, app, users):
    task_id = submit_demo(app)
    browser.login("alice")
    tag = poll(browser, task_id).headers["ETag"]
    browser.post("/logout")
    browser.login("bob")
    refused = poll(browser, task_id, tag)
    assert refused.status_code in (403, 404) and "ETag" not in refused.headers


def test_a_block_cached_under_an_older_login_is_not_reused_its_forms_carry_that_token(
    browser, app, client
):
    task_id = submit_demo(app)
    browser.login("alice")
    tag = poll(browser, task_id).headers["ETag"]
    client.delete_cookie("session")  # the browser restarted: a new login, a new CSRF token
    browser.login("alice")
    again = poll(browser, task_id, tag)
    assert again.status_code == 200 and 'name="csrf_token"' in again.data.decode()
