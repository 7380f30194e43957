"""`remote_job` against a SECOND real Taskdeck (its own process, port and data dir).

This deck's worker runs in the test (a real Huey consumer); the other one
is `taskdeck serve`. Success mirrored (state, stage, logs), a cancel here
cancelling there, a failure there failing here with its message, secrets
that never show. The kill -9 test, with this deck in processes too, is
test_remote_crash.py; params that would misuse a secret are refused in
tests/unit/test_remote_params.py (no server needed).
"""

import pytest

from tests.conftest import api_submit, finished, wait_for, write_secrets
from tests.live import running_server

DOCUMENT = {"type": "document", "params": {"title": "远程", "notes": "# 一\n第一。\n# 二\n第二。"}}


@pytest.fixture(scope="module")
def there(tmp_path_factory):
    """The other Taskdeck (its Http, with an admin token), one for the module's tests."""
    with running_server(tmp_path_factory.mktemp("there")) as (http, _):
        yield http


def jobs_there(there) -> set[str]:
    return {t["id"] for t in there.call("GET", "/tasks")[1]["items"]}


@pytest.fixture
def secret(tmp_path, there, monkeypatch):
    """`there`'s admin token as the secret named "there", bound to its address."""
    path = write_secrets(tmp_path / "secrets.toml", there=(there.token, there.base))
    monkeypatch.setenv("TASKDECK_SECRETS_FILE", path)
    return there.token


def submit(api_as, there, job_input, secret_name="there"):
    return api_submit(
        api_as,
        "remote_job",
        adapter="taskdeck",
        url=there.base,
        secret=secret_name,
        input=job_input,
    )


def test_a_job_there_is_mirrored_here(api, worker, there, secret):
    worker(workers=1)
    alice = api("alice")
    before = jobs_there(there)
    task = finished(alice, submit(alice, there, DOCUMENT))
    assert task["state"] == "succeeded", task
    output = task["stages"][0]["output"]
    remote = there.task(output["job"])
    assert remote["state"] == "succeeded" and remote["type"] == "document"
    assert output["state"] == "succeeded" and output["output"]["outline"]["sections"] == [
        "一",
        "二",
    ]
    log = alice.get(f"/tasks/{task['id']}/logs").get_json()["items"]
    lines = [item["line"] for item in log]
    assert f"submitted to {there.base}: job {output['job']}" in lines
    assert "remote: [outline] 2 sections from the notes' headings" in lines  # mirrored, UTF-8
    assert jobs_there(there) - before == {output["job"]}  # submitted once


def test_a_cancel_here_cancels_the_job_there(api, worker, there, secret):
    worker(workers=1)
    alice = api("alice")
    before = jobs_there(there)
    task_id = submit(alice, there, {"type": "demo", "params": {"stages": 1, "seconds": 120}})
    (job,) = wait_for(lambda: jobs_there(there) - before)
    wait_for(lambda: there.task(job)["state"] == "running", timeout=30)
    alice.post(f"/tasks/{task_id}/cancel", json={"reason": "not needed"})
    wait_for(lambda: there.task(job)["state"] == "cancelled", timeout=15, interval=0.1)
    here = finished(alice, task_id)
    assert here["state"] == "cancelled"
    stopped = [e for e in here["events"] if e["action"] == "cancelled" and e["actor"] == "worker"]
    assert stopped and "cancelled there" in stopped[-1]["reason"]
    assert "Cancellation requested" in stopped[-1]["reason"]  # the other deck's own answer
    assert secret not in str(here)


def test_a_failure_there_fails_here_with_its_message(api, worker, there, secret):
    worker(workers=1)
    alice = api("alice")
    failing = {"type": "demo", "params": {"stages": 2, "seconds": 0, "fail_at": 2}}
    task = finished(alice, submit(alice, there, failing))
    assert task["state"] == "failed"
    assert "the remote job failed there" in task["error_message"]
    assert "Demo failure at stage 2" in task["error_message"]


def test_a_refused_submit_there_fails_here_with_its_detail(api, worker, there, secret):
    worker(workers=1)
    alice = api("alice")
    task = finished(alice, submit(alice, there, {"type": "no_such_type", "params": {}}))
    assert task["state"] == "failed"
    assert "answered 422" in task["error_message"] and "no_such_type" in task["error_message"]


def test_the_secret_never_shows(api, worker, there, secret, browser):
    worker(workers=1)
    alice = api("alice")
    task = finished(alice, submit(alice, there, DOCUMENT))
    browser.login("alice")
    for shown in (
        alice.get(f"/tasks/{task['id']}").data,
        alice.get(f"/tasks/{task['id']}/logs.txt").data,
        alice.get("/tasks").data,
        browser.get(f"/tasks/{task['id']}").data,
    ):
        assert secret.encode() not in shown
    assert task["params"]["secret"] == "there"  # its name only
