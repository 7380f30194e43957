"""The `ctx` a stage gets, on a real stage run: progress writes are throttled, NaN refused."""

import pytest

from app.services import lease
from tasks import context
from tasks.channels import local_context
from tasks.context import PROGRESS_INTERVAL
from tests.drive import statements_sent, submit, task


@pytest.fixture
def ctx(app, users):
    """A StageContext over the first stage of a real task, started as a worker would."""
    with app.app_context():
        t = submit(users("alice"))
        run = lease.start_stage(t.id, 0, 1)
        ctx, _channel = local_context(run)
        yield ctx


def progress_writes(calls) -> int:
    """How many UPDATEs of the tasks table `calls()` sent to the database."""
    with statements_sent() as sent:
        calls()
    return len([sql for sql, _ in sent if sql.lstrip().upper().startswith("UPDATE TASKS")])


def test_a_stage_reporting_in_a_tight_loop_writes_once_per_interval(ctx, monkeypatch):
    now = [1000.0]  # the context's clock, moved by hand: no test of elapsed time
    monkeypatch.setattr(context.time, "monotonic", lambda: now[0])

    def report_eighty_times():
        for i in range(1, 81):
            ctx.progress(i / 200, "working")
            now[0] += PROGRESS_INTERVAL / 8  # exact in binary: the steps add up to intervals

    # 80 reports over ten intervals: one write per interval (reports 1, 9, … 73), not 80.
    assert progress_writes(report_eighty_times) == 10
    assert task(ctx.task_id).stage_progress == pytest.approx(73 / 200)
    assert progress_writes(lambda: ctx.progress(1.0)) == 1  # the final 1.0 always is
    assert task(ctx.task_id).stage_progress == 1.0


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_progress_must_be_a_finite_number(ctx, bad):
    with pytest.raises(ValueError, match="finite"):
        ctx.progress(bad)
    assert task(ctx.task_id).stage_progress == 0.0
