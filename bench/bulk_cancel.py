"""Bulk cancel: 10,000 queued tasks cancelled by one cancel-all call (goal: ≤ 2 s)."""

import time

from harness import figure, make_app

from app.extensions import db
from app.services import accounts, commands

TASKS = 10_000


def main() -> None:
    app, token = make_app()
    with app.app_context():
        user = accounts.find_user("bench")
        started = time.perf_counter()
        for _ in range(TASKS):
            commands.submit(user, "demo", {"stages": 2, "seconds": 0}, 6, actor="bench")
        seeded = time.perf_counter() - started
        db.session.remove()
    client = app.test_client()
    started = time.perf_counter()
    response = client.post(
        "/api/v1/tasks/cancel-all", json={}, headers={"Authorization": f"Bearer {token}"}
    )
    wall = time.perf_counter() - started
    result = response.get_json()["result"]
    assert result["cancelled"] == TASKS, result
    figure(
        f"bulk cancel: {TASKS} queued tasks cancelled by one cancel-all in {wall:.2f} s "
        f"({TASKS / wall:.0f}/s; submitting them took {seeded:.1f} s)"
    )


if __name__ == "__main__":
    main()
