"""What the pages say is true (JavaScript ON unless a test says otherwise).

A running task between stages says it waits; flash messages about a state
the task has left disappear, and the active-tasks widget agrees with the
page; times are in the reader's zone, and in UTC (saying so) without
JavaScript.
"""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import wait_for

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
ZONE = "America/Los_Angeles"


def test_a_running_task_whose_next_stage_waits_says_so(site):
    http, open_page = site
    page = open_page()
    # One worker. A low-priority task finishes its first stage while an urgent one
    # waits; the urgent one goes first, so the other's second stage waits for it.
    slow = http.submit(priority=9, stages=2, seconds=1.5)
    wait_for(lambda: http.task(slow)["state"] == "running")
    http.submit(priority=0, stages=1, seconds=6)
    wait_for(lambda: http.task(slow)["waiting"], timeout=15)
    page.goto(f"{http.base}/tasks/{slow}")
    status = page.locator("#task-status")
    expect(status.locator(".badge").first).to_have_text("Waiting")
    expect(status.locator(".stage")).to_contain_text("Waiting for a worker")
    page.goto(f"{http.base}/tasks")
    expect(page.locator(f"#row-{slow} .badge")).to_have_text("Waiting")
    # Once a worker takes the stage, the page polls itself back to Running.
    page.goto(f"{http.base}/tasks/{slow}")
    expect(status.locator(".badge").first).to_have_text("Running", timeout=15_000)


def test_a_flash_about_a_state_the_task_left_goes_and_the_widget_agrees(site):
    http, open_page = site
    page = open_page()
    blocker = http.submit(stages=1, seconds=60)  # holds the one worker …
    wait_for(lambda: http.task(blocker)["state"] == "running")
    task_id = http.submit(stages=1, seconds=0.5)  # … so this one stays queued behind it
    page.goto(f"{http.base}/tasks/{task_id}")
    page.select_option(f"#prio-{task_id}", "3")
    page.click("#task-status button:text-is('Change')")
    flash = page.locator("#messages .flash")
    expect(flash).to_contain_text("3")  # "Priority changed to 3 …", true while it waits
    widget = page.locator("#active-tasks")
    expect(widget).to_contain_text(task_id[:8])
    seen = []  # the order of the status polls' answers and the widget's requests
    page.on("response", lambda r: "/status" in r.url and seen.append(r.headers.get("hx-trigger")))
    page.on("request", lambda r: "/widgets/active" in r.url and seen.append("widget"))
    http.call("POST", f"/tasks/{blocker}/cancel", {})  # the worker is free: it runs and ends
    expect(page.locator("#task-status .badge").first).to_have_text("Succeeded", timeout=15_000)
    expect(flash).to_have_count(0)  # it spoke of a queued task
    expect(widget).not_to_contain_text(task_id[:8])
    # Refreshed at once, not on its own 2 s beat: the poll that saw the change says so, and
    # the widget's next request comes before any other status answer.
    changed = seen.index("task-changed")
    assert seen[changed + 1] == "widget", seen


def test_a_state_tile_opens_its_tasks_and_leaves_the_page_whole(site):
    http, open_page = site
    page = open_page()
    page.goto(http.base + "/")
    page.click("#tile-failed")
    page.wait_for_url(http.base + "/tasks?status=failed")
    expect(page.locator("h1")).to_have_text("Tasks")
    expect(page.locator("header nav a[aria-current=page]")).to_have_text("Tasks")
    expect(page.locator("#f-status")).to_have_value("failed")


def test_times_are_in_the_readers_zone_with_javascript(site):
    http, open_page = site
    task_id = http.submit(stages=1, seconds=0)
    wait_for(lambda: http.task(task_id)["state"] == "succeeded")
    page = open_page(timezone_id=ZONE)
    page.goto(f"{http.base}/tasks/{task_id}")
    created = page.locator(".meta time")
    at = datetime.fromisoformat(created.get_attribute("datetime")).astimezone(ZoneInfo(ZONE))
    shown = created.inner_text().replace("\u202f", " ")
    assert shown == at.strftime("%b %-d, %Y, %-I:%M:%S %p"), shown
    event = page.locator(".events time").first
    at = datetime.fromisoformat(event.get_attribute("datetime")).astimezone(ZoneInfo(ZONE))
    assert event.inner_text().replace("\u202f", " ") == at.strftime("%-I:%M:%S %p")
    assert "UTC" not in page.locator("#main").inner_text()
    page.goto(http.base + "/")
    expect(page.locator(".chart figcaption")).to_contain_text("hours in your time zone")
    first_label = page.locator(".chart text[data-hour]").first
    hour = datetime.fromisoformat(first_label.get_attribute("data-hour")).astimezone(ZoneInfo(ZONE))
    assert first_label.text_content().replace("\u202f", " ") == hour.strftime("%I:%M %p")


def test_without_javascript_times_are_utc_and_say_so(site):
    http, open_page = site
    task_id = http.submit(stages=1, seconds=0)
    wait_for(lambda: http.task(task_id)["state"] == "succeeded")
    page = open_page(javascript=False, timezone_id=ZONE)
    page.goto(f"{http.base}/tasks/{task_id}")
    created = page.locator(".meta time")
    at = datetime.fromisoformat(created.get_attribute("datetime"))
    shown = created.inner_text().replace("\u202f", " ")
    assert shown == at.strftime("%b %-d, %Y, %-I:%M:%S %p") + " UTC", shown
    page.goto(http.base + "/")
    expect(page.locator(".chart figcaption")).to_contain_text("hours in UTC")
