"""The real commands as a user runs them: init, token create, serve; then plain HTTP."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import wait_for

TASKDECK = str(Path(sys.executable).with_name("taskdeck"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Http:
    def __init__(self, base, token):
        self.base, self.token = base, token

    def call(self, method, path, body=None):
        request = urllib.request.Request(
            self.base + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as exc:
            return exc.code, json.load(exc)


@pytest.fixture
def served(tmp_path):
    env = {
        **os.environ,
        "TASKDECK_DATA_DIR": str(tmp_path / "data"),
        "TASKDECK_ADMIN_PASSWORD": "admin-password",
    }
    env.pop("TASKDECK_DATABASE_URL", None)
    env.pop("TASKDECK_QUEUE_URL", None)
    subprocess.run([TASKDECK, "init"], env=env, check=True, capture_output=True)
    out = subprocess.run(
        [TASKDECK, "token", "create", "admin"], env=env, check=True, capture_output=True, text=True
    ).stdout
    port = free_port()
    log = open(tmp_path / "serve.log", "w")  # noqa: SIM115  closed below
    server = subprocess.Popen(
        [TASKDECK, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    http = Http(f"http://127.0.0.1:{port}/api/v1", out.strip().splitlines()[-1])

    def up():
        try:
            return http.call("GET", "/tasks")[0] == 200
        except OSError:
            return False

    wait_for(up, timeout=30, interval=0.2)
    yield http, server
    if server.poll() is None:
        server.kill()
        server.wait()
    log.close()


def test_serve_runs_web_and_worker_and_ctrl_c_stops_both(served):
    http, server = served
    status, task = http.call(
        "POST", "/tasks", {"type": "demo", "params": {"stages": 2, "seconds": 0.2}}
    )
    assert status == 201
    wait_for(lambda: http.call("GET", f"/tasks/{task['id']}")[1]["state"] == "succeeded", 20)

    status, slow = http.call("POST", "/tasks", {"type": "demo", "params": {"seconds": 30}})
    wait_for(lambda: http.call("GET", f"/tasks/{slow['id']}")[1]["progress"] > 0, 20)
    status, answer = http.call("POST", f"/tasks/{slow['id']}/cancel", {"reason": "demo"})
    assert (status, answer["state"]) == (200, "cancelling")
    wait_for(lambda: http.call("GET", f"/tasks/{slow['id']}")[1]["state"] == "cancelled", 2)

    server.send_signal(signal.SIGINT)
    assert server.wait(timeout=20) == 0
    time.sleep(0.2)
    with pytest.raises(OSError):
        http.call("GET", "/tasks")
