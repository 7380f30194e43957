"""This deck's worker killed with SIGKILL while `remote_job` polls another Taskdeck: the next
worker re-attaches to the job it saved, and exactly one task exists there afterwards."""

import signal

from tests.conftest import wait_for, write_secrets
from tests.live import FAST_RECOVERY, deck, running_server  # noqa: F401  (fixture)


def test_a_kill_9_mid_poll_reattaches_and_never_submits_twice(deck, tmp_path):  # noqa: F811
    (tmp_path / "there").mkdir()
    with running_server(tmp_path / "there") as (there, _):
        secrets = write_secrets(tmp_path / "secrets.toml", there=(there.token, there.base))
        d = deck({**FAST_RECOVERY, "TASKDECK_SECRETS_FILE": secrets})
        first = d.start_worker(threads=1)
        job_input = {"type": "demo", "params": {"stages": 2, "seconds": 3}}
        task_id = d.submit(
            "remote_job", adapter="taskdeck", url=there.base, secret="there", input=job_input
        )
        wait_for(lambda: d.task(task_id)["progress"] > 0.1, timeout=30, interval=0.1)  # polling
        first.send_signal(signal.SIGKILL)
        first.wait()
        d.start_worker(threads=1)
        wait_for(lambda: d.task(task_id)["state"] == "succeeded", timeout=60, interval=0.2)
        jobs = there.call("GET", "/tasks")[1]["items"]
        assert len(jobs) == 1 and jobs[0]["state"] == "succeeded"
        lines = [i["line"] for i in d.http.call("GET", f"/tasks/{task_id}/logs")[1]["items"]]
        assert f"re-attached to job {jobs[0]['id']} at {there.base}" in lines
        assert sum(line.startswith("submitted to") for line in lines) == 1
        assert there.token not in str(d.task(task_id))
