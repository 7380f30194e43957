"""A real Taskdeck (`taskdeck serve`: gunicorn + a Huey worker) on a free port and temp data dir."""

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests import backends
from tests.conftest import wait_for

TASKDECK = str(Path(sys.executable).with_name("taskdeck"))
ADMIN_PASSWORD = "admin-password"


def process_env(folder: Path) -> dict:
    """Environment for a spawned `taskdeck`: its own data dir, database and queue name."""
    return {
        **os.environ,
        "TASKDECK_DATA_DIR": str(folder / "data"),
        "TASKDECK_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "TASKDECK_DATABASE_URL": backends.fresh_database(folder),
        "TASKDECK_SHUTDOWN_GRACE": "2",
        **backends.fresh_queue_env(),
    }


def stop(process: subprocess.Popen) -> None:
    """Stop a server the way a user would (Ctrl-C), so its children go too; kill if it hangs."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Short timeouts standing in for the defaults in crash tests (heartbeat timeout 2 s, not 60 s).
FAST_RECOVERY = {
    "TASKDECK_HEARTBEAT_INTERVAL": "0.3",
    "TASKDECK_HEARTBEAT_TIMEOUT": "2",
    "TASKDECK_REAPER_INTERVAL": "0.5",
    "TASKDECK_SHUTDOWN_GRACE": "1",
}


class Http:
    """Plain JSON-over-HTTP client with a bearer token, like curl."""

    def __init__(self, base, token):
        self.base, self.token = base, token

    def call(self, method, path, body=None):
        request = urllib.request.Request(
            self.base + "/api/v1" + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, json.load(exc)

    def submit(self, task_type="demo", priority=None, **params) -> str:
        """Submit a task as a script would; its id (a refusal fails the test, saying why)."""
        body = {"type": task_type, "params": params}
        if priority is not None:
            body["priority"] = priority
        status, task = self.call("POST", "/tasks", body)
        assert status == 201, task
        return task["id"]

    def task(self, task_id) -> dict:
        return self.call("GET", f"/tasks/{task_id}")[1]


def init_with_token(env: dict) -> str:
    """`taskdeck init`, then an API token for admin (what a new user does first)."""
    subprocess.run([TASKDECK, "init"], env=env, check=True, capture_output=True)
    created = subprocess.run(
        [TASKDECK, "token", "create", "admin"], env=env, check=True, capture_output=True, text=True
    )
    return created.stdout.strip().splitlines()[-1]


def wait_until_up(http: Http) -> None:
    def up():
        try:
            return http.call("GET", "/tasks")[0] == 200
        except OSError:
            return False

    wait_for(up, timeout=30, interval=0.2)


@contextmanager
def running_server(folder: Path, env: dict | None = None):
    """(Http, server process) for a fresh `taskdeck serve --workers 1` with its data in `folder`.

    `env` adds settings, such as TASKDECK_PIPELINES_PATH for the test pipelines.
    """
    env = {**process_env(folder), **(env or {})}
    token = init_with_token(env)
    port = free_port()
    with open(folder / "serve.log", "w") as log:
        server = subprocess.Popen(
            [TASKDECK, "serve", "--port", str(port), "--workers", "1"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        http = Http(f"http://127.0.0.1:{port}", token)
        http.database_url = env["TASKDECK_DATABASE_URL"]  # to look after the server stopped
        wait_until_up(http)
        yield http, server
    finally:
        stop(server)
        backends.drop_database(env["TASKDECK_DATABASE_URL"])


@pytest.fixture
def served(tmp_path):
    """A server of the test's own, which the test may stop or kill."""
    with running_server(tmp_path) as pair:
        yield pair


class Deck:
    """`taskdeck web` plus worker processes started and killed one by one (crash tests, soak).

    `env` adds settings such as short heartbeat timeouts; each worker gets
    its own log file in `folder`.
    """

    def __init__(self, folder: Path, env: dict | None = None):
        self.folder = folder
        self.env = {**process_env(folder), **(env or {})}
        self.workers: list[subprocess.Popen] = []
        token = init_with_token(self.env)
        port = free_port()
        self.web = self._spawn([TASKDECK, "web", "--port", str(port)], "web.log")
        self.http = Http(f"http://127.0.0.1:{port}", token)
        wait_until_up(self.http)

    def _spawn(self, argv, log_name, cwd=None):
        with open(self.folder / log_name, "a") as log:
            return subprocess.Popen(
                argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=cwd
            )

    def start_worker(self, threads: int = 2, cwd: Path | None = None) -> subprocess.Popen:
        """Start a worker; `cwd` gives it its own working directory (another "box")."""
        number = len(self.workers) + 1
        worker = self._spawn(
            [TASKDECK, "worker", "--workers", str(threads)], f"worker-{number}.log", cwd
        )
        self.workers.append(worker)
        return worker

    def task(self, task_id: str) -> dict:
        status, body = self.http.call("GET", f"/tasks/{task_id}")
        assert status == 200, body
        return body

    def submit(self, task_type="demo", **params) -> str:
        return self.http.submit(task_type, **params)

    def close(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                process.kill()
            process.wait()
        stop(self.web)
        backends.drop_database(self.env["TASKDECK_DATABASE_URL"])


@pytest.fixture
def deck(tmp_path):
    """Make a Deck with `deck(env)`; everything it started is killed at the end."""
    made = []

    def make(env=None):
        made.append(Deck(tmp_path, env))
        return made[-1]

    yield make
    for each in made:
        each.close()
