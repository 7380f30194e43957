"""A data folder, secret key or SQLite file Taskdeck cannot use: one clear paragraph, no traceback.

Each case runs the real `taskdeck` command (init, web, worker, serve), which
must stop at once with exit code 1, naming the folder or file (app/preflight.py).
"""

import os
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests import backends
from tests.live import TASKDECK, free_port, process_env

COMMANDS = ["init", "web", "worker", "serve"]
GARBAGE = bytes(range(256)) * 32
QUEUE_SCHEME = urlparse(backends.QUEUE_URL).scheme or "sqlite"


def start(command: str, env: dict) -> subprocess.CompletedProcess:
    argv = [TASKDECK, command]
    if command in ("web", "serve"):
        argv += ["--port", str(free_port())]
    # A command that got past the checks would serve: the timeout fails the test.
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)


def assert_explained(result: subprocess.CompletedProcess, path: Path) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output, output
    assert str(path) in output, output
    assert len(output.strip().splitlines()) == 1, output  # one paragraph
    return output


@pytest.fixture
def env(tmp_path):
    """A spawned command's settings, data in tmp_path/data (its database is dropped after)."""
    settings = process_env(tmp_path)
    database_url = settings["TASKDECK_DATABASE_URL"]
    yield settings
    backends.drop_database(database_url)


@pytest.fixture
def unwritable_folder(tmp_path):
    """A folder this user cannot write: mode 0o500, or one under a plain file when run as
    root (root ignores modes, but no one can make a folder inside a file)."""
    if os.geteuid() == 0:
        blocker = tmp_path / "a-file"
        blocker.write_text("not a folder")
        yield blocker / "data"
        return
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    yield folder
    folder.chmod(0o700)


@pytest.mark.parametrize("command", COMMANDS)
def test_an_unwritable_data_folder_is_named_with_what_to_do(command, env, unwritable_folder):
    env["TASKDECK_DATA_DIR"] = str(unwritable_folder)
    output = assert_explained(start(command, env), unwritable_folder)
    assert "cannot write to its data folder" in output and "TASKDECK_DATA_DIR" in output


def test_an_unreadable_secret_key_is_named(env):
    key = Path(env["TASKDECK_DATA_DIR"]) / "secret_key"
    key.mkdir(parents=True)  # a folder where the key file should be
    output = assert_explained(start("init", env), key)
    assert "TASKDECK_SECRET_KEY" in output


@pytest.mark.skipif(
    backends.ON_POSTGRES, reason="this run keeps the database on PostgreSQL: no SQLite file"
)
@pytest.mark.parametrize("command", COMMANDS)
def test_a_damaged_database_file_is_named_and_left_alone(command, env):
    del env["TASKDECK_DATABASE_URL"]  # the default: taskdeck.db in the data folder
    database = Path(env["TASKDECK_DATA_DIR"]) / "taskdeck.db"
    database.parent.mkdir(parents=True)
    database.write_bytes(GARBAGE)
    output = assert_explained(start(command, env), database)
    assert "file is not a database" in output and "backup" in output
    assert database.read_bytes() == GARBAGE


@pytest.mark.skipif(
    QUEUE_SCHEME != "sqlite", reason=f"this run keeps the queue on {QUEUE_SCHEME}: no queue file"
)
@pytest.mark.parametrize("command", COMMANDS)
def test_a_damaged_queue_file_is_named_and_left_alone(command, env):
    queue = Path(env["TASKDECK_DATA_DIR"]) / "queue.db"
    queue.parent.mkdir(parents=True)
    queue.write_bytes(GARBAGE)
    output = assert_explained(start(command, env), queue)
    assert "file is not a database" in output
    assert queue.read_bytes() == GARBAGE
