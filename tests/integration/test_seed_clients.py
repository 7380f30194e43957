"""The clients of the systems Taskdeck's API was modelled on work unchanged, against a real server.

Seed 000 (a meeting-audio pipeline) cancels with `fetch(url, {method: "POST",
headers: {Authorization, "Content-Type": "application/json"}})`: no body.
Seed 001 (msearch) talks form-encoded curl and filters on `status=pending`.
"""

import http.client
import json
from urllib.parse import urlsplit

from tests.conftest import wait_for
from tests.live import served  # noqa: F401  (fixture)


def raw(http_api, method: str, path: str, headers: dict, body: bytes | None = None):
    """One request exactly as given (http.client adds nothing but Host and Content-Length)."""
    where = urlsplit(http_api.base)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=10)
    try:
        connection.request(method, "/api/v1" + path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read().decode("utf-8"))
    finally:
        connection.close()


def test_seed_000_fetch_cancel_with_a_json_content_type_and_no_body(served):  # noqa: F811
    api, _ = served
    status, task = api.call("POST", "/tasks", {"type": "demo", "params": {"seconds": 30}})
    assert status == 201
    headers = {"Authorization": f"Bearer {api.token}", "Content-Type": "application/json"}
    status, answer = raw(api, "POST", f"/tasks/{task['id']}/cancel", headers)
    assert status == 200, answer
    assert answer["success"] is True and answer["task_id"] == task["id"]
    assert answer["previous_state"] in ("queued", "running")
    assert answer["state"] in ("cancelled", "cancelling")


def test_seed_001_curl_forms_and_the_pending_filter(served):  # noqa: F811
    api, _ = served
    form = {"Authorization": f"Bearer {api.token}"}
    form["Content-Type"] = "application/x-www-form-urlencoded"  # what `curl -d` sends
    blocker = api.call("POST", "/tasks", {"type": "demo", "params": {"seconds": 30}})[1]
    # The one worker thread is busy with it, so the next task waits in the queue.
    wait_for(lambda: api.call("GET", f"/tasks/{blocker['id']}")[1]["state"] == "running", 20)
    waiting = api.call("POST", "/tasks", {"type": "demo", "params": {"seconds": 30}})[1]
    status, pending = raw(
        api, "GET", "/tasks?status=pending", {"Authorization": form["Authorization"]}
    )
    assert status == 200 and waiting["id"] in {t["id"] for t in pending["items"]}
    assert {t["state"] for t in pending["items"]} == {"queued"}
    status, moved = raw(api, "POST", f"/tasks/{waiting['id']}/priority", form, b"priority=0")
    assert (status, moved["priority"]) == (200, 0)
    status, by_type = raw(
        api, "POST", "/tasks/cancel-by-type", form, b"task_type=demo&cancel_running=false"
    )
    assert status == 200 and by_type["result"]["task_type"] == "demo"
    status, everything = raw(api, "POST", "/tasks/cancel-all", form, b"cancel_running=true")
    assert status == 200 and everything["result"]["cancelled"] >= 1
    states = {api.call("GET", f"/tasks/{t['id']}")[1]["state"] for t in (blocker, waiting)}
    assert states <= {"cancelled", "cancelling"}
