"""What the browser modules share: Debian's Chromium, and `site` (log in, leave the server idle).

Each module gets its own server (`server`, one per module: starting one
takes ~5 s; a module that needs settings defines its own); `site` uses it.
Screenshots go to test-artifacts/ (ignored by git).
"""

from pathlib import Path

import pytest

from tests.conftest import wait_for
from tests.live import ADMIN_PASSWORD, running_server

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def chromium():
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: apt-get install -y chromium (.ci/run does)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def server(request, tmp_path_factory):
    """A plain server and worker for the module, with an admin API client (tests/live.py)."""
    folder = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    with running_server(folder) as (http, _):
        yield http


@pytest.fixture
def site(server, chromium):
    """(Http, open_page): open_page(javascript=True) gives a logged-in page in a new context.

    Other keywords go to the context, e.g. timezone_id="America/Los_Angeles".
    """
    http, contexts = server, []

    def open_page(javascript=True, **options):
        context = chromium.new_context(
            java_script_enabled=javascript, accept_downloads=True, **options
        )
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        console = []
        page.on("console", lambda message: console.append(message.text))
        page.console = console  # e.g. CSP violations, which the CSP must never cause
        page.goto(http.base + "/login")
        page.fill("#username", "admin")
        page.fill("#password", ADMIN_PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(http.base + "/")
        return page

    yield http, open_page
    for context in contexts:  # its pages would go on polling
        context.close()
    settle(http)


def settle(http):
    """Cancel what a test left queued or running, and wait until the one worker is free again."""
    status, body = http.call("POST", "/tasks/cancel-all", {"cancel_running": True})
    assert status == 200, body

    def idle():
        by_state = http.call("GET", "/tasks/stats")[1]["by_state"]
        return by_state["queued"] + by_state["running"] + by_state["cancelling"] == 0

    wait_for(idle, timeout=15, interval=0.1)
