"""Sound for `transcribe`: decoding to 16 kHz mono, chunks, speech regions, a voice feature.

Decoding is libsndfile's (`soundfile`: WAV, FLAC, Ogg, MP3) and, for what
it cannot read (M4A, AAC, video), Debian's `ffmpeg` when it is installed.
Speech regions come from WebRTC's voice activity detector (`webrtcvad`).
The voice feature is deliberately simple: a segment's median pitch and
its spectral centroid, enough to tell a low voice from a high one and no
more (README: what speaker turns can and cannot do).
"""

import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import soundfile
import webrtcvad

RATE = 16_000
VAD_FRAME = 480  # 30 ms at 16 kHz, one of the sizes webrtcvad takes
VAD_MODE = 2  # 0 (keeps most) … 3 (keeps least)
JOIN_GAP = 0.3  # seconds of silence that do not split a region
SNAP = 1.0  # a chunk's end moves up to this many seconds to the quietest moment
PITCH = (60.0, 400.0)  # Hz: lowest and highest voices looked for
RATES = (8_000, 192_000)  # Hz: sample rates a recording may have
CHANNELS_MAX = 8
MAX_SECONDS_ENV, MAX_SECONDS_DEFAULT = "TASKDECK_TRANSCRIBE_MAX_SECONDS", 3 * 3600


class AudioError(ValueError):
    """The file is not sound this deck can decode."""


@dataclass(frozen=True)
class Region:
    start: float  # seconds
    end: float


def max_seconds() -> float:
    """The longest recording decoded (TASKDECK_TRANSCRIBE_MAX_SECONDS, default 3 hours)."""
    return float(os.environ.get(MAX_SECONDS_ENV) or MAX_SECONDS_DEFAULT)


def decode(fh: BinaryIO) -> np.ndarray:
    """The whole of an open file as 16 kHz mono int16 samples.

    What the header says is checked before anything is decoded (a 2 KB file
    at 1 Hz, or a header claiming 2^36 frames, would decode to gigabytes),
    and the sound is read a minute at a time, so only the 16 kHz result is
    ever whole in memory.
    """
    try:
        info = soundfile.info(fh)
    except (soundfile.LibsndfileError, RuntimeError, TypeError):
        fh.seek(0)
        return _ffmpeg(fh)
    fh.seek(0)
    if not RATES[0] <= info.samplerate <= RATES[1]:
        raise AudioError(f"a sample rate of {info.samplerate} Hz is not one of speech's")
    if not 1 <= info.channels <= CHANNELS_MAX:
        raise AudioError(f"{info.channels} channels: at most {CHANNELS_MAX} are read")
    if info.duration > max_seconds():
        raise AudioError(f"the recording is longer than {max_seconds():g} s ({MAX_SECONDS_ENV})")
    blocks = soundfile.blocks(fh, blocksize=info.samplerate * 60, dtype="float32", always_2d=True)
    parts = [_pcm(_resampled(block.mean(axis=1), info.samplerate)) for block in blocks]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)


def _ffmpeg(fh: BinaryIO) -> np.ndarray:
    tool = shutil.which("ffmpeg")
    if tool is None:
        raise AudioError("not a sound file libsndfile reads (install ffmpeg for M4A, AAC, video)")
    # Only the pipe: a playlist in the input must not make ffmpeg fetch other files or URLs.
    argv = [tool, "-nostdin", "-v", "error", "-protocol_whitelist", "pipe", "-i", "pipe:0"]
    argv += ["-t", f"{max_seconds():g}", "-f", "s16le", "-ac", "1"]
    done = subprocess.run(
        [*argv, "-ar", str(RATE), "pipe:1"], stdin=fh, capture_output=True, check=False
    )
    if done.returncode != 0 or not done.stdout:
        said = done.stderr.decode("utf-8", "replace").strip()[-300:]
        raise AudioError(f"ffmpeg could not decode it: {said or 'no sound'}")
    return np.frombuffer(done.stdout, dtype=np.int16)


def _resampled(samples: np.ndarray, rate: int) -> np.ndarray:
    if rate == RATE or len(samples) == 0:
        return samples
    count = int(round(len(samples) * RATE / rate))
    return np.interp(np.linspace(0, len(samples) - 1, count), np.arange(len(samples)), samples)


def _pcm(samples: np.ndarray) -> np.ndarray:
    return (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16)


def chunks(pcm: np.ndarray, seconds: float) -> list[tuple[float, float]]:
    """(start, end) in seconds, about `seconds` long, each cut at a quiet moment."""
    total = len(pcm) / RATE
    bounds, start = [], 0.0
    while total - start > seconds + SNAP:
        end = _quietest(pcm, start + seconds - SNAP, start + seconds + SNAP)
        bounds.append((start, end))
        start = end
    return [*bounds, (start, total)] if total > 0 else []


def _quietest(pcm: np.ndarray, low: float, high: float) -> float:
    """The 10 ms between `low` and `high` seconds with the least energy."""
    step = RATE // 100
    first, last = int(low * RATE), int(high * RATE)
    frames = pcm[first:last].astype(np.float32)
    count = len(frames) // step
    if count == 0:
        return high
    energy = (frames[: count * step].reshape(count, step) ** 2).sum(axis=1)
    return (first + int(energy.argmin()) * step + step // 2) / RATE


def speech(pcm: np.ndarray) -> list[Region]:
    """Where someone speaks: WebRTC VAD frames, joined across gaps under JOIN_GAP."""
    vad = webrtcvad.Vad(VAD_MODE)
    regions: list[Region] = []
    frame_seconds = VAD_FRAME / RATE
    for index in range(len(pcm) // VAD_FRAME):
        frame = pcm[index * VAD_FRAME : (index + 1) * VAD_FRAME]
        if not vad.is_speech(frame.tobytes(), RATE):
            continue
        start = index * frame_seconds
        if regions and start - regions[-1].end <= JOIN_GAP:
            regions[-1] = Region(regions[-1].start, start + frame_seconds)
        else:
            regions.append(Region(start, start + frame_seconds))
    return regions


def voice(pcm: np.ndarray) -> tuple[float, float] | None:
    """(median pitch in Hz, spectral centroid in Hz) of a stretch of speech; None if unvoiced."""
    size, hop = 640, 320  # 40 ms frames, 20 ms apart
    lags = (int(RATE / PITCH[1]), int(RATE / PITCH[0]))
    pitches, centroids = [], []
    samples = pcm.astype(np.float32) / 32768
    window = np.hanning(size)
    bins = np.fft.rfftfreq(size, 1 / RATE)
    for start in range(0, len(samples) - size, hop):
        frame = samples[start : start + size] * window
        if np.sqrt((frame**2).mean()) < 0.01:
            continue
        spectrum = np.abs(np.fft.rfft(frame))
        centroids.append(float((bins * spectrum).sum() / spectrum.sum()))
        corr = np.correlate(frame, frame, "full")[size - 1 :]
        lag = lags[0] + int(corr[lags[0] : lags[1]].argmax())
        if corr[lag] > 0.3 * corr[0]:  # voiced: a clear period
            pitches.append(RATE / lag)
    if len(pitches) < 3:
        return None
    return float(np.median(pitches)), float(np.median(centroids))
