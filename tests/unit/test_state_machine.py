"""Property-based: random sequences of API actions and worker steps keep the state machine sound.

Hypothesis drives submits, starts, finishes, failures, cancels, cancel-alls, retries,
priority changes, hand-backs and lost workers (reaped) in any order, and
after every step checks the invariants: a terminal task never changes, a
task cancelled while queued never started a stage, events form a valid
path of the state diagram, one stage at most is running, and `stats`
agrees with the list.
"""

import tempfile
from datetime import timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, multiple, rule
from sqlalchemy import select, update

from app import create_app
from app.constants import CANCELLED, CANCELLING, FAILED, QUEUED, RUNNING
from app.extensions import db
from app.models import Task, TaskEvent, utcnow
from app.services import (
    accounts,
    bulk,
    cancelling,
    commands,
    dispatch,
    lease,
    queries,
    recovery,
    states,
)
from app.services.errors import InvalidRequest
from tests import backends
from tests.conftest import app_settings

_APP = {}


def shared_app():
    """One app and SQLite file for all examples (each example empties the tables)."""
    if "app" not in _APP:
        folder = tempfile.mkdtemp(prefix="taskdeck-sm-")
        _APP["app"] = create_app(app_settings(folder, backends.fresh_database(folder)))
        with _APP["app"].app_context():
            db.create_all()
    return _APP["app"]


class TaskLifecycle(RuleBasedStateMachine):
    tasks = Bundle("tasks")

    def __init__(self):
        super().__init__()
        self.context = shared_app().app_context()
        self.context.push()
        dispatch.stage_queue().huey.flush()
        for table in reversed(db.metadata.sorted_tables):
            db.session.execute(table.delete())
        db.session.commit()
        self.alice = accounts.create_user("alice", "alice-password")
        self.root = accounts.create_user("root", "root-password", is_admin=True)
        self.runs: dict[str, lease.StageRun] = {}  # stages a "worker" holds
        self.ended: dict[str, str] = {}  # terminal state first seen per task

    def teardown(self):
        db.session.remove()
        self.context.pop()

    def _task(self, task_id) -> Task:
        return db.session.get(Task, task_id, populate_existing=True)

    # --- clients --------------------------------------------------------

    @rule(target=tasks, stages=st.integers(1, 3), priority=st.integers(0, 11))
    def submit(self, stages, priority):
        params = {"stages": stages, "seconds": 0}
        return commands.submit(self.alice, "demo", params, priority, actor="alice").id

    @rule(task_id=tasks)
    def cancel(self, task_id):
        try:
            cancelling.request_cancel(self.alice, task_id, "hypothesis")
        except InvalidRequest:
            assert self._task(task_id).state in states.TERMINAL_STATES

    @rule(cancel_running=st.booleans())
    def cancel_all(self, cancel_running):
        result = bulk.cancel_all(self.alice, cancel_running)
        assert result["cancelled"] + result["failed"] == result["total"]
        left = {QUEUED, RUNNING} if cancel_running else {QUEUED}
        states = db.session.scalars(select(Task.state))
        assert not left.intersection(states)

    @rule(target=tasks, task_id=tasks, from_scratch=st.booleans())
    def retry(self, task_id, from_scratch):
        try:
            return commands.retry(self.alice, task_id, from_scratch).new_task_id
        except InvalidRequest:
            task = self._task(task_id)
            assert task.state not in (FAILED, CANCELLED) or task.retried_by
            return multiple()

    @rule(task_id=tasks, priority=st.integers(0, 11))
    def change_priority(self, task_id, priority):
        try:
            commands.set_priority(self.alice, task_id, priority)
        except InvalidRequest:
            assert self._task(task_id).state != QUEUED

    # --- workers --------------------------------------------------------

    @rule(task_id=tasks)
    def start_stage(self, task_id):
        task = self._task(task_id)
        run = lease.start_stage(task_id, task.stage_index, task.dispatch_seq)
        if run is not None:
            assert task_id not in self.runs or self.runs[task_id].dispatch_seq != run.dispatch_seq
            self.runs[task_id] = run

    @rule(task_id=tasks, outcome=st.sampled_from(["finish", "fail", "stop_if_asked"]))
    def end_stage(self, task_id, outcome):
        run = self.runs.pop(task_id, None)
        if run is None:
            return
        if outcome == "finish":
            lease.finish_stage(run, {"stage": run.stage_name})
        elif outcome == "fail":
            lease.fail_stage(run, "stage_error", "boom")
        elif lease.should_stop(run):
            lease.stop_cancelled_stage(run)
        else:
            self.runs[task_id] = run  # nothing asked it to stop: it keeps running

    @rule(task_id=tasks)
    def shut_down_worker(self, task_id):
        run = self.runs.pop(task_id, None)
        if run is not None:
            recovery.hand_back_stage(run)

    @rule(task_id=tasks)
    def lose_worker(self, task_id):
        """The worker goes silent (kill -9); it keeps its stale run, as a zombie would."""
        db.session.execute(
            update(Task)
            .where(Task.id == task_id)
            .values(heartbeat_at=utcnow() - timedelta(minutes=5))
        )
        db.session.commit()
        recovery.reap(timeout=60, max_lost=3)

    # --- invariants -----------------------------------------------------

    @invariant()
    def terminal_tasks_never_change(self):
        for task in db.session.scalars(select(Task).execution_options(populate_existing=True)):
            if task.id in self.ended:
                assert task.state == self.ended[task.id], task.id
            elif task.state in states.TERMINAL_STATES:
                self.ended[task.id] = task.state

    @invariant()
    def events_form_a_valid_path(self):
        trails: dict[str, list] = {}
        for event in db.session.scalars(select(TaskEvent).order_by(TaskEvent.id)):
            trails.setdefault(event.task_id, []).append(event)
        for task in db.session.scalars(select(Task)):
            state = None
            for event in trails[task.id]:
                assert event.from_state == state, (task.id, event.action)
                move = (event.action, event.from_state, event.to_state)
                assert move in states.ALLOWED, move
                state = event.to_state
            assert state == task.state
            if any(e.action == "cancelled" and e.from_state == QUEUED for e in trails[task.id]):
                assert not any(e.action == "stage_started" for e in trails[task.id])
                # A retry's reused stages carry the times of the run that did them.
                assert all(stage.started_at is None for stage in task.stages if not stage.reused)

    @invariant()
    def at_most_one_stage_runs_and_only_while_flagged(self):
        for task in db.session.scalars(select(Task)):
            running = [s.position for s in task.stages if s.state == "running"]
            if task.stage_running:
                assert running == [task.stage_index] and task.state in (RUNNING, CANCELLING)
            else:
                assert running == []

    @invariant()
    def stats_agree_with_the_list(self):
        listed, _ = queries.list_tasks(self.root, limit=1000)
        by_state = queries.stats(self.root)["by_state"]
        for state, count in by_state.items():
            assert count == sum(1 for t in listed if t.state == state), state


TaskLifecycle.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_task_lifecycle = TaskLifecycle.TestCase
