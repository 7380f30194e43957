"""Recordings the transcribe tests make: speech from Debian's `flite` in two CMU voices.

`slt` is a woman's voice and `rms` a man's; spoken one after the other,
with a pause between turns, they are a small meeting with two speakers.
"""

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile

RATE = 16_000
MEETING = [
    ("slt", "the quick brown fox jumps over the lazy dog"),
    ("rms", "we will meet again on monday to review the budget and the hiring plan"),
    ("slt", "please cancel the task now"),
]


def spoken(voice: str, text: str) -> np.ndarray:
    if shutil.which("flite") is None:
        pytest.fail("Debian's flite is missing: apt-get install -y flite (.ci/run does)")
    with tempfile.TemporaryDirectory() as work:
        out = Path(work) / "said.wav"
        subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(out)], check=True)
        samples, rate = soundfile.read(out, dtype="int16")
    assert rate == RATE
    return samples


def recording(path: Path, turns=MEETING, repeat: int = 1, pause: float = 0.8) -> Path:
    """A WAV of the turns, `repeat` times over, with `pause` seconds of silence between turns."""
    silence = np.zeros(int(pause * RATE), dtype=np.int16)
    said = [spoken(voice, text) for voice, text in turns]
    parts = [part for _ in range(repeat) for turn in said for part in (turn, silence)]
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, np.concatenate(parts), RATE)
    return path


def accuracy(reference: str, heard: str) -> float:
    """The share of the reference's words heard, in order (1 - word error rate, roughly)."""
    ref, hyp = reference.lower().split(), heard.lower().replace(".", "").split()
    # Longest common subsequence of words.
    table = [[0] * (len(hyp) + 1) for _ in range(len(ref) + 1)]
    for i, a in enumerate(ref):
        for j, b in enumerate(hyp):
            table[i + 1][j + 1] = (
                table[i][j] + 1 if a == b else max(table[i][j + 1], table[i + 1][j])
            )
    return table[-1][-1] / len(ref)
