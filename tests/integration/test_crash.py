"""Real worker processes killed with SIGKILL and stopped with SIGTERM: no task is lost.

Short timeouts stand in for the defaults (heartbeat timeout 2 s instead of 60 s).
"""

import signal
from collections import Counter

from tests.conftest import wait_for
from tests.live import FAST_RECOVERY, deck  # noqa: F401  (fixture)


def stage_counts(task: dict, action: str) -> Counter:
    return Counter(e["stage"] for e in task["events"] if e["action"] == action)


def test_a_sigkilled_worker_s_stage_resumes_on_another_worker(deck):  # noqa: F811
    d = deck(FAST_RECOVERY)
    first = d.start_worker()
    task_id = d.submit(stages=3, seconds=1.5)
    wait_for(lambda: d.task(task_id)["stage_index"] == 1 and d.task(task_id)["progress"] > 0.4, 20)
    second = d.start_worker()  # up before the kill: it is "another worker"
    first.send_signal(signal.SIGKILL)
    first.wait()

    wait_for(lambda: d.task(task_id)["state"] == "succeeded", 30)
    done = d.task(task_id)
    finished = stage_counts(done, "stage_finished")
    started = stage_counts(done, "stage_started")
    assert finished == {"step 1": 1, "step 2": 1, "step 3": 1}  # no completed stage ran twice
    assert started["step 1"] == 1 and started["step 2"] == 2  # only the lost one ran again
    requeued = [e for e in done["events"] if e["action"] == "stage_requeued"]
    assert len(requeued) == 1 and requeued[0]["stage"] == "step 2"
    assert requeued[0]["reason"].startswith("worker lost: no heartbeat")
    assert second.poll() is None


def test_sigterm_hands_a_running_stage_back_and_a_restart_finishes_it(deck):  # noqa: F811
    d = deck(FAST_RECOVERY)
    worker = d.start_worker()
    task_id = d.submit(stages=2, seconds=4)
    wait_for(lambda: d.task(task_id)["progress"] > 0.05, 20)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=15) == 0
    back = d.task(task_id)
    assert (back["state"], back["stage_index"]) == ("running", 0)
    assert back["stages"][0]["state"] == "pending"
    assert back["events"][-1]["action"] == "stage_requeued"
    assert "shutting down" in back["events"][-1]["reason"]

    d.start_worker()
    wait_for(lambda: d.task(task_id)["state"] == "succeeded", 30)
    assert stage_counts(d.task(task_id), "stage_finished") == {"step 1": 1, "step 2": 1}


def test_sigterm_lets_a_stage_that_ends_within_the_grace_period_finish(deck):  # noqa: F811
    d = deck({**FAST_RECOVERY, "TASKDECK_SHUTDOWN_GRACE": "10"})
    worker = d.start_worker()
    task_id = d.submit(stages=2, seconds=1.5)
    wait_for(lambda: d.task(task_id)["progress"] > 0.05, 20)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=15) == 0
    stopped = d.task(task_id)
    # Stage 1 finished during the grace period; stage 2 waits in the queue, untaken.
    assert stopped["stages"][0]["state"] == "succeeded"
    assert stopped["stages"][1]["state"] == "pending" and stopped["state"] == "running"
    assert not [e for e in stopped["events"] if e["action"] == "stage_requeued"]
    d.start_worker()
    wait_for(lambda: d.task(task_id)["state"] == "succeeded", 30)
