"""SQLite writers take turns through the lock file (app/sqlite_writer.py): no lost
update and no "database is locked" between threads, the turn ends with the
transaction however it ends, and a thread never waits on itself."""

import fcntl
import os
import sqlite3
import threading

import pytest

from app import sqlite_writer


def connect(path, timeout=30.0):
    return sqlite3.connect(path, timeout=timeout, factory=sqlite_writer.Connection)


@pytest.fixture
def database(tmp_path):
    path = tmp_path / "taskdeck.db"
    with connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE counter (n INTEGER)")
        conn.execute("INSERT INTO counter VALUES (0)")
    return path


def test_threads_writing_at_once_lose_nothing_and_never_see_a_locked_database(database):
    errors = []

    def add(times):
        conn = connect(database, timeout=5)
        try:
            for _ in range(times):
                # fetchall ends the read (an open SELECT would pin an old snapshot)
                [(value,)] = conn.execute("SELECT n FROM counter").fetchall()
                conn.execute("UPDATE counter SET n = n + 1 WHERE n >= ?", (value - 1000,))
                conn.commit()
        except sqlite3.Error as exc:
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=add, args=(200,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with connect(database) as conn:
        assert conn.execute("SELECT n FROM counter").fetchone()[0] == 800
    assert (database.parent / "taskdeck.db-writer").exists()


def test_a_rollback_or_a_close_ends_the_turn(database):
    def write_elsewhere(value):
        """Write from another thread (its own connection); True once committed."""
        done = threading.Event()

        def write():
            conn = connect(database)
            conn.execute("UPDATE counter SET n = ?", (value,))
            conn.commit()
            conn.close()
            done.set()

        thread = threading.Thread(target=write, daemon=True)
        thread.start()
        thread.join(timeout=30)
        return done.is_set()

    first = connect(database)
    first.execute("UPDATE counter SET n = 1")
    first.rollback()
    assert write_elsewhere(2)
    first.execute("UPDATE counter SET n = 3")
    first.close()  # closed mid-transaction: SQLite rolls back, the turn ends
    assert write_elsewhere(4)
    with connect(database) as conn:
        conn.execute("UPDATE counter SET n = n + 1")  # `with` commits: the turn ends too
    assert write_elsewhere(6)
    with connect(database) as conn:
        assert conn.execute("SELECT n FROM counter").fetchall() == [(6,)]


def test_a_thread_writing_through_two_connections_gets_sqlites_answer_not_a_hang(database):
    holding, other = connect(database), connect(database, timeout=0.05)
    holding.execute("UPDATE counter SET n = 5")
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        other.execute("UPDATE counter SET n = 6")
    holding.commit()
    other.rollback()
    other.execute("UPDATE counter SET n = 7")
    other.commit()
    assert other.execute("SELECT n FROM counter").fetchone()[0] == 7
    holding.close()
    other.close()


def test_a_turn_not_handed_over_in_time_falls_back_to_sqlites_own_answer(database):
    """A transaction left open must not hang other writers past their busy timeout."""
    stuck = connect(database)
    stuck.execute("UPDATE counter SET n = 8")  # holds the turn, never commits here
    answers = []

    def write():
        conn = connect(database, timeout=0.2)
        try:
            conn.execute("UPDATE counter SET n = 9")
        except sqlite3.OperationalError as exc:
            answers.append(str(exc))
        finally:
            conn.close()

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    thread.join(timeout=30)
    assert answers == ["database is locked"]
    stuck.rollback()
    stuck.close()


def test_a_lock_file_that_cannot_be_opened_still_lets_the_database_be_written(database):
    lock = database.parent / "taskdeck.db-writer"
    lock.unlink()
    lock.symlink_to(database.parent / "gone" / "lock")  # opens fail, even as root
    conn = connect(database)
    conn.execute("UPDATE counter SET n = 10")
    conn.commit()
    assert conn.execute("SELECT n FROM counter").fetchall() == [(10,)]
    conn.close()


def test_the_turn_is_the_lock_file_held_from_the_first_write_to_the_commit(database):
    """What makes a waiting writer start at once: the lock file, not SQLite's busy handler."""
    lock = os.open(database.parent / "taskdeck.db-writer", os.O_RDONLY)
    conn = connect(database)
    conn.execute("SELECT n FROM counter").fetchall()
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a read takes no turn
    fcntl.flock(lock, fcntl.LOCK_UN)
    conn.execute("UPDATE counter SET n = 11")
    with pytest.raises(BlockingIOError):
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the writer holds it
    conn.commit()
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # handed over at the commit
    fcntl.flock(lock, fcntl.LOCK_UN)
    os.close(lock)
    conn.close()


def test_the_apps_sqlite_connections_take_turns(app):
    from app.extensions import db

    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            pytest.skip("this run keeps the database on PostgreSQL")
        raw = db.engine.raw_connection()
        try:
            assert isinstance(raw.driver_connection, sqlite_writer.Connection)
        finally:
            raw.close()
