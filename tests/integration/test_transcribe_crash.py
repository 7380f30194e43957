"""A worker killed with SIGKILL while `transcribe` is transcribing: the next worker goes on at
the next chunk, the chunks already done are not heard again."""

import signal

from tests.conftest import wait_for
from tests.live import FAST_RECOVERY, deck  # noqa: F401  (fixture)
from tests.sounds import recording


def logged(d, task_id: str, start: str = "") -> list[str]:
    items = d.http.call("GET", f"/tasks/{task_id}/logs?limit=1000")[1]["items"]
    return [i["line"] for i in items if i["line"].startswith(start)]


def test_a_kill_9_mid_transcribing_resumes_at_the_next_chunk(deck, tmp_path):  # noqa: F811
    files = tmp_path / "files"
    recording(files / "long.wav", repeat=8)  # about two minutes: four chunks
    d = deck({**FAST_RECOVERY, "TASKDECK_FILES_ROOT": str(files)})
    first = d.start_worker(threads=1)
    task_id = d.submit("transcribe", audio="long.wav")
    wait_for(lambda: logged(d, task_id, "chunk 1 of"), timeout=60, interval=0.1)  # saved first
    first.send_signal(signal.SIGKILL)
    first.wait()
    d.start_worker(threads=1)
    wait_for(lambda: d.task(task_id)["state"] == "succeeded", timeout=120, interval=0.2)
    task = d.task(task_id)
    lines = logged(d, task_id)
    resumed = [line for line in lines if line.startswith("resuming: ")]
    assert len(resumed) == 1 and not resumed[0].startswith("resuming: 0 ")
    done_before = int(resumed[0].split()[1])
    after = [line for line in lines[lines.index(resumed[0]) :] if line.startswith("chunk ")]
    assert [int(line.split()[1]) for line in after] == list(range(done_before + 1, 5))
    transcribing = task["stages"][0]
    assert transcribing["output"]["chunks"] == 4 and transcribing["items"]["done"] == 4
    requeued = [e for e in task["events"] if e["action"] == "stage_requeued"]
    assert [e["stage"] for e in requeued] == ["transcribing"]
