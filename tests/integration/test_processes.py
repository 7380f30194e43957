"""The real commands as a user runs them: init, token create, serve; then plain HTTP."""

import signal
import time

import pytest

from tests.conftest import wait_for
from tests.live import served  # noqa: F401  (fixture)


def test_serve_runs_web_and_worker_and_ctrl_c_stops_both(served):  # noqa: F811
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


def test_serve_killed_with_sigkill_takes_its_children_down(served):  # noqa: F811
    http, server = served
    server.send_signal(signal.SIGKILL)
    server.wait()

    def web_is_gone():
        try:
            http.call("GET", "/tasks")
        except OSError:
            return True
        return False

    wait_for(web_is_gone, 20)
