"""Reading a person's notes, Chinese or English: sentences, keywords, and an outline.

The `document` pipeline's outline comes from here: the notes' own Markdown
headings when they have some, else runs of sentences cut where the words
change (keyword clusters), each titled by the words that mark it out. Words
are jieba's for Chinese (it segments text that has no spaces) and plain
letter runs for other scripts; both go through one stop list.
"""

import functools
import logging
import math
import re
from collections import Counter
from dataclasses import dataclass, field

import jieba

jieba.setLogLevel(logging.WARNING)  # not "Building prefix dict…" in every worker's log

# The title's closing #s and spaces are stripped in Python: a regex for them backtracks
# quadratically on a long line of spaces.
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+)$")
# A sentence ends at . ! ? (then a space), at 。！？ or at a blank line.
SENTENCE_END = re.compile(r"(?<=[。！？!?])|(?<=\.)(?=\s)|\n\s*\n")
HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
LATIN_WORD = re.compile(r"[^\W\d_]{3,}")
STOP_WORDS = """
the and for are but not you all any can had her was one our out has have him his how
its may new now old see two way who did get let put say she too use that this with
from they will would there their what about which when your said each been into than
them then these some could other were more also just like over such only very much
most must should here where while after before being because does doing those
through during again further once
我们 你们 他们 她们 它们 这个 那个 这些 那些 一个 没有 不是 就是 还是 可以 因为 所以
但是 如果 然后 已经 自己 什么 怎么 这样 那样 进行 以及 或者 而且 并且 还有 需要 一些 一下 这里 那里
"""
STOP = frozenset(STOP_WORDS.split())
# A list item or a heading is a sentence of its own; a line break inside Chinese text is no space.
ON_ITS_OWN = re.compile(r"^[ \t]*(?:[-*+•]|\d{1,3}[.)、]|#{1,6})[ \t]+(.*)$", re.M)
HAN_BREAK = re.compile(r"(?<=[\u3400-\u9fff，。、；：！？])[ \t]*\n[ \t]*(?=[\u3400-\u9fff])")
WINDOW = 3  # sentences compared either side of a possible cut


@dataclass
class Section:
    """One section of the outline: its title and the notes' sentences it draws on."""

    title: str
    sentences: list[str] = field(default_factory=list)


def sentences(text: str) -> list[str]:
    """The sentences of `text`, in order, each on one line and trimmed."""
    text = HAN_BREAK.sub("", ON_ITS_OWN.sub(r"\n\n\1\n\n", text))
    parts = (" ".join(part.split()) for part in SENTENCE_END.split(text))
    return [part for part in parts if part]


@functools.lru_cache(maxsize=1 << 16)
def words(text: str) -> tuple[str, ...]:
    """The words that carry meaning: jieba's for Chinese, letter runs for others; no stop words.

    Kept per sentence: titling a section and scoring its sentences ask again.
    """
    found = []
    for token in jieba.cut(text) if HAN.search(text) else LATIN_WORD.findall(text):
        token = token.strip().lower()
        if token in STOP:
            continue
        if HAN.search(token) and len(token) >= 2 or LATIN_WORD.fullmatch(token):
            found.append(token)
    return tuple(found)


def outline(text: str, most: int) -> tuple[list[Section], str]:
    """At most `most` sections: the notes' headings if they have some, else keyword clusters.

    The second value says which: "headings" or "keywords". The same notes
    always give the same outline; the last few are kept (a stage asks again
    after each failed item).
    """
    found, source = _outline(text, most)
    return [Section(s.title, list(s.sentences)) for s in found], source


@functools.lru_cache(maxsize=4)
def _outline(text: str, most: int) -> tuple[list[Section], str]:
    by_heading = _headings(text)
    if by_heading:
        return _folded(by_heading, most), "headings"
    return _clusters(sentences(text), most), "keywords"


def _headings(text: str) -> list[Section]:
    """Sections by the top heading level that is used; text before the first one comes first."""
    lines = text.splitlines()
    levels = [len(m.group(1)) for line in lines if (m := HEADING.match(line))]
    if not levels:
        return []
    top = min(levels)
    found, body = [], []
    title = None
    for line in lines + ["#" * top + " end"]:
        match = HEADING.match(line)
        if match and len(match.group(1)) == top:
            said = sentences("\n".join(body))
            if title is not None or said:
                found.append(Section(title or "", said))
            title, body = match.group(2).rstrip(" \t#").strip(), []
        else:
            body.append(line)  # a lower heading is a sentence of its section
    if found and not found[0].title:  # a preamble: the first section's opening
        preamble = found.pop(0)
        if found:
            found[0].sentences[:0] = preamble.sentences
        else:
            found.append(preamble)
    return found


def _folded(found: list[Section], most: int) -> list[Section]:
    """The first `most` headings; what comes under later ones is part of the last."""
    kept = found[:most]
    for extra in found[most:]:
        kept[-1].sentences.extend([extra.title, *extra.sentences])
    for section in kept:
        section.title = section.title or _title(section.sentences, [s.sentences for s in kept])
    return kept


def _clusters(said: list[str], most: int) -> list[Section]:
    """Runs of sentences cut where the words either side share least, titled by their words."""
    count = max(1, min(most, len(said)))
    bags = [Counter(words(s)) for s in said]
    even = [len(said) * k / count for k in range(1, count)]

    def worse(at: int) -> tuple:  # least shared words first; of equals, the cut nearest even
        return round(_similarity(bags, at), 2), min((abs(at - e) for e in even), default=0)

    gaps = sorted(range(1, len(said)), key=worse)
    smallest = max(1, round(len(said) / (count * 2)))  # no one-sentence sections in long notes
    cuts: list[int] = []
    for at in gaps:
        if len(cuts) == count - 1:
            break
        if min(at, len(said) - at, *(abs(at - c) for c in cuts)) >= smallest:
            cuts.append(at)
    bounds = [0, *sorted(cuts), len(said)]
    runs = [said[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    return [Section(_title(run, runs), run) for run in runs]


def _similarity(bags: list[Counter], at: int) -> float:
    """Cosine of the words in the sentences just before `at` and just after it."""
    before = sum(bags[max(at - WINDOW, 0) : at], Counter())
    after = sum(bags[at : at + WINDOW], Counter())
    dot = sum(n * after[w] for w, n in before.items())
    norm = math.sqrt(sum(n * n for n in before.values()) * sum(n * n for n in after.values()))
    return dot / norm if norm else 0.0


def _title(run: list[str], runs: list[list[str]]) -> str:
    """The two words most particular to `run` among all the runs (tf-idf), or its opening."""
    counts = Counter(w for s in run for w in words(s))
    if not counts:
        return (run[0][:40] if run else "") or "—"
    spread = Counter(w for other in runs for w in {w for s in other for w in words(s)})
    score = {w: n * math.log(1 + len(runs) / spread[w]) for w, n in counts.items()}
    best = sorted(score, key=lambda w: (-score[w], w))[:2]
    return " · ".join(w if HAN.search(w) else w.capitalize() for w in best)
