"""What writes a document's sections: one small interface, two engines.

`extractive` is built in: it picks the sentences of a section's notes that
carry its words best and keeps them in the notes' order; no network, same
answer every time. `openai` asks any OpenAI-compatible chat endpoint
(`TASKDECK_LLM_URL`, `TASKDECK_LLM_MODEL`; the key from `TASKDECK_LLM_KEY`
or the file `TASKDECK_LLM_KEY_FILE` names). The key is read when a section
is written and goes only into the request's Authorization header (bearer.py):
never into params, logs, events or an error's text.
"""

import os
import re
from collections import Counter
from dataclasses import dataclass
from typing import Protocol

from tasks.pipelines.bearer import Http, RemoteError
from tasks.pipelines.notes import words
from tasks.pipelines.secrets import private_text

URL_ENV, MODEL_ENV, KEY_ENV, KEY_FILE_ENV = (
    "TASKDECK_LLM_URL",
    "TASKDECK_LLM_MODEL",
    "TASKDECK_LLM_KEY",
    "TASKDECK_LLM_KEY_FILE",
)
KEPT = 6  # sentences an extractive section keeps at most
PER_PARAGRAPH = 3
TIMEOUT = 120
# Chinese characters and full-width punctuation: no space between such sentences.
WIDE = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uf900-\ufaff\uff00-\uffef]")


@dataclass(frozen=True)
class Request:
    """What an engine is given for one section."""

    document: str  # the document's title
    heading: str
    sentences: tuple[str, ...]  # the notes' sentences this section draws on
    number: int  # 1-based
    of: int


class Engine(Protocol):
    def write(self, request: Request) -> str:
        """The section's text: paragraphs separated by blank lines. Raises if it cannot."""
        ...


class Extractive:
    def write(self, request: Request) -> str:
        said = request.sentences
        if not said:
            raise ValueError(f"The notes have nothing for section {request.heading!r}")
        weight = Counter(w for s in said for w in words(s))
        heading = set(words(request.heading))

        def score(at: int) -> float:
            found = words(said[at])
            return sum(weight[w] + 3 * (w in heading) for w in found) / (1 + len(found)) ** 0.5

        best = sorted(range(len(said)), key=lambda at: (-score(at), at))[:KEPT]
        kept = [said[at] for at in sorted(best)]
        paragraphs = [kept[i : i + PER_PARAGRAPH] for i in range(0, len(kept), PER_PARAGRAPH)]
        return "\n\n".join(_joined(p) for p in paragraphs)


def _joined(said: list[str]) -> str:
    """Sentences as running text: no space after a Chinese one, a space after others."""
    text = ""
    for sentence in said:
        gap = "" if not text or WIDE.match(text[-1]) else " "
        text += gap + sentence
    return text


class OpenAI:
    """Any endpoint that speaks OpenAI's `POST {url}/chat/completions`."""

    def __init__(self, url: str, model: str):
        self.url, self.model = url.rstrip("/"), model

    def write(self, request: Request) -> str:
        if not request.sentences:
            raise ValueError(f"The notes have nothing for section {request.heading!r}")
        prompt = (
            f"Write section {request.number} of {request.of}, titled “{request.heading}”, of a "
            f"document titled “{request.document}”. Use only these notes, in their language. "
            "Plain paragraphs separated by blank lines, no heading, no Markdown.\n\nNotes:\n"
            + "\n".join(request.sentences)
        )
        body = {"model": self.model, "messages": [{"role": "user", "content": prompt}]}
        http = Http(self.url, _key(), timeout=TIMEOUT)
        status, answer = http.call("POST", "/chat/completions", body)
        if status != 200:
            raise RemoteError(f"The language model answered {status}: {http.said(answer)}")
        try:
            text = answer["choices"][0]["message"]["content"].strip()
        except (KeyError, IndexError, TypeError, AttributeError):
            raise RemoteError("The language model's answer has no text") from None
        if not text:
            raise RemoteError("The language model answered with no text")
        return http.scrub(text)


def _key() -> str:
    """The key from the environment, or from an owner-only file; "" for endpoints without one."""
    if os.environ.get(KEY_ENV):
        return os.environ[KEY_ENV].strip()
    path = os.environ.get(KEY_FILE_ENV)
    return private_text(path, KEY_FILE_ENV).strip() if path else ""


def configured() -> list[str]:
    """The engines this deck can use now."""
    return ["extractive", "openai"] if os.environ.get(URL_ENV) else ["extractive"]


def engine(name: str) -> Engine:
    if name == "openai":
        if not os.environ.get(URL_ENV):
            raise RuntimeError(f"The openai engine needs {URL_ENV} (and {MODEL_ENV}) to be set")
        return OpenAI(os.environ[URL_ENV], os.environ.get(MODEL_ENV, "gpt-4o-mini"))
    return Extractive()
