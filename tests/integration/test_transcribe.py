"""The built-in `transcribe` pipeline through a real worker, on speech made with `flite`.

Two voices one after the other come back as words and as two speakers;
the vocabulary corrects what was heard; a cancel mid-transcribing leaves
no recognizer process behind; bad params and a file that is not sound are
refused or fail with a clear message. The kill -9 test is in
test_transcribe_crash.py.
"""

import json
import os
from pathlib import Path

import pytest

from tests.conftest import api_submit, finished, wait_for
from tests.sounds import MEETING, accuracy, recording


@pytest.fixture
def files(app):
    return Path(app.config["FILES_ROOT"])


def outputs(task) -> dict:
    return {stage["name"]: stage["output"] for stage in task["stages"]}


def artifact(api_as, task_id, name) -> str:
    response = api_as.get(f"/tasks/{task_id}/artifacts/{name}")
    response.close()
    assert response.status_code == 200, name
    return response.get_data(as_text=True)


def children() -> list[int]:
    """This process's `tasks.child` processes (isolated stages of the in-test worker)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                parent = int(fh.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                command = fh.read()
        except OSError:
            continue
        if parent == os.getpid() and b"tasks.child" in command:
            found.append(int(entry))
    return found


def test_two_voices_come_back_as_words_and_two_speakers(api, worker, files):
    worker(workers=1)
    recording(files / "audio" / "meeting.wav")
    alice = api("alice")
    vocabulary = "monday => Monday\nhiring plan -> hiring plan (HR)\nnot a rule"
    task = finished(
        alice, api_submit(alice, "transcribe", audio="audio/meeting.wav", vocabulary=vocabulary)
    )
    assert task["state"] == "succeeded", task
    out = outputs(task)
    assert out["transcribing"]["chunks"] == 1 and 9 < out["transcribing"]["seconds"] < 20
    segments = json.loads(artifact(alice, task["id"], "transcript.json"))["segments"]
    assert [s["speaker"] for s in segments] == [1, 2, 1]  # slt, rms, slt again
    assert out["identifying"]["speakers"] == 2
    heard = " ".join(s["text"] for s in segments)
    reference = " ".join(text for _, text in MEETING)
    score = accuracy(reference.replace("monday", "Monday"), heard.replace(" (HR)", ""))
    print(f"word accuracy {score:.0%}")  # reported in the closing note
    assert score >= 0.8
    assert "Monday" in heard and "hiring plan (HR)" in heard and out["correcting"]["replaced"] == 2
    assert segments[0]["text"].startswith("The quick") and segments[0]["text"].endswith(".")
    assert all(a["end"] <= b["start"] for a, b in zip(segments, segments[1:], strict=False))
    text = artifact(alice, task["id"], "transcript.txt")
    assert text.splitlines()[1].startswith("[00:00:0") and "] Speaker 2: We will meet" in text
    srt = artifact(alice, task["id"], "transcript.srt")
    assert srt.startswith("1\n00:00:00,") and " --> 00:00:0" in srt and "\n\n2\n" in srt
    keywords, summary = out["summarizing"]["keywords"], out["summarizing"]["summary"]
    assert len(keywords) == 8 and set(keywords) <= set(heard.lower().replace(".", "").split())
    assert summary and all(part in heard for part in summary.split(". ")[:-1])


def test_the_task_page_shows_the_transcript_with_speakers_and_times(api, worker, files, browser):
    worker(workers=1)
    recording(files / "meeting.wav", turns=MEETING[:2])
    alice = api("alice")
    task = finished(alice, api_submit(alice, "transcribe", audio="meeting.wav", speakers=2))
    page = browser.login("alice").get(f"/tasks/{task['id']}").data.decode()
    assert '<h2 id="transcript-title">Transcript</h2>' in page
    assert '<span class="meta">0:00</span> <b class="speaker sp-1">Speaker 1</b> The quick' in page
    assert '<b class="speaker sp-2">Speaker 2</b> We will' in page


def test_a_cancel_mid_transcribing_leaves_no_recognizer_running(api, worker, files):
    worker(workers=1)
    recording(files / "long.wav", repeat=8)  # about two minutes: four chunks
    alice = api("alice")
    task_id = api_submit(alice, "transcribe", audio="long.wav")
    wait_for(lambda: children(), timeout=30, interval=0.1)
    wait_for(lambda: alice.get(f"/tasks/{task_id}").get_json()["progress"] > 0, 60, 0.1)
    alice.post(f"/tasks/{task_id}/cancel", json={"reason": "wrong file"})
    task = finished(alice, task_id)
    assert task["state"] == "cancelled"
    wait_for(lambda: not children(), timeout=15, interval=0.1)  # the child process is gone
    assert task["stages"][0]["items"]["done"] < 4


@pytest.mark.parametrize(
    "params, named",
    [
        ({"audio": "../secret.wav"}, "outside the files root"),
        ({"audio": "meeting.wav", "speakers": 7}, "speakers"),
        ({"audio": "meeting.wav", "language": "fr"}, "language"),
        ({}, "audio"),
    ],
)
def test_bad_params_are_refused_naming_the_param(api, files, params, named):
    recording(files / "meeting.wav", turns=MEETING[:1])
    response = api("alice").post("/tasks", json={"type": "transcribe", "params": params})
    assert response.status_code == 422, response.get_json()
    assert named in response.get_json()["detail"]


def test_a_file_that_is_not_sound_fails_saying_so(api, worker, files):
    worker(workers=1)
    (files / "notes.txt").write_text("这不是录音。")
    alice = api("alice")
    task = finished(alice, api_submit(alice, "transcribe", audio="notes.txt"))
    assert task["state"] == "failed"
    assert "not a sound file" in task["error_message"] or "ffmpeg" in task["error_message"]
