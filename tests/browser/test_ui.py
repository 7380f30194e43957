"""Real browser (Playwright + Debian's Chromium) against a real server and worker.

The tests share one `taskdeck serve`; each starts with its worker idle and
with new browser contexts, so none sees another's cookies or running tasks.

The browser and `site` are in conftest.py; screenshots go to test-artifacts/.
"""

import re

import pytest

from tests.browser.conftest import ARTIFACTS
from tests.conftest import wait_for
from tests.live import Http

sync_api = pytest.importorskip("playwright.sync_api")


def test_submit_from_the_form_and_watch_it_advance_without_reloading(site):
    http, open_page = site
    page = open_page()
    page.goto(http.base + "/tasks/new?type=demo")
    page.fill("#p-stages", "3")
    page.fill("#p-seconds", "3")  # two polls (1.5 s apart) per stage
    page.fill("#p-message", "浏览器测试")
    page.click("text=Submit task")
    page.wait_for_url(re.compile(r"/tasks/[0-9a-f]{32}$"))
    page.evaluate("window.notReloaded = true")
    stage = page.locator("#task-status .stage")
    sync_api.expect(stage).to_have_text(re.compile("1/3"), timeout=10_000)
    first = float(page.locator("#task-progress").get_attribute("value"))
    sync_api.expect(stage).to_have_text(re.compile("2/3 · step 2"), timeout=10_000)
    later = float(page.locator("#task-progress").get_attribute("value"))
    assert later > first
    sync_api.expect(page.locator("#task-status .badge").first).to_have_text(
        "Succeeded", timeout=20_000
    )
    assert page.evaluate("window.notReloaded") is True
    assert not [m for m in page.console if "Content Security Policy" in m], page.console
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "detail.png"), full_page=True)
    page.goto(http.base + "/tasks")
    page.screenshot(path=str(ARTIFACTS / "list.png"), full_page=True)


def test_cancel_through_the_confirm_dialog_then_polling_stops(site):
    http, open_page = site
    page = open_page()
    task_id = http.submit(stages=2, seconds=60)
    page.goto(f"{http.base}/tasks/{task_id}")
    sync_api.expect(page.locator("#task-status .badge").first).to_have_text("Running")
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
    page.fill(f"#reason-{task_id}", "browser test")
    page.click("#task-status button.danger")
    sync_api.expect(page.locator("#task-status .badge").first).to_have_text("Cancelled")
    assert dialogs == [f"Cancel task {task_id[:8]}?"]
    # The terminal fragment carries no trigger (and was answered 286): nothing left to poll.
    status = page.locator("#task-status")
    sync_api.expect(status).to_have_attribute("data-state", "cancelled")
    assert status.get_attribute("hx-get") is None and status.get_attribute("hx-trigger") is None
    assert "browser test" in page.content()


def test_retry_lands_on_the_new_task_with_the_reused_stage(site):
    http, open_page = site
    page = open_page()
    task_id = http.submit(stages=2, seconds=0, fail_at=2)
    page.goto(f"{http.base}/tasks/{task_id}")
    sync_api.expect(page.locator("#task-status .badge").first).to_have_text("Failed")
    page.click("#task-status button:text-is('Retry')")
    page.wait_for_url(re.compile(r"/tasks/(?!" + task_id + r")[0-9a-f]{32}$"))
    sync_api.expect(page.locator(".timeline .reused")).to_have_count(1)
    sync_api.expect(page.locator("#task-status .badge").first).to_have_text("Succeeded")


def test_bulk_cancel_two_selected_queued_tasks(site):
    http, open_page = site
    page = open_page()
    blocker = http.submit(stages=1, seconds=60)  # keeps the single worker busy
    # The idle worker polls with a back-off of up to 1 s: wait until it holds the blocker.
    wait_for(lambda: http.task(blocker)["state"] == "running")
    first, second = http.submit(seconds=0), http.submit(seconds=0)
    page.goto(http.base + "/tasks")
    page.on("dialog", lambda dialog: dialog.accept())
    page.check(f"#row-{first} input[type=checkbox]")
    page.check(f"#row-{second} input[type=checkbox]")
    page.click("button[value=cancel]")
    sync_api.expect(page.locator("#messages")).to_contain_text("Cancelled 2 of 2 task(s)")
    for task_id in (first, second):
        assert http.task(task_id)["state"] == "cancelled"
    assert http.task(blocker)["state"] == "running"


def test_active_tasks_widget_appears_and_disappears(site):
    http, open_page = site
    page = open_page()
    widget = page.locator("#active-tasks")
    sync_api.expect(widget).to_be_hidden()
    task_id = http.submit(stages=1, seconds=3)
    page.goto(http.base + "/tasks/new")  # the widget is in every page's layout
    sync_api.expect(widget).to_be_visible()
    sync_api.expect(widget).to_contain_text(task_id[:8])
    sync_api.expect(widget).to_be_hidden(timeout=15_000)


def test_the_same_cancel_works_with_javascript_off(site):
    http, open_page = site
    page = open_page(javascript=False)
    task_id = http.submit(stages=2, seconds=60)
    page.goto(f"{http.base}/tasks/{task_id}")
    page.click("#task-status button.danger")
    sync_api.expect(page.locator("#messages")).to_contain_text(
        re.compile("Cancellation requested|Task cancelled")
    )
    wait_for(lambda: http.task(task_id)["state"] == "cancelled", 10, 0.1)
    page.reload()
    sync_api.expect(page.locator("#task-status .badge").first).to_have_text("Cancelled")


def test_create_use_and_revoke_an_api_token(site):
    http, open_page = site
    page = open_page()
    page.goto(http.base + "/tokens")
    page.fill("#token-name", "browser 脚本")
    page.click("text=Create token")
    secret = page.locator("#new-token")
    sync_api.expect(secret).to_have_attribute("readonly", "")
    token = secret.input_value()
    script = Http(http.base, token)
    assert script.call("GET", "/tasks")[0] == 200
    page.goto(http.base + "/tokens")  # shown once: gone on the next visit
    sync_api.expect(page.locator("#new-token")).to_have_count(0)
    row = page.locator("tr", has_text="browser 脚本")
    # Last used just now: "now" from the browser's Intl, "… ago" a moment later; not "never".
    sync_api.expect(row.locator("td").nth(3)).to_have_text(re.compile(r"^(now|\d+ sec\. ago)$"))
    page.on("dialog", lambda dialog: dialog.accept())
    row.locator("button.danger").click()
    sync_api.expect(page.locator("#messages")).to_contain_text("revoked")
    assert script.call("GET", "/tasks")[0] == 401


def test_switch_to_chinese_in_the_footer_and_it_sticks(site):
    http, open_page = site
    page = open_page()
    task_id = http.submit(stages=1, seconds=60, message="会议录音")
    page.goto(f"{http.base}/tasks/{task_id}")
    page.click("footer button[value=zh_Hans_CN]")
    sync_api.expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    sync_api.expect(page.locator("nav[aria-label]")).to_contain_text("任务")
    sync_api.expect(page.locator("#task-status .badge").first).to_have_text("运行中")
    sync_api.expect(page.locator("#task-status")).to_contain_text("会议录音")
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
    page.click("#task-status button.danger")
    sync_api.expect(page.locator("#task-status .badge").first).to_have_text("已取消")
    assert dialogs == [f"取消任务 {task_id[:8]}？"]
    page.goto(http.base + "/")  # a new page: the cookie keeps the language
    sync_api.expect(page.locator("h1")).to_have_text("概览")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-zh.png"), full_page=True)


def test_pages_fit_phone_and_desktop_widths_in_light_and_dark(site):
    http, open_page = site
    page = open_page()
    task_id = http.submit(stages=2, seconds=0)
    ARTIFACTS.mkdir(exist_ok=True)
    for scheme, width in [("light", 1280), ("dark", 1280), ("light", 390), ("dark", 390)]:
        page.emulate_media(color_scheme=scheme)
        page.set_viewport_size({"width": width, "height": 900})
        for name, path in [("dashboard", "/"), ("list", "/tasks"), ("detail", f"/tasks/{task_id}")]:
            page.goto(http.base + path)
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{path} is {overflow}px wider than a {width}px screen"
            page.screenshot(path=str(ARTIFACTS / f"{name}-{scheme}-{width}.png"), full_page=True)
        assert not [m for m in page.console if "Content Security Policy" in m], page.console
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert (background == "rgb(13, 17, 23)") == (scheme == "dark")
