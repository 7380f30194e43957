"""The `taskdeck` command, invoked in-process against the test app."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from click.testing import CliRunner
from flask.cli import ScriptInfo

from app import create_app
from app.cli import main
from app.extensions import db
from app.models import Task
from app.services import accounts
from tests import backends
from tests.conftest import PASSWORDS, csrf_from


@pytest.fixture
def run(app):
    def invoke(*args, input=None):
        return CliRunner().invoke(
            main, list(args), obj=ScriptInfo(create_app=lambda: app), input=input
        )

    return invoke


def test_user_create_and_duplicates(run, app):
    result = run("user", "create", "carol", "--password", "carol-password", "--admin")
    assert result.exit_code == 0 and "Created user 'carol' (admin)" in result.output
    with app.app_context():
        assert accounts.check_login("carol", "carol-password").is_admin
    again = run("user", "create", "carol", "--password", "carol-password")
    assert again.exit_code == 1 and "User 'carol' already exists" in again.output
    short = run("user", "create", "dave", "--password", "short")
    assert short.exit_code == 1 and "at least 8 characters" in short.output


def test_user_password_changes_it_and_ends_the_users_logins(run, app):
    browser = app.test_client()
    csrf = csrf_from(browser.get("/login").data)
    form = {"username": "alice", "password": PASSWORDS["alice"], "csrf_token": csrf}
    assert browser.post("/login", data=form).status_code == 302
    assert browser.get("/tasks").status_code == 200
    result = run("user", "password", "alice", input="alice-new-password\n" * 2)
    assert result.exit_code == 0, result.output
    assert "Changed the password of 'alice'; their browser logins have ended" in result.output
    assert browser.get("/tasks").status_code == 302
    with app.app_context():
        assert accounts.check_login("alice", "alice-new-password").username == "alice"
        assert accounts.check_login("alice", PASSWORDS["alice"]) is None
    short = run("user", "password", "alice", "--password", "short")
    assert short.exit_code == 1 and "at least 8 characters" in short.output
    missing = run("user", "password", "nobody", "--password", "long-enough")
    assert missing.exit_code == 1 and "No user named 'nobody'" in missing.output


def test_token_create_prints_a_working_token_on_the_last_line(run, client):
    result = run("token", "create", "alice")
    assert result.exit_code == 0
    token = result.output.strip().splitlines()[-1]
    response = client.get("/api/v1/tasks", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    missing = run("token", "create", "nobody")
    assert missing.exit_code == 1 and "No user named 'nobody'" in missing.output


def test_submit_types_params_and_prints_the_id(run, app):
    result = run(
        "submit",
        "demo",
        "--param",
        "stages=2",
        "-p",
        "seconds=0.5",
        "-p",
        "message=你好",
        "--priority",
        "2",
        "--user",
        "alice",
    )
    assert result.exit_code == 0, result.output
    task_id = result.output.strip()
    with app.app_context():
        task = db.session.get(Task, task_id)
        assert task.owner.username == "alice" and task.priority == 2
        assert task.params == {"stages": 2, "seconds": 0.5, "message": "你好", "fail_at": None}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--param", "stages=lots"], "stages: 'lots' is not of type 'integer'"),
        (["--param", "novalue"], "expected KEY=VALUE"),
        (["-p", "stages=2", "-p", "stages=3"], "give each param once: params.stages"),
        (["--priority", "12"], "priority must be an integer from 0 (most urgent) to 11"),
    ],
)
def test_submit_refuses_bad_input(run, args, message):
    result = run("submit", "demo", *args, "--user", "alice")
    assert result.exit_code != 0 and message in result.output


def _index_conditions(connection) -> dict:
    """The partial indexes of `tasks` and their conditions, as the database states them."""
    if connection.dialect.name == "postgresql":
        rows = connection.exec_driver_sql(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'tasks'"
        )
        found = {name: definition.partition(" WHERE ")[2] for name, definition in rows}
        # Without PostgreSQL's brackets and casts: state = ANY ((ARRAY['queued'::text, …])).
        casts = ("(", ")", "::character varying", "::text[]", "::text")
        for cast in casts:
            found = {name: condition.replace(cast, "") for name, condition in found.items()}
        return {name: condition for name, condition in found.items() if condition}
    rows = connection.exec_driver_sql(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'tasks'"
    )
    return {name: sql.partition(" WHERE ")[2] for name, sql in rows if sql and " WHERE " in sql}


def test_init_migrates_a_fresh_database_and_creates_admin_once(tmp_path, monkeypatch):
    monkeypatch.delenv("TASKDECK_ADMIN_PASSWORD", raising=False)
    url = backends.fresh_database(tmp_path)
    fresh = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url})
    info = ScriptInfo(create_app=lambda: fresh)
    first = CliRunner().invoke(main, ["init"], obj=info)
    assert first.exit_code == 0, first.output
    password = first.output.split("password: ")[1].split()[0]
    with fresh.app_context():
        assert accounts.check_login("admin", password).is_admin
        # The migrations build exactly the schema the models declare.
        with db.engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), db.metadata)
            assert diff == []
            # Alembic's comparison does not see a partial index's condition: read them.
            postgres = connection.dialect.name == "postgresql"
            assert _index_conditions(connection) == {
                "ix_tasks_finished": "finished_at IS NOT NULL",
                "ix_tasks_retry_of": "retry_of IS NOT NULL",
                "ix_tasks_state_heartbeat": "state = ANY ARRAY['queued', 'running', 'cancelling']"
                if postgres
                else "state IN ('queued', 'running', 'cancelling')",
            }
    second = CliRunner().invoke(main, ["init"], obj=info)
    assert second.exit_code == 0 and "password" not in second.output
    with fresh.app_context():
        db.engine.dispose()


def test_prune_deletes_finished_tasks_with_their_files_but_not_files_a_retry_shares(run, app):
    from pathlib import Path

    from app.services import artifacts, commands, lease
    from tests.drive import submit as submit_demo
    from tests.drive import task

    with app.app_context():
        alice = accounts.find_user("alice")
        original = submit_demo(alice, stages=1)
        run_ = lease.start_stage(original.id, 0, 1)
        staged = artifacts.staging_dir(original.id, 1) / "x.tmp"
        staged.write_text("结果", encoding="utf-8")
        artifacts.store(original.id, "step 1", "out.txt", staged)
        db.session.commit()
        lease.fail_stage(run_, "stage_error", "boom")
        (artifacts.staging_dir(original.id, 9) / "half").write_text("a killed run's")
        retry = commands.retry(alice, original.id).new_task_id
        kept = Path(app.config["ARTIFACTS_DIR"]) / original.id / "out.txt"
    first = run("prune", "--older-than", "0")
    assert first.exit_code == 0, first.output
    # the retry still uses it
    assert "Deleted 1 task(s), 0 artifact file(s) and 0 upload folder(s)" in first.output
    assert kept.read_text(encoding="utf-8") == "结果"
    with app.app_context():
        assert task(original.id) is None and task(retry).retry_of is None
        run_ = lease.start_stage(retry, 0, 1)
        lease.finish_stage(run_, {})
    second = run("prune", "--older-than", "0")
    assert "Deleted 1 task(s), 1 artifact file(s) and 0 upload folder(s)" in second.output
    assert not kept.exists() and not kept.parent.exists()
    assert run("prune", "--older-than", "-1").exit_code == 2
