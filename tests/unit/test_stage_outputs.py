"""What stages leave, as pages and the API show it: log lines, artifacts, items, countdowns.

Stages are driven by hand through the worker's own channel (tasks/channels.py),
so what is written is exactly what a worker writes.
"""

import re
from types import SimpleNamespace

import pytest

from app.services import artifacts, lease, logs
from tasks.channels import local_context
from tasks.context import STOPS, ArtifactRefused, call_stage
from tests.drive import submit, task


def started(owner, **params):
    """A demo task whose first stage a "worker" holds: (ctx, channel, run)."""
    t = submit(owner, **params)
    run = lease.start_stage(t.id, 0, 1)
    stage_ctx, channel = local_context(run)
    return stage_ctx, channel, run


def test_log_lines_are_numbered_split_clipped_and_capped(ctx, app, users):
    app.config.update(LOG_LINES_MAX=5, LOG_LINE_MAX_BYTES=12)
    stage_ctx, channel, run = started(users("alice"))
    stage_ctx.log("一\r\n二\nthree")
    stage_ctx.log("这一行太长了会被截断")  # 30 bytes of UTF-8
    stage_ctx.log("\udc80 lone")
    for i in range(3):
        stage_ctx.log(f"line {i}")
    channel.flush()
    rows, after = logs.page(users("alice"), run.task_id)
    assert [r.n for r in rows] == [4, 5, 6, 7, 8] and after == 8  # lines 1-3 dropped
    assert rows[0].line == "这一行…" and len(rows[0].line.encode()) <= 12
    assert rows[1].line == "\ufffd lone"  # a lone surrogate is replaced, never a 500
    assert task(run.task_id).log_lines == 8


def test_the_logs_api_pages_after_a_line_and_refuses_bad_queries(ctx, api, users):
    stage_ctx, channel, run = started(users("alice"))
    for i in range(5):
        stage_ctx.log(f"行 {i}")
    channel.flush()
    alice = api("alice")
    page = alice.get(f"/tasks/{run.task_id}/logs?after=2&limit=2").get_json()
    assert [i["line"] for i in page["items"]] == ["行 2", "行 3"] and page["next_after"] == 4
    assert alice.get(f"/tasks/{run.task_id}/logs?stage=nope").get_json()["items"] == []
    huge = ("after=2147483648", "after=9223372036854775808")
    for query in ("after=-1", "after=x", "limit=0", "limit=99999", "after=1e3", *huge):
        bad = alice.get(f"/tasks/{run.task_id}/logs?{query}")
        assert bad.status_code == 400 and bad.get_json()["detail"], query


def test_the_page_shows_items_waiting_artifacts_and_the_log(ctx, browser, users):
    stage_ctx, channel, run = started(users("alice"), stages=2)

    def body(ctx, params, outputs):
        for item in ctx.each(range(4)):
            if item == 2:
                raise ValueError("坏的")
        ctx.artifact("结果.txt", "好")
        ctx.log("第一行 <b>not bold</b>")

    call_stage(SimpleNamespace(call=body), stage_ctx, None, {})
    channel.flush()
    lease.finish_stage(run, {"ok": True})
    html = browser.login("alice").get(f"/tasks/{run.task_id}").data.decode()
    assert "4 / 4 items" in html and "1 failed" in html
    assert "ValueError: 坏的" in html
    assert "Waiting for a worker" in html  # stage 2 waits in the queue
    assert re.search(r'href="/tasks/[0-9a-f]{32}/artifacts/%E7%BB%93%E6%9E%9C.txt"', html)
    assert "第一行 &lt;b&gt;not bold&lt;/b&gt;" in html
    assert 'hx-get="/tasks/' in html and "log-tail?after=2" in html


def test_the_log_tail_appends_new_lines_and_stops_when_the_task_ends(ctx, browser, users):
    stage_ctx, channel, run = started(users("alice"), stages=1)
    stage_ctx.log("one")
    channel.flush()
    browser.login("alice")
    first = browser.get(f"/tasks/{run.task_id}/log-tail?after=0")
    assert first.status_code == 200 and "one" in first.data.decode()
    assert 'hx-swap-oob="true"' in first.data.decode() and "after=1" in first.data.decode()
    # "No log lines yet." is hidden by the stylesheet once a line is in: nothing out of band
    # to delete, which raced polls in flight (htmx logs a delete that finds nothing).
    assert "log-empty" not in first.data.decode()
    stage_ctx.log("two")
    channel.flush()
    lease.finish_stage(run, {})
    last = browser.get(f"/tasks/{run.task_id}/log-tail?after=1").data.decode()
    assert "two" in last and "one" not in last
    assert "log-empty" not in last
    done = browser.get(f"/tasks/{run.task_id}/log-tail?after=2")
    assert done.status_code == 286 and "hx-get" not in done.data.decode()  # polling stops
    garbled = browser.get(f"/tasks/{run.task_id}/log-tail?after=%0d%0a-1")
    assert garbled.status_code == 200 and "one" in garbled.data.decode()  # from the start
    for after in ("99999999999", "9" * 40):
        assert browser.get(f"/tasks/{run.task_id}/log-tail?after={after}").status_code == 286


def test_an_artifact_name_that_is_not_a_plain_file_name_stops_the_stage(ctx, users):
    stage_ctx, _, _ = started(users("alice"))
    for name in ("../escape", "a/b", ".hidden", "bell\x07", "x" * 201, "", "报" * 86):
        with pytest.raises(ArtifactRefused) as refused:
            stage_ctx.artifact(name, b"data")
        assert refused.value.code == "artifact_bad_name"  # a stop, never an item's failure
    assert isinstance(refused.value, STOPS)


def test_a_run_that_lost_its_stage_keeps_no_artifact(ctx, users):
    from app.services import recovery

    stage_ctx, channel, run = started(users("alice"))
    recovery.hand_back_stage(run)  # the lease moves on (dispatch number + 1)
    stage_ctx.artifact("late.txt", "迟到")
    assert not list(channel.staging_dir().iterdir())  # the staged file is gone too
    assert artifacts.listing(users("alice"), run.task_id) == []


def test_on_cancel_runs_for_a_cancel_but_not_for_a_hand_back(ctx, users):
    from tasks.context import StageContext, StageHandedBack, TaskCancelled

    called = []

    class Stopping:
        artifact_max = 0

        def should_stop(self):
            return True

    for handing_back, expected in ((True, StageHandedBack), (False, TaskCancelled)):
        stage_ctx = StageContext(
            task_id="t",
            stage="s",
            stage_index=0,
            retry_number=0,
            attempt=1,
            saved=None,
            channel=Stopping(),
            handing_back=lambda flag=handing_back: flag,
        )
        stage_ctx.on_cancel(lambda flag=handing_back: called.append(flag))
        with pytest.raises(expected):
            stage_ctx.check_cancelled()
    assert called == [False]  # the remote job survives a restart of the worker
