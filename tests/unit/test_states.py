"""The state table is the one declaration: the code refuses other moves, the README shows it."""

from pathlib import Path

import pytest

from app import constants as c
from app.extensions import db
from app.services import accounts, states, transitions
from app.services.errors import InvalidRequest
from tests.drive import events, submit, task

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_diagram_is_the_table():
    block = f"```mermaid\n{states.mermaid()}\n```"
    assert block in README.read_text(encoding="utf-8"), (
        "README's state diagram is out of date; paste:\n" + block
    )


def test_rules_derived_from_the_table():
    assert states.STATES == (
        "queued",
        "running",
        "cancelling",
        "succeeded",
        "partial_success",
        "failed",
        "cancelled",
    )
    assert states.TERMINAL_STATES == ("succeeded", "partial_success", "failed", "cancelled")
    assert states.CANCELLABLE_STATES == ("queued", "running")
    assert set(states.RETRYABLE_STATES) == {"failed", "cancelled", "partial_success"}


@pytest.mark.parametrize(
    ("action", "source", "target"),
    [
        (c.EV_CANCELLED, c.SUCCEEDED, c.CANCELLED),  # a finished task cannot be cancelled
        (c.EV_STAGE_STARTED, c.CANCELLED, c.RUNNING),  # nor restarted
        (c.EV_SUBMITTED, c.QUEUED, c.QUEUED),  # the right states, the wrong action
        (c.EV_STAGE_FINISHED, c.RUNNING, c.SUCCEEDED),  # the worker's move, made by a user
    ],
)
def test_a_move_the_table_lacks_is_refused_before_anything_is_written(
    app, users, action, source, target
):
    with app.app_context():
        t = submit(users("alice"))
        db.session.execute(transitions.TASKS.update().values(state=source))
        db.session.commit()
        with pytest.raises(states.IllegalMove):
            transitions.move(t.id, source, target, action=action, actor="alice")
        db.session.rollback()
        assert task(t.id).state == source
        assert events(t.id) == [("submitted", None, "queued")]


def test_the_worker_and_the_reaper_sign_as_themselves_and_no_user_may_take_their_names(app):
    assert (states.kind_of("worker"), states.kind_of("system")) == (states.WORKER, states.SYSTEM)
    assert states.kind_of("alice") == states.USER
    with app.app_context():
        for name in ("worker", "system"):
            with pytest.raises(InvalidRequest, match="already exists"):
                accounts.create_user(name, "long-enough-password")
