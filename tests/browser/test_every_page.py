"""Every page at 1280 and 390 px, light and dark: screenshots, overflow, console errors and axe.

One server for the module, seeded through the API with a task in each state
and a named API token. Each test is about one concern and is parametrized by
page (and colour scheme for axe), so a failure names the page. Pages are
opened in new contexts carrying the session of one login (no login per
test, and none against the rate limit).

Screenshots go to test-artifacts/page-<name>-<scheme>-<width>.png and axe's
full results (every impact) to test-artifacts/axe-<name>-<scheme>.json.
axe runs with the CSP bypassed (see audit.py); everything else runs under it.
"""

import re
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from tests.browser import audit
from tests.browser.conftest import ARTIFACTS
from tests.conftest import wait_for
from tests.live import ADMIN_PASSWORD, running_server

sync_api = pytest.importorskip("playwright.sync_api")

WIDE, NARROW = 1280, 390
HEIGHT = 800
SCHEMES = ("light", "dark")


def reach(http, task_id: str, state: str) -> None:
    wait_for(lambda: http.task(task_id)["state"] == state, 20, 0.1)


# What users paste: a long unbroken URL must wrap on a phone rather than widen the page.
LONG_MESSAGE = "Nightly export to s3://taskdeck-exports/2026/11/25/nightly/customers-full.csv.gz"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A server with a succeeded, a failed, a cancelled, a running and a queued task."""
    env = {"TASKDECK_LOGIN_RATE_LIMIT": "1000 per minute"}  # the refused-login page tries often
    with running_server(tmp_path_factory.mktemp("every-page"), env) as (http, _):
        ids = {}  # the one worker takes them in turn
        ids["succeeded"] = http.submit(stages=3, seconds=0, message=LONG_MESSAGE)
        ids["failed"] = http.submit(stages=3, seconds=0, fail_at=2, message="Fails at stage 2")
        ids["cancelled"] = http.submit(stages=2, seconds=60)
        # Keeps the worker busy for the whole module; the last one waits behind it.
        ids["running"] = http.submit(stages=4, seconds=600, message="Long import, still going")
        ids["queued"] = http.submit(stages=2, seconds=0)
        reach(http, ids["cancelled"], "running")
        status, body = http.call("POST", f"/tasks/{ids['cancelled']}/cancel", {"reason": "no"})
        assert status == 200, body
        for name in ("succeeded", "failed", "cancelled", "running"):
            reach(http, ids[name], name)
        status, body = http.call("POST", "/tokens", {"name": "CI deploy script"})
        assert status == 201, body
        http.ids = ids
        yield http
        http.call("POST", "/tasks/cancel-all", {"cancel_running": True})


@dataclass
class Page:
    """A page to audit: its path, whether logged in, and what answer it is (its status)."""

    path: str
    logged_in: bool = True
    status: int = 200
    act: object = None  # a step after loading (a refused form), on the page
    answered: str = ""  # the path answering `act`, whose status Chromium logs as an error


def refuse_login(page):
    page.fill("#username", "admin")
    page.fill("#password", "not-the-password")
    page.click("button[type=submit]")
    sync_api.expect(page.locator(".flash-error")).to_be_visible()


def refuse_new_task(page):
    page.fill("#p-stages", "2")
    page.fill("#p-fail_at", "3")  # the browser lets it through (max 20); the server refuses it
    page.click("button[type=submit]:text('Submit task')")
    sync_api.expect(page.locator(".field-error")).to_be_visible()


PAGES = {
    "login": Page("/login", logged_in=False),
    "login-refused": Page("/login", False, 401, refuse_login, "/login"),
    "dashboard": Page("/"),
    "tasks": Page("/tasks"),
    "tasks-none-match": Page("/tasks?status=cancelling"),
    "new-task": Page("/tasks/new?type=demo"),
    "new-task-refused": Page("/tasks/new?type=demo", True, 422, refuse_new_task, "/tasks/new"),
    "new-transcribe": Page("/tasks/new?type=transcribe"),  # a file input
    "new-remote-job": Page("/tasks/new?type=remote_job"),  # a JSON object param
    "detail-running": Page("/tasks/{running}"),
    "detail-queued": Page("/tasks/{queued}"),
    "detail-succeeded": Page("/tasks/{succeeded}"),
    "detail-failed": Page("/tasks/{failed}"),
    "detail-cancelled": Page("/tasks/{cancelled}"),
    "tokens": Page("/tokens"),
    "not-found": Page("/tasks/does-not-exist", status=404),
}


@dataclass
class Session:
    storage: dict
    errors: list  # what the browser logged while logging in (the very first visit)


@pytest.fixture(scope="module")
def session(server, chromium):
    """Log in once (the module's first visit with this browser); the cookies for every page."""
    context = chromium.new_context()
    try:
        page = context.new_page()
        errors = audit.watch_console(page)
        page.goto(server.base + "/login")
        audit.settle(page)
        page.fill("#username", "admin")
        page.fill("#password", ADMIN_PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(server.base + "/")
        audit.settle(page)
        page.wait_for_timeout(300)
        yield Session(context.storage_state(), errors)
    finally:
        context.close()


@contextmanager
def visit(browser, server, session, name, *, width=WIDE, for_axe=False):
    """(page, errors) for page `name` in a new context, loaded and settled.

    errors() gives what the console logged so far, but for Chromium's note of
    the status the page is meant to answer (a 404 page, a refused form).
    """
    spec = PAGES[name]
    options = {"viewport": {"width": width, "height": HEIGHT}}
    if spec.logged_in:
        options["storage_state"] = session.storage
    context = audit.axe_context(browser, **options) if for_axe else browser.new_context(**options)
    try:
        page = context.new_page()
        page.set_default_timeout(15_000)
        logged = audit.watch_console(page)
        url = server.base + spec.path.format(**server.ids)
        response = page.goto(url)
        audit.settle(page)
        if spec.act:
            url = server.base + spec.answered
            with page.expect_response(lambda r: r.url == url and r.request.method == "POST") as r:
                spec.act(page)
            response = r.value
            audit.settle(page)
        assert response.status == spec.status, f"{name}: {url} answered {response.status}"
        if spec.logged_in:
            assert not page.url.startswith(server.base + "/login"), f"{name}: not logged in"

        def errors():
            return [e for e in logged if not audit.own_status_logged(e, url, spec.status)]

        yield page, errors
    finally:
        context.close()


def shoot(page, name, scheme, width):
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"page-{name}-{scheme}-{width}.png"
    page.screenshot(path=str(path), full_page=True)


def test_logging_in_logs_no_errors(session):
    """The module's first visit: the login page, logging in, the dashboard (and the favicon)."""
    if session.errors:
        pytest.fail("\n".join(session.errors), pytrace=False)


@pytest.mark.parametrize("name", PAGES)
def test_screenshots(chromium, server, session, name):
    with visit(chromium, server, session, name) as (page, _):
        for width in (WIDE, NARROW):
            page.set_viewport_size({"width": width, "height": HEIGHT})
            for scheme in SCHEMES:
                page.emulate_media(color_scheme=scheme)
                shoot(page, name, scheme, width)


@pytest.mark.parametrize("name", PAGES)
def test_no_horizontal_overflow_at_390(chromium, server, session, name):
    with visit(chromium, server, session, name, width=NARROW) as (page, _):
        found = audit.overflow(page)
    if found["scrollWidth"] > found["innerWidth"]:
        pytest.fail(
            f"{name} is {found['scrollWidth']} px wide in a {found['innerWidth']} px window; "
            "sticking out:\n" + "\n".join(found["culprits"]),
            pytrace=False,
        )


@pytest.mark.parametrize("name", PAGES)
def test_no_console_errors(chromium, server, session, name):
    with visit(chromium, server, session, name) as (page, errors):
        page.wait_for_timeout(200)  # anything logged just after load
        found = errors()
    if found:
        pytest.fail(f"{name}:\n" + "\n".join(found), pytrace=False)


@pytest.mark.parametrize("name", PAGES)
@pytest.mark.parametrize("width", (WIDE, NARROW))
def test_no_serious_axe_violations(chromium, server, session, name, width):
    """In both colour schemes (their contrasts differ) and both layouts (the phone's cards)."""
    found = {}
    with visit(chromium, server, session, name, width=width, for_axe=True) as (page, _):
        for scheme in SCHEMES:
            page.emulate_media(color_scheme=scheme)
            results = audit.axe_results(page)
            audit.save(ARTIFACTS / f"axe-{name}-{scheme}-{width}.json", results)
            found[scheme] = audit.serious(results["violations"])
    if any(found.values()):
        report = (
            f"{name} ({scheme}, {width} px):\n{audit.describe(violations)}"
            for scheme, violations in found.items()
            if violations
        )
        pytest.fail("\n".join(report), pytrace=False)


# What each polling page must have answered (URL part, count) before the test looks:
# the detail's status block polls every 1.5 s, its log every 2 s, the list's rows every 3 s
# and the active-tasks widget (on every page) every 2 s while something runs.
POLLS = {
    "detail-running": [("/status", 3), ("/log-tail", 2), ("/widgets/active", 2)],
    "detail-queued": [("/status", 3), ("/widgets/active", 2)],
    "tasks": [("/tasks/rows", 2), ("/widgets/active", 2)],
    "dashboard": [("/widgets/active", 2)],
}


def test_polling_pages_log_no_errors(chromium, server, session):
    """Pages that poll, open side by side for several polls each (about 6 s): swaps log nothing."""
    context = chromium.new_context(storage_state=session.storage)
    try:
        watched = {}
        for name in POLLS:
            page = context.new_page()
            answered = []
            page.on("response", lambda response, seen=answered: seen.append(response.url))
            errors = audit.watch_console(page)
            page.goto(server.base + PAGES[name].path.format(**server.ids))
            watched[name] = (page, answered, errors)

        def polled_enough():
            return all(
                sum(part in url for url in watched[name][1]) >= count
                for name, parts in POLLS.items()
                for part, count in parts
            )

        deadline = 20_000
        while not polled_enough() and deadline > 0:
            watched["dashboard"][0].wait_for_timeout(250)
            deadline -= 250
        assert polled_enough(), {name: answered for name, (_, answered, _) in watched.items()}
        found = {name: errors for name, (_, _, errors) in watched.items() if errors}
    finally:
        context.close()
    if found:
        report = (f"{name}: {e}" for name, errors in found.items() for e in errors)
        pytest.fail("\n".join(report), pytrace=False)


NAV = (("Tasks", "/tasks"), ("New task", "/tasks/new"), ("API tokens", "/tokens"))
NAV += (("Dashboard", "/"), ("Tasks", "/tasks"))


def test_navigating_and_submitting_logs_no_errors(chromium, server, session):
    """The nav links (boosted), a task from the list, a new task from the form: nothing logged."""
    context = chromium.new_context(storage_state=session.storage)
    try:
        page = context.new_page()
        page.set_default_timeout(15_000)
        errors = audit.watch_console(page)
        page.goto(server.base + "/")
        for link, path in NAV:
            page.click(f".top nav a:text-is('{link}')")
            page.wait_for_url(server.base + path)
            audit.settle(page)
        page.click(f"a[href$='{server.ids['failed']}']")
        page.wait_for_url(server.base + f"/tasks/{server.ids['failed']}")
        audit.settle(page)
        page.goto(server.base + "/tasks/new?type=demo")
        page.fill("#p-stages", "1")
        page.fill("#p-seconds", "0")
        page.click("button[type=submit]:text('Submit task')")
        page.wait_for_url(re.compile(r"/tasks/[0-9a-f]{32}$"))
        audit.settle(page)
        page.wait_for_timeout(300)
        found = list(errors)
    finally:
        context.close()
    if found:
        pytest.fail("\n".join(found), pytrace=False)
