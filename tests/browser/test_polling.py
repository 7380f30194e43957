"""Polling never destroys what the user is doing (JavaScript ON).

The detail page re-polls its status block every 1.5 s and the list its rows
every 3 s; the fields inside them carry `hx-preserve`, so typed text, a
chosen option and ticked boxes survive every poll. Each test waits for real
polls (their responses), not for a time.
"""

import re

import pytest

from tests.browser.conftest import ARTIFACTS
from tests.conftest import wait_for

sync_api = pytest.importorskip("playwright.sync_api")


def polls(page, part: str, count: int) -> None:
    """Wait until `count` polls whose URL contains `part` have been answered."""
    for _ in range(count):
        with page.expect_response(lambda response: part in response.url, timeout=15_000):
            pass


def test_a_half_typed_reason_and_a_chosen_priority_survive_polls(site):
    http, open_page = site
    page = open_page()
    running = http.submit(stages=1, seconds=60)
    wait_for(lambda: http.task(running)["state"] == "running")
    queued = http.submit(stages=1, seconds=0)  # the one worker is busy: this one waits, queued
    page.goto(f"{http.base}/tasks/{queued}")
    page.select_option(f"#prio-{queued}", "2")
    polls(page, f"/tasks/{queued}/status", 2)
    sync_api.expect(page.locator(f"#prio-{queued}")).to_have_value("2")
    page.click("#task-status button:text-is('Change')")
    sync_api.expect(page.locator("#messages")).to_contain_text("Priority set to 2")

    page.goto(f"{http.base}/tasks/{running}")
    reason = page.locator(f"#reason-{running}")
    reason.click()
    reason.press_sequentially("testing cancel ")
    polls(page, f"/tasks/{running}/status", 2)
    reason.press_sequentially("测试")  # still focused: typing goes on where it was
    polls(page, f"/tasks/{running}/status", 1)
    sync_api.expect(reason).to_have_value("testing cancel 测试")
    page.keyboard.press("Tab")  # a keyboard user moves on to the Cancel button …
    sync_api.expect(page.locator(f"#cancel-{running}")).to_be_focused()
    polls(page, f"/tasks/{running}/status", 2)  # … and polls give the focus back to it
    sync_api.expect(page.locator(f"#cancel-{running}")).to_be_focused()
    page.on("dialog", lambda dialog: dialog.accept())
    page.click("#task-status button.danger")
    wait_for(lambda: http.task(running)["state"] == "cancelled")
    events = http.task(running)["events"]
    assert any(e["reason"] == "testing cancel 测试" for e in events)
    page.screenshot(path=str(ARTIFACTS / "polling-detail.png"), full_page=True)


def test_ticked_rows_stay_ticked_while_the_list_polls(site):
    http, open_page = site
    page = open_page()
    first, second = http.submit(stages=1, seconds=60), http.submit(stages=1, seconds=60)
    wait_for(lambda: http.task(first)["state"] == "running")
    page.goto(http.base + "/tasks")
    for task_id in (first, second):
        page.check(f"#pick-{task_id}")
    polls(page, "/tasks/rows", 2)
    for task_id in (first, second):
        sync_api.expect(page.locator(f"#pick-{task_id}")).to_be_checked()
    page.on("dialog", lambda dialog: dialog.accept())
    page.click("button[value=cancel]")
    sync_api.expect(page.locator("#messages")).to_contain_text(re.compile(r"2 of 2"))
    page.screenshot(path=str(ARTIFACTS / "polling-list.png"), full_page=True)


def test_the_bulk_bar_counts_the_ticked_rows_and_names_them_in_its_confirmation(site):
    http, open_page = site
    page = open_page()
    first, second = http.submit(stages=1, seconds=60), http.submit(stages=1, seconds=60)
    page.goto(http.base + "/tasks")
    cancel = page.locator("#bulk-form button[value=cancel]")
    sync_api.expect(cancel).to_be_disabled()  # nothing ticked: nothing to confirm
    sync_api.expect(page.locator(".bulk-count")).to_have_text("0 selected")
    for task_id in (first, second):
        page.check(f"#pick-{task_id}")
    sync_api.expect(page.locator(".bulk-count")).to_have_text("2 selected")
    sync_api.expect(cancel).to_be_enabled()
    asked = []

    def answer(dialog):
        asked.append(dialog.message)
        dialog.accept()

    page.on("dialog", answer)
    cancel.click()
    sync_api.expect(page.locator("#messages")).to_contain_text("2 of 2")
    assert asked == ["Cancel 2 selected task(s)? Running ones stop at their next check."]
    assert not [m for m in page.console if "error" in m.lower()], page.console


def test_bulk_cancel_confirmations_give_counts_the_type_and_running_tasks(site):
    http, open_page = site
    page = open_page()
    running = http.submit(stages=1, seconds=60)
    wait_for(lambda: http.task(running)["state"] == "running")
    for _ in range(2):  # two more wait behind it, queued
        http.submit(stages=1, seconds=60)
    page.goto(http.base + "/tasks")
    asked = []

    def decline(dialog):
        asked.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", decline)
    by_type = page.locator("form[data-confirm=type]")
    by_type.locator("button").click()
    wait_for(lambda: len(asked) == 1)
    by_type.locator("input[name=cancel_running]").check()
    by_type.locator("button").click()
    wait_for(lambda: len(asked) == 2)
    page.locator("form[data-confirm=all] button").click()
    wait_for(lambda: len(asked) == 3)
    # The admin's bulk cancels reach every user's tasks, and the questions say so.
    assert asked == [
        "Cancel 2 queued “Demo” task(s) of every user?",
        "Cancel 2 queued and 1 running “Demo” task(s) of every user? Running ones stop at their"
        " next check.",
        "Cancel 2 queued task(s) of every user and type?",
    ]
    assert http.task(running)["state"] == "running"  # declined: nothing was cancelled


def test_select_all_ticks_every_row_and_survives_polls(site):
    http, open_page = site
    page = open_page()
    running = http.submit(stages=1, seconds=60)
    wait_for(lambda: http.task(running)["state"] == "running")
    for _ in range(2):
        http.submit(stages=1, seconds=60)
    page.goto(http.base + "/tasks")
    pick_all = page.locator("#pick-all")
    sync_api.expect(pick_all).to_be_visible()  # shown by the script that makes it work
    rows = page.locator("input[name=task_ids]").count()  # earlier tests' tasks are listed too
    pick_all.check()
    sync_api.expect(page.locator(".bulk-count")).to_have_text(f"{rows} selected")
    for _ in range(2):  # the rows are re-polled every 3 s; the ticks stay
        with page.expect_response(lambda r: "/tasks/rows" in r.url):
            pass
    assert page.locator("input[name=task_ids]:checked").count() == rows
    page.locator(f"#pick-{running}").uncheck()
    sync_api.expect(page.locator(".bulk-count")).to_have_text(f"{rows - 1} selected")
    assert pick_all.evaluate("box => box.indeterminate && !box.checked")
    pick_all.check()  # from part-ticked, ticking the box ticks all again
    sync_api.expect(page.locator(".bulk-count")).to_have_text(f"{rows} selected")
    pick_all.uncheck()
    sync_api.expect(page.locator(".bulk-count")).to_have_text("0 selected")
    sync_api.expect(page.locator("#bulk-form button[name=action]").first).to_be_disabled()
