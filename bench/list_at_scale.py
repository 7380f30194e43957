"""List at scale: 100,000 tasks across 20 users; list, page and detail times (goal p95 ≤ 50 ms).

Tasks are bulk-seeded through the models (finished 3-stage demo tasks with
their stage rows and events). Each page is requested REQUESTS times through
the Flask test client, as an ordinary user (who owns 5,000) and as an admin
(who sees all): first page and a deep cursor page, JSON and HTML, and the
detail page. Times are server-side, in-process.
"""

import time
from datetime import timedelta

from harness import figure, make_app, timed
from sqlalchemy import insert, select

from app.extensions import db
from app.models import Task, TaskEvent, TaskStage, User, new_task_id, utcnow
from app.services import accounts
from app.services.queries import encode_cursor

TASKS = 100_000
USERS = 20
BATCH = 5_000
REQUESTS = 100
STAGES = ["step 1", "step 2", "step 3"]


def seed() -> None:
    owners = [accounts.create_user(f"user{i:02d}", "bench-password").id for i in range(USERS)]
    now = utcnow()
    for start in range(0, TASKS, BATCH):
        tasks, stages, events = [], [], []
        for n in range(start, min(start + BATCH, TASKS)):
            task_id, created = new_task_id(), now - timedelta(seconds=TASKS - n)
            tasks.append(
                dict(
                    id=task_id,
                    type="demo",
                    state="succeeded",
                    owner_id=owners[n % USERS],
                    priority=6,
                    params={"stages": 3, "seconds": 0, "message": f"任务 {n}"},
                    stage_names=STAGES,
                    stage_index=2,
                    stage_running=False,
                    stage_progress=1.0,
                    resume_index=0,
                    dispatch_seq=3,
                    retryable=False,
                    retry_number=0,
                    created_at=created,
                    started_at=created,
                    finished_at=created,
                    heartbeat_at=created,
                    lost_attempts=0,
                )
            )
            stages += [
                dict(
                    task_id=task_id,
                    position=i,
                    name=name,
                    state="succeeded",
                    started_at=created,
                    finished_at=created,
                    output={"stage": i + 1},
                    reused=False,
                )
                for i, name in enumerate(STAGES)
            ]
            events.append(
                dict(
                    task_id=task_id,
                    at=created,
                    actor="bench",
                    action="submitted",
                    to_state="queued",
                )
            )
        db.session.execute(insert(Task), tasks)
        db.session.execute(insert(TaskStage), stages)
        db.session.execute(insert(TaskEvent), events)
        db.session.commit()


def main() -> None:
    app, _ = make_app()
    with app.app_context():
        started = time.perf_counter()
        seed()
        seeding = time.perf_counter() - started
        user = db.session.scalar(select(User).where(User.username == "user07"))
        token = accounts.create_token(user, "bench")[1]
        admin_token = accounts.create_token(accounts.find_user("bench"), "bench")[1]
        mine = db.session.scalars(
            select(Task).where(Task.owner_id == user.id).order_by(Task.created_at.desc())
        ).all()
        deep_mine = encode_cursor(mine[int(len(mine) * 0.9)])
        every = db.session.scalars(
            select(Task).order_by(Task.created_at.desc(), Task.id.desc()).offset(90_000).limit(1)
        ).one()
        deep_all = encode_cursor(every)
        detail_id = mine[len(mine) // 2].id
    figure(f"list at scale: seeded {TASKS} tasks for {USERS} users in {seeding:.0f} s")
    api = app.test_client()
    as_user = {"Authorization": f"Bearer {token}"}
    as_admin = {"Authorization": f"Bearer {admin_token}"}
    page = app.test_client()
    csrf = page.get("/login").data.decode().split('name="csrf_token" value="')[1].split('"')[0]
    page.post(
        "/login", data={"username": "user07", "password": "bench-password", "csrf_token": csrf}
    )
    rows = [
        ("API list, first page (user)", api, "/api/v1/tasks?limit=50", as_user),
        (
            "API list, deep cursor (user)",
            api,
            f"/api/v1/tasks?limit=50&cursor={deep_mine}",
            as_user,
        ),
        ("API list, first page (admin, all 100k)", api, "/api/v1/tasks?limit=50", as_admin),
        (
            "API list, deep cursor (admin)",
            api,
            f"/api/v1/tasks?limit=50&cursor={deep_all}",
            as_admin,
        ),
        ("API detail", api, f"/api/v1/tasks/{detail_id}", as_user),
        ("HTML list, first page", page, "/tasks", None),
        ("HTML list, deep cursor", page, f"/tasks?cursor={deep_mine}", None),
        ("HTML detail", page, f"/tasks/{detail_id}", None),
    ]
    for label, client, path, headers in rows:
        figure(f"list at scale: {label}: {timed(client, path, headers, REQUESTS)}")


if __name__ == "__main__":
    main()
