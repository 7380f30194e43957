"""Several workers, each in its own working directory (standing in for boxes), sharing one
database and queue: stages spread, a cancel reaches whichever worker runs the task, and the
reaper runs once per interval however many workers there are.

On the default run the shared servers are SQLite files; `make test-servers` runs this on
PostgreSQL + Redis.
"""

import time

from sqlalchemy import create_engine, text

from tests.conftest import wait_for
from tests.live import deck  # noqa: F401  (fixture)

FAST = {"TASKDECK_REAPER_INTERVAL": "1", "TASKDECK_HEARTBEAT_INTERVAL": "0.5"}


def boxes(d, count, tmp_path):
    workers = []
    for number in range(count):
        box = tmp_path / f"box-{number}"
        box.mkdir()
        workers.append(d.start_worker(threads=2, cwd=box))
    return workers


def test_stages_spread_over_boxes_and_a_cancel_reaches_the_right_one(deck, tmp_path):  # noqa: F811
    d = deck(FAST)
    boxes(d, 2, tmp_path)
    ids = [d.submit(stages=2, seconds=0.4) for _ in range(12)]
    wait_for(lambda: all(d.task(i)["state"] == "succeeded" for i in ids), 60, 0.3)
    ran_on = {stage["worker"] for i in ids for stage in d.task(i)["stages"]}
    assert len({w.rsplit(":", 1)[1] for w in ran_on}) == 2, ran_on  # both worker pids

    long = [d.submit(stages=1, seconds=30) for _ in range(2)]
    wait_for(lambda: all(d.task(i)["stages"][0]["state"] == "running" for i in long), 20)
    for task_id in long:
        asked = time.monotonic()
        status, body = d.http.call("POST", f"/tasks/{task_id}/cancel", {"reason": "fleet"})
        assert (status, body["state"]) == (200, "cancelling")
        wait_for(lambda t=task_id: d.task(t)["state"] == "cancelled", 5, 0.05)
        assert time.monotonic() - asked < 2


def test_the_reaper_runs_once_per_interval_across_workers(deck, tmp_path):  # noqa: F811
    d = deck(FAST)
    boxes(d, 3, tmp_path)
    engine = create_engine(d.env["TASKDECK_DATABASE_URL"])

    def reaper():
        with engine.connect() as conn:
            return conn.execute(
                text("SELECT runs, last_run_by FROM periodic_runs WHERE name = 'reaper'")
            ).first()

    wait_for(reaper, 20)
    first, started = reaper().runs, time.monotonic()
    time.sleep(6)
    runs = reaper().runs - first
    elapsed = time.monotonic() - started
    engine.dispose()
    # Once per 1 s interval: about `elapsed` runs, not three times as many.
    assert elapsed - 2 <= runs <= elapsed + 1, (runs, elapsed)
