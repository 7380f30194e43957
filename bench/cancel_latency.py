"""Cancel latency: 200 running demo tasks cancelled one by one (goal: p99 ≤ 1 s).

Measured from the cancel's HTTP response to the task reading `cancelled`,
with a real consumer running the stages (20 at a time, in 10 rounds).
The demo stage checks for a cancel every 100 ms.
"""

import time

from harness import figure, make_app, percentiles, start_consumer
from sqlalchemy import func, select

from app.extensions import db
from app.models import Task
from app.services import accounts, commands

ROUNDS, AT_ONCE = 10, 20


def state(task_id: str) -> str:
    value = db.session.scalar(select(Task.state).where(Task.id == task_id))
    db.session.commit()
    return value


def main() -> None:
    app, token = make_app()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    latencies = []
    with app.app_context():
        user = accounts.find_user("bench")
        consumer = start_consumer(app, AT_ONCE)
        for _ in range(ROUNDS):
            ids = [
                commands.submit(user, "demo", {"stages": 1, "seconds": 120}, 6, actor="b").id
                for _ in range(AT_ONCE)
            ]
            while (
                db.session.scalar(
                    select(func.count()).where(Task.id.in_(ids), Task.stage_running.is_(True))
                )
                < AT_ONCE
            ):
                db.session.commit()
                time.sleep(0.02)
            db.session.commit()
            for task_id in ids:
                response = client.post(f"/api/v1/tasks/{task_id}/cancel", json={}, headers=headers)
                answered = time.perf_counter()
                assert response.get_json()["state"] == "cancelling"
                while state(task_id) != "cancelled":
                    time.sleep(0.005)
                latencies.append(time.perf_counter() - answered)
        consumer.stop(graceful=True)
    p50, _, p99 = percentiles(latencies)
    figure(
        f"cancel latency: {len(latencies)} running tasks, response → cancelled: "
        f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
