"""The real commands as a user runs them: init, token create, serve; then plain HTTP."""

import signal
import time
import urllib.parse
from http.client import HTTPConnection

import pytest
from sqlalchemy import create_engine, text

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

    polls_on_one_connection(http)

    server.send_signal(signal.SIGINT)
    assert server.wait(timeout=20) == 0
    time.sleep(0.2)
    with pytest.raises(OSError):
        http.call("GET", "/tasks")


def test_ctrl_c_on_serve_lets_the_running_stage_finish(served):  # noqa: F811
    """serve hands Ctrl-C to its worker as SIGTERM (graceful), not SIGINT (hand back now)."""
    http, server = served
    status, task = http.call(
        "POST", "/tasks", {"type": "demo", "params": {"stages": 2, "seconds": 1.5}}
    )
    wait_for(lambda: http.call("GET", f"/tasks/{task['id']}")[1]["progress"] > 0.05, 20)
    server.send_signal(signal.SIGINT)
    assert server.wait(timeout=20) == 0
    engine = create_engine(http.database_url)
    with engine.connect() as conn:
        stages = conn.execute(
            text("SELECT name, state FROM task_stages WHERE task_id = :id ORDER BY position"),
            {"id": task["id"]},
        ).all()
        requeued = conn.execute(
            text(
                "SELECT count(*) FROM task_events WHERE task_id = :id AND action = 'stage_requeued'"
            ),
            {"id": task["id"]},
        ).scalar()
    engine.dispose()
    # The first stage finished within the grace period; the second waits in the queue.
    assert [tuple(row) for row in stages] == [("step 1", "succeeded"), ("step 2", "pending")]
    assert requeued == 0


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


def polls_on_one_connection(api):
    """A page polling every 2 s keeps its connection: gunicorn must not close it in between."""
    address = urllib.parse.urlsplit(api.base)
    connection = HTTPConnection(address.hostname, address.port, timeout=10)
    headers = {"Authorization": f"Bearer {api.token}"}
    for pause in (0, 2.5):
        time.sleep(pause)
        connection.request("GET", "/api/v1/tasks", headers=headers)
        response = connection.getresponse()
        response.read()
        assert response.status == 200
        assert response.getheader("Connection", "").lower() != "close"
    connection.close()
