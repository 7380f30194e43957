"""Every transition of the service layer, driven by hand (no consumer).

Queue messages are inspected in Huey itself.
"""

import threading

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Task, TaskEvent
from app.queue import huey_priority, message_id
from app.schemas import outputs
from app.services import cancelling, commands, lease
from app.services.errors import Forbidden, InvalidRequest, NotFound, Unprocessable
from tests.drive import (
    events,
    live_messages,
    messages,
    run_stage_by_hand,
    statements_sent,
    submit,
    task,
)


def test_submit_stores_task_stages_event_and_enqueues_first_stage(ctx, users):
    t = submit(users("alice"), priority=2)
    assert t.state == "queued" and t.stage_names == ["step 1", "step 2", "step 3"]
    assert [s.state for s in task(t.id).stages] == ["pending"] * 3
    assert events(t.id) == [("submitted", None, "queued")]
    assert messages() == [(message_id(t.id, 0, 1), (t.id, 0, 1), huey_priority(2, started=False))]


def test_submit_answers_the_stored_task_without_reading_it_back(ctx, users):
    """The task submit returns is the row its INSERT gave back: no SELECT of it after."""
    alice = users("alice")
    with statements_sent() as sent:
        returned = submit(alice, priority=2, message="任务 一")
    assert not [sql for sql, _ in sent if sql.lstrip().upper().startswith("SELECT")]
    # A task of the Session: its relationships load as a loaded task's do.
    assert [s.name for s in returned.stages] == ["step 1", "step 2", "step 3"]
    shape = outputs.Task.model_validate(returned).model_dump()
    db.session.expunge_all()
    assert shape == outputs.Task.model_validate(task(returned.id)).model_dump()
    assert shape["params"]["message"] == "任务 一" and shape["owner"] == "alice"


@pytest.mark.parametrize(
    ("task_type", "params", "priority", "error", "detail"),
    [
        ("nope", {}, 6, Unprocessable, "Unknown task type 'nope'"),
        ("demo", {"stages": 0}, 6, Unprocessable, "stages: 0 is less than the minimum of 1"),
        ("demo", {"bogus": 1}, 6, Unprocessable, "'bogus' was unexpected"),
        ("demo", [], 6, Unprocessable, "params: must be an object"),
        ("demo", {}, 12, InvalidRequest, "priority must be an integer from 0"),
        ("demo", {}, True, InvalidRequest, "priority must be an integer from 0"),
    ],
)
def test_submit_refuses_bad_input_and_stores_nothing(
    ctx, users, task_type, params, priority, error, detail
):
    with pytest.raises(error) as caught:
        commands.submit(users("alice"), task_type, params, priority, actor="alice")
    assert detail in caught.value.detail
    assert db.session.scalar(select(db.func.count(Task.id))) == 0
    assert messages() == []


def test_stages_run_in_order_and_the_last_one_succeeds_the_task(ctx, users):
    t = submit(users("alice"))
    for index in range(3):
        run = run_stage_by_hand(t.id)
        assert run.stage_index == index
        assert set(run.outputs) == {f"step {i + 1}" for i in range(index)}
    done = task(t.id)
    assert done.state == "succeeded" and done.progress == 1.0 and done.finished_at
    assert [s.output for s in done.stages] == [{"done": f"step {i}"} for i in (1, 2, 3)]
    assert events(t.id) == [
        ("submitted", None, "queued"),
        ("stage_started", "queued", "running"),
        ("stage_finished", "running", "running"),
        ("stage_started", "running", "running"),
        ("stage_finished", "running", "running"),
        ("stage_started", "running", "running"),
        ("stage_finished", "running", "succeeded"),
    ]
    # One message per stage, each with the next dispatch number; a started
    # task's next stage goes before new tasks of its priority.
    assert sorted((m[1], m[2]) for m in messages()) == [
        ((t.id, 0, 1), huey_priority(6, started=False)),
        ((t.id, 1, 2), huey_priority(6, started=True)),
        ((t.id, 2, 3), huey_priority(6, started=True)),
    ]


def test_a_stale_or_repeated_message_does_not_start_a_stage(ctx, users):
    t = submit(users("alice"))
    assert lease.start_stage(t.id, 0, 99) is None  # superseded dispatch number
    assert lease.start_stage(t.id, 5, 1) is None  # no such stage
    assert lease.start_stage("missing", 0, 1) is None
    run = lease.start_stage(t.id, 0, 1)
    assert run is not None
    assert lease.start_stage(t.id, 0, 1) is None  # delivered twice: runs once
    lease.finish_stage(run, {})
    lease.finish_stage(run, {"late": True})  # a second finish changes nothing
    assert task(t.id).stage_index == 1 and task(t.id).stages[0].output == {}


def test_a_failing_stage_fails_the_task_and_skips_the_rest(ctx, users):
    t = submit(users("alice"))
    run_stage_by_hand(t.id)
    run_stage_by_hand(t.id, fail=True)
    failed = task(t.id)
    assert (failed.state, failed.error_code, failed.error_message) == (
        "failed",
        "stage_error",
        "boom",
    )
    assert failed.retryable is True
    assert [s.state for s in failed.stages] == ["succeeded", "failed", "skipped"]
    assert events(t.id)[-1] == ("stage_failed", "running", "failed")


def test_cancel_queued_is_immediate_and_its_message_is_dropped(ctx, users):
    alice = users("alice")
    t = submit(alice)
    outcome = cancelling.request_cancel(alice, t.id, "changed my mind")
    assert (outcome.previous_state, outcome.state) == ("queued", "cancelled")
    assert [m[0] for m in messages()] == [message_id(t.id, 0, 1)] and live_messages() == []
    assert lease.start_stage(t.id, 0, 1) is None  # what the worker that takes it does
    cancelled = task(t.id)
    assert cancelled.started_at is None and cancelled.finished_at is not None
    assert [s.state for s in cancelled.stages] == ["skipped"] * 3
    event = db.session.scalars(select(TaskEvent).where(TaskEvent.task_id == t.id)).all()[-1]
    assert (event.action, event.actor, event.reason) == ("cancelled", "alice", "changed my mind")


def test_cancel_between_stages_is_immediate(ctx, users):
    alice = users("alice")
    t = submit(alice)
    run_stage_by_hand(t.id)  # stage 2 now waits in the queue
    outcome = cancelling.request_cancel(alice, t.id)
    assert (outcome.previous_state, outcome.state) == ("running", "cancelled")
    assert message_id(t.id, 1, 2) in [m[0] for m in messages()] and live_messages() == []
    assert lease.start_stage(t.id, 1, 2) is None
    assert [s.state for s in task(t.id).stages] == ["succeeded", "skipped", "skipped"]


def test_cancel_mid_stage_asks_the_worker_which_then_stops(ctx, users):
    alice = users("alice")
    t = submit(alice)
    run = lease.start_stage(t.id, 0, 1)
    outcome = cancelling.request_cancel(alice, t.id)
    assert (outcome.previous_state, outcome.state) == ("running", "cancelling")
    assert lease.should_stop(run)
    again = cancelling.request_cancel(alice, t.id)
    assert (again.previous_state, again.state) == ("cancelling", "cancelling")
    lease.stop_cancelled_stage(run)
    stopped = task(t.id)
    assert stopped.state == "cancelled" and not stopped.stage_running
    assert [s.state for s in stopped.stages] == ["cancelled", "skipped", "skipped"]
    assert events(t.id)[-2:] == [
        ("cancel_requested", "running", "cancelling"),
        ("cancelled", "cancelling", "cancelled"),
    ]


def test_a_stage_that_ends_while_cancelling_keeps_its_checkpoint_and_cancels(ctx, users):
    alice = users("alice")
    t = submit(alice)
    run = lease.start_stage(t.id, 0, 1)
    cancelling.request_cancel(alice, t.id)
    lease.finish_stage(run, {"kept": True})
    ended = task(t.id)
    assert ended.state == "cancelled"
    assert ended.stages[0].state == "succeeded" and ended.stages[0].output == {"kept": True}
    assert len(messages()) == 1  # no next stage was enqueued


def test_a_stage_that_raises_while_cancelling_ends_cancelled(ctx, users):
    alice = users("alice")
    t = submit(alice)
    run = lease.start_stage(t.id, 0, 1)
    cancelling.request_cancel(alice, t.id)
    lease.fail_stage(run, "stage_error", "interrupted")
    assert task(t.id).state == "cancelled" and task(t.id).error_code is None


@pytest.mark.parametrize("final_state", ["succeeded", "failed", "cancelled"])
def test_finished_tasks_cannot_be_cancelled(ctx, users, final_state):
    alice = users("alice")
    t = submit(alice, stages=1)
    if final_state == "cancelled":
        cancelling.request_cancel(alice, t.id)
    else:
        run_stage_by_hand(t.id, fail=final_state == "failed")
    with pytest.raises(InvalidRequest) as caught:
        cancelling.request_cancel(alice, t.id)
    assert caught.value.detail == f"Task in state '{final_state}' cannot be cancelled"


def test_retry_resumes_after_the_last_completed_stage_reusing_checkpoints(ctx, users):
    alice = users("alice")
    t = submit(alice, priority=3)
    run_stage_by_hand(t.id)
    run_stage_by_hand(t.id, fail=True)
    outcome = commands.retry(alice, t.id)
    new = task(outcome.new_task_id)
    assert (new.state, new.retry_of, new.priority, new.params) == ("queued", t.id, 3, t.params)
    assert (new.stage_index, new.resume_index, new.retry_number) == (1, 1, 1)
    assert [(s.state, s.reused, s.output) for s in new.stages] == [
        ("succeeded", True, {"done": "step 1"}),
        ("pending", False, None),
        ("pending", False, None),
    ]
    assert messages()[-1][1] == (new.id, 1, 1)
    assert task(t.id).retried_by == new.id
    run = lease.start_stage(new.id, 1, 1)
    assert run.outputs == {"step 1": {"done": "step 1"}} and run.retry_number == 1


def test_retry_from_scratch_runs_every_stage_again(ctx, users):
    alice = users("alice")
    t = submit(alice)
    run_stage_by_hand(t.id)
    cancelling.request_cancel(alice, t.id)
    new = task(commands.retry(alice, t.id, from_scratch=True).new_task_id)
    assert new.stage_index == 0 and [s.state for s in new.stages] == ["pending"] * 3


def test_retry_of_a_task_whose_every_stage_finished_before_its_cancel_runs_the_last_again(
    ctx, users
):
    """Cancelled while its last stage ran, which then finished: nothing left to resume."""
    alice = users("alice")
    t = submit(alice, stages=2)
    run_stage_by_hand(t.id)
    last = lease.start_stage(t.id, 1, task(t.id).dispatch_seq)
    cancelling.request_cancel(alice, t.id)
    lease.finish_stage(last, {"done": "step 2"})  # the stage ends; the cancel wins the task
    assert task(t.id).state == "cancelled"
    assert [s.state for s in task(t.id).stages] == ["succeeded", "succeeded"]

    new = task(commands.retry(alice, t.id).new_task_id)
    assert (new.stage_index, new.resume_index) == (1, 1)  # the last stage, not past the end
    assert [(s.state, s.reused) for s in new.stages] == [("succeeded", True), ("pending", False)]
    run_stage_by_hand(new.id)
    assert task(new.id).state == "succeeded"


def test_retry_is_refused_for_active_and_already_retried_tasks(ctx, users):
    alice = users("alice")
    t = submit(alice)
    with pytest.raises(InvalidRequest, match="state 'queued' cannot be retried"):
        commands.retry(alice, t.id)
    cancelling.request_cancel(alice, t.id)
    first = commands.retry(alice, t.id)
    with pytest.raises(InvalidRequest, match=f"already retried as {first.new_task_id}"):
        commands.retry(alice, t.id)


def test_priority_change_re_enqueues_with_the_same_task_id(ctx, users):
    alice = users("alice")
    t = submit(alice, priority=9)
    changed = commands.set_priority(alice, t.id, 0)
    assert changed.priority == 0 and changed.dispatch_seq == 2
    assert message_id(t.id, 0, 1) in [m[0] for m in messages()]  # stays queued, but stale
    assert live_messages() == [(message_id(t.id, 0, 2), (t.id, 0, 2), huey_priority(0, False))]
    assert lease.start_stage(t.id, 0, 1) is None  # the old message is dead
    assert lease.start_stage(t.id, 0, 2) is not None
    with pytest.raises(InvalidRequest, match="only be changed while the task is queued"):
        commands.set_priority(alice, t.id, 3)
    assert events(t.id)[1] == ("priority_changed", "queued", "queued")


@pytest.mark.parametrize("bad", [-1, 12, " 3", "٣", 2.5, None])
def test_priority_out_of_range_is_refused(ctx, users, bad):
    alice = users("alice")
    t = submit(alice)
    with pytest.raises(InvalidRequest, match="priority must be an integer"):
        commands.set_priority(alice, t.id, bad)


def test_other_users_get_403_admins_may_act_and_unknown_ids_404(ctx, users):
    alice, bob, root = users("alice"), users("bob"), users("root")
    t = submit(alice)
    for action in (
        lambda who: cancelling.request_cancel(who, t.id),
        lambda who: commands.set_priority(who, t.id, 1),
        lambda who: commands.retry(who, t.id),
    ):
        with pytest.raises(Forbidden):
            action(bob)
    with pytest.raises(NotFound):
        cancelling.request_cancel(alice, "no-such-task")
    assert cancelling.request_cancel(root, t.id).state == "cancelled"
    assert commands.retry(root, t.id).new_task_id


def race_cancels_against_finish(app, users, run, cancels=8):
    """Start `cancels` cancel requests and the worker's finish at the same instant."""
    barrier = threading.Barrier(cancels + 1)
    outcomes = []

    def cancel():
        with app.app_context():
            barrier.wait()
            try:
                outcomes.append(cancelling.request_cancel(users("alice"), run.task_id).state)
            except InvalidRequest:
                outcomes.append("refused")

    def finish():
        with app.app_context():
            barrier.wait()
            lease.finish_stage(run, {})

    threads = [threading.Thread(target=cancel) for _ in range(cancels)]
    threads.append(threading.Thread(target=finish))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_cancel_racing_the_stage_end_has_exactly_one_winner(app, users):
    """Eight cancels and the worker's finish run at once; the task ends in one consistent state."""
    for _ in range(10):
        with app.app_context():
            task_id = submit(users("alice"), stages=1).id
            run = lease.start_stage(task_id, 0, 1)
        outcomes = race_cancels_against_finish(app, users, run)
        with app.app_context():
            final = task(task_id)
            trail = events(task_id)
            terminal = [e for e in trail if e[2] in ("succeeded", "cancelled")]
            assert len(terminal) == 1, trail
            assert final.state == terminal[0][2] and not final.stage_running
            requests = [e for e in trail if e[0] == "cancel_requested"]
            assert len(requests) <= 1
            if final.state == "succeeded":
                assert not requests and set(outcomes) == {"refused"}
            else:
                assert requests and "cancelling" in outcomes
