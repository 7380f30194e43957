"""What turns sound into words for `transcribe`: one small interface, PocketSphinx built in.

A recognizer is any object with `words(pcm, offset) -> [Word]`, where
`pcm` is 16 kHz mono int16 samples and `offset` the seconds before them in
the recording. The built-in one is PocketSphinx 5, whose wheel ships its
US English model, so nothing is downloaded at run time. To plug in a
stronger one (e.g. faster-whisper with a model folder you provide), set
`TASKDECK_SPEECH_ENGINE=package.module:make`, where `make(language)`
returns such an object; the workers import it (README).
"""

import importlib
import os
import re
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from tasks.pipelines.audio import RATE

ENGINE_ENV = "TASKDECK_SPEECH_ENGINE"
FRAMES_PER_SECOND = 100  # PocketSphinx's frame rate
FILLER = re.compile(r"^(<.*>|\[.*\])$")  # <s>, </s>, <sil>, [NOISE]
VARIANT = re.compile(r"\(\d+\)$")  # will(2): the second pronunciation of "will"


@dataclass(frozen=True)
class Word:
    text: str
    start: float  # seconds from the start of the recording
    end: float


class Recognizer(Protocol):
    def words(self, pcm: np.ndarray, offset: float) -> list[Word]: ...


class PocketSphinx:
    def __init__(self):
        from pocketsphinx import Decoder  # its model loads here, once per stage run

        self.decoder = Decoder(samprate=RATE, loglevel="FATAL")

    def words(self, pcm: np.ndarray, offset: float) -> list[Word]:
        self.decoder.start_utt()
        self.decoder.process_raw(pcm.astype(np.int16).tobytes(), full_utt=True)
        self.decoder.end_utt()
        found = []
        for segment in self.decoder.seg():
            if FILLER.match(segment.word):
                continue
            start = offset + segment.start_frame / FRAMES_PER_SECOND
            end = offset + (segment.end_frame + 1) / FRAMES_PER_SECOND
            found.append(Word(VARIANT.sub("", segment.word), round(start, 2), round(end, 2)))
        return found


def recognizer(language: str) -> Recognizer:
    """The configured recognizer, else PocketSphinx (US English)."""
    named = os.environ.get(ENGINE_ENV)
    if not named:
        return PocketSphinx()
    module, _, factory = named.partition(":")
    return getattr(importlib.import_module(module), factory or "make")(language)
