"""API tokens: the JSON routes and the HTML page, over the same service."""

import re

from app.extensions import db
from app.models import ApiToken


def test_create_list_and_revoke_through_the_api(api, client):
    alice = api("alice")
    response = alice.post("/tokens", json={"name": "nightly 导入"})
    assert response.status_code == 201
    created = response.get_json()
    assert created["token"].startswith("tdk_") and created["name"] == "nightly 导入"
    assert created["token"].startswith(created["prefix"])

    use = client.get("/api/v1/tasks", headers={"Authorization": f"Bearer {created['token']}"})
    assert use.status_code == 200
    listed = alice.get("/tokens").get_json()["items"]
    mine = next(t for t in listed if t["id"] == created["id"])
    assert "token" not in mine and mine["last_used_at"] is not None

    revoked = alice.post(f"/tokens/{created['id']}/revoke")
    assert revoked.status_code == 200 and revoked.get_json()["token"]["revoked_at"]
    use = client.get("/api/v1/tasks", headers={"Authorization": f"Bearer {created['token']}"})
    assert use.status_code == 401
    assert use.get_json() == {"detail": "Invalid or revoked API token"}
    assert alice.post(f"/tokens/{created['id']}/revoke").status_code == 200  # harmless twice
    listed = alice.get("/tokens").get_json()["items"]
    assert listed[-1]["id"] == created["id"]  # revoked tokens sort last


def test_tokens_are_private_to_their_owner(api):
    created = api("alice").post("/tokens", json={"name": "a"}).get_json()
    assert created["id"] not in [t["id"] for t in api("bob").get("/tokens").get_json()["items"]]
    response = api("bob").post(f"/tokens/{created['id']}/revoke")
    assert response.status_code == 404 and response.get_json() == {"detail": "Token not found"}
    response = api("root").post(f"/tokens/{created['id']}/revoke")
    assert response.status_code == 404
    assert api(None).get("/tokens").status_code == 401


def test_bad_token_names_are_refused_and_nothing_is_stored(api, app):
    with app.app_context():
        before = db.session.query(ApiToken).count()
    response = api("alice").post("/tokens", json={"name": "x" * 101})
    assert response.status_code == 400 and "name" in response.get_json()["detail"]
    response = api("alice").post("/tokens", json={"name": "x", "scope": "all"})
    assert response.status_code == 400 and "scope" in response.get_json()["detail"]
    with app.app_context():
        assert db.session.query(ApiToken).count() == before


def test_only_the_hash_of_a_token_is_stored(api, app):
    plain = api("alice").post("/tokens", json={}).get_json()["token"]
    with app.app_context():
        stored = [(t.token_hash, t.prefix) for t in db.session.query(ApiToken)]
    assert all(plain not in digest and len(prefix) < 12 for digest, prefix in stored)


def test_tokens_page_shows_a_new_secret_once_then_revokes(browser, client):
    browser.login("alice")
    page = browser.post("/tokens", data={"name": "<b>ci</b>"})
    assert page.status_code == 201
    html = page.data.decode()
    secret = re.search(r'id="new-token" class="secret" readonly value="(tdk_[^"]+)"', html)
    assert secret and "shown only once" in html
    assert "&lt;b&gt;ci&lt;/b&gt;" in html and "<b>ci</b>" not in html
    assert (
        client.get("/api/v1/tasks", headers={"Authorization": f"Bearer {secret[1]}"}).status_code
        == 200
    )

    again = browser.get("/tokens").data.decode()
    assert secret[1] not in again and secret[1][:10] in again and "ago" in again
    token_id = re.search(r'action="/tokens/(\d+)/revoke"', again)[1]

    response = browser.post(f"/tokens/{token_id}/revoke", follow_redirects=True)
    html = response.data.decode()
    assert response.request.path == "/tokens" and "revoked</p>" in html
    assert (
        client.get("/api/v1/tasks", headers={"Authorization": f"Bearer {secret[1]}"}).status_code
        == 401
    )


def test_tokens_page_errors_are_shown_in_place(browser):
    browser.login("alice")
    page = browser.post("/tokens", data={"name": "n" * 101})
    assert page.status_code == 400 and "at most 100 characters" in page.data.decode()
    response = browser.post("/tokens/999999/revoke", follow_redirects=True)
    assert response.request.path == "/tokens" and "Token not found" in response.data.decode()


def test_tokens_page_needs_login_and_csrf(client, browser):
    response = client.get("/tokens")
    assert response.status_code == 302 and "/login" in response.location
    browser.login("alice")
    assert client.post("/tokens", data={"name": "x"}).status_code == 400


def test_a_bearer_token_is_never_backed_up_by_the_session_cookie(browser, client):
    browser.login("alice")
    assert client.get("/api/v1/tasks").status_code == 200  # the cookie alone works
    response = client.get("/api/v1/tasks", headers={"Authorization": "Bearer tdk_revoked"})
    assert response.status_code == 401
    assert response.get_json() == {"detail": "Invalid or revoked API token"}


def test_a_token_id_beyond_any_database_integer_is_just_not_found(api):
    for huge in (2**31, 2**63, 2**80):
        response = api("alice").post(f"/tokens/{huge}/revoke")
        assert response.status_code == 404
    assert response.status_code == 404 and response.get_json() == {"detail": "Token not found"}
