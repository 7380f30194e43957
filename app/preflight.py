"""Startup checks: a data folder, secret key or SQLite file Taskdeck cannot use, named plainly.

Run by `taskdeck serve`, `web`, `worker` and `init` before the app is built
(building it opens the database and the queue file), so a broken setup gets
one paragraph saying which file and what to do instead of a traceback.
Settings come from the environment, as in app/config.py. Only files are
checked: a PostgreSQL or Redis URL is left to the connection itself.
"""

import errno
import os
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from app import config
from app.services import catalog


class PreflightError(Exception):
    """A setup problem, explained for whoever starts Taskdeck: which file, what to do."""


def check(env=os.environ) -> None:
    """Raise PreflightError for the first folder, file or pipeline Taskdeck cannot use."""
    try:
        catalog.pipelines()
    except catalog.CatalogError as exc:
        raise PreflightError(str(exc)) from exc
    folder = config.data_dir(env)
    _writable_folder(
        folder,
        lambda reason: (
            f"Taskdeck cannot write to its data folder {folder} ({reason}). Set "
            "TASKDECK_DATA_DIR to a folder this user can write, or fix its permissions."
        ),
    )
    _secret_key(env)
    for url, what, advice, create in (
        (
            config.database_url(env),
            "its database",
            "if the file is damaged, restore it from a backup, or move it away and run "
            "`taskdeck init` to start an empty one.",
            False,  # SQLite makes the file, not its folder
        ),
        (
            config.queue_url(env),
            "its queue file",
            "if the file is damaged, stop Taskdeck and move it away: a new one is made at "
            "start, and the reaper re-sends the messages of waiting stages.",
            True,  # as app/queue.py does
        ),
    ):
        path = sqlite_file(url)
        if path is not None:
            _sqlite_file(
                path,
                lambda reason, path=path, what=what, advice=advice: (
                    f"Taskdeck cannot use {what} {path} ({reason}). Check the permissions "
                    f"of the file and its folder; {advice}"
                ),
                create=create,
            )


def sqlite_file(url: str) -> Path | None:
    """The file an SQLite URL names; None for other databases and in-memory ones."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def _reason(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or str(exc)


def _writable_folder(folder: Path, problem: Callable[[str], str], create: bool = True) -> None:
    """Make the folder if asked, then really write a file in it (root ignores modes)."""
    try:
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise PreflightError(problem(_reason(exc))) from exc


def _secret_key(env) -> None:
    """Read the key file, or make it now as the app would, unless TASKDECK_SECRET_KEY is set."""
    if env.get("TASKDECK_SECRET_KEY"):
        return
    path = config.data_dir(env) / "secret_key"
    try:
        key = config.secret_key(env)
    except (OSError, ValueError) as exc:
        raise PreflightError(
            f"Taskdeck cannot read or create its secret key file {path} ({_reason(exc)}). "
            "Make it a file this user can read, or set TASKDECK_SECRET_KEY."
        ) from exc
    if not key:
        raise PreflightError(
            f"Taskdeck's secret key file {path} is empty. Delete it to have a new key made "
            "(everyone is logged out), or set TASKDECK_SECRET_KEY."
        )


def _sqlite_file(path: Path, problem: Callable[[str], str], create: bool) -> None:
    """Its folder is writable (made if `create`) and, if the file exists, SQLite can use it.

    Reading sqlite_master catches a file that is not a database, or whose
    header or schema is damaged, in milliseconds; `PRAGMA quick_check` would
    read the whole file at every start.
    """
    _writable_folder(path.parent, problem, create)
    if not path.exists():
        return  # made on first use
    try:
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
        # SQLite would quietly open a write-protected file read-only.
        if not os.access(path, os.R_OK | os.W_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        # mode=rw: open the file that is there, never create one.
        connection = sqlite3.connect(f"file:{quote(str(path))}?mode=rw", uri=True, timeout=30)
        try:
            connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            connection.close()
    except (OSError, sqlite3.Error) as exc:
        raise PreflightError(problem(_reason(exc))) from exc
