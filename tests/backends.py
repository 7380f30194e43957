"""Which servers a test run uses: SQLite files by default, PostgreSQL and Redis when asked.

`.ci/run`'s second pass sets TASKDECK_DATABASE_URL=postgresql+psycopg://…
and TASKDECK_QUEUE_URL=redis://… (or postgresql://…). A server that was
asked for but does not answer fails the run at once with a clear message;
nothing is skipped silently.

In-process tests share one database (tables emptied per test); every
spawned `taskdeck` process tree gets a database of its own and its own
queue name, dropped afterwards.
"""

import os
import uuid
from urllib.parse import urlparse

import pytest

DATABASE_URL = os.environ.get("TASKDECK_DATABASE_URL", "")
QUEUE_URL = os.environ.get("TASKDECK_QUEUE_URL", "")
ON_POSTGRES = urlparse(DATABASE_URL).scheme.startswith("postgresql")
_created: list[str] = []


def describe() -> str:
    return f"database: {DATABASE_URL or 'SQLite'}, queue: {QUEUE_URL or 'SQLite'}"


def _admin_dsn(url: str) -> str:
    return urlparse(url)._replace(scheme="postgresql").geturl()


def check_servers() -> None:
    """Fail the whole run, clearly, when a server that was asked for is not reachable."""
    if ON_POSTGRES:
        import psycopg

        try:
            psycopg.connect(_admin_dsn(DATABASE_URL), connect_timeout=3).close()
        except psycopg.Error as exc:
            pytest.exit(f"TASKDECK_DATABASE_URL={DATABASE_URL} is not reachable: {exc}", 3)
    scheme = urlparse(QUEUE_URL).scheme
    if scheme in ("redis", "rediss"):
        import redis

        try:
            redis.Redis.from_url(QUEUE_URL, socket_connect_timeout=3).ping()
        except redis.RedisError as exc:
            pytest.exit(f"TASKDECK_QUEUE_URL={QUEUE_URL} is not reachable: {exc}", 3)
    elif scheme.startswith("postgres"):
        import psycopg

        try:
            psycopg.connect(_admin_dsn(QUEUE_URL), connect_timeout=3).close()
        except psycopg.Error as exc:
            pytest.exit(f"TASKDECK_QUEUE_URL={QUEUE_URL} is not reachable: {exc}", 3)


def fresh_database(folder) -> str:
    """A database URL nobody else uses: a new SQLite file, or a new PostgreSQL database."""
    if not ON_POSTGRES:
        return f"sqlite:///{folder}/taskdeck.db"
    import psycopg

    parsed = urlparse(DATABASE_URL)
    name = f"{parsed.path.lstrip('/')}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_admin_dsn(DATABASE_URL), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    _created.append(name)
    return parsed._replace(path=f"/{name}").geturl()


def drop_database(url: str) -> None:
    """Drop a database fresh_database() made (SQLite files go with their folder)."""
    name = urlparse(url).path.lstrip("/")
    if not ON_POSTGRES or name not in _created:
        return
    import psycopg

    with psycopg.connect(_admin_dsn(DATABASE_URL), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _created.remove(name)


def drop_created_databases() -> None:
    """At the end of a run: drop whatever is left."""
    for name in list(_created):
        drop_database(f"postgresql:///{name}")


def fresh_queue_env() -> dict:
    """Settings for a spawned process tree: its own queue (a new name on a shared server)."""
    return {"TASKDECK_QUEUE_NAME": f"taskdeck-{uuid.uuid4().hex[:10]}"}


def main(argv: list[str]) -> int:
    """`python -m tests.backends CMD…`: run CMD on a fresh PostgreSQL database and Redis.

    The database is created first and dropped afterwards whatever CMD does;
    TASKDECK_TEST_POSTGRES and TASKDECK_TEST_REDIS name the servers.
    """
    import subprocess

    import psycopg

    admin = os.environ.get(
        "TASKDECK_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    queue = os.environ.get("TASKDECK_TEST_REDIS", "redis://127.0.0.1:6379/0")
    name = f"taskdeck_ci_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        print(f"PostgreSQL at {admin} is not reachable: {exc}")
        return 3
    url = urlparse(admin)._replace(scheme="postgresql+psycopg", path=f"/{name}").geturl()
    env = {**os.environ, "TASKDECK_DATABASE_URL": url, "TASKDECK_QUEUE_URL": queue}
    try:
        return subprocess.run(argv, env=env).returncode
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
