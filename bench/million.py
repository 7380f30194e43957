"""A million tasks: 1,000,000 tasks across 100 users; pages, stats, bulk cancel and memory.

Seeded in bulk through Core (one-stage tasks with their stage row and
submit event): 860,000 succeeded, 30,000 failed, 10,000 cancelled and
100,000 queued, of four types. Then, through the Flask test client
(server-side times, in-process), each REQUESTS times: the task list's first
page, a deep cursor and each filter (as a user and as an admin), a detail,
the dashboard and GET /tasks/stats (goal p95 ≤ 50 ms each; their counts
folded and the day's past hours rolled up once after the seed, as the
reaper does, and on PostgreSQL the tables analysed, as autovacuum does);
one cancel-all
of the 100,000 queued tasks (goal ≤ 10 s); and the peak RSS of this process
(the web side) and of a real `taskdeck worker` started on the same data
(goal < 250 MiB each).
"""

import os
import resource
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from harness import figure, make_app, timed
from sqlalchemy import insert, select, text

from app.extensions import db
from app.models import Task, TaskEvent, TaskStage, User, new_task_id, utcnow
from app.services import accounts, counts, hourly
from app.services.queries import encode_cursor

TASKS = int(os.environ.get("BENCH_MILLION", 1_000_000))
USERS = 100
BATCH = 10_000
REQUESTS = 30
TYPES = ["demo", "media_index", "transcribe", "document"]
# Out of every 100 tasks: 86 succeeded, 3 failed, 1 cancelled, 10 queued.
STATES = ["succeeded"] * 86 + ["failed"] * 3 + ["cancelled"] + ["queued"] * 10


def seed(owners: list[int]) -> None:
    now = utcnow()
    for start in range(0, TASKS, BATCH):
        tasks, stages, events = [], [], []
        for n in range(start, min(start + BATCH, TASKS)):
            task_id, created = new_task_id(), now - timedelta(seconds=TASKS - n)
            state = STATES[n % len(STATES)]
            ended = created if state != "queued" else None
            tasks.append(
                {
                    "id": task_id,
                    "type": TYPES[n % len(TYPES)],
                    "state": state,
                    "owner_id": owners[n % USERS],
                    "priority": 6,
                    "params": {"message": f"任务 {n}"},
                    "stage_names": ["step"],
                    "stage_progress": 1.0 if ended else 0.0,
                    "dispatch_seq": 1,
                    "created_at": created,
                    "started_at": ended,
                    "finished_at": ended,
                    "heartbeat_at": created,
                    "retryable": state in ("failed", "cancelled"),
                }
            )
            stages.append(
                {
                    "task_id": task_id,
                    "position": 0,
                    "name": "step",
                    "state": "succeeded" if state == "succeeded" else "pending",
                    "started_at": ended,
                    "finished_at": ended,
                }
            )
            events.append(
                {
                    "task_id": task_id,
                    "at": created,
                    "actor": "bench",
                    "action": "submitted",
                    "to_state": "queued",
                }
            )
        db.session.execute(insert(Task), tasks)
        db.session.execute(insert(TaskStage), stages)
        db.session.execute(insert(TaskEvent), events)
        db.session.commit()


def worker_peak_rss_mib() -> float:
    """Start a real worker on this data, let it run its start-up reaper and a few tasks."""
    taskdeck = Path(sys.executable).with_name("taskdeck")
    worker = subprocess.Popen([str(taskdeck), "worker", "--workers", "4"])
    try:
        time.sleep(15)
        with open(f"/proc/{worker.pid}/status") as status:
            peak = next(line for line in status if line.startswith("VmHWM:"))
        return int(peak.split()[1]) / 1024
    finally:
        worker.terminate()
        worker.wait(timeout=60)


def main() -> None:
    app, admin_token = make_app()
    with app.app_context():
        owners = [accounts.create_user(f"user{i:03d}", "bench-password").id for i in range(USERS)]
        started = time.perf_counter()
        seed(owners)
        seeding = time.perf_counter() - started
        started = time.perf_counter()
        counts.fold()  # what the reaper does every TASKDECK_REAPER_INTERVAL
        folding = time.perf_counter() - started
        started = time.perf_counter()
        rolled = hourly.roll()  # ditto: sums each hour that is over once
        rolling = time.perf_counter() - started
        if db.engine.dialect.name == "postgresql":
            # Autovacuum would have analysed the tables long before a deck grew to a
            # million tasks; queried straight after a bulk load, the planner guesses.
            db.session.execute(text("ANALYZE"))
            db.session.commit()
        user = db.session.scalar(select(User).where(User.username == "user007"))
        token = accounts.create_token(user, "bench")[1]
        mine = db.session.scalars(
            select(Task)
            .where(Task.owner_id == user.id)
            .order_by(Task.created_at.desc(), Task.id.desc())
            .offset(int(TASKS / USERS * 0.9))
            .limit(1)
        ).one()
        deep_mine = encode_cursor(mine)
        every = db.session.scalars(
            select(Task)
            .order_by(Task.created_at.desc(), Task.id.desc())
            .offset(int(TASKS * 0.9))
            .limit(1)
        ).one()
        deep_all, detail_id = encode_cursor(every), mine.id
        db.session.remove()
    figure(f"million: seeded {TASKS} tasks for {USERS} users in {seeding:.0f} s")
    figure(f"million: the first fold of their {TASKS} count deltas took {folding:.1f} s")
    figure(f"million: the first roll-up of the day's {rolled} past hours took {rolling:.1f} s")
    api = app.test_client()
    as_user = {"Authorization": f"Bearer {token}"}
    as_admin = {"Authorization": f"Bearer {admin_token}"}
    rows = [
        ("list, first page", "/api/v1/tasks?limit=50"),
        ("list, deep cursor", "/api/v1/tasks?limit=50&cursor={deep}"),
        ("list, status=failed", "/api/v1/tasks?limit=50&status=failed"),
        ("list, status=queued", "/api/v1/tasks?limit=50&status=queued"),
        ("list, type=transcribe", "/api/v1/tasks?limit=50&type=transcribe"),
        ("list, q=任务 12345", "/api/v1/tasks?limit=50&q=任务%2012345"),
        ("detail", f"/api/v1/tasks/{detail_id}"),
        ("stats (dashboard counts)", "/api/v1/tasks/stats"),
    ]
    for who, headers, deep in (("user", as_user, deep_mine), ("admin", as_admin, deep_all)):
        for label, path in rows:
            took = timed(api, path.format(deep=deep), headers, REQUESTS)
            figure(f"million: {label} ({who}): {took}")
    page = app.test_client()
    csrf = page.get("/login").data.decode().split('name="csrf_token" value="')[1].split('"')[0]
    page.post(
        "/login", data={"username": "bench", "password": "bench-password", "csrf_token": csrf}
    )
    figure(f"million: HTML dashboard (admin): {timed(page, '/', None, REQUESTS)}")
    figure(f"million: HTML list, first page (admin): {timed(page, '/tasks', None, REQUESTS)}")

    started = time.perf_counter()
    response = api.post("/api/v1/tasks/cancel-all", json={}, headers=as_admin)
    wall = time.perf_counter() - started
    cancelled = response.get_json()["result"]["cancelled"]
    figure(f"million: cancel-all of {cancelled} queued tasks in {wall:.2f} s")
    web = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    worker = worker_peak_rss_mib()
    figure(f"million: peak RSS, web (this process) {web:.0f} MiB, worker {worker:.0f} MiB")


if __name__ == "__main__":
    main()
