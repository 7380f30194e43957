"""`remote_job` from the browser: point a task at a second real Taskdeck, watch its stage
mirrored here, cancel it here and see the job there cancelled too (JavaScript ON); a secret
that may not go to the address typed is refused at its field."""

import json
import re

import pytest

from tests.browser.conftest import ARTIFACTS
from tests.conftest import wait_for, write_secrets
from tests.live import running_server

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect


@pytest.fixture(scope="module")
def there(tmp_path_factory):
    """The other Taskdeck (its own `taskdeck serve`, port and data dir)."""
    with running_server(tmp_path_factory.mktemp("there")) as (http, _):
        yield http


@pytest.fixture(scope="module")
def server(tmp_path_factory, there):
    """This deck, with the other's admin token as the secret "there", bound to its address."""
    folder = tmp_path_factory.mktemp("here")
    secrets = write_secrets(folder / "secrets.toml", there=(there.token, there.base))
    with running_server(folder, {"TASKDECK_SECRETS_FILE": secrets}) as (http, _):
        yield http


def fill(page, base, url, job):
    page.goto(base + "/tasks/new?type=remote_job")
    page.select_option("#p-adapter", "taskdeck")
    page.fill("#p-url", url)
    page.fill("#p-secret", "there")
    page.fill("#p-input", json.dumps(job, ensure_ascii=False))
    page.click("button:text-is('Submit task')")


def test_run_a_job_on_another_deck_then_cancel_it_there_from_here(site, there):
    http, open_page = site
    page = open_page()
    job = {"type": "demo", "params": {"stages": 3, "seconds": 120, "message": "远程"}}
    fill(page, http.base, there.base, job)
    page.wait_for_url(re.compile(r"/tasks/[0-9a-f]{32}$"))
    task_id = page.url.rsplit("/", 1)[1]
    expect(page.locator("#task-status .badge").first).to_have_text("Running", timeout=30_000)
    # The other deck's stage, mirrored as this stage's progress message, then its log lines.
    expect(page.locator("#task-status")).to_contain_text("remote stage: step 1", timeout=20_000)
    (remote,) = there.call("GET", "/tasks")[1]["items"]
    assert remote["state"] == "running" and remote["params"]["message"] == "远程"
    page.screenshot(path=str(ARTIFACTS / "remote-job-running.png"), full_page=True)
    page.on("dialog", lambda dialog: dialog.accept())
    page.fill(f"#reason-{task_id}", "not needed")
    page.click("#task-status button.danger")
    expect(page.locator("#task-status .badge").first).to_have_text("Cancelled", timeout=20_000)
    wait_for(lambda: there.task(remote["id"])["state"] == "cancelled", timeout=15, interval=0.1)
    events = page.locator(".events")
    expect(events).to_contain_text("cancelled there")  # the other deck's answer, in the event
    expect(events).to_contain_text("Cancellation requested")
    assert there.token not in page.content()
    assert not [m for m in page.console if "error" in m.lower()], page.console
    page.screenshot(path=str(ARTIFACTS / "remote-job-cancelled.png"), full_page=True)


def test_a_secret_sent_to_another_address_is_refused_at_its_field(site, there):
    http, open_page = site
    page = open_page()
    fill(page, http.base, "http://127.0.0.1:9", {"type": "demo", "params": {}})
    expect(page.locator(".field-error")).to_contain_text(
        f"Secret 'there' may only be sent to {there.base}"
    )
    expect(page.locator("#p-url")).to_have_value("http://127.0.0.1:9")  # what was typed stays
    assert there.token not in page.content()
