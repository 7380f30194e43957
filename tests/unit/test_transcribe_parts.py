"""transcribe's parts that need no recording: the vocabulary, and what a decoder refuses."""

import time

import numpy as np
import pytest
import soundfile

from tasks.pipelines import audio
from tasks.pipelines.transcribe import correcting, vocabulary


def corrected(rules: str, text: str) -> tuple[str, int]:
    segments = [{"start": 0.0, "end": 1.0, "speaker": 1, "text": text}]
    out = correcting(None, type("P", (), {"vocabulary": rules})(), {"segments": segments})
    return out["segments"][0]["text"], out["replaced"]


def test_vocabulary_lines_replace_whole_words_in_one_pass():
    rules = "task deck => Taskdeck\nhello -> hello hello\nx = \\1 and \\g<0>\nno arrow here"
    text, replaced = corrected(rules, "say hello to task   deck, x marks it; taskdecks")
    assert text == "Say hello hello to Taskdeck, \\1 and \\g<0> marks it; taskdecks."
    assert replaced == 3  # what a rule wrote is not read again: no cascade


def test_a_hostile_vocabulary_is_read_at_once():
    started = time.process_time()
    pattern, meant = vocabulary(" " * 20_000 + "x\n" + "a => " + "b" * 20_000)
    # A hang guard, not a speed figure: the old regex took hours on this line (2 s at 1,000
    # spaces, cubic), so any bound far below that tells the two apart.
    assert time.process_time() - started < 30
    assert meant == {"a": "b" * 20_000}
    assert vocabulary("hello => hello hello\n" * 500)[1] == {"hello": "hello hello"}


@pytest.mark.parametrize(
    "rate, channels, seconds, refused",
    [
        (1, 1, 2000, "sample rate"),  # 2 KB that would decode to 33 minutes
        (16_000, 9, 1, "channels"),
        (8_000, 1, 1, None),
    ],
)
def test_sound_a_decoder_would_choke_on_is_refused_before_it_is_read(
    tmp_path, rate, channels, seconds, refused
):
    path = tmp_path / "s.wav"
    soundfile.write(path, np.zeros((rate * seconds, channels), dtype=np.int16), rate)
    with path.open("rb") as fh:
        if refused:
            with pytest.raises(audio.AudioError, match=refused):
                audio.decode(fh)
        else:
            assert len(audio.decode(fh)) == audio.RATE * seconds


def test_a_recording_over_the_longest_allowed_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv(audio.MAX_SECONDS_ENV, "2")
    path = tmp_path / "long.wav"
    soundfile.write(path, np.zeros(16_000 * 3, dtype=np.int16), 16_000)
    with path.open("rb") as fh, pytest.raises(audio.AudioError, match="longer than 2 s"):
        audio.decode(fh)


@pytest.mark.parametrize(
    "body",
    [
        {"segments": [{"start": 0.0, "end": 1.0, "text": "whisper-shaped: no speaker"}]},
        {"segments": [{"start": "abc", "speaker": 1, "text": "t"}]},
        {"segments": [{"start": 0, "speaker": "x", "text": "t"}]},
        {"segments": [1, 2]},
        {"segments": "none"},
        [],
    ],
    ids=["no-speaker", "text-start", "text-speaker", "numbers", "text", "list"],
)
def test_a_transcript_json_of_another_shape_is_listed_not_shown(app, browser, body):
    import json

    from app.extensions import db
    from app.services import accounts, artifacts, lease
    from tests.drive import submit

    with app.app_context():
        task_id = submit(accounts.find_user("alice"), stages=1).id
        run = lease.start_stage(task_id, 0, 1)
        staged = artifacts.staging_dir(task_id, 1) / "t.tmp"
        staged.write_text(json.dumps(body), encoding="utf-8")
        artifacts.store(task_id, "step 1", "transcript.json", staged)
        db.session.commit()
        lease.finish_stage(run, {})
    response = browser.login("alice").get(f"/tasks/{task_id}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "transcript.json" in page and 'id="transcript-title"' not in page
