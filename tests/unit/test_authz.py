"""Authorisation matrix: every HTML and JSON route × anonymous, owner, another user, admin.

Each case gets fresh data (alice's queued task, or a cancelled one for retry
routes, and alice's token) so no case depends on another's side effects.
"""

import re

import pytest

from app import create_app
from app.extensions import db
from app.services import accounts, artifacts, cancelling, commands
from tasks.pipelines import media
from tests.conftest import PASSWORDS, csrf_from

ROLES = ("anonymous", "owner", "other", "admin")
USER = {"owner": "alice", "other": "bob", "admin": "root"}

# Bodies that make each POST succeed for someone allowed to make it.
FORMS = {
    "/tasks/new": {"type": "demo", "params.stages": "1", "params.seconds": "0", "priority": "6"},
    "/tasks/<task_id>/priority": {"priority": "3"},
    "/tasks/cancel-by-type": {"task_type": "demo"},
    "/tasks/bulk": {"task_ids": "TASK", "action": "cancel"},
    "/tokens": {"name": "matrix"},
    "/language": {"lang": "en"},
    "/login": {"username": "alice", "password": PASSWORDS["alice"]},
}
ARTIFACT = "out.html"
QUERIES = {"/api/v1/tasks/<task_id>/search": "?q=产物"}
JSON = {
    "/api/v1/tasks": {"type": "demo", "params": {"stages": 1, "seconds": 0}},
    "/api/v1/tasks/<task_id>/priority": {"priority": 3},
    "/api/v1/tasks/cancel-by-type": {"task_type": "demo"},
    "/api/v1/tasks/retry": {"task_ids": ["TASK"]},
    "/api/v1/tokens": {"name": "matrix"},
}
PUBLIC = {
    "/login",
    "/language",
    "/api/v1/openapi.json",
    "/static/<path:filename>",
    "/logout",
    "/favicon.ico",
}


def routes(app):
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield method, rule.rule.replace("<task_id:task_id>", "<task_id>")


def route_ids():
    app = create_app({"TESTING": True})
    return list(routes(app))


def setup_case(app, rule):
    with app.app_context():
        alice = accounts.find_user("alice")
        if rule.endswith("/search"):  # a media_index task with its index, as it keeps one
            task = commands.submit(alice, "media_index", {"folder": "."}, 6, actor="alice")
        else:
            task = commands.submit(alice, "demo", {"stages": 1, "seconds": 0}, 6, actor="alice")
        if "retry" in rule:
            cancelling.request_cancel(alice, task.id)
        if rule.endswith("/search"):
            staged = artifacts.staging_dir(task.id, 1) / "index.tmp"
            media.build_index(staged, [("notes/产物.md", "text", 6, "0" * 64, None, None, "产物")])
            artifacts.store(task.id, "index", media.INDEX, staged)
            db.session.commit()
        if "<name>" in rule:  # an artifact, kept as the worker keeps one (HTML: a preview has one)
            staged = artifacts.staging_dir(task.id, 1) / "out.tmp"
            staged.write_text("<p>产物</p>", encoding="utf-8")
            artifacts.store(task.id, "step 1", ARTIFACT, staged)
            db.session.commit()
        token, _ = accounts.create_token(alice, "matrix")
        return task.id, token.id


def concrete(rule, task_id, token_id):
    path = rule.replace("<task_id>", task_id).replace("<int:token_id>", str(token_id))
    path = path.replace("<path:filename>", "css/taskdeck.css").replace("<name>", ARTIFACT)
    return path + QUERIES.get(rule, "")


def call(app, tokens, role, method, rule, task_id, token_id):
    client = app.test_client()
    path = concrete(rule, task_id, token_id)
    api = rule.startswith("/api/")
    headers = {}
    if api and role != "anonymous":
        headers["Authorization"] = f"Bearer {tokens[USER[role]]}"
    csrf = csrf_from(client.get("/login").data)
    if not api and role != "anonymous":
        name = USER[role]
        client.post(
            "/login", data={"username": name, "password": PASSWORDS[name], "csrf_token": csrf}
        )
    if method == "GET":
        return client.get(path, headers=headers), client
    if api:
        body = {k: [task_id] if v == ["TASK"] else v for k, v in JSON.get(rule, {}).items()}
        return client.post(path, json=body, headers=headers), client
    form = {k: task_id if v == "TASK" else v for k, v in FORMS.get(rule, {}).items()}
    return client.post(path, data={**form, "csrf_token": csrf}), client


def flashed_error(client, response) -> str:
    page = client.get(response.location).data.decode()
    found = re.search(r'class="flash flash-error"[^>]*>([^<]+)<', page)
    return found.group(1) if found else ""


@pytest.mark.parametrize(("method", "rule"), route_ids())
def test_authorisation_matrix(app, tokens, method, rule):
    api = rule.startswith("/api/")
    for role in ROLES:
        task_id, token_id = setup_case(app, rule)
        response, client = call(app, tokens, role, method, rule, task_id, token_id)
        response.close()  # static files are streamed
        status, where = response.status_code, f"{role} {method} {rule}"
        if rule in PUBLIC:
            assert status < 400, where
            continue
        if role == "anonymous":
            if api:
                assert status == 401, where
            else:
                assert status == 302 and "/login" in response.location, where
            continue
        denied = (role == "other" and "<task_id>" in rule) or (
            role != "owner" and "<int:token_id>" in rule
        )
        expected = 403 if "<task_id>" in rule else 404
        if denied and api:
            assert status == expected, where
        elif denied and method == "GET":
            assert status == expected and b"permission" in response.data, where
        elif denied:  # an HTML action: back where it came from, with the refusal shown
            assert status == 302, where
            assert re.search("permission|not found", flashed_error(client, response)), where
        else:
            assert status in (200, 201, 286, 302), f"{where}: {status}"
            if status == 302 and not api:
                assert not flashed_error(client, response), where
