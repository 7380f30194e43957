"""Input a hostile or careless client sends: a clear 4xx naming the problem, nothing half-written.

NaN and infinities, priorities that only look like integers, JSON nested
50,000 deep, lone surrogates, crafted cursors, and a queue that is down.
Each runs on SQLite and on PostgreSQL + Redis (`make test-servers`).
"""

import base64
import io
import json

import pytest
from click.testing import CliRunner
from flask.cli import ScriptInfo
from sqlalchemy import func, select

from app import create_app
from app.cli import main
from app.extensions import db
from app.models import Task, TaskEvent
from app.security import ChunkedBodyLimit
from app.services import accounts, dispatch, recovery
from tests.conftest import app_settings
from tests.drive import submit

DEMO = {"type": "demo", "params": {"stages": 1, "seconds": 0}}


def stored(app) -> tuple[int, int]:
    with app.app_context():
        return (
            db.session.scalar(select(func.count()).select_from(Task)),
            db.session.scalar(select(func.count()).select_from(TaskEvent)),
        )


def raw_json(api_as, path, text: str):
    """POST `text` as it is (Python's json would refuse to write NaN or a lone surrogate)."""
    return api_as.post(path, data=text.encode(), content_type="application/json")


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_params_are_a_422_naming_the_field_in_json_and_forms(api, app, token):
    alice = api("alice")
    body = '{"type": "demo", "params": {"seconds": ' + token + "}}"
    response = raw_json(alice, "/tasks", body)
    assert response.status_code == 422
    assert response.get_json()["detail"] == "Invalid params: seconds: must be a finite number"
    form = alice.post("/tasks", data={"type": "demo", "params.seconds": token.lower()})
    assert (
        form.status_code == 422 and "seconds: must be a finite number" in form.get_json()["detail"]
    )
    assert stored(app) == (0, 0)


def test_non_finite_params_are_refused_on_the_page_and_the_command_line(browser, app, client):
    browser.login("alice")
    page = browser.post("/tasks/new", {"type": "demo", "params.seconds": "nan", "priority": "6"})
    assert page.status_code == 422 and "must be a finite number" in page.data.decode()
    result = CliRunner().invoke(
        main,
        ["submit", "demo", "-p", "seconds=inf", "--user", "alice"],
        obj=ScriptInfo(create_app=lambda: app),
    )
    assert result.exit_code == 1 and "seconds: must be a finite number" in result.output
    assert stored(app) == (0, 0)


@pytest.mark.parametrize("priority", [5.5, 5.0, "1_0", "٥", " 7 ", "+7", True, "NaN", -1, 12])
def test_only_an_integer_or_ascii_digits_is_a_priority(api, app, priority):
    alice = api("alice")
    refused = alice.post("/tasks", json={**DEMO, "priority": priority})
    assert refused.status_code == 400
    assert refused.get_json()["detail"].startswith("priority must be an integer from 0")
    as_form = alice.post("/tasks", data={"type": "demo", "priority": str(priority)})
    assert as_form.status_code == 400
    assert stored(app) == (0, 0)
    task_id = alice.post("/tasks", json={**DEMO, "priority": "7"}).get_json()["id"]
    change = alice.post(f"/tasks/{task_id}/priority", json={"priority": priority})
    assert change.status_code == 400
    assert alice.get(f"/tasks/{task_id}").get_json()["priority"] == 7


def test_text_digits_are_a_priority_in_forms_and_json(api):
    alice = api("alice")
    assert alice.post("/tasks", data={"type": "demo", "priority": "3"}).get_json()["priority"] == 3
    assert alice.post("/tasks", json={**DEMO, "priority": "0"}).get_json()["priority"] == 0


@pytest.mark.parametrize("signed_in", [True, False])
@pytest.mark.parametrize(
    "path", ["/api/v1/tasks", f"/api/v1/tasks/{'a' * 32}/cancel", "/login", "/language"]
)
def test_json_nested_fifty_thousand_deep_is_a_400_everywhere(client, tokens, signed_in, path):
    headers = {"Authorization": f"Bearer {tokens['alice']}"} if signed_in else {}
    deep = "[" * 50_000
    response = client.post(path, data=deep, content_type="application/json", headers=headers)
    assert response.status_code < 500  # the page ignores the body; the API names it:
    if path.startswith("/api/") and signed_in:
        assert response.status_code == 400
        assert response.get_json()["detail"].startswith("Malformed JSON body")


def test_nesting_within_the_limit_still_parses_and_beyond_is_named(api, app):
    alice = api("alice")
    nested = '{"type": "demo", "params": {"message": ' + "[" * 70 + "]" * 70 + "}}"
    response = raw_json(alice, "/tasks", nested)
    assert response.status_code == 400
    assert "nested deeper than 64 levels" in response.get_json()["detail"]
    assert stored(app) == (0, 0)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/tasks", '{"type": "demo", "params": {"message": "\\udc80"}}'),
        ("/tasks", '{"type": "\\ud800"}'),
        ("/tasks/cancel-by-type", '{"task_type": "\\udfff"}'),
        ("/tokens", '{"name": "ok \\udc80"}'),
    ],
)
def test_a_lone_surrogate_anywhere_in_json_is_a_400(api, app, path, body):
    response = raw_json(api("alice"), path, body)
    assert response.status_code == 400
    assert "lone surrogate" in response.get_json()["detail"]
    assert stored(app) == (0, 0)


def test_a_lone_surrogate_in_a_cancel_reason_is_a_400_and_the_task_stays_queued(api, app):
    alice = api("alice")
    task_id = alice.post("/tasks", json=DEMO).get_json()["id"]
    response = raw_json(alice, f"/tasks/{task_id}/cancel", '{"reason": "stop \\udc80"}')
    assert response.status_code == 400 and "lone surrogate" in response.get_json()["detail"]
    assert alice.get(f"/tasks/{task_id}").get_json()["state"] == "queued"


def _cursor(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


CRAFTED = [
    "!!!",
    "A" * 5000,
    _cursor(["2026-01-01T00:00:00", "\u0000" * 3]),
    _cursor(["2026-01-01T00:00:00+05:00", "a" * 32]),
    _cursor([1, 2]),
    _cursor(["2026-01-01T00:00:00"]),
    _cursor({"a": 1}),
    _cursor([[[[["deep"]]]], "a" * 32]),
    base64.urlsafe_b64encode(b"[" * 5000).decode(),
]


@pytest.mark.parametrize("cursor", CRAFTED)
def test_a_crafted_cursor_is_a_400_on_the_page_and_the_api(api, browser, cursor):
    assert api("alice").get(f"/tasks?cursor={cursor}").status_code == 400
    browser.login("alice")
    for name in ("cursor", "newer"):
        page = browser.get(f"/tasks?{name}={cursor}")
        assert page.status_code == 400 and b"Invalid cursor" in page.data
        assert browser.get(f"/tasks/rows?{name}={cursor}").status_code == 400


def test_nul_in_a_repeated_form_field_is_refused(api, app):
    response = api("alice").post("/tasks/retry", data={"task_ids": ["0", "a\x00b"]})
    assert response.status_code == 400
    assert response.get_json() == {"detail": "Text must not contain NUL (0x00) characters"}


def test_with_the_queue_down_a_submit_is_kept_and_sent_when_the_queue_is_back(app, tmp_path):
    """Chosen: accept (201) and dispatch later. The row is the truth; the reaper re-sends."""
    down = create_app(
        {
            **app_settings(tmp_path / "down", app.config["SQLALCHEMY_DATABASE_URI"]),
            "QUEUE_URL": "redis://127.0.0.1:1/0",  # nothing listens on port 1
        }
    )
    with down.app_context():
        token = accounts.create_token(accounts.find_user("alice"), "down")[1]
    response = down.test_client().post(
        "/api/v1/tasks", json=DEMO, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 201 and response.get_json()["state"] == "queued"
    task_id = response.get_json()["id"]
    with app.app_context():  # the same database, a queue that answers
        assert dispatch.stage_queue().pending_message_ids() == set()
        done = recovery.reap(timeout=0, max_lost=3)
        assert done["redispatched"] == 1
        assert dispatch.stage_queue().pending_message_ids() == {f"{task_id}.0.2"}
    with down.app_context():
        db.engine.dispose()


def test_a_message_is_sent_only_after_its_transaction_commits(app, users):
    with app.app_context():
        queue = dispatch.stage_queue()
        task = submit(users("alice"))
        first = f"{task.id}.0.1"
        assert queue.pending_message_ids() == {first}
        dispatch.enqueue_stage(task.id, 0, 7, 6)  # first thing after a commit: no transaction yet
        assert queue.pending_message_ids() == {first}  # not before the commit
        db.session.rollback()
        db.session.commit()  # an unrelated commit later sends nothing of the rolled-back one
        assert queue.pending_message_ids() == {first}
        savepoint = db.session.begin_nested()
        dispatch.enqueue_stage(task.id, 0, 8, 6)
        savepoint.commit()  # released, but the transaction around it is still open
        assert queue.pending_message_ids() == {first}
        db.session.rollback()
        db.session.commit()
        assert queue.pending_message_ids() == {first}
        dispatch.enqueue_stage(task.id, 0, 9, 6)
        db.session.commit()
        assert queue.pending_message_ids() == {first, f"{task.id}.0.9"}


def test_a_param_field_given_twice_in_a_form_is_a_400(api, app):
    response = api("alice").post("/tasks", data={"type": "demo", "params.stages": ["2", "3"]})
    assert response.status_code == 400
    assert "give each param once: params.stages" in response.get_json()["detail"]
    assert stored(app) == (0, 0)


@pytest.mark.parametrize("path", ["/tasks", "/tokens", "/tasks/cancel-all"])
def test_a_file_part_where_no_file_is_taken_is_refused(api, app, path):
    response = api("alice").post(
        path, data={"type": "demo", "params.stages": (io.BytesIO(b"2"), "f.txt")}
    )
    if path == "/tasks":  # takes files, for the params that take one (UploadParam)
        assert response.status_code == 422
        assert response.get_json()["detail"] == "Invalid params: stages: takes no file"
    else:
        assert response.status_code == 400
        assert response.get_json()["detail"] == "This route takes no files (got params.stages)"
    assert stored(app) == (0, 0)


def test_a_params_field_beside_params_fields_in_a_form_is_refused(api, app):
    response = api("alice").post(
        "/tasks", data={"type": "demo", "params": '{"stages": 2}', "params.message": "x"}
    )
    assert response.status_code == 400
    assert "not both" in response.get_json()["detail"]
    json_named = api("alice").post("/tasks", json={"type": "demo", "params.stages": 5})
    assert json_named.status_code == 400
    assert "in JSON send a params object" in json_named.get_json()["detail"]
    assert stored(app) == (0, 0)


@pytest.mark.parametrize("text", [" 2 ", "٥", "1_0", "2.0", "0x2"])
def test_form_numbers_are_ascii_text_only(api, app, text):
    response = api("alice").post("/tasks", data={"type": "demo", "params.stages": text})
    assert response.status_code == 422
    assert "stages:" in response.get_json()["detail"]
    assert stored(app) == (0, 0)


def test_the_new_task_page_refuses_what_the_api_refuses(browser, app):
    browser.login("alice")
    twice = browser.post("/tasks/new", {"type": "demo", "params.stages": ["2", "x"]})
    assert twice.status_code == 422 and "give each param once" in twice.data.decode()
    unknown = browser.post("/tasks/new", {"type": "nope", "priority": "6"})
    assert unknown.status_code == 422 and "Unknown task type" in unknown.data.decode()
    assert stored(app) == (0, 0)


@pytest.mark.parametrize("path", ["/tasks/cancel-all", "/tasks/cancel-by-type", "/tasks/retry"])
def test_get_on_a_post_only_route_is_a_405_not_a_task_lookup(api, path):
    response = api("alice").get(path)
    assert response.status_code == 405 and response.get_json() == {"detail": "Method not allowed"}


def test_a_malformed_json_detail_says_what_the_parser_said_once(api):
    response = raw_json(api("alice"), "/tasks", "{not json")
    detail = response.get_json()["detail"]
    assert detail.startswith("Malformed JSON body: Expecting property name")
    assert "400 Bad Request" not in detail and detail.count("decode") == 0


def test_a_priority_of_five_thousand_digits_gets_the_priority_message(api):
    response = api("alice").post("/tasks", json={**DEMO, "priority": "9" * 5000})
    assert response.status_code == 400
    assert response.get_json()["detail"].startswith("priority must be an integer from 0")


def test_status_filters_take_pending_commas_and_repeats_on_the_api_and_the_page(
    api, browser, app, users
):
    alice = api("alice")
    queued = alice.post("/tasks", json=DEMO).get_json()["id"]
    done = alice.post("/tasks", json=DEMO).get_json()["id"]
    alice.post(f"/tasks/{done}/cancel")
    for query in ("status=pending", "status=queued", "status=pending,running"):
        items = alice.get(f"/tasks?{query}").get_json()["items"]
        assert [t["id"] for t in items] == [queued], query
    both = alice.get("/tasks?status=queued&status=cancelled").get_json()["items"]
    assert {t["id"] for t in both} == {queued, done}
    browser.login("alice")
    for query in ("status=pending", "status=queued,running"):
        page = browser.get(f"/tasks?{query}").data.decode()
        assert f'id="row-{queued}"' in page and f'id="row-{done}"' not in page, query


def test_the_openapi_document_states_bounds_bodies_and_ids(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    schemas = doc["components"]["schemas"]
    priority = schemas["PriorityRequest"]["properties"]["priority"]
    assert (priority["minimum"], priority["maximum"]) == (0, 11) and "ge" not in priority
    form = doc["paths"]["/api/v1/tasks"]["post"]["requestBody"]["content"]
    form_schema = form["application/x-www-form-urlencoded"]["schema"]["$ref"].rsplit("/")[-1]
    assert "params" not in schemas[form_schema]["properties"]
    assert list(schemas[form_schema]["patternProperties"]) == [r"^params\.\w+$"]
    revoke = doc["paths"]["/api/v1/tokens/{token_id}/revoke"]["post"]
    assert {"400", "404", "413", "415"} <= set(revoke["responses"])
    (task_id,) = doc["paths"]["/api/v1/tasks/{task_id}"]["get"]["parameters"]
    assert task_id["schema"] == {"type": "string", "pattern": "^[0-9a-f]{32}$"}


def test_a_multipart_part_whose_name_does_not_parse_is_refused_not_a_500(api, app):
    body = b'--B\r\nContent-Disposition: form-data; name="\n"\r\n\r\nnull\r\n--B--\r\n'
    response = api("alice").post(
        "/tasks", data=body, content_type="multipart/form-data; boundary=B"
    )
    assert response.status_code == 400 and stored(app) == (0, 0)


class Trickle(io.BytesIO):
    """A request stream that hands its body over 1,000 bytes at a time, as WSGI allows."""

    def read(self, size=-1):
        return super().read(1000 if size < 0 else min(size, 1000))


def test_the_chunked_body_limit_reads_past_short_reads(app):
    limit = ChunkedBodyLimit(app.wsgi_app, lambda environ: 5000)
    body, size = limit._read(Trickle(b"x" * 4999), 5000)
    assert size == 4999
    body.close()
    body, size = limit._read(Trickle(b"x" * 9000), 5000)
    assert size == 5001 and len(body.read()) == 5001  # one past: too large
    body.close()
