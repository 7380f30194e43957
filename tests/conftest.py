"""Fixtures: an app on a fresh database per test, users with tokens, and a real Huey worker.

The Huey instance is built from the environment when tasks.queue is first
imported, so the queue file's folder (and, on a shared Redis or PostgreSQL,
this run's own queue name) is set here before anything imports it; each
test flushes the queue. tests/backends.py says which servers the run uses.
"""

import functools
import os
import re
import signal
import tempfile
import time

os.environ["TASKDECK_DATA_DIR"] = tempfile.mkdtemp(prefix="taskdeck-tests-")
# Each test process (pytest-xdist runs two) has its own queue on a shared Redis.
os.environ["TASKDECK_QUEUE_NAME"] = f"taskdeck-tests-{os.getpid()}"

import pytest  # noqa: E402
from sqlalchemy import text  # noqa: E402

from app import create_app, models  # noqa: E402
from app.api.operations import OPERATIONS  # noqa: E402
from app.extensions import db  # noqa: E402
from app.models import User  # noqa: E402
from app.services import accounts, bulk  # noqa: E402
from tasks.queue import huey  # noqa: E402
from tasks.runner import bind_app  # noqa: E402
from tests import backends  # noqa: E402

# Each test makes its users afresh, and a real scrypt hash costs ~0.1 s of CPU:
# over half the unit suite's time went on salting the same three passwords.
# The hash is still real (logins verify it in full); only repeats are cached.
models.generate_password_hash = functools.cache(models.generate_password_hash)

PASSWORDS = {"alice": "alice-password", "bob": "bob-password", "root": "root-password"}


def pytest_report_header(config):
    return f"taskdeck backends: {backends.describe()}"


def pytest_sessionstart(session):
    backends.check_servers()


def pytest_sessionfinish(session, exitstatus):
    huey.flush()
    backends.drop_created_databases()


@pytest.fixture(scope="session")
def shared_database():
    """On PostgreSQL, one database for the in-process tests, its tables made once."""
    if not backends.ON_POSTGRES:
        return None
    url = backends.fresh_database(None)
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url})
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
    huey.flush()
    app = create_app(
        {
            "TESTING": True,
            "DATA_DIR": str(tmp_path),
            "SQLALCHEMY_DATABASE_URI": shared_database or f"sqlite:///{tmp_path / 'taskdeck.db'}",
        }
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
        response = self.client.open("/api/v1" + path, method=method, headers=headers, **kwargs)
        self._check_contract(method, path, response)
        return response

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, **kwargs):
        return self.request("POST", path, **kwargs)

    def _check_contract(self, method, path, response):
        adapter = self.app.url_map.bind("localhost")
        endpoint, _ = adapter.match("/api/v1" + path.split("?")[0], method=method)
        name = endpoint.removeprefix("api.")
        (op,) = [op for op in OPERATIONS if op.view_name == name]
        if response.status_code == op.status:
            errors = op.response().validate(response.get_json())
            assert not errors, f"{method} {path} answered off-contract: {errors}"
        else:
            assert response.status_code in op.errors, (
                f"{method} {path} answered {response.status_code}, not documented {op.errors}"
            )
            body = response.get_json()
            assert set(body) == {"detail"} and body["detail"], body


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
    """start(workers=N) runs a real Huey consumer (threads) bound to this test's app."""
    consumers = []

    def start(workers=1):
        bind_app(app)
        consumer = huey.create_consumer(
            workers=workers,
            worker_type="thread",
            periodic=False,
            initial_delay=0.02,
            backoff=1.1,
            max_delay=0.1,
            check_worker_health=False,
            shutdown_timeout=10,
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
    bind_app(None)


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
