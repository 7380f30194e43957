"""Dashboard figures: finished per hour, slowest stages, the SVG chart's geometry and page."""

import re
import threading
from datetime import datetime, timedelta

import pytest

from app.extensions import db
from app.models import FinishedHour, RolledHour, StageHour, Task, TaskStage
from app.services import accounts, commands, hourly, lease, metrics, recovery
from app.services.states import TERMINAL_STATES
from app.web.charts import bar_chart, nice_ceiling

NOW = datetime(2026, 11, 23, 15, 40)


def run_task(app, owner="alice", stages=2, fail_at=None, retry_of=None):
    """Run a demo task (or a retry) through the worker's transitions; return its id.

    `fail_at` is the 1-based stage that fails instead of finishing.
    """
    with app.app_context():
        user = accounts.find_user(owner)
        if retry_of:
            task_id = commands.retry(user, retry_of, False).new_task_id
        else:
            params = {"stages": stages, "seconds": 0}
            task_id = commands.submit(user, "demo", params, 6, actor=owner).id
        while True:
            task = db.session.get(Task, task_id, populate_existing=True)
            if task.state in TERMINAL_STATES:
                return task.id
            run = lease.start_stage(task.id, task.stage_index, task.dispatch_seq)
            if fail_at == task.stage_index + 1:
                lease.fail_stage(run, "stage_error", "boom")
            else:
                lease.finish_stage(run, {})


def backdate(app, task_id, finished, stage_seconds=()):
    """Pretend the task finished at `finished`, its stages taking `stage_seconds` each."""
    with app.app_context():
        task = db.session.get(Task, task_id)
        task.finished_at = finished
        for stage, seconds in zip(task.stages, stage_seconds, strict=False):
            stage.started_at = finished - timedelta(seconds=seconds)
            stage.finished_at = finished
        db.session.commit()


def test_finished_per_hour_buckets_the_last_24_hours(app):
    backdate(app, run_task(app), NOW - timedelta(minutes=5))  # current hour
    backdate(app, run_task(app), NOW - timedelta(minutes=50))  # 14:xx
    backdate(app, run_task(app, fail_at=1), NOW - timedelta(minutes=55))
    backdate(app, run_task(app), NOW - timedelta(hours=23, minutes=30))  # oldest hour: 16:xx
    backdate(app, run_task(app), NOW - timedelta(hours=25))  # outside the window
    backdate(app, run_task(app, owner="bob"), NOW - timedelta(minutes=1))
    with app.app_context():
        buckets = metrics.finished_per_hour(accounts.find_user("alice"), now=NOW)
        everyone = metrics.finished_per_hour(accounts.find_user("root"), now=NOW)
    assert len(buckets) == 24
    assert buckets[0]["hour"] == datetime(2026, 11, 22, 16)
    assert buckets[-1]["hour"] == datetime(2026, 11, 23, 15)
    assert buckets[-1] == {**buckets[-1], "succeeded": 1, "failed": 0, "cancelled": 0}
    assert (buckets[-2]["succeeded"], buckets[-2]["failed"]) == (1, 1)
    assert buckets[0]["succeeded"] == 1
    assert sum(b["succeeded"] + b["failed"] + b["cancelled"] for b in buckets) == 4
    assert everyone[-1]["succeeded"] == 2  # admins count bob's too


def test_slowest_stages_average_what_ran_and_skip_reused_stages(app):
    slow = run_task(app, stages=2)
    backdate(app, slow, NOW - timedelta(minutes=10), stage_seconds=(4, 100))
    backdate(app, run_task(app, stages=2), NOW - timedelta(minutes=20), stage_seconds=(2, 50))
    backdate(app, run_task(app, stages=2), NOW - timedelta(hours=30), stage_seconds=(999, 999))
    failed = run_task(app, stages=2, fail_at=2)
    backdate(app, failed, NOW - timedelta(minutes=40), stage_seconds=(900,))
    retried = run_task(app, retry_of=failed)
    backdate(app, retried, NOW - timedelta(minutes=30), stage_seconds=(900, 75))
    with app.app_context():
        assert db.session.query(TaskStage).filter_by(task_id=retried, reused=True).count() == 1
        rows = metrics.slowest_stages(accounts.find_user("alice"), now=NOW)
    # step 1: 4 s, 2 s and the failed task's 900 s; the retry reused it, so not counted again
    assert [(r["stage"], r["runs"]) for r in rows] == [("step 1", 3), ("step 2", 3)]
    assert rows[0]["avg_seconds"] == 302 and rows[0]["slowest_task_id"] == failed
    assert rows[1]["avg_seconds"] == 75 and rows[1]["max_seconds"] == 100
    assert rows[1]["slowest_task_id"] == slow
    with app.app_context():
        assert metrics.slowest_stages(accounts.find_user("bob"), now=NOW) == []


def history(app) -> dict:
    """Tasks of alice and bob that ended over the last day; the ids worth naming."""
    ids = {"current": run_task(app), "failed": run_task(app, stages=2, fail_at=2)}
    backdate(app, ids["current"], NOW - timedelta(minutes=5), stage_seconds=(3, 4))
    backdate(app, ids["failed"], NOW - timedelta(hours=5, minutes=40), stage_seconds=(900,))
    ids["retried"] = run_task(app, retry_of=ids["failed"])
    backdate(app, ids["retried"], NOW - timedelta(hours=2), stage_seconds=(1, 70))
    for owner, hours_ago, seconds in [
        ("alice", 1, (5, 50)),  # 14:40: the last hour that is over
        ("alice", 1.2, (5, 50)),  # as slow: the lower task id is the slowest
        ("alice", 12, (2, 200)),
        ("bob", 3, (40, 1)),
        ("bob", 23.5, (8, 8)),  # the oldest hour of the window
        ("alice", 30, (999, 999)),  # outside it
    ]:
        task_id = run_task(app, owner=owner)
        backdate(app, task_id, NOW - timedelta(hours=hours_ago), stage_seconds=seconds)
        ids.setdefault(f"{owner} {hours_ago}", task_id)
    return ids


def live_from(now):
    """Where the figures at `now` stop reading roll-ups and group live."""
    start = hourly.window_start(now)
    return hourly.rolled_until(start, start + hourly.WINDOW_HOURS * hourly.HOUR)


def figures(user):
    return (
        metrics.finished_per_hour(user, now=NOW),
        metrics.slowest_stages(user, now=NOW),
    )


@pytest.mark.parametrize("who", ["alice", "bob", "root"])
def test_rolled_up_hours_give_the_figures_grouping_them_live_gave(app, who):
    history(app)
    with app.app_context():
        user = accounts.find_user(who)
        live = figures(user)
        assert hourly.roll(now=NOW) == 23  # 16:00 yesterday to 14:00; not the current hour
        assert db.session.query(FinishedHour).count() == 6  # (hour, owner, state) that ended tasks
        assert db.session.query(StageHour).count() == 10
        assert live_from(NOW) == datetime(2026, 11, 23, 15)
        assert figures(user) == live
        assert hourly.roll(now=NOW) == 0  # rolled already


def test_rolled_hours_are_a_snapshot_and_the_current_hour_is_live(app):
    ids = history(app)
    with app.app_context():
        alice = accounts.find_user("alice")
        hourly.roll(now=NOW)
        before = metrics.finished_per_hour(alice, now=NOW)
        for task_id in (ids["alice 1"], ids["current"]):  # 14:xx (rolled) and 15:xx (live)
            db.session.delete(db.session.get(Task, task_id))
        db.session.commit()
        after = metrics.finished_per_hour(alice, now=NOW)
    assert after[-2] == before[-2] and before[-2]["succeeded"] == 2
    assert (before[-1]["succeeded"], after[-1]["succeeded"]) == (1, 0)


def test_the_slowest_run_of_a_rolled_hour_stays_when_its_task_is_deleted(app):
    ids = history(app)
    with app.app_context():
        alice = accounts.find_user("alice")
        hourly.roll(now=NOW)
        before = metrics.slowest_stages(alice, now=NOW)
        db.session.delete(db.session.get(Task, ids["alice 12"]))  # step 2's 200 s, at 03:40
        db.session.commit()
        after = metrics.slowest_stages(alice, now=NOW)
    assert after == before
    assert before[1]["stage"] == "step 2" and before[1]["max_seconds"] == 200
    assert before[1]["slowest_task_id"] == ids["alice 12"]


@pytest.mark.parametrize("lowest_rolled", [True, False])
def test_a_tie_for_slowest_goes_to_the_lowest_task_id_across_rolled_and_live(app, lowest_rolled):
    low, high = sorted(run_task(app, stages=1) for _ in range(2))
    rolled, live = (low, high) if lowest_rolled else (high, low)
    backdate(app, rolled, NOW - timedelta(hours=3), stage_seconds=(500,))
    backdate(app, live, NOW - timedelta(minutes=5), stage_seconds=(500,))
    with app.app_context():
        hourly.roll(now=NOW)
        ((row,)) = metrics.slowest_stages(accounts.find_user("alice"), now=NOW)
    assert (row["runs"], row["max_seconds"], row["slowest_task_id"]) == (2, 500, low)


def test_the_reaper_rolls_up_the_hours_that_are_over(app):
    with app.app_context():
        recovery.reap_if_due(0, 60, 3)
        # 23 hours of the window are over, 22 in the first ten minutes of an hour.
        assert db.session.query(RolledHour).count() in (22, 23)


def test_figures_of_an_earlier_window_ignore_hours_rolled_after_it(app):
    history(app)
    with app.app_context():
        hourly.roll(now=NOW)
        earlier = NOW - timedelta(hours=3)  # 12:40: 13:00 and 14:00 are rolled but ahead
        alice = accounts.find_user("alice")
        buckets = metrics.finished_per_hour(alice, hours=6, now=earlier)
        slowest = metrics.slowest_stages(alice, hours=6, now=earlier)
    assert [b["failed"] for b in buckets] == [0, 0, 0, 1, 0, 0]  # the 10:00 failure only
    assert [(r["stage"], r["runs"]) for r in slowest] == [("step 1", 1)]


def test_an_hour_is_rolled_up_only_some_minutes_after_it_ends(app):
    history(app)
    with app.app_context():
        early = NOW.replace(minute=5)  # 15:05: tasks stamped 14:59 may still be committing
        hourly.roll(now=early)
        assert live_from(early) == datetime(2026, 11, 23, 14)
        assert not db.session.query(FinishedHour).filter_by(hour=datetime(2026, 11, 23, 14)).count()
        alice = accounts.find_user("alice")
        assert metrics.finished_per_hour(alice, now=early)[-2]["succeeded"] == 2


def test_workers_rolling_the_same_hour_at_once_sum_it_once(app):
    history(app)
    hour = datetime(2026, 11, 23, 14)
    barrier, rolled, errors = threading.Barrier(2), [], []

    def roll():
        with app.app_context():
            try:
                barrier.wait()
                rolled.append(hourly.roll_hour(hour))
            except Exception as exc:  # noqa: BLE001 - the assertion below shows it
                errors.append(exc)

    threads = [threading.Thread(target=roll) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(rolled) == [False, True]
    with app.app_context():
        rows = db.session.query(FinishedHour.owner_id, FinishedHour.tasks).all()
    assert len(rows) == 1 and rows[0][1] == 2


@pytest.mark.parametrize(
    ("value", "ceiling"), [(0, 1), (1, 1), (2, 2), (3, 5), (7, 10), (11, 20), (480, 500)]
)
def test_the_chart_scale_rounds_up_to_1_2_5(value, ceiling):
    assert nice_ceiling(value) == ceiling


def test_bars_stack_in_proportion_to_their_counts():
    hours = [
        {
            "hour": datetime(2026, 11, 23, h),
            **{state: 0 for state in ("succeeded", "partial_success", "failed", "cancelled")},
        }
        for h in range(24)
    ]
    hours[3] |= {"succeeded": 6, "failed": 2, "cancelled": 2}
    hours[4] |= {"succeeded": 5}
    chart = bar_chart(hours)
    full, half = chart["bars"][3], chart["bars"][4]
    plot = chart["baseline"] - chart["ticks"][-1]["y"]
    assert [t["value"] for t in chart["ticks"]] == [0, 5, 10]
    assert [s["state"] for s in full["segments"]] == ["succeeded", "failed", "cancelled"]
    assert sum(s["h"] for s in full["segments"]) == pytest.approx(plot)
    assert half["segments"][0]["h"] == pytest.approx(plot / 2)
    assert full["segments"][0]["y"] + full["segments"][0]["h"] == pytest.approx(chart["baseline"])
    assert chart["bars"][0]["segments"] == [] and chart["total"] == 15
    assert [b["label"] for b in chart["bars"] if b["label"]][:2] == ["00:00", "03:00"]


def test_dashboard_page_draws_the_chart_and_lists_slowest_stages(browser, app):
    task_id = run_task(app, stages=3)
    html = browser.login("alice").get("/").data.decode()
    svg = re.search(r'<figure class="chart"[^>]*>.*?</svg>', html, re.S).group(0)
    assert 'role="img"' in svg and "1 tasks finished in the last 24 hours" in svg
    assert len(re.findall(r'class="bar st-succeeded"', svg)) == 1
    assert svg.count('class="slot"') == 24
    slowest = re.search(r'<table class="slowest[^"]*">.*?</table>', html, re.S).group(0)
    assert slowest.count("<tr>") == 4 and f"/tasks/{task_id}" in slowest


def test_stats_api_carries_the_dashboard_figures(api, app):
    run_task(app)
    stats = api("alice").get("/tasks/stats").get_json()
    assert len(stats["finished_per_hour"]) == 24
    assert stats["finished_per_hour"][-1]["succeeded"] == 1
    assert {r["stage"] for r in stats["slowest_stages"]} == {"step 1", "step 2"}
