"""Security headers, no inline script, login rate limit, cookie flags, no leaks in errors."""

import re

import pytest

from app import create_app
from app.extensions import db
from app.services import accounts
from tests.conftest import PASSWORDS, csrf_from


def test_every_response_carries_the_security_headers(client, browser):
    for response in (client.get("/login"), client.get("/api/v1/tasks")):
        headers = response.headers
        csp = headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "same-origin"


@pytest.mark.parametrize("path", ["/login", "/", "/tasks", "/tasks/new", "/tokens"])
def test_pages_have_no_inline_script_style_or_handlers(browser, client, path):
    if path != "/login":
        browser.login("alice")
    html = client.get(path).data.decode()
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
    assert " style=" not in html and "<style" not in html
    assert re.findall(r"\son[a-z]+=", html) == []
    assert '"includeIndicatorStyles": false' in html  # htmx injects no <style> either


def test_login_is_rate_limited_with_a_clear_429(app, client):
    csrf = csrf_from(client.get("/login").data)
    bad = {"username": "alice", "password": "wrong", "csrf_token": csrf}
    statuses = [client.post("/login", data=bad).status_code for _ in range(10)]
    assert statuses == [401] * 10
    refused = client.post("/login", data={**bad, "password": PASSWORDS["alice"]})
    assert refused.status_code == 429 and 0 < int(refused.headers["Retry-After"]) <= 60
    assert b"Too many attempts; wait a minute and try again" in refused.data
    assert client.get("/login").status_code == 200  # only POSTs count


def test_session_cookie_flags_and_secure_behind_https(app, tmp_path):
    def login_cookie(application):
        client = application.test_client()
        csrf = csrf_from(client.get("/login").data)
        response = client.post(
            "/login",
            data={"username": "alice", "password": PASSWORDS["alice"], "csrf_token": csrf},
        )
        return response.headers["Set-Cookie"]

    cookie = login_cookie(app)
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    secure = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "SESSION_COOKIE_SECURE": True,
        }
    )
    assert "Secure" in login_cookie(secure)
    with secure.app_context():
        db.engine.dispose()


def test_passwords_are_hashed_with_a_strong_kdf(app):
    with app.app_context():
        assert accounts.find_user("alice").password_hash.startswith("scrypt:")


def test_a_crash_shows_no_stack_trace_or_sql(app, client, browser):
    app.config["PROPAGATE_EXCEPTIONS"] = False

    def explode():
        raise RuntimeError("SELECT secret FROM users -- Traceback")

    app.add_url_rule("/api/v1/explode", view_func=explode)
    app.add_url_rule("/explode", view_func=explode)
    answer = client.get("/api/v1/explode")
    assert answer.status_code == 500 and answer.get_json() == {"detail": "Internal server error"}
    page = client.get("/explode")
    assert page.status_code == 500 and b"Internal server error" in page.data
    assert b"SELECT" not in page.data and b"Traceback" not in page.data


def test_nul_characters_are_refused_with_a_400_on_every_backend(api, browser, client):
    alice = api("alice")
    for response in (
        alice.get("/tasks/%00"),
        alice.get("/tasks?q=a%00b"),
        alice.post("/tasks", json={"type": "demo", "params": {"message": "a\x00b"}}),
        alice.post("/tokens", json={"name": "\x00"}),
    ):
        assert response.status_code in (400, 404)
        assert response.get_json() == {"detail": "Text must not contain NUL (0x00) characters"}
    browser.login("alice")
    page = browser.post("/tokens", data={"name": "x\x00y"})
    assert page.status_code == 400 and b"NUL (0x00)" in page.data
