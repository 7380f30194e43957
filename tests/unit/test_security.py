"""Security headers, no inline script, login rate limit, cookie flags, no leaks in errors,
logins that end for real, timing-equal login checks and safe redirect targets."""

import hashlib
import re
from datetime import timedelta

import pytest
from flask_login.utils import encode_cookie
from sqlalchemy import select, update

from app import create_app, models
from app.auth import safe_next
from app.extensions import db
from app.models import LoginSession, utcnow
from app.services import accounts
from app.services.errors import InvalidRequest
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


# A CR/LF in a redirect target used to pass safe_next, then Werkzeug refused
# the Location header: a 500 after the action had already run. A tab or other
# control character is dropped by browsers ("/\t/evil" becomes "//evil").
UNSAFE_NEXT = [
    "/tasks\r\nX-Injected: 1",
    "/tasks\nX",
    "/\t/evil.example",
    "/a\x00b",
    "/a\x7fb",
    "/a\x85b",
    "/\\evil.example",
    "/tasks\\x",
]


@pytest.mark.parametrize("target", UNSAFE_NEXT)
def test_safe_next_refuses_control_characters_and_backslashes(target):
    assert safe_next(target, "/default") == "/default"


def test_safe_next_keeps_same_site_paths():
    for target in ("/tasks?q=x", "/tasks/abc?status=queued&q=%0D%0A", "/任务"):
        assert safe_next(target, "/default") == target
    for target in ("https://evil.example/", "//evil.example", "tasks", "", None):
        assert safe_next(target, "/default") == "/default"


# (NUL is refused with a 400 before any view runs: see the test above.)
@pytest.mark.parametrize("target", [t for t in UNSAFE_NEXT if "\x00" not in t])
def test_unsafe_next_redirects_to_the_default_page_not_a_500(app, client, browser, target):
    csrf = csrf_from(client.get("/login").data)
    login = client.post(
        "/login",
        query_string={"next": target},
        data={"username": "alice", "password": PASSWORDS["alice"], "csrf_token": csrf},
    )
    assert login.status_code == 302 and login.location == "/"
    browser.login("alice")
    language = browser.post("/language", data={"lang": "en", "next": target})
    assert language.status_code == 302 and language.location == "/"
    action = browser.post("/tasks/cancel-all", data={"next": target})
    assert action.status_code == 302 and action.location == "/tasks"


def test_an_unknown_user_costs_the_same_password_check_as_a_known_one(app, monkeypatch):
    """No timing tells names apart: every login attempt runs exactly one real scrypt check."""
    checked = []

    def counting(pwhash, password):
        checked.append(pwhash)
        return real(pwhash, password)

    real = models.check_password_hash
    monkeypatch.setattr(models, "check_password_hash", counting)
    monkeypatch.setattr(accounts, "check_password_hash", counting)
    with app.app_context():
        alice_hash = accounts.find_user("alice").password_hash
        attempts = [
            ("alice", PASSWORDS["alice"]),
            ("alice", "wrong-password"),
            ("nobody", "wrong-password"),
            ("", ""),
        ]
        outcomes = []
        for username, password in attempts:
            checked.clear()
            user = accounts.check_login(username, password)
            outcomes.append(user and user.username)
            assert len(checked) == 1, (username, checked)
            # The stand-in hash is as costly as a real one: same method and parameters.
            assert checked[0].split("$")[0] == alice_hash.split("$")[0]
    assert outcomes == ["alice", None, None, None]


def log_in(app, name="alice", remember=False, client=None):
    """A browser (a test client of its own) logged in as `name`."""
    client = client or app.test_client()
    csrf = csrf_from(client.get("/login").data)
    form = {"username": name, "password": PASSWORDS[name], "csrf_token": csrf}
    if remember:
        form["remember"] = "1"
    assert client.post("/login", data=form).status_code == 302
    return client


def log_out(client):
    csrf = csrf_from(client.get("/tasks/new").data)
    assert client.post("/logout", data={"csrf_token": csrf}).status_code == 302


def jar(client) -> dict:
    """The browser's cookies, as an attacker who copied them would hold them."""
    return {
        name: client.get_cookie(name).value
        for name in ("session", "remember_token")
        if client.get_cookie(name) is not None
    }


def logged_in(app, **cookies) -> bool:
    """Does a fresh browser holding only these cookies get in? Asks a page and the API."""
    client = app.test_client()
    for name, value in cookies.items():
        client.set_cookie(name, value)
    page, answer = client.get("/tasks"), client.get("/api/v1/tasks")
    if page.status_code == 200 and answer.status_code == 200:
        return True
    assert page.status_code == 302 and page.location.startswith("/login")
    assert answer.status_code == 401 and set(answer.get_json()) == {"detail"}
    return False


def test_logout_ends_the_login_on_the_server_so_copied_cookies_stop_working(app):
    browser = log_in(app, remember=True)
    copied = jar(browser)
    assert set(copied) == {"session", "remember_token"}
    assert logged_in(app, session=copied["session"])
    assert logged_in(app, remember_token=copied["remember_token"])
    log_out(browser)
    assert not logged_in(app, session=copied["session"])
    assert not logged_in(app, remember_token=copied["remember_token"])
    assert not logged_in(app, **copied)
    with app.app_context():
        assert db.session.scalars(select(LoginSession)).all() == []


def test_each_login_has_its_own_remember_cookie_and_other_devices_survive_a_logout(app):
    laptop, phone = log_in(app, remember=True), log_in(app, remember=True)
    on_laptop, on_phone = jar(laptop), jar(phone)
    assert on_laptop["remember_token"] != on_phone["remember_token"]
    log_out(laptop)
    assert not logged_in(app, remember_token=on_laptop["remember_token"])
    assert logged_in(app, remember_token=on_phone["remember_token"])
    assert logged_in(app, session=on_phone["session"])
    assert phone.get("/tasks").status_code == 200


def test_a_password_change_ends_every_login_of_that_user_only(app, api):
    laptop, phone, bob = log_in(app, remember=True), log_in(app), log_in(app, "bob")
    copied = jar(laptop)
    with app.app_context():
        alice = accounts.find_user("alice")
        with pytest.raises(InvalidRequest, match="at least 8 characters"):
            accounts.set_password(alice, "short")
        assert logged_in(app, **copied)  # a refused change ends nothing
        accounts.set_password(alice, "a-new-password")
        assert accounts.check_login("alice", "a-new-password") is not None
        assert accounts.check_login("alice", PASSWORDS["alice"]) is None
    assert not logged_in(app, remember_token=copied["remember_token"])
    assert not logged_in(app, session=copied["session"])
    assert phone.get("/tasks").status_code == 302
    assert bob.get("/tasks").status_code == 200
    assert api("alice").get("/tasks").status_code == 200  # API tokens are not logins


def test_cookies_carry_a_per_login_token_stored_only_as_its_hash(app):
    browser = log_in(app, remember=True)
    token = jar(browser)["remember_token"].split("|")[0]
    with app.app_context():
        alice = accounts.find_user("alice")
        (row,) = db.session.scalars(select(LoginSession)).all()
        assert row.user_id == alice.id and token != str(alice.id)
        assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
        # A remember cookie naming the user id (what it held before) gets nobody in.
        with app.test_request_context():
            by_user_id = encode_cookie(str(alice.id))
    assert not logged_in(app, remember_token=by_user_id)


def test_logging_in_again_replaces_the_browsers_previous_login(app):
    browser = log_in(app)
    before = jar(browser)
    log_in(app, "bob", client=browser)
    assert not logged_in(app, session=before["session"])
    with app.app_context():
        (row,) = db.session.scalars(select(LoginSession)).all()
        assert row.user.username == "bob"


def test_a_login_unused_for_a_year_is_over_and_cleared_at_the_next_login(app):
    browser = log_in(app, remember=True)
    copied = jar(browser)
    with app.app_context():
        db.session.execute(
            update(LoginSession).values(
                last_seen_at=utcnow() - accounts.LOGIN_IDLE_LIMIT - timedelta(days=1)
            )
        )
        db.session.commit()
    assert not logged_in(app, remember_token=copied["remember_token"])
    log_in(app)
    with app.app_context():
        assert len(db.session.scalars(select(LoginSession)).all()) == 1
