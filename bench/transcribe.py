"""transcribe: real-time factor on a ~2.6-minute two-voice recording, with a real consumer.

The recording is speech from Debian's `flite` (tests/sounds.py): six turns
in two voices (slt, rms), 0.8 s apart, five times over. One `transcribe`
task runs on a real Huey consumer with one worker thread (transcribing is
an isolated stage: a child process that loads PocketSphinx and decodes the
30-second chunks one after the other). Figures, read through the API (the
stages' and the task's started/finished times):

- RTF = processing seconds / audio seconds (lower is better), for the
  transcribing stage and for the whole task (started → finished), with
  the word accuracy of what was heard (so speed is not read alone).
- Seconds per stage, and the gaps between them (hand-offs through the queue);
  per chunk, the time between the transcribing stage's chunk log lines (the
  first one also holds the child's start, decoding and the model's load).
"""

import time
from datetime import datetime
from itertools import pairwise
from pathlib import Path

import soundfile
from harness import figure, make_app, start_consumer

from app.extensions import db
from app.services import accounts, commands
from tests.sounds import accuracy, recording

TURNS = [
    ("slt", "good morning everyone let us start with the budget review for the second quarter"),
    ("rms", "thank you the budget is about ten percent higher than we planned in january"),
    ("slt", "what made the spending go up this time"),
    ("rms", "mostly the new hiring plan and the travel to meet our customers in march"),
    ("slt", "then we should move two of the open positions to the next quarter"),
    ("rms", "i agree i will change the plan and send it to everyone before friday"),
]
REPEAT = 5  # about 155 s of audio
TIMEOUT = 300


def seconds(started: str, finished: str) -> float:
    return (datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds()


def main() -> None:
    app, token = make_app()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    path = recording(Path(app.config["FILES_ROOT"]) / "audio" / "meeting.wav", TURNS, REPEAT)
    audio = soundfile.info(path).duration
    consumer = start_consumer(app, workers=1)
    try:
        with app.app_context():
            user = accounts.find_user("bench")
            task_id = commands.submit(
                user, "transcribe", {"audio": "audio/meeting.wav"}, 6, actor="bench"
            ).id
            db.session.commit()
        give_up = time.monotonic() + TIMEOUT
        while True:
            task = client.get(f"/api/v1/tasks/{task_id}", headers=headers).get_json()
            if task["state"] in ("succeeded", "partial_success", "failed", "cancelled"):
                break
            if time.monotonic() > give_up:
                raise SystemExit(f"transcribe did not finish within {TIMEOUT} s ({task['state']})")
            time.sleep(0.25)
        logs = client.get(f"/api/v1/tasks/{task_id}/logs?limit=500", headers=headers).get_json()
    finally:
        consumer.stop(graceful=True)
    assert task["state"] == "succeeded", (task["state"], task["error_message"])
    stages = task["stages"]
    took = {s["name"]: seconds(s["started_at"], s["finished_at"]) for s in stages}
    gaps = sum(seconds(a["finished_at"], b["started_at"]) for a, b in pairwise(stages))
    whole = seconds(task["started_at"], task["finished_at"])
    waited = seconds(task["created_at"], task["started_at"])
    words = stages[0]["output"]["words"]
    heard = accuracy(" ".join(text for _, text in TURNS * REPEAT), " ".join(w[0] for w in words))
    speaking = took["transcribing"]
    marks = [stages[0]["started_at"]] + [
        line["at"] for line in logs["items"] if line["line"].startswith("chunk ")
    ]
    chunks = [seconds(a, b) for a, b in pairwise(marks)]
    figure(
        f"transcribe: {audio:.1f} s of speech ({len(TURNS)} flite turns × {REPEAT}, two voices, "
        f"{stages[0]['output']['chunks']} chunks), 1 worker thread, PocketSphinx: "
        f"transcribing {speaking:.1f} s (RTF {speaking / audio:.3f}), whole task {whole:.1f} s "
        f"started → finished (RTF {whole / audio:.3f}; {waited:.2f} s queued before); "
        f"word accuracy {heard:.0%}, {stages[1]['output']['speakers']} speakers found"
    )
    figure(
        "transcribe: per stage: "
        + ", ".join(f"{name} {value:.2f} s" for name, value in took.items())
        + f"; between stages {gaps:.2f} s in all; transcribing per chunk "
        + ", ".join(f"{value:.1f}" for value in chunks)
        + " s (the first with the recognizer's start)"
    )


if __name__ == "__main__":
    main()
