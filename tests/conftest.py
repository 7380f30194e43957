"""Fixtures: an app on a fresh database and queue per test, users with tokens, a real Huey worker.

tests/backends.py says which servers the run uses; each test's app gets a
queue of its own (a new SQLite file, or a new queue name on Redis).
"""

import functools
import os
import re
import signal
import tempfile
import time
import uuid

import pytest
from sqlalchemy import text
from werkzeug.exceptions import HTTPException

from app import create_app, models
from app.api.spec import spec
from app.extensions import db
from app.models import User
from app.services import accounts, bulk, commands, dispatch
from app.services.states import TERMINAL_STATES
from tasks.worker import consumer_for
from tests import backends

# Each test makes its users afresh, and a real scrypt hash costs ~0.1 s of CPU:
# over half the unit suite's time went on salting the same three passwords.
# The hash is still real (logins verify it in full); only repeats are cached.
models.generate_password_hash = functools.cache(models.generate_password_hash)

PASSWORDS = {"alice": "alice-password", "bob": "bob-password", "root": "root-password"}


def pytest_report_header(config):
    return f"taskdeck backends: {backends.describe()}"


def pytest_configure(config):
    # Where an app made without a DATA_DIR (a spawned process, the CLI) keeps its files.
    os.environ.setdefault("TASKDECK_DATA_DIR", tempfile.mkdtemp(prefix="taskdeck-tests-"))


def pytest_sessionstart(session):
    backends.check_servers()


def pytest_sessionfinish(session, exitstatus):
    backends.drop_created_databases()


def app_settings(folder, database_url: str) -> dict:
    """Settings of an in-process test app: its files, database and queue all its own."""
    return {
        "TESTING": True,
        "DATA_DIR": str(folder),
        "SQLALCHEMY_DATABASE_URI": database_url,
        "QUEUE_URL": backends.QUEUE_URL or f"sqlite:///{folder}/queue.db",
        "QUEUE_NAME": f"taskdeck-tests-{uuid.uuid4().hex[:10]}",
    }


@pytest.fixture(scope="session")
def shared_database():
    """On PostgreSQL, one database for the in-process tests, its tables made once."""
    if not backends.ON_POSTGRES:
        return None
    url = backends.fresh_database(None)
    app = create_app(app_settings(tempfile.mkdtemp(prefix="taskdeck-shared-"), url))
    with app.app_context():
        db.create_all()
        db.engine.dispose()
    return url


def empty_tables() -> None:
    names = ", ".join(table.name for table in db.metadata.sorted_tables)
    db.session.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    db.session.commit()


@pytest.fixture
def app(tmp_path, shared_database):
    app = create_app(
        app_settings(tmp_path, shared_database or f"sqlite:///{tmp_path / 'taskdeck.db'}")
    )
    with app.app_context():
        if shared_database:
            empty_tables()
        else:
            db.create_all()
        for name, password in PASSWORDS.items():
            accounts.create_user(name, password, is_admin=(name == "root"))
    yield app
    with app.app_context():
        db.engine.dispose()
        dispatch.stage_queue().huey.flush()


@pytest.fixture
def ctx(app):
    """The test's app context pushed, for tests that call services directly."""
    with app.app_context():
        yield


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def users(app):
    """name -> User, loaded in a context the test pushes itself."""

    def get(name):
        return db.session.query(User).filter_by(username=name).one()

    return get


class Api:
    """Bearer-token client for /api/v1 that checks each success against its OpenAPI schema."""

    def __init__(self, app, client, token):
        self.app, self.client, self.token = app, client, token

    def request(self, method, path, **kwargs):
        headers = kwargs.pop("headers", {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        response = self.client.open(
            "/api/v1" + path, method=method, headers=headers, buffered=True, **kwargs
        )
        self._check_contract(method, path, response)
        return response

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, **kwargs):
        return self.request("POST", path, **kwargs)

    def _check_contract(self, method, path, response):
        """The answer is one the route declares, and its body is exactly that shape."""
        adapter = self.app.url_map.bind("localhost")
        body = response.get_json()
        try:
            endpoint, _ = adapter.match("/api/v1" + path.split("?")[0], method=method)
        except HTTPException:  # no such route: the app's own error, in the same shape
            assert response.status_code >= 400 and set(body) == {"detail"}, body
            return
        declared = spec.get_function_metadata(self.app.view_functions[endpoint]).resp
        status = response.status_code
        codes = {*declared.codes, *declared.code_models}
        assert f"HTTP_{status}" in codes, f"{method} {path} answered undeclared {status}"
        if status >= 400:
            assert set(body) == {"detail"} and body["detail"], body
            return
        shape = declared.find_model(status)
        if shape is not None:  # the OpenAPI document itself has none
            again = shape.model_validate_json(response.data).model_dump(mode="json")
            assert again == body, f"{method} {path} answered off-contract"


@pytest.fixture
def tokens(app):
    with app.app_context():
        return {
            name: accounts.create_token(accounts.find_user(name), "tests")[1] for name in PASSWORDS
        }


@pytest.fixture
def api(app, client, tokens):
    """api("alice").post("/tasks", json=...) speaks as alice; api(None) is anonymous."""
    return lambda name: Api(app, client, tokens[name] if name else None)


def submit_demo(app, owner="alice", **params) -> str:
    """A demo task of `owner`, 2 stages of 0 s unless `params` say otherwise; its id."""
    with app.app_context():
        user = accounts.find_user(owner)
        return commands.submit(
            user, "demo", {"stages": 2, "seconds": 0, **params}, 6, actor=owner
        ).id


def api_submit(api_as, task_type: str, **params) -> str:
    """Submit through the JSON API as `api_as` (the `api` fixture's client); the new task's id."""
    response = api_as.post("/tasks", json={"type": task_type, "params": params})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def finished(api_as, task_id: str, timeout: float = 60) -> dict:
    """The task once it has ended, as the API shows it."""

    def ended():
        task = api_as.get(f"/tasks/{task_id}").get_json()
        return task["state"] in TERMINAL_STATES and task

    return wait_for(ended, timeout=timeout, interval=0.1)


def wait_for(predicate, timeout=10.0, interval=0.02):
    """Poll until predicate() is truthy; return its value or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


@pytest.fixture
def worker(app):
    """start(workers=N) runs a real Huey consumer (threads) on this test's app and queue."""
    consumers = []

    def start(workers=1):
        consumer = consumer_for(
            app,
            workers,
            periodic=False,
            initial_delay=0.02,
            backoff=1.1,
            max_delay=0.1,
            check_worker_health=False,
        )
        # The consumer installs its own signal handlers; keep pytest's.
        saved = {
            sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        }
        consumer.start()
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        consumers.append(consumer)
        return consumer

    yield start
    with app.app_context():
        root = accounts.find_user("root")
        bulk.cancel_all(root, cancel_running=True)
    for consumer in consumers:
        consumer.stop(graceful=True)


def csrf_from(html: bytes) -> str:
    return re.search(rb'name="csrf_token" value="([^"]+)"', html).group(1).decode()


@pytest.fixture
def browser(client):
    """A logged-in test client; .post() adds the page's CSRF token."""

    class Browser:
        token = None

        def login(self, name):
            token = csrf_from(client.get("/login").data)
            response = client.post(
                "/login",
                data={"username": name, "password": f"{name}-password", "csrf_token": token},
            )
            assert response.status_code == 302
            self.token = csrf_from(client.get("/tasks/new").data)
            return self

        def get(self, path, **kwargs):
            return client.get(path, **kwargs)

        def post(self, path, data=None, **kwargs):
            return client.post(path, data={**(data or {}), "csrf_token": self.token}, **kwargs)

    return Browser()


def write_secrets(path, **tables) -> str:
    """A TASKDECK_SECRETS_FILE (owner-only) holding name = (key, url) tables; its path."""
    lines = []
    for name, (key, url) in tables.items():
        lines += [f"[{name}]", f'key = "{key}"', f'url = "{url}"']
    path.write_text("\n".join(lines) + "\n")
    os.chmod(path, 0o600)
    return str(path)
