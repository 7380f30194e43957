"""A real Huey consumer (worker threads) over a real SQLite queue file and database."""

from sqlalchemy import select

from app.extensions import db
from app.models import Task, TaskEvent
from app.services import dispatch
from tests.conftest import wait_for

TERMINAL = ("succeeded", "failed", "cancelled")


def submit(api_as, priority=6, **params):
    body = {"type": "demo", "params": {"seconds": 0, **params}, "priority": priority}
    response = api_as.post("/tasks", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def state(api_as, task_id):
    return api_as.get(f"/tasks/{task_id}").get_json()


def wait_state(api_as, task_id, *states, timeout=15):
    return wait_for(lambda: (t := state(api_as, task_id))["state"] in states and t, timeout=timeout)


def stage_starts(app, task_id):
    with app.app_context():
        return db.session.scalars(
            select(TaskEvent.stage)
            .where(TaskEvent.task_id == task_id, TaskEvent.action == "stage_started")
            .order_by(TaskEvent.id)
        ).all()


def test_a_demo_task_runs_every_stage_and_records_them(api, app, worker):
    worker(workers=2)
    alice = api("alice")
    task_id = submit(alice, stages=3, seconds=0.3, message="第一阶段")
    seen_progress = wait_for(lambda: 0 < state(alice, task_id)["progress"] < 1)
    assert seen_progress
    done = wait_state(alice, task_id, *TERMINAL)
    assert done["state"] == "succeeded" and done["progress"] == 1.0
    assert [s["state"] for s in done["stages"]] == ["succeeded"] * 3
    assert done["stages"][2]["output"] == {
        "stage": 3,
        "seconds": 0.3,
        "message": "第一阶段",
        "after": ["step 1", "step 2"],
    }
    assert stage_starts(app, task_id) == ["step 1", "step 2", "step 3"]
    assert done["progress_message"] == "第一阶段"


def test_a_queued_task_cancelled_before_a_worker_is_free_never_starts(api, app, worker):
    worker(workers=1)
    alice = api("alice")
    blocker = submit(alice, stages=1, seconds=30)
    wait_state(alice, blocker, "running")
    waiting = submit(alice, stages=2, seconds=0)
    answer = alice.post(f"/tasks/{waiting}/cancel", json={}).get_json()
    assert (answer["previous_state"], answer["state"]) == ("queued", "cancelled")
    alice.post(f"/tasks/{blocker}/cancel", json={})
    wait_state(alice, blocker, "cancelled")
    after = submit(alice, stages=1, seconds=0)  # proves the worker went past `waiting`
    wait_state(alice, after, "succeeded")
    final = state(alice, waiting)
    assert final["state"] == "cancelled" and final["started_at"] is None
    assert stage_starts(app, waiting) == []
    assert {s["state"] for s in final["stages"]} == {"skipped"}


def test_a_running_task_cancelled_mid_stage_stops_inside_the_stage(api, app, worker):
    consumer = worker(workers=1)
    alice = api("alice")
    task_id = submit(alice, stages=3, seconds=20)
    wait_for(lambda: state(alice, task_id)["progress"] > 0)
    answer = alice.post(f"/tasks/{task_id}/cancel", json={"reason": "too slow"}).get_json()
    assert (answer["previous_state"], answer["state"]) == ("running", "cancelling")
    wait_state(alice, task_id, "cancelled")
    consumer.stop(graceful=True)  # whatever it was given runs, or stays in the queue
    final = state(alice, task_id)
    # Stopped at a check inside its 20 s stage: no checkpoint, not at 100 %.
    assert final["stages"][0]["output"] is None and final["progress"] < 1 / 3
    assert [s["state"] for s in final["stages"]] == ["cancelled", "skipped", "skipped"]
    assert stage_starts(app, task_id) == ["step 1"]
    with app.app_context():  # and no message for a next stage was sent
        pending = dispatch.stage_queue().pending_message_ids()
    assert not [m for m in pending if m.startswith(task_id)]
    assert [e["action"] for e in final["events"][-2:]] == ["cancel_requested", "cancelled"]


def test_a_failed_task_retried_resumes_at_the_failed_stage(api, app, worker):
    worker(workers=1)
    alice = api("alice")
    task_id = submit(alice, stages=4, fail_at=3)
    failed = wait_state(alice, task_id, *TERMINAL)
    assert (failed["state"], failed["error_code"]) == ("failed", "stage_error")
    assert failed["error_message"] == "DemoFailure: Demo failure at stage 3"
    assert [s["state"] for s in failed["stages"]] == ["succeeded", "succeeded", "failed", "skipped"]

    new_id = alice.post(f"/tasks/{task_id}/retry", json={}).get_json()["new_task_id"]
    resumed = wait_state(alice, new_id, *TERMINAL)
    assert resumed["state"] == "succeeded" and resumed["retry_of"] == task_id
    assert [s["reused"] for s in resumed["stages"]] == [True, True, False, False]
    reused_outputs = [s["output"] for s in resumed["stages"][:2]]
    assert reused_outputs == [s["output"] for s in failed["stages"][:2]]
    assert stage_starts(app, new_id) == ["step 3", "step 4"]
    assert resumed["stages"][3]["output"]["after"] == ["step 1", "step 2", "step 3"]


def test_retry_from_scratch_runs_all_stages_again(api, app, worker):
    worker(workers=1)
    alice = api("alice")
    task_id = submit(alice, stages=3, fail_at=2)
    wait_state(alice, task_id, "failed")
    new_id = alice.post(f"/tasks/{task_id}/retry", json={"from_scratch": True}).get_json()[
        "new_task_id"
    ]
    done = wait_state(alice, new_id, *TERMINAL)
    assert done["state"] == "succeeded"
    assert [s["reused"] for s in done["stages"]] == [False, False, False]
    assert stage_starts(app, new_id) == ["step 1", "step 2", "step 3"]


def test_priority_order_is_honoured_with_one_worker(api, app, worker):
    alice = api("alice")
    ids = {p: submit(alice, priority=p, stages=1) for p in (9, 3, 11, 0, 6)}
    moved = submit(alice, priority=10, stages=1)
    alice.post(f"/tasks/{moved}/priority", json={"priority": 1})
    worker(workers=1)
    for task_id in [*ids.values(), moved]:
        wait_state(alice, task_id, "succeeded")
    with app.app_context():
        started = db.session.scalars(select(Task).order_by(Task.started_at)).all()
        assert [t.id for t in started] == [ids[0], moved, ids[3], ids[6], ids[9], ids[11]]


def test_cancel_all_and_by_type_with_a_running_worker(api, app, worker):
    worker(workers=1)
    alice = api("alice")
    running = submit(alice, stages=1, seconds=30)
    wait_state(alice, running, "running")
    queued = [submit(alice, stages=1, seconds=0) for _ in range(3)]
    answer = alice.post("/tasks/cancel-by-type", json={"task_type": "demo"}).get_json()
    assert answer["result"] == {"cancelled": 3, "failed": 1, "total": 4, "task_type": "demo"}
    assert state(alice, running)["state"] == "running"
    more = submit(alice, stages=1, seconds=0)
    answer = alice.post("/tasks/cancel-all", json={"cancel_running": True}).get_json()
    assert answer["result"] == {"cancelled": 2, "failed": 0, "total": 2}
    wait_state(alice, running, "cancelled", timeout=2)
    for task_id in [*queued, more]:
        assert state(alice, task_id)["state"] == "cancelled"
        assert stage_starts(app, task_id) == []
