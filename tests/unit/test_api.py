"""The JSON API contract (README, "JSON API"): paths, fields, status codes and errors.

The `api` fixture checks every success against the route's declared response
schema and every error against `{"detail": ...}` and its documented codes.
"""

import json
import re

import pytest

from app.extensions import db
from app.models import Task
from app.services import lease

DEMO = {"type": "demo", "params": {"stages": 2, "seconds": 0}}


def create(api_as, **body):
    response = api_as.post("/tasks", json={**DEMO, **body})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def finish_by_hand(app, task_id, fail=False):
    """Run the task's due stages the way the worker would (no consumer in these tests)."""
    with app.app_context():
        while True:
            t = db.session.get(Task, task_id, populate_existing=True)
            if t.state not in ("queued", "running"):
                return
            run = lease.start_stage(t.id, t.stage_index, t.dispatch_seq)
            if fail:
                lease.fail_stage(run, "stage_error", "boom")
            else:
                lease.finish_stage(run, {"n": t.stage_index})


def test_create_returns_201_with_the_task_object(api):
    body = create(api("alice"), priority=3)
    assert body["state"] == "queued" and body["owner"] == "alice" and body["priority"] == 3
    assert (body["stage"], body["stage_index"], body["stage_count"]) == ("step 1", 0, 2)
    assert body["params"] == {"stages": 2, "seconds": 0, "fail_at": None, "message": ""}


def test_create_accepts_form_fields_with_params_as_text(api):
    response = api("alice").post(
        "/tasks",
        data={"type": "demo", "priority": "1", "params.stages": "5", "params.message": "嗨"},
    )
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["priority"] == 1 and body["params"]["stages"] == 5
    assert body["params"]["message"] == "嗨"


def test_chinese_round_trips_byte_exact(api):
    message = "转写完成：说话人二号，纠正「错别字」🙂"
    body = create(api("alice"), params={"stages": 1, "seconds": 0, "message": message})
    response = api("alice").get(f"/tasks/{body['id']}")
    assert message.encode("utf-8") in response.data  # raw UTF-8, not \u escapes
    assert response.get_json()["params"]["message"] == message
    found = api("alice").get("/tasks?q=说话人").get_json()["items"]
    assert [t["id"] for t in found] == [body["id"]]


def test_detail_has_stages_and_events(api):
    body = create(api("alice"))
    detail = api("alice").get(f"/tasks/{body['id']}").get_json()
    assert [s["name"] for s in detail["stages"]] == ["step 1", "step 2"]
    assert detail["events"][0]["action"] == "submitted" and detail["events"][0]["actor"] == "alice"


def test_list_filters_searches_and_pages_newest_first(api):
    alice = api("alice")
    ids = [create(alice)["id"] for _ in range(5)]
    cancelled = ids[1]
    alice.post(f"/tasks/{cancelled}/cancel", json={})
    page = alice.get("/tasks?limit=2").get_json()
    assert [t["id"] for t in page["items"]] == ids[:-3:-1]
    seen = [t["id"] for t in page["items"]]
    while page["next_cursor"]:
        page = alice.get(f"/tasks?limit=2&cursor={page['next_cursor']}").get_json()
        seen += [t["id"] for t in page["items"]]
    assert seen == ids[::-1]
    assert [t["id"] for t in alice.get("/tasks?status=cancelled").get_json()["items"]] == [
        cancelled
    ]
    assert len(alice.get("/tasks?status=queued,cancelled").get_json()["items"]) == 5
    assert alice.get("/tasks?type=other").get_json()["items"] == []
    assert [t["id"] for t in alice.get(f"/tasks?q={ids[3][:8]}").get_json()["items"]] == [ids[3]]


def test_list_shows_users_only_their_tasks_and_admins_all(api):
    create(api("alice"))
    create(api("bob"))
    assert {t["owner"] for t in api("alice").get("/tasks").get_json()["items"]} == {"alice"}
    assert {t["owner"] for t in api("root").get("/tasks").get_json()["items"]} == {"alice", "bob"}


def test_list_limit_is_capped(api, app):
    alice = api("alice")
    for _ in range(3):
        create(alice)
    assert len(alice.get("/tasks?limit=100000").get_json()["items"]) == 3


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ("status=bogus", "status: Unknown status bogus"),
        ("limit=0", "limit: Input should be greater than or equal to 1"),
        ("limit=ten", "limit: Input should be a valid integer"),
        ("cursor=!!!", "Invalid cursor"),
    ],
)
def test_list_refuses_bad_queries(api, query, detail):
    response = api("alice").get(f"/tasks?{query}")
    assert response.status_code == 400 and response.get_json()["detail"].startswith(detail)


def test_cancel_retry_and_priority_answers(api, app):
    alice = api("alice")
    queued = create(alice)
    moved = alice.post(f"/tasks/{queued['id']}/priority", json={"priority": 0}).get_json()
    assert moved == {
        "success": True,
        "message": "Priority set to 0",
        "task_id": queued["id"],
        "priority": 0,
    }
    answer = alice.post(f"/tasks/{queued['id']}/cancel", json={"reason": "不要了"}).get_json()
    assert answer["success"] is True and answer["task_id"] == queued["id"]
    assert (answer["previous_state"], answer["state"]) == ("queued", "cancelled")
    events = alice.get(f"/tasks/{queued['id']}").get_json()["events"]
    assert events[-1]["reason"] == "不要了" and events[-1]["to_state"] == "cancelled"
    retried = alice.post(f"/tasks/{queued['id']}/retry", json={"from_scratch": True}).get_json()
    assert retried["success"] is True and retried["task_id"] == queued["id"]
    assert alice.get(f"/tasks/{retried['new_task_id']}").get_json()["retry_of"] == queued["id"]


def test_a_cancel_with_no_body_at_all_is_fine(api):
    body = create(api("alice"))
    response = api("alice").post(f"/tasks/{body['id']}/cancel")
    assert response.status_code == 200 and response.get_json()["state"] == "cancelled"


def test_state_errors_are_400_with_the_contract_detail(api, app):
    alice = api("alice")
    body = create(alice)
    finish_by_hand(app, body["id"])
    response = alice.post(f"/tasks/{body['id']}/cancel", json={})
    assert response.status_code == 400
    assert response.get_json() == {"detail": "Task in state 'succeeded' cannot be cancelled"}
    response = alice.post(f"/tasks/{body['id']}/retry", json={})
    assert response.status_code == 400 and "cannot be retried" in response.get_json()["detail"]
    response = alice.post(f"/tasks/{body['id']}/priority", json={"priority": 1})
    assert response.status_code == 400 and "only be changed while" in response.get_json()["detail"]


def test_permissions_401_403_404(api, client, tokens):
    body = create(api("alice"))
    for method, path in [
        ("GET", f"/tasks/{body['id']}"),
        ("POST", f"/tasks/{body['id']}/cancel"),
        ("POST", f"/tasks/{body['id']}/retry"),
        ("POST", f"/tasks/{body['id']}/priority"),
    ]:
        kwargs = {"json": {"priority": 1}} if path.endswith("priority") else {"json": {}}
        kwargs = kwargs if method == "POST" else {}
        response = api("bob").request(method, path, **kwargs)
        assert response.status_code == 403
        assert response.get_json() == {"detail": "You don't have permission to access this task"}
        response = api("bob").request(method, path.replace(body["id"], "f" * 32), **kwargs)
        assert response.status_code == 404 and response.get_json() == {"detail": "Task not found"}
        response = api(None).request(method, path, **kwargs)
        assert (
            response.status_code == 401
            and "Authentication required" in response.get_json()["detail"]
        )
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    response = client.get("/api/v1/tasks", headers={"Authorization": "Bearer tdk_wrong"})
    assert response.status_code == 401
    assert response.get_json() == {"detail": "Invalid or revoked API token"}
    assert api("root").get(f"/tasks/{body['id']}").status_code == 200


@pytest.mark.parametrize(
    ("kwargs", "status", "detail"),
    [
        ({"data": "{not json", "content_type": "application/json"}, 400, "Malformed JSON body"),
        ({"json": ["demo"]}, 400, "JSON body must be an object"),
        ({"data": "type=demo", "content_type": "text/plain"}, 415, "Unsupported media type"),
        ({"json": {"params": {}}}, 400, "type: Field required"),
        ({"json": {**DEMO, "colour": "red", "size": 1}}, 400, "Unknown field(s): colour, size"),
        ({"json": {**DEMO, "priority": 12}}, 400, "priority must be an integer from 0"),
        ({"json": {**DEMO, "priority": "high"}}, 400, "priority must be an integer from 0"),
        ({"json": {**DEMO, "priority": None}}, 400, "priority must be an integer from 0"),
        ({"json": {**DEMO, "params": "x"}}, 400, "params: Input should be a valid dictionary"),
        ({"json": {"type": "nope"}}, 422, "Unknown task type 'nope'"),
        ({"json": {"type": "demo", "params": {"stages": 21}}}, 422, "stages: 21 is greater"),
        ({"json": {"type": "demo", "params": {"fail_at": 9, "stages": 2}}}, 422, "fail_at: 9"),
        ({"json": {"type": "demo", "params": {"x": 1}}}, 422, "'x' was unexpected"),
    ],
)
def test_bad_bodies_get_a_clear_4xx_and_store_nothing(api, app, kwargs, status, detail):
    response = api("alice").post("/tasks", **kwargs)
    assert response.status_code == status
    assert detail in response.get_json()["detail"]
    with app.app_context():
        assert db.session.query(Task).count() == 0


def test_a_body_over_one_mebibyte_is_413(api):
    huge = {**DEMO, "params": {"message": "x" * (1024 * 1024 + 1)}}
    response = api("alice").post("/tasks", data=json.dumps(huge), content_type="application/json")
    assert response.status_code == 413
    assert response.get_json() == {"detail": "Request body too large (limit 1 MiB)"}


def test_unknown_routes_and_methods_answer_json(client):
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404 and response.get_json() == {"detail": "Not found"}
    response = client.delete("/api/v1/tasks")
    assert response.status_code == 405 and response.get_json() == {"detail": "Method not allowed"}


def test_bulk_cancel_counts(api, app):
    alice, bob = api("alice"), api("bob")
    queued = [create(alice)["id"] for _ in range(2)]
    running = create(alice)["id"]
    with app.app_context():
        t = db.session.get(Task, running)
        lease.start_stage(t.id, 0, 1)
    create(bob)
    answer = alice.post("/tasks/cancel-all", json={}).get_json()
    assert answer["result"] == {"cancelled": 2, "failed": 1, "total": 3}
    assert answer["message"] == "Cancelled 2 of 3 task(s)"
    answer = alice.post("/tasks/cancel-all", json={"cancel_running": True}).get_json()
    assert answer["result"] == {"cancelled": 1, "failed": 0, "total": 1}
    assert alice.get(f"/tasks/{running}").get_json()["state"] == "cancelling"
    assert all(alice.get(f"/tasks/{i}").get_json()["state"] == "cancelled" for i in queued)
    # bob's task was not touched by alice's cancel-all; bob's own cancel-by-type finds it.
    answer = bob.post("/tasks/cancel-by-type", json={"task_type": "demo"}).get_json()
    assert answer["result"] == {"cancelled": 1, "failed": 0, "total": 1, "task_type": "demo"}
    response = bob.post("/tasks/cancel-by-type", json={"task_type": "nope"})
    assert response.status_code == 422


def test_bulk_retry_counts_and_reasons(api, app):
    alice = api("alice")
    failed = create(alice)["id"]
    finish_by_hand(app, failed, fail=True)
    queued = create(alice)["id"]
    bobs = create(api("bob"))["id"]
    answer = alice.post("/tasks/retry", json={"task_ids": [failed, queued, bobs, failed]})
    result = answer.get_json()["result"]
    assert (result["retried"], result["skipped"], result["total"]) == (1, 2, 3)
    assert len(result["new_task_ids"]) == 1
    assert result["errors"] == {
        queued: "Task in state 'queued' cannot be retried; "
        "only failed, cancelled or partly succeeded tasks can",
        bobs: "You don't have permission to access this task",
    }
    response = alice.post("/tasks/retry", json={"task_ids": []})
    assert response.status_code == 400 and "task_ids" in response.get_json()["detail"]


def test_stats_count_by_state_and_type(api, app):
    alice = api("alice")
    done = create(alice)["id"]
    finish_by_hand(app, done)
    create(alice)
    create(api("bob"))
    stats = alice.get("/tasks/stats").get_json()
    assert stats["total"] == 2
    assert stats["by_state"]["succeeded"] == 1 and stats["by_state"]["queued"] == 1
    assert stats["by_type"]["demo"]["total"] == 2
    assert stats["last_hour"]["finished"] == 1 and stats["last_hour"]["succeeded"] == 1
    assert api("root").get("/tasks/stats").get_json()["total"] == 3


def test_task_types_publish_stages_and_params_schema(api):
    items = {t["name"]: t for t in api("alice").get("/task-types").get_json()["items"]}
    assert sorted(items) == ["demo", "document", "media_index", "remote_job", "transcribe"]
    demo = items["demo"]
    assert demo["stages"] == ["step 1", "step 2", "step 3", "step 4"]
    assert demo["params_schema"]["properties"]["stages"]["maximum"] == 20
    media = items["media_index"]
    assert media["stages"] == ["scan", "preprocess", "thumbnails", "index"]
    assert media["params_schema"]["properties"]["folder"]["format"] == "taskdeck-folder"
    document = items["document"]
    assert document["stages"] == ["outline", "content", "cover", "render"]
    assert document["params_schema"]["properties"]["sections"]["maximum"] == 30


def test_openapi_document_describes_every_api_route(client, app):
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    documented = {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}
    routed = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api."):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            routed |= {(m, path) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert documented == routed
    summaries = [op["summary"] for ops in spec["paths"].values() for op in ops.values()]
    assert all(summary and not summary.endswith(">") for summary in summaries)  # docstrings
    cancel = spec["paths"]["/api/v1/tasks/{task_id}/cancel"]["post"]
    assert set(cancel["responses"]) >= {"200", "400", "401", "403", "404"}


def test_session_login_works_for_the_api_and_posts_need_the_csrf_token(client, api):
    body = create(api("alice"))
    page = client.get("/login")
    token = page.data.decode().split('name="csrf_token" value="')[1].split('"')[0]
    response = client.post(
        "/login", data={"username": "alice", "password": "alice-password", "csrf_token": token}
    )
    assert response.status_code == 302
    assert client.get(f"/api/v1/tasks/{body['id']}").status_code == 200
    refused = client.post(f"/api/v1/tasks/{body['id']}/cancel", json={})
    assert refused.status_code == 400 and "CSRF" in refused.get_json()["detail"]
    accepted = client.post(
        f"/api/v1/tasks/{body['id']}/cancel", json={}, headers={"X-CSRFToken": token}
    )
    assert accepted.status_code == 200


def test_login_refuses_a_wrong_password_with_a_message(client):
    page = client.get("/login")
    token = page.data.decode().split('name="csrf_token" value="')[1].split('"')[0]
    response = client.post(
        "/login", data={"username": "alice", "password": "nope", "csrf_token": token}
    )
    assert response.status_code == 401 and b"Invalid username or password" in response.data
    assert client.get("/").status_code == 302
