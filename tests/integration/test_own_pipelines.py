"""A user's own pipelines (tests/plugins, on TASKDECK_PIPELINES_PATH) through a real worker.

Isolated stages run in real child process groups; cancels and timeouts kill
them; retries wait as delayed Huey messages; logs, artifacts, items and saved
state go through the same service layer as everything else.
"""

import os
import re
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import TaskEvent
from tests.conftest import wait_for

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"
TERMINAL = ("succeeded", "partial_success", "failed", "cancelled")


@pytest.fixture(autouse=True)
def plugins(monkeypatch):
    """The app and every child process it starts load the test pipelines like a user's."""
    monkeypatch.setenv("TASKDECK_PIPELINES_PATH", str(PLUGINS))


def submit(api_as, task_type, **params):
    response = api_as.post("/tasks", json={"type": task_type, "params": params})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def state(api_as, task_id):
    return api_as.get(f"/tasks/{task_id}").get_json()


def wait_state(api_as, task_id, *states, timeout=20):
    return wait_for(lambda: (t := state(api_as, task_id))["state"] in states and t, timeout=timeout)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:  # a zombie has exited; its parent just has not reaped
        return fh.read().split(") ")[1][0] != "Z"


def marked_pid(mark: Path) -> int:
    line = wait_for(lambda: mark.exists() and mark.read_text().strip())
    return int(line.split()[1])


def events(app, task_id):
    with app.app_context():
        return db.session.scalars(
            select(TaskEvent).where(TaskEvent.task_id == task_id).order_by(TaskEvent.id)
        ).all()


def test_a_stage_that_ignores_cancel_is_killed_after_its_grace(api, app, worker, tmp_path, browser):
    worker(workers=1)
    alice = api("alice")
    mark = tmp_path / "pid"
    task_id = submit(alice, "stubborn", mark=str(mark), seconds=300)
    pid = marked_pid(mark)
    assert alive(pid)
    asked = time.monotonic()
    cancel = alice.post(f"/tasks/{task_id}/cancel", json={"reason": "停止"})
    assert cancel.get_json()["state"] == "cancelling"
    assert alice.get(f"/tasks/{task_id}").get_json()["force_stop_at"] is not None
    page = browser.login("alice").get(f"/tasks/{task_id}").data.decode()
    assert re.search(r"Cancelling — forcing stop in [01] s", page)
    wait_for(lambda: not alive(pid), timeout=10)
    # cancel_grace is 1 s; the parent looks every 0.5 s; SIGTERM ends a C sleep at once.
    assert time.monotonic() - asked < 1 + 1 + 0.5
    done = wait_state(alice, task_id, "cancelled")
    assert done["stages"][0]["state"] == "cancelled"
    last = events(app, task_id)[-1]
    assert (last.action, last.forced, last.actor) == ("cancelled", True, "worker")
    assert "cancel_grace" in last.reason


def test_a_timeout_kills_the_stage_and_fails_it(api, app, worker, tmp_path):
    worker(workers=1)
    alice = api("alice")
    mark = tmp_path / "pid"
    task_id = submit(alice, "slow", mark=str(mark), seconds=300)
    pid = marked_pid(mark)
    failed = wait_state(alice, task_id, "failed")
    assert not alive(pid)
    assert failed["error_code"] == "stage_timeout" and "timeout of 1 s" in failed["error_message"]
    stage = failed["stages"][0]
    assert (stage["error_code"], stage["attempts"]) == ("stage_timeout", 1)
    assert events(app, task_id)[-1].forced is True


def test_a_failing_stage_is_retried_after_a_backoff_then_succeeds(api, app, worker):
    worker(workers=1)
    alice = api("alice")
    task_id = submit(alice, "flaky", count=2)  # fails on attempts 1 and 2
    done = wait_state(alice, task_id, *TERMINAL)
    assert done["state"] == "succeeded"
    stage = done["stages"][0]
    assert stage["attempts"] == 3 and stage["output"] == {"attempt": 3}
    assert stage["error_code"] is None  # the last attempt's verdict
    retrying = [e for e in events(app, task_id) if e.action == "stage_retrying"]
    assert len(retrying) == 2 and "upstream hiccup 1" in retrying[0].reason
    lines = [i["line"] for i in alice.get(f"/tasks/{task_id}/logs").get_json()["items"]]
    assert [line for line in lines if line.startswith("attempt")] == [
        "attempt 1",
        "attempt 2",
        "attempt 3",
    ]


def test_retries_run_out_and_the_task_fails_with_the_last_error(api, worker):
    worker(workers=1)
    alice = api("alice")
    task_id = submit(alice, "flaky", count=5)
    failed = wait_state(alice, task_id, "failed")
    assert failed["stages"][0]["attempts"] == 3
    assert failed["error_message"] == "ConnectionError: upstream hiccup 3"


def test_a_cancel_during_the_backoff_cancels_at_once(api, app, worker, monkeypatch):
    from tasks import runner

    monkeypatch.setattr(runner, "backoff", lambda base, attempt: 30.0)  # a long wait
    worker(workers=1)
    alice = api("alice")
    task_id = submit(alice, "flaky", count=1)
    waiting = wait_for(lambda: (t := state(alice, task_id))["waiting"] and t)
    assert waiting["stages"][0]["state"] == "pending" and waiting["state"] == "running"
    cancel = alice.post(f"/tasks/{task_id}/cancel", json={})
    assert cancel.get_json()["state"] == "cancelled"  # no stage runs: nothing to wait for


def test_logs_artifacts_and_saved_state_of_an_isolated_stage(api, app, worker, tmp_path):
    worker(workers=1)
    alice = api("alice")
    task_id = submit(alice, "chatty", mark=str(tmp_path / "page.html"))
    done = wait_state(alice, task_id, *TERMINAL)
    assert done["state"] == "succeeded", done
    page = alice.get(f"/tasks/{task_id}/logs").get_json()
    lines = [(i["stream"], i["line"]) for i in page["items"]]
    assert ("log", "第一行") in lines and ("log", "第二行") in lines
    assert ("stdout", "plain stdout, 标准输出") in lines and ("stderr", "stderr 错误") in lines
    assert page["next_after"] == page["items"][-1]["n"] == done["log_lines"]
    assert [i["n"] for i in page["items"]] == list(range(1, len(page["items"]) + 1))
    later = alice.get(f"/tasks/{task_id}/logs?after={page['next_after']}").get_json()
    assert later == {"items": [], "next_after": page["next_after"]}
    listed = alice.get(f"/tasks/{task_id}/artifacts").get_json()["items"]
    assert {a["name"]: a["size"] for a in listed} == {
        "报告.txt": len("中文内容\n".encode()),
        "data.bin": 256,
        "page.html": len("<html><script>alert(1)</script></html>"),
    }
    report = alice.get(f"/tasks/{task_id}/artifacts/报告.txt")
    assert report.status_code == 200 and report.data.decode("utf-8") == "中文内容\n"
    html = alice.get(f"/tasks/{task_id}/artifacts/page.html")
    assert html.headers["Content-Disposition"].startswith("attachment")
    assert html.headers["X-Content-Type-Options"] == "nosniff"
    assert html.headers["Content-Security-Policy"].split(";")[0].strip() == "sandbox"
    assert alice.get(f"/tasks/{task_id}/artifacts/data.bin").data == bytes(range(256))
    text = alice.get(f"/tasks/{task_id}/logs.txt")
    assert text.headers["Content-Disposition"].startswith("attachment")
    assert "第一行" in text.data.decode("utf-8")
    summary = done["stages"][1]["output"]
    assert summary == {"produced": {"ok": True}}
    assert any("saved={}" in line for _, line in lines)  # saved state is per stage


def test_logs_and_artifacts_follow_the_task_permissions(api, worker, tmp_path):
    worker(workers=1)
    alice, bob, root, nobody = api("alice"), api("bob"), api("root"), api(None)
    task_id = submit(alice, "chatty")
    wait_state(alice, task_id, *TERMINAL)
    for path in ("logs", "logs.txt", "artifacts", "artifacts/data.bin"):
        assert bob.get(f"/tasks/{task_id}/{path}").status_code == 403
        assert nobody.get(f"/tasks/{task_id}/{path}").status_code == 401
        assert root.get(f"/tasks/{task_id}/{path}").status_code == 200
    missing = alice.get(f"/tasks/{task_id}/artifacts/nope.txt")
    assert missing.status_code == 404 and missing.get_json() == {"detail": "Artifact not found"}
    escape = alice.get(f"/tasks/{task_id}/artifacts/..%2F..%2Fsecret_key")
    assert escape.status_code == 404


def test_items_resume_fail_alone_and_a_retry_runs_only_the_failed_ones(api, app, worker, tmp_path):
    worker(workers=1)
    alice = api("alice")
    mark = tmp_path / "items"
    task_id = submit(alice, "batch", mark=str(mark), count=50, fail=[7, 31])
    done = wait_state(alice, task_id, *TERMINAL)
    assert done["state"] == "partial_success"
    assert done["stages"][0]["items"] == {"total": 50, "done": 48, "failed": 2}
    assert done["stages"][1]["state"] == "succeeded"  # the loop went on, and so did the task
    failed = {i["key"]: i["error"] for i in done["failed_items"]}
    assert failed == {"7": "ValueError: item 7 is broken", "31": "ValueError: item 31 is broken"}
    assert mark.read_text().split("\n").count("item 8") == 1  # nothing ran twice
    mark.write_text("")
    answer = alice.post(f"/tasks/{task_id}/retry", json={}).get_json()
    assert answer["message"] == "Retried as a new task, resuming at 'work_items'"
    again = wait_state(alice, answer["new_task_id"], *TERMINAL)
    assert again["state"] == "partial_success"  # the same two items fail again
    assert again["progress"] == 1.0
    assert mark.read_text().split() == ["item", "7", "item", "31"]
    assert again["stages"][0]["items"] == {"total": 50, "done": 48, "failed": 2}


def test_a_retry_reuses_artifacts_without_copying_them(api, app, worker, tmp_path):
    worker(workers=1)
    alice = api("alice")
    task_id = submit(alice, "chatty", fail=[2])  # its second stage fails on the first run
    assert wait_state(alice, task_id, *TERMINAL)["state"] == "failed"
    retried = alice.post(f"/tasks/{task_id}/retry", json={}).get_json()["new_task_id"]
    wait_state(alice, retried, *TERMINAL)
    listed = alice.get(f"/tasks/{retried}/artifacts").get_json()["items"]
    assert {a["name"] for a in listed} == {"报告.txt", "data.bin"}
    files = list(Path(app.config["ARTIFACTS_DIR"]).rglob("data.bin"))
    assert len(files) == 1  # one file, two tasks' rows
    assert alice.get(f"/tasks/{retried}/artifacts/data.bin").data == bytes(range(256))


def test_an_isolated_stage_records_items_and_failures_too(api, worker, tmp_path):
    worker(workers=1)
    alice = api("alice")
    task_id = submit(alice, "isolated_batch", count=20, fail=[3], mark=str(tmp_path / "m"))
    done = wait_state(alice, task_id, *TERMINAL)
    assert done["state"] == "partial_success"
    assert done["stages"][0]["items"] == {"total": 20, "done": 19, "failed": 1}


def test_a_started_task_runs_its_next_stage_before_new_tasks_of_its_priority(api, app, worker):
    worker(workers=2)
    alice = api("alice")
    first = [
        alice.post("/tasks", json={"type": "demo", "params": {"stages": 2, "seconds": 1}})
        for _ in range(2)
    ]
    started = [r.get_json()["id"] for r in first]
    for task_id in started:
        wait_state(alice, task_id, "running")
    newcomers = [
        alice.post("/tasks", json={"type": "demo", "params": {"stages": 1, "seconds": 0.5}})
        for _ in range(4)
    ]
    newcomers = [r.get_json()["id"] for r in newcomers]
    for task_id in started + newcomers:
        wait_state(alice, task_id, "succeeded", timeout=30)

    def start_of(task_id, stage):
        return next(
            e.at for e in events(app, task_id) if e.action == "stage_started" and e.stage == stage
        )

    second_stages = [start_of(t, "step 2") for t in started]
    assert max(second_stages) <= min(start_of(t, "step 1") for t in newcomers)


def readme_example() -> str:
    """The first Python block under "## Writing a pipeline" in the README."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Writing a pipeline", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_readme_example_pipeline_runs_as_written(api, worker, tmp_path, monkeypatch):
    folder = tmp_path / "pipelines"
    folder.mkdir()
    (folder / "wordcount.py").write_text(readme_example(), encoding="utf-8")
    monkeypatch.setenv("TASKDECK_PIPELINES_PATH", f"{PLUGINS}:{folder}")
    texts = tmp_path / "texts"
    texts.mkdir()
    (texts / "a.txt").write_text("one two three", encoding="utf-8")
    (texts / "中文.txt").write_text("你好 世界", encoding="utf-8")
    worker(workers=1)
    alice = api("alice")
    listed = {t["name"]: t for t in alice.get("/task-types").get_json()["items"]}
    assert listed["wordcount"]["stages"] == ["count", "summarise"]
    task_id = submit(alice, "wordcount", folder=str(texts))
    done = wait_state(alice, task_id, *TERMINAL)
    assert done["state"] == "succeeded", done
    assert done["stages"][0]["output"] == {"files": 2, "words": 5}
    assert done["stages"][0]["items"] == {"total": 2, "done": 2, "failed": 0}
    assert done["stages"][1]["output"] == {"average": 2.5}
    counts = alice.get(f"/tasks/{task_id}/artifacts/counts.txt").data.decode("utf-8")
    assert counts == "a.txt\t3\n中文.txt\t2\n"


def test_a_child_that_lingers_after_returning_is_ended(api, worker, tmp_path):
    worker(workers=1)
    alice = api("alice")
    mark = tmp_path / "pid"
    task_id = submit(alice, "lingering", mark=str(mark))
    done = wait_state(alice, task_id, *TERMINAL)
    assert done["state"] == "succeeded" and done["stages"][0]["output"] == {"returned": True}
    wait_for(lambda: not alive(marked_pid(mark)))


COMMANDS = """
[pipelines.shell_steps]
title = "Commands"
params.script = { type = "string" }
params.words = { type = "string", default = "你好 world" }
params.status = { type = "integer", default = 0 }

[[pipelines.shell_steps.stages]]
name = "say"
argv = ["sh", "{script}", "{words}", "{status}"]
cancel_grace = 1

[pipelines.nap]
params.seconds = { type = "integer", default = 300 }

[[pipelines.nap.stages]]
argv = ["sleep", "{seconds}"]
timeout = 600
"""

# Prints its first argument and a line to stderr, keeps a file, leaves a
# program running in the background (holding its output open), exits with $2.
SCRIPT = """echo "$1"
echo oops >&2
echo kept > "$TASKDECK_ARTIFACTS_DIR/out.txt"
sleep 60 &
exit "$2"
"""


def test_a_command_pipeline_logs_keeps_files_and_fails_on_a_bad_status(
    api, worker, tmp_path, monkeypatch
):
    commands = tmp_path / "commands.toml"
    commands.write_text(COMMANDS, encoding="utf-8")
    monkeypatch.setenv("TASKDECK_COMMANDS_FILE", str(commands))
    script = tmp_path / "say.sh"
    script.write_text(SCRIPT, encoding="utf-8")
    worker(workers=1)
    alice = api("alice")
    ok = submit(alice, "shell_steps", script=str(script), words="你好; rm -rf /")
    done = wait_state(alice, ok, *TERMINAL)  # the backgrounded sleep does not hold it up
    assert done["state"] == "succeeded", done
    lines = [(i["stream"], i["line"]) for i in alice.get(f"/tasks/{ok}/logs").get_json()["items"]]
    assert ("stdout", "你好; rm -rf /") in lines and ("stderr", "oops") in lines
    assert alice.get(f"/tasks/{ok}/artifacts/out.txt").data == b"kept\n"
    bad = submit(alice, "shell_steps", script=str(script), status=3)
    failed = wait_state(alice, bad, *TERMINAL)
    assert failed["state"] == "failed" and failed["error_code"] == "exit_status"
    assert failed["error_message"] == "Command 'sh' exited with status 3"


def test_cancelling_a_command_interrupts_it(api, app, worker, tmp_path, monkeypatch):
    commands = tmp_path / "commands.toml"
    commands.write_text(COMMANDS, encoding="utf-8")
    monkeypatch.setenv("TASKDECK_COMMANDS_FILE", str(commands))
    worker(workers=1)
    alice = api("alice")
    task_id = submit(alice, "nap")
    wait_state(alice, task_id, "running")
    wait_for(lambda: state(alice, task_id)["stages"][0]["state"] == "running")
    alice.post(f"/tasks/{task_id}/cancel", json={})
    done = wait_state(alice, task_id, "cancelled")
    assert done["stages"][0]["name"] == "step 1"
    last = events(app, task_id)[-1]
    assert (last.action, last.forced) == ("cancelled", False)  # SIGINT was enough


@pytest.mark.parametrize(
    ("count", "message"),
    [(7, "The stage's process exited with status 7"), (0, "killed by signal 9")],
)
def test_a_child_that_dies_fails_its_stage_with_its_exit_status(api, worker, count, message):
    worker(workers=1)
    alice = api("alice")
    task_id = submit(alice, "crasher", count=count)
    failed = wait_state(alice, task_id, *TERMINAL)
    assert failed["state"] == "failed" and failed["error_code"] == "exit_status"
    assert message in failed["error_message"]
    lines = [i["line"] for i in alice.get(f"/tasks/{task_id}/logs").get_json()["items"]]
    assert "about to die" in lines


def test_an_isolated_stage_may_return_and_save_more_than_a_line_of_output(api, app, worker):
    worker(workers=1)
    alice = api("alice")
    task_id = submit(alice, "large")
    done = wait_state(alice, task_id, *TERMINAL)
    assert done["state"] == "succeeded", done["error_message"]
    assert done["stages"][0]["output"] == {"text": "大" * 100_000}
    with app.app_context():
        from app.models import TaskStage

        saved = db.session.scalar(select(TaskStage.saved).where(TaskStage.task_id == task_id))
    assert saved == {"cursor": "游标" * 50_000}
