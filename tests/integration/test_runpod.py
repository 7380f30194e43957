"""`remote_job` with adapter="runpod", against RunPod's own code where it can be run here.

No RunPod endpoint is reachable from the tests, but the SDK (`runpod` in
the test extras) ships a local test server: the same `run_job` that wraps
a handler on RunPod, behind FastAPI routes that mimic the serverless API.
tests/runpod_handler.py runs under it as a child process, and this deck's
worker (a real Huey consumer) talks to it: success and both of RunPod's
ways of failing a job (a handler that raises, one that returns
{"error": …}) are checked against the shapes RunPod's code really makes.

What that server does not do (GET /status, /cancel, the Bearer key, the
TIMED_OUT and CANCELLED states) is tested against tests/runpod_standin.py,
which follows the documented REST API.
"""

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import api_submit, finished, wait_for, write_secrets
from tests.live import free_port, stop
from tests.runpod_standin import KEY, serving

HANDLER = Path(__file__).parents[1] / "runpod_handler.py"
TEXT = {"标题": "远程任务：你好，世界。", "段落": ["第一段。", "第二段，含“引号”与 emoji 🚀。"]}


@pytest.fixture(scope="module")
def sdk_server(tmp_path_factory):
    """The SDK's local test server running tests/runpod_handler.py: its base URL.

    A real child process on a free port (about 3 s to start; once per
    module). Its output goes to a file, shown if it fails to come up.
    """
    port = free_port()
    log_path = tmp_path_factory.mktemp("runpod") / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNPOD_")}  # off RunPod
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [sys.executable, str(HANDLER), "--rp_serve_api", "--rp_api_host", "127.0.0.1"]
            + ["--rp_api_port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"

    def up():
        assert server.poll() is None, log_path.read_text()
        try:
            with urllib.request.urlopen(base + "/openapi.json", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    try:
        wait_for(up, timeout=60, interval=0.1)
        yield base
    finally:
        stop(server)


@pytest.fixture
def sdk(sdk_server, tmp_path, monkeypatch):
    """The SDK server's address, bound in the secrets file to the secret "local" (no key)."""
    path = write_secrets(tmp_path / "secrets.toml", local=("", sdk_server))
    monkeypatch.setenv("TASKDECK_SECRETS_FILE", path)
    return sdk_server


def on_sdk(api_as, base, job_input) -> str:
    return api_submit(
        api_as, "remote_job", adapter="runpod", url=base, secret="local", input=job_input
    )


def test_a_job_on_the_sdk_is_mirrored_here(api, worker, sdk):
    """The SDK's /run, then its POST-only /status (which runs the handler); the output comes back.

    The adapter's GET is answered 405 there, so it asks again with POST; the
    input and output cross two JSON encoders and must come back as they were.
    """
    worker(workers=1)
    alice = api("alice")
    task = finished(alice, on_sdk(alice, sdk, {"echo": TEXT, "sleep": 0.2}), timeout=90)
    assert task["state"] == "succeeded", task
    output = task["stages"][0]["output"]
    assert output["state"] == "succeeded" and output["job"].startswith("test-")
    assert output["output"] == {"echo": TEXT, "said": "处理完毕：一切正常。", "job": output["job"]}
    lines = [i["line"] for i in alice.get(f"/tasks/{task['id']}/logs").get_json()["items"]]
    assert f"submitted to {sdk}: job {output['job']}" in lines


def test_a_handler_that_raises_fails_the_task_with_its_own_message(api, worker, sdk):
    """RunPod hands a raised error over as JSON text (escaped, with a traceback): only its
    type and message are kept, readable."""
    worker(workers=1)
    alice = api("alice")
    said = "显存不足：需要 24 GB，只有 8 GB"
    task = finished(alice, on_sdk(alice, sdk, {"fail": said}), timeout=90)
    assert task["state"] == "failed", task
    assert task["error_message"].endswith(f"the remote job failed there: RuntimeError: {said}")
    assert "\\u" not in task["error_message"] and "Traceback" not in task["error_message"]


def test_a_handler_that_returns_an_error_fails_the_task_with_it(api, worker, sdk):
    """A handler's {"error": …} is RunPod's other way to fail a job: its text as it is."""
    worker(workers=1)
    alice = api("alice")
    task = finished(alice, on_sdk(alice, sdk, {"refuse": "输入里没有 prompt"}), timeout=90)
    assert task["state"] == "failed", task
    assert task["error_message"].endswith("the remote job failed there: 输入里没有 prompt")


def test_a_submit_refused_there_fails_the_task_with_its_answer(api, worker, sdk):
    """An address that is not an endpoint: the server's 404 to /run fails the task here."""
    worker(workers=1)
    alice = api("alice")
    task = finished(alice, on_sdk(alice, sdk + "/nowhere", {"echo": 1}), timeout=90)
    assert task["state"] == "failed"
    assert "answered 404" in task["error_message"] and "Not Found" in task["error_message"]


# --- the documented API, with a key: the stand-in ---------------------------------------


@pytest.fixture
def runpod(tmp_path, monkeypatch):
    """(stand-in Endpoint, its URL); the secret "gpu" holds KEY, bound to that URL."""
    with serving() as (endpoint, base):
        path = write_secrets(tmp_path / "secrets.toml", gpu=(KEY, base))
        monkeypatch.setenv("TASKDECK_SECRETS_FILE", path)
        yield endpoint, base


def on_runpod(api_as, base, job_input, secret="gpu") -> str:
    return api_submit(
        api_as, "remote_job", adapter="runpod", url=base, secret=secret, input=job_input
    )


def everything_shown(api_as, task_id) -> str:
    """The task as its owner can see it: the JSON (params, stages, events) and both logs."""
    return "\n".join(
        [
            json.dumps(api_as.get(f"/tasks/{task_id}").get_json(), ensure_ascii=False),
            json.dumps(api_as.get(f"/tasks/{task_id}/logs").get_json(), ensure_ascii=False),
            api_as.get(f"/tasks/{task_id}/logs.txt").get_data(as_text=True),
        ]
    )


def test_the_key_goes_to_runpod_in_the_header_and_nowhere_else(api, worker, runpod):
    """Queued, running, done, by GET /status as the real API is asked; the key only in
    Authorization, even when RunPod's error says it back."""
    endpoint, base = runpod
    worker(workers=1)
    alice = api("alice")
    done = finished(alice, on_runpod(alice, base, {"output": TEXT, "seconds": 0.5}), timeout=90)
    assert done["state"] == "succeeded", done
    assert done["stages"][0]["output"]["output"] == TEXT
    job = done["stages"][0]["output"]["job"]
    assert endpoint.jobs[job]["input"] == {"output": TEXT, "seconds": 0.5}
    assert ("GET", f"/status/{job}") in endpoint.requests
    assert ("POST", f"/status/{job}") not in endpoint.requests  # no fall-back needed there

    leaky = {"end": "FAILED", "error": "echo the key", "seconds": 0}
    failed = finished(alice, on_runpod(alice, base, leaky), timeout=90)
    assert failed["state"] == "failed"
    assert failed["error_message"].endswith("the worker got Bearer ****")
    assert endpoint.keys == {f"Bearer {KEY}"}  # every request carried it
    for task in (done, failed):
        assert KEY not in everything_shown(alice, task["id"])
        assert task["params"]["secret"] == "gpu"


def test_a_cancel_here_cancels_the_job_there(api, worker, runpod):
    """POST /cancel/{id} goes out after the cancel here; RunPod's answer is in its event.

    How soon (goal: 3 s) is measured by bench/remote_job.py, not asserted here."""
    endpoint, base = runpod
    worker(workers=1)
    alice = api("alice")
    task_id = on_runpod(alice, base, {"seconds": 120})
    job = wait_for(lambda: next(iter(endpoint.jobs), None), timeout=60)
    wait_for(lambda: endpoint.state(endpoint.jobs[job]) == "IN_PROGRESS", timeout=30)
    wait_for(lambda: endpoint.requests[-1] == ("GET", f"/status/{job}"), timeout=30)
    response = alice.post(f"/tasks/{task_id}/cancel", json={"reason": "不需要了"})
    assert response.status_code in (200, 202), response.get_json()
    wait_for(lambda: endpoint.cancelled, timeout=30, interval=0.05)
    assert endpoint.cancelled[0][0] == job
    here = finished(alice, task_id, timeout=60)
    assert here["state"] == "cancelled"
    assert endpoint.state(endpoint.jobs[job]) == "CANCELLED"
    stopped = [e for e in here["events"] if e["action"] == "cancelled" and e["actor"] == "worker"]
    assert stopped, here["events"]
    assert f"cancelled there ({base}, job {job}): 200: CANCELLED" in stopped[-1]["reason"]
    assert len(endpoint.cancelled) == 1
    assert KEY not in everything_shown(alice, task_id)


@pytest.mark.parametrize(
    "end, said",
    [
        ("TIMED_OUT", "the remote job failed there: TIMED_OUT: no reason given"),
        ("CANCELLED", "the remote job cancelled there: no reason given"),  # from RunPod's console
    ],
)
def test_a_job_that_ends_badly_there_fails_here(api, worker, runpod, end, said):
    """TIMED_OUT (past the endpoint's execution timeout) and a cancel made there both fail
    the task here, naming what happened."""
    endpoint, base = runpod
    worker(workers=1)
    alice = api("alice")
    task = finished(alice, on_runpod(alice, base, {"seconds": 0.3, "end": end}), timeout=90)
    assert task["state"] == "failed", task
    assert task["error_message"].endswith(said)
    assert not endpoint.cancelled  # nothing to cancel: it had ended


def test_a_key_runpod_refuses_fails_the_task_without_showing_it(
    api, worker, runpod, tmp_path, monkeypatch
):
    """A wrong key: RunPod's 401 fails the task here; the key sent is shown nowhere."""
    endpoint, base = runpod
    wrong = "rpa_WRONGKEY_also_never_shown_33b7"
    path = write_secrets(tmp_path / "wrong.toml", gpu=(wrong, base))
    monkeypatch.setenv("TASKDECK_SECRETS_FILE", path)
    worker(workers=1)
    alice = api("alice")
    task = finished(alice, on_runpod(alice, base, {"seconds": 0}), timeout=90)
    assert task["state"] == "failed"
    assert "answered 401: Unauthorized" in task["error_message"]
    assert endpoint.keys == {f"Bearer {wrong}"} and not endpoint.jobs
    assert wrong not in everything_shown(alice, task["id"])
