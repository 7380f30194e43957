"""What a task's stages produce, on its page in a real browser: the live log, artifacts, items.

The module's server loads the test pipelines (tests/plugins) like a user's
own; `site` (conftest.py) leaves its one worker idle after each test.
Screenshots of each final page go to test-artifacts/stage-*.png.
"""

import re
from pathlib import Path

import pytest

from tests.browser.conftest import ARTIFACTS
from tests.conftest import wait_for
from tests.live import running_server

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
PLUGINS = Path(__file__).resolve().parents[1] / "plugins"

# Every element the poller adds to or removes from the log list, from now on.
WATCH_THE_LOG = """() => {
  window.notReloaded = true;
  window.logChanges = {added: [], removed: 0, statesWhenAdded: []};
  const list = document.getElementById("log-lines");
  for (const li of list.children) li.shownFirst = true;  // gone if the node is ever replaced
  new MutationObserver(records => {
    for (const record of records) {
      for (const node of record.addedNodes) {
        if (node.nodeType !== Node.ELEMENT_NODE) continue;
        window.logChanges.added.push(Number(node.dataset.n));
        window.logChanges.statesWhenAdded.push(
          document.getElementById("task-status").dataset.state);
      }
      for (const node of record.removedNodes) {
        if (node.nodeType === Node.ELEMENT_NODE) window.logChanges.removed += 1;
      }
    }
  }).observe(list, {childList: true});
  return list.children.length;
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    env = {"TASKDECK_PIPELINES_PATH": str(PLUGINS)}
    with running_server(tmp_path_factory.mktemp("stage-work"), env) as (http, _):
        yield http


def finished(http, task_id):
    """The task once it is terminal (through the API, not the page)."""

    def terminal():
        task = http.task(task_id)
        return task["state"] in ("succeeded", "partial_success", "failed", "cancelled") and task

    return wait_for(terminal, timeout=20, interval=0.1)


def badge(page):
    return page.locator("#task-status .badge").first


def screenshot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"stage-{name}.png"), full_page=True)


def test_the_log_grows_below_the_lines_shown_while_the_task_runs(site):
    http, open_page = site
    page = open_page()
    task_id = http.submit("ticker", count=200, seconds=0.3)  # ~60 s unless cancelled
    wait_for(lambda: http.task(task_id)["log_lines"] >= 1)
    page.goto(f"{http.base}/tasks/{task_id}")
    lines = page.locator("#log-lines > li")
    shown_first = page.evaluate(WATCH_THE_LOG)
    assert shown_first >= 1
    # Two polls' worth of lines appended while the task still runs, without a reload.
    page.wait_for_function(
        "() => window.logChanges.statesWhenAdded.filter(s => s === 'running').length >= 2"
        " && new Set(window.logChanges.added).size >= 2",
        timeout=15_000,
    )
    status, _ = http.call("POST", f"/tasks/{task_id}/cancel", {"reason": "enough lines"})
    assert status == 200
    expect(badge(page)).to_have_text("Cancelled")
    # The last answer appends what came before the stop and drops the poller's trigger.
    expect(page.locator("#log-poller")).not_to_have_attribute("hx-get", re.compile("."))
    kept = http.call("GET", f"/tasks/{task_id}/logs?limit=1000")[1]["items"]
    expect(lines).to_have_count(len(kept))

    numbers = [int(n) for n in lines.evaluate_all("els => els.map(li => li.dataset.n)")]
    assert numbers == [line["n"] for line in kept]  # each once, in order, none missing
    assert numbers == sorted(set(numbers))
    texts = lines.locator(".log-text").all_inner_texts()
    assert texts == [line["line"] for line in kept]
    ticks = [int(re.fullmatch(r"第 (\d+) 行", text)[1]) for text in texts]
    assert ticks == list(range(1, len(ticks) + 1))
    changes = page.evaluate("window.logChanges")
    assert changes["removed"] == 0
    assert changes["added"] == numbers[shown_first:]  # appended after the first ones...
    assert page.evaluate(  # ...which are the very same elements, still at the top
        "() => [...document.querySelectorAll('#log-lines > li')].map(li => !!li.shownFirst)"
    ) == [True] * shown_first + [False] * (len(numbers) - shown_first)
    assert page.evaluate("window.notReloaded") is True
    assert not [m for m in page.console if "Content Security Policy" in m], page.console
    screenshot(page, "log-tail")


def test_artifacts_are_listed_and_download_with_their_names_and_bytes(site, tmp_path):
    http, open_page = site
    page = open_page()
    task_id = http.submit("chatty", mark=str(tmp_path / "page.html"))
    page.goto(f"{http.base}/tasks/{task_id}")
    expect(badge(page)).to_have_text("Succeeded", timeout=20_000)
    links = page.locator("#task-status .artifacts a")
    expect(links).to_have_count(3)
    assert sorted(links.all_inner_texts()) == sorted(["报告.txt", "data.bin", "page.html"])
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    url = page.url

    with page.expect_download() as report:
        links.filter(has_text="报告.txt").click()
    assert report.value.suggested_filename == "报告.txt"
    assert Path(report.value.path()).read_bytes() == "中文内容\n".encode()
    with page.expect_download() as data:
        links.filter(has_text="data.bin").click()
    assert Path(data.value.path()).read_bytes() == bytes(range(256))
    # HTML a stage made is a download, never a page of this site, even without `download`.
    html_link = links.filter(has_text="page.html")
    html_link.evaluate("a => a.removeAttribute('download')")
    with page.expect_download() as html:
        html_link.click()
    assert html.value.suggested_filename == "page.html"
    assert Path(html.value.path()).read_text() == "<html><script>alert(1)</script></html>"

    expect(page.locator("#log-lines")).to_contain_text("after produce")  # the last line
    with page.expect_download() as log:
        page.click("text=Download the log")
    assert log.value.suggested_filename == f"{task_id}.log"
    text = Path(log.value.path()).read_text(encoding="utf-8")
    assert "[produce] log: 第一行\n" in text and "[produce] stderr: stderr 错误\n" in text

    assert page.url == url and dialogs == []  # still this page, and it still works
    expect(page.locator("#task-status .artifacts")).to_be_visible()
    screenshot(page, "artifacts")


def test_failed_items_are_shown_and_retry_runs_only_them(site, tmp_path):
    http, open_page = site
    page = open_page()
    mark = tmp_path / "items"
    task_id = http.submit("batch", mark=str(mark), count=8, fail=[2, 5])
    page.goto(f"{http.base}/tasks/{task_id}")
    expect(badge(page)).to_have_text("Partly succeeded", timeout=20_000)
    assert page.locator("#task-status").get_attribute("data-state") == "partial_success"
    items = page.locator("#task-status .timeline li").first.locator(".items")
    expect(items).to_have_text("8 / 8 items · 2 failed")
    failed = page.locator("#task-status .failed-items li")
    expect(failed).to_have_text(
        [
            "2 (work_items): ValueError: item 2 is broken",
            "5 (work_items): ValueError: item 5 is broken",
        ]
    )
    failures_logged = [
        "item '2' failed: ValueError: item 2 is broken",
        "item '5' failed: ValueError: item 5 is broken",
    ]
    expect(page.locator("#log-lines .log-text")).to_have_text(failures_logged)
    screenshot(page, "items")
    assert sorted(mark.read_text().split("\n")[:-1]) == [f"item {n}" for n in range(8)]
    mark.write_text("")

    page.click("#task-status button:text-is('Retry')")
    page.wait_for_url(re.compile(r"/tasks/(?!" + task_id + r")[0-9a-f]{32}$"))
    retried = page.url.rsplit("/", 1)[1]
    expect(badge(page)).to_have_text("Partly succeeded", timeout=20_000)  # they fail again
    assert finished(http, retried)["retry_of"] == task_id
    assert mark.read_text().split("\n")[:-1] == ["item 2", "item 5"]  # nothing else ran
    expect(page.locator("#task-status .timeline li").first.locator(".items")).to_have_text(
        "8 / 8 items · 2 failed"
    )
    expect(page.locator("#task-status .failed-items li")).to_have_count(2)
    expect(page.locator("#log-lines .log-text")).to_have_text(failures_logged)
    screenshot(page, "items-retried")


def test_cancel_a_stage_that_ignores_it_counts_down_to_the_forced_stop(site):
    http, open_page = site
    page = open_page()
    task_id = http.submit("stubborn", seconds=300)
    page.goto(f"{http.base}/tasks/{task_id}")
    expect(page.locator("#log-lines")).to_contain_text("sleeping without checking")
    expect(badge(page)).to_have_text("Running")
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
    # Hold the status block still (its polls fail) to look at the countdown, which lasts ~1 s.
    status_polls = re.compile(rf"/tasks/{task_id}/status$")
    page.route(status_polls, lambda route: route.abort())
    page.fill(f"#reason-{task_id}", "停止")
    page.click("#task-status button.danger")
    countdown = page.locator("#task-status[data-state=cancelling] #force-stop")
    expect(countdown).to_have_text(re.compile(r"^Cancelling — forcing stop in [01] s$"))
    expect(badge(page)).to_have_text("Cancelling…")
    screenshot(page, "countdown")
    page.unroute(status_polls)
    expect(badge(page)).to_have_text("Cancelled")
    expect(page.locator("#force-stop")).to_have_count(0)
    assert dialogs == [f"Cancel task {task_id[:8]}?"]
    assert finished(http, task_id)["state"] == "cancelled"
    screenshot(page, "cancelled")


def test_log_and_downloads_work_with_javascript_off(site):
    http, open_page = site
    page = open_page(javascript=False)
    task_id = http.submit("chatty")
    assert finished(http, task_id)["state"] == "succeeded"
    page.goto(f"{http.base}/tasks/{task_id}")
    log = page.locator("#log-lines")
    for text in ("第一行", "第二行", "plain stdout, 标准输出", "stderr 错误", "after produce"):
        expect(log).to_contain_text(text)
    assert page.locator("#log-poller").get_attribute("hx-get") is None
    screenshot(page, "no-js")

    link = page.locator("a", has_text="Download the log")
    response = page.request.get(http.base + link.get_attribute("href"))
    assert response.status == 200
    assert response.headers["content-disposition"] == f'attachment; filename="{task_id}.log"'
    assert "[produce] log: 第一行" in response.text()
    report = page.locator("#task-status .artifacts a", has_text="报告.txt")
    with page.expect_download() as download:
        report.click()
    assert Path(download.value.path()).read_bytes() == "中文内容\n".encode()


def test_a_stage_waiting_out_its_retry_back_off_says_so(site):
    http, open_page = site
    page = open_page()
    task_id = http.submit("patient")  # attempt 1 fails; attempt 2 is 30 s away
    wait_for(lambda: http.task(task_id)["waiting"], timeout=15)
    page.goto(f"{http.base}/tasks/{task_id}")
    expect(badge(page)).to_have_text("Waiting")
    expect(page.locator("#task-status .stage")).to_have_text(
        "1/1 · hiccup · Retrying: attempt 1 failed"
    )
    expect(page.locator("#task-status .stage-error")).to_contain_text("upstream hiccup")


def test_no_log_lines_yet_goes_when_the_first_line_comes(site):
    http, open_page = site
    page = open_page()
    blocker = http.submit(stages=1, seconds=60)  # the one worker is busy: the ticker waits
    wait_for(lambda: http.task(blocker)["state"] == "running")
    task_id = http.submit("ticker", count=20, seconds=0.2)
    page.goto(f"{http.base}/tasks/{task_id}")
    empty = page.locator(".log-empty")
    expect(empty).to_be_visible()
    http.call("POST", f"/tasks/{blocker}/cancel", {"reason": "make way"})
    expect(page.locator("#log-lines > li").first).to_be_visible(timeout=20_000)
    expect(empty).to_be_hidden()
    expect(badge(page)).to_have_text("Succeeded", timeout=30_000)
    assert not [m for m in page.console if "error" in m.lower()], page.console
