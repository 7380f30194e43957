"""Errors with JavaScript ON are shown exactly as with it off (htmx would drop 4xx answers).

The pages answer a refused login with 401, a refused form with 422 and the
login rate limit with 429, each carrying its message; `responseHandling` in
base.html's htmx-config swaps them in. Each test also checks the page can
go on: a failed attempt must not leave a dead form.
"""

import re

import pytest

from tests.browser.conftest import ARTIFACTS
from tests.live import ADMIN_PASSWORD, running_server

sync_api = pytest.importorskip("playwright.sync_api")


def fresh_page(chromium):
    """A JavaScript-on page, its console kept: a swapped error must not log one."""
    context = chromium.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.console = []
    page.on("console", lambda message: page.console.append(message.text))
    return context, page


def log_in(page, base, password):
    page.goto(base + "/login")
    page.fill("#username", "admin")
    page.fill("#password", password)
    page.click("button[type=submit]")


def test_a_wrong_password_is_shown_and_the_form_still_works(server, chromium):
    context, page = fresh_page(chromium)
    try:
        log_in(page, server.base, "not-the-password")
        sync_api.expect(page.locator(".flash-error")).to_have_text("Invalid username or password")
        page.fill("#username", "admin")
        page.fill("#password", ADMIN_PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(server.base + "/")
        assert not [m for m in page.console if "error" in m.lower()], page.console
    finally:
        context.close()


def test_a_refused_new_task_shows_the_field_error_then_submits(server, chromium):
    context, page = fresh_page(chromium)
    try:
        log_in(page, server.base, ADMIN_PASSWORD)
        page.wait_for_url(server.base + "/")
        page.goto(server.base + "/tasks/new?type=demo")
        page.fill("#p-stages", "3")
        page.fill("#p-fail_at", "7")
        page.fill("#p-message", "保留我")
        page.click("form.stack button[type=submit]")
        sync_api.expect(page.locator(".field-error")).to_contain_text(
            "7 is beyond the last stage (3)"
        )
        sync_api.expect(page.locator("#p-message")).to_have_value("保留我")  # kept
        page.screenshot(path=str(ARTIFACTS / "new-task-error-js.png"), full_page=True)
        page.fill("#p-fail_at", "")
        page.click("form.stack button[type=submit]")
        page.wait_for_url(re.compile(r"/tasks/[0-9a-f]{32}$"))
        assert not [m for m in page.console if "error" in m.lower()], page.console
    finally:
        context.close()


def test_the_login_rate_limit_is_shown(chromium, tmp_path):
    env = {"TASKDECK_LOGIN_RATE_LIMIT": "2 per minute"}  # a server of its own: others log in
    with running_server(tmp_path, env) as (http, _):
        context, page = fresh_page(chromium)
        try:
            limited = page.locator("text=Too many attempts; wait a minute and try again")
            for _ in range(8):  # the count is per web worker process: a few more than 2
                log_in(page, http.base, "wrong")
                page.wait_for_load_state("networkidle")
                if limited.count():
                    break
            sync_api.expect(limited).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "login-rate-limited-js.png"), full_page=True)
        finally:
            context.close()
