"""Several workers, each in its own working directory (standing in for boxes), sharing one
database and queue: stages spread, a cancel reaches whichever worker runs the task, and the
reaper runs once per interval however many workers there are.

On the default run the shared servers are SQLite files; `make test-servers` runs this on
PostgreSQL + Redis.
"""

from datetime import datetime

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
        status, body = d.http.call("POST", f"/tasks/{task_id}/cancel", {"reason": "fleet"})
        assert (status, body["state"]) == (200, "cancelling")
        wait_for(lambda t=task_id: d.task(t)["state"] == "cancelled", 20, 0.05)
        stopped = d.task(task_id)
        # Stopped inside its 30 s stage by the worker that ran it, not left to finish.
        assert stopped["stages"][0]["state"] == "cancelled"
        assert stopped["stages"][0]["output"] is None and stopped["progress"] < 1
        assert [e["actor"] for e in stopped["events"][-2:]] == ["admin", "worker"]


def test_the_reaper_runs_once_per_interval_across_workers(deck, tmp_path):  # noqa: F811
    d = deck(FAST)
    boxes(d, 3, tmp_path)
    engine = create_engine(d.env["TASKDECK_DATABASE_URL"])

    def claim():
        with engine.connect() as conn:
            return conn.execute(
                text("SELECT runs, next_run_at FROM periodic_runs WHERE name = 'reaper'")
            ).first()

    first = wait_for(claim, 20)
    last = wait_for(lambda: (row := claim()).runs >= first.runs + 6 and row, 30, 0.1)
    engine.dispose()
    # A claim needs `next_run_at` passed and moves it one interval past the claim's
    # time, so N claims span at least N intervals, whoever made them; three
    # workers each running the reaper would squeeze them into a third of that.
    span = (_as_datetime(last.next_run_at) - _as_datetime(first.next_run_at)).total_seconds()
    assert span >= (last.runs - first.runs) * 1.0, (span, last.runs - first.runs)


def _as_datetime(value):
    """SQLite hands back text through a plain connection, PostgreSQL a datetime."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)
