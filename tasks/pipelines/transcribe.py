"""`transcribe`: a recording in, a transcript with speakers out, as a meeting-audio pipeline does.

transcribing → identifying → correcting → summarizing. Transcribing runs
isolated (a cancel or a timeout kills the recognizer's process) with one
item per 30-second chunk, cut at a quiet moment; every chunk's words are
saved as they come, so a run after a kill -9 or a retry goes on at the
next chunk. Identifying finds speech regions and tells voices apart by
pitch (audio.py); correcting applies the user's vocabulary and casing;
summarizing picks keywords and sentences and writes the transcript as
text, SubRip subtitles and JSON.
"""

import json
import math
import re
from collections import Counter
from typing import Literal

import numpy as np
from pydantic import Field

from tasks.pipelines import audio, engines, notes, speech
from tasks.pipelines.authoring import N_, Params, Pipeline
from tasks.pipelines.files import UploadParam, located, open_inside

CHUNK_SECONDS = 30.0
PITCH_GAP = 0.2  # log-pitch gap (~22 %) that parts two voices when guessing how many
SPEAKERS_MAX = 6
ARROWS = ("=>", "->", "=")  # what parts heard from meant in a vocabulary line, first found wins
RULE_MAX = 200  # characters a vocabulary line's heard words may have


class TranscribeParams(Params):
    audio: UploadParam = Field(
        title=N_("Recording"),
        description=N_(
            "A sound file to upload, or one under the files root (WAV, FLAC, Ogg, MP3; "
            "M4A with ffmpeg)."
        ),
    )
    language: Literal["en"] = Field("en", title=N_("Language"))
    vocabulary: str = Field(
        "",
        max_length=20_000,
        title=N_("Vocabulary"),
        description=N_("Replacements, one per line: heard => meant (e.g. task deck => Taskdeck)."),
    )
    speakers: int = Field(
        0, ge=0, le=SPEAKERS_MAX, title=N_("Speakers"), description=N_("0: guess; else 1 to 6.")
    )


transcribe = Pipeline(
    "transcribe",
    title=N_("Transcribe"),
    description=N_(
        "Transcribe a recording (US English, offline), tell its speakers apart, apply your "
        "vocabulary, and summarise it."
    ),
    params=TranscribeParams,
)


def decoded(params) -> np.ndarray:
    with open_inside(located(params.audio)) as fh:
        return audio.decode(fh)


@transcribe.stage("transcribing", isolated=True, cancel_grace=5)
def transcribing(ctx, params):
    pcm = decoded(params)
    total = len(pcm) / audio.RATE
    cuts = audio.chunks(pcm, CHUNK_SECONDS)
    recognizer = speech.recognizer(params.language)
    words = ctx.saved.get("words", {})  # chunk number -> its words, kept across runs
    if words:
        ctx.log(f"resuming: {len(words)} of {len(cuts)} chunks were transcribed before")
    for number, (start, end) in ctx.each(list(enumerate(cuts, 1)), key=lambda c: f"chunk {c[0]}"):
        ctx.check_cancelled()
        if str(number) in words:  # saved before a kill, its item not yet recorded
            continue
        piece = pcm[int(start * audio.RATE) : int(end * audio.RATE)]
        found = recognizer.words(piece, start)
        words[str(number)] = [[w.text, w.start, w.end] for w in found]
        ctx.save({"words": words})
        ctx.progress(end / total, f"{end:.0f} s of {total:.0f} s")
        ctx.log(f"chunk {number} of {len(cuts)} ({start:.1f}–{end:.1f} s): {len(found)} words")
    every = [w for n in range(1, len(cuts) + 1) for w in words.get(str(n), [])]
    return {"seconds": round(total, 2), "chunks": len(cuts), "words": every}


@transcribe.stage("identifying")
def identifying(ctx, params, transcribing):
    pcm = decoded(params)
    regions = audio.speech(pcm) or [audio.Region(0.0, len(pcm) / audio.RATE)]
    said: list[list] = [[] for _ in regions]
    for text, start, end in transcribing["words"]:
        middle = (start + end) / 2
        nearest = min(range(len(regions)), key=lambda i: _distance(regions[i], middle))
        said[nearest].append(text)
    kept = [(r, w) for r, w in zip(regions, said, strict=True) if w]
    rate = audio.RATE
    voices = [audio.voice(pcm[int(r.start * rate) : int(r.end * rate)]) for r, _ in kept]
    labels = speakers_of(voices, params.speakers)
    ctx.log(f"{len(kept)} turns, {len(set(labels))} speakers")
    segments = [
        {"start": round(r.start, 2), "end": round(r.end, 2), "speaker": label, "text": " ".join(w)}
        for (r, w), label in zip(kept, labels, strict=True)
    ]
    pitches = [round(v[0]) if v else None for v in voices]
    return {"speakers": len(set(labels)), "segments": segments, "pitch_hz": pitches}


def _distance(region: audio.Region, moment: float) -> float:
    return (
        0.0
        if region.start <= moment <= region.end
        else min(abs(region.start - moment), abs(region.end - moment))
    )


def speakers_of(voices: list, wanted: int) -> list[int]:
    """Speaker 1, 2, … per segment, numbered as they first speak.

    Guessing (wanted = 0) parts voices where their pitches differ by more
    than PITCH_GAP; a given count clusters pitch and brightness (k-means).
    A segment too short to measure takes its neighbour's speaker.
    """
    measured = [i for i, v in enumerate(voices) if v is not None]
    raw = [0] * len(voices)
    if measured:
        points = np.array([[math.log(voices[i][0]), voices[i][1] / 1000] for i in measured])
        if wanted:
            found = _kmeans(points, min(wanted, len(measured)))
        else:
            order = np.argsort(points[:, 0])
            gaps = np.diff(points[order, 0]) > PITCH_GAP
            group = np.concatenate([[0], np.cumsum(gaps)])
            found = np.empty(len(measured), dtype=int)
            found[order] = np.minimum(group, SPEAKERS_MAX - 1)
        for i, label in zip(measured, found, strict=True):
            raw[i] = int(label)
        for i in range(len(voices)):  # unmeasured: the nearest measured one's speaker
            if voices[i] is None:
                raw[i] = raw[min(measured, key=lambda m: abs(m - i))]
    numbers: dict[int, int] = {}
    return [numbers.setdefault(label, len(numbers) + 1) for label in raw]


def _kmeans(points: np.ndarray, k: int, rounds: int = 50) -> np.ndarray:
    """k-means on standardised points, started from spread-out quantiles of pitch (stable)."""
    scaled = (points - points.mean(axis=0)) / np.where(
        points.std(axis=0) > 0, points.std(axis=0), 1
    )
    order = np.argsort(scaled[:, 0])
    centres = scaled[order[np.linspace(0, len(order) - 1, k).round().astype(int)]]
    labels = np.zeros(len(scaled), dtype=int)
    for _ in range(rounds):
        labels = ((scaled[:, None, :] - centres[None]) ** 2).sum(axis=2).argmin(axis=1)
        moved = np.array(
            [
                scaled[labels == c].mean(axis=0) if (labels == c).any() else centres[c]
                for c in range(k)
            ]
        )
        if np.allclose(moved, centres):
            break
        centres = moved
    return labels


@transcribe.stage("correcting")
def correcting(ctx, params, identifying):
    pattern, meant = vocabulary(params.vocabulary)
    replaced = 0
    segments = []
    for segment in identifying["segments"]:
        text = segment["text"]
        if pattern is not None:
            text, count = pattern.subn(lambda m: _meant(meant, m.group(0)), text)
            replaced += count
        segments.append({**segment, "text": tidy(text)})
    return {"segments": segments, "replaced": replaced}


def _meant(meant: dict[str, str], heard: str) -> str:
    return meant.get(" ".join(heard.lower().split()), heard)  # a case only re.I folds: as heard


def vocabulary(text: str) -> tuple[re.Pattern | None, dict[str, str]]:
    """`heard => meant` lines as one whole-word, case-blind pattern and what each heard means.

    One pass over the text, longest heard first: what a rule writes is never
    read by another (no cascade), and `meant` is plain text, not a regex
    template. Lines are split with str.partition, not a regex: a long line
    of spaces must not backtrack. Lines without an arrow, or whose heard
    words are longer than RULE_MAX, are ignored.
    """
    meant: dict[str, str] = {}
    for line in text.splitlines():
        arrow = next((a for a in ARROWS if a in line), None)
        if arrow is None:
            continue
        heard, _, said = line.partition(arrow)
        heard = " ".join(heard.lower().split())
        if heard and len(heard) <= RULE_MAX:
            meant[heard] = said.strip()
    if not meant:
        return None, meant
    alternatives = "|".join(
        r"\s+".join(re.escape(w) for w in heard.split())
        for heard in sorted(meant, key=len, reverse=True)
    )
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.I), meant


def tidy(text: str) -> str:
    """One space between words, "I" upright, a capital to start and a full stop to end."""
    text = re.sub(r"\bi\b", "I", " ".join(text.split()))
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".?!…。？！" else text + "."


@transcribe.stage("summarizing")
def summarizing(ctx, params, correcting):
    segments = correcting["segments"]
    texts = [s["text"] for s in segments]
    counts = Counter(w for t in texts for w in notes.words(t))
    keywords = [w for w, _ in counts.most_common(8)]
    request = engines.Request("transcript", " ".join(keywords[:3]), tuple(texts), 1, 1)
    summary = engines.Extractive().write(request) if texts else ""
    ctx.artifact("transcript.txt", plain(segments))
    ctx.artifact("transcript.srt", subtitles(segments))
    body = {"segments": segments, "keywords": keywords, "summary": summary}
    ctx.artifact("transcript.json", json.dumps(body, ensure_ascii=False, indent=1))
    return {"keywords": keywords, "summary": summary, "segments": len(segments)}


def clock(seconds: float, comma: bool = False) -> str:
    whole = int(seconds)
    hours, minutes, secs = whole // 3600, whole // 60 % 60, whole % 60
    millis = int(round((seconds - whole) * 1000)) % 1000
    return f"{hours:02}:{minutes:02}:{secs:02}" + (f",{millis:03}" if comma else "")


def plain(segments: list[dict]) -> str:
    return "".join(f"[{clock(s['start'])}] Speaker {s['speaker']}: {s['text']}\n" for s in segments)


def subtitles(segments: list[dict]) -> str:
    return "".join(
        f"{n}\n{clock(s['start'], True)} --> {clock(s['end'], True)}\n"
        f"Speaker {s['speaker']}: {s['text']}\n\n"
        for n, s in enumerate(segments, 1)
    )
