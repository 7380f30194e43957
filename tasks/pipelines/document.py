"""`document`: turn a person's notes into a document with a cover, section by section.

outline → content → cover → render, as a long-document generator does.
The outline is the notes' own headings, else keyword clusters (notes.py).
Content writes one section per item through an engine (engines.py) and
keeps every finished section's text with `ctx.save`, so after a kill -9, a
hand-back or a retry it goes on at the next section; a section that cannot
be written is a failed item and the document says so in its place. Render
writes `document.md` and `document.html`: every piece of text escaped, no
script, the cover inlined, so the page can show it in a sandboxed frame.
"""

import base64
import html
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from tasks.context import clean
from tasks.pipelines import cover as covers
from tasks.pipelines import engines, notes
from tasks.pipelines.authoring import N_, Params, Pipeline

NOTES_MAX_BYTES = 200 * 1024
TITLE_MAX = 200


class DocumentParams(Params):
    title: str = Field(min_length=1, max_length=TITLE_MAX, title=N_("Title"))
    notes: str = Field(
        min_length=1,
        max_length=NOTES_MAX_BYTES,
        title=N_("Notes"),
        description=N_(
            "Paste your notes, Chinese or English (up to 200 KB). "
            "Markdown headings (# …) become the sections."
        ),
    )
    sections: int = Field(
        6,
        ge=1,
        le=30,
        title=N_("Sections"),
        description=N_("At most this many; the notes' headings can make fewer."),
    )
    engine: Literal["extractive", "openai"] = Field(
        "extractive",
        title=N_("Engine"),
        description=N_(
            "extractive: picks sentences from the notes, offline. "
            "openai: an OpenAI-compatible endpoint set up by the admin (TASKDECK_LLM_URL)."
        ),
    )

    @field_validator("title")
    @classmethod
    def _one_line(cls, value: str) -> str:
        value = " ".join(value.split())  # a line break would end the Markdown heading
        if not value:
            raise ValueError("must not be blank")
        return value

    @field_validator("notes")
    @classmethod
    def _readable_and_at_most_200_kb(cls, value: str) -> str:
        value = value.replace("\r\n", "\n").replace("\r", "\n")  # a browser's line ends
        if len(value.encode("utf-8", "surrogatepass")) > NOTES_MAX_BYTES:
            raise ValueError(f"must be at most {NOTES_MAX_BYTES:,} bytes in UTF-8")
        if not notes.sentences(value):
            raise ValueError("must hold some text, not only blanks, markers or headings' #")
        return value

    @field_validator("engine")
    @classmethod
    def _configured(cls, value: str) -> str:
        if value not in engines.configured():
            raise ValueError(f"the {value} engine is not set up here ({engines.URL_ENV} is unset)")
        return value


document = Pipeline(
    "document",
    title=N_("Document"),
    description=N_(
        "Write a document from your notes: an outline, each section's text, a cover "
        "and the document as Markdown and HTML."
    ),
    params=DocumentParams,
)


@document.stage("outline")
def outline(ctx, params):
    found, source = notes.outline(params.notes, params.sections)
    ctx.log(f"{len(found)} sections from the notes' {source}")
    return {"sections": [s.title for s in found], "from": source}


@document.stage("content")
def content(ctx, params, outline):
    """One item per section; the texts written so far are saved after each one.

    The saved texts are what counts: item records are written in batches,
    so after a kill the last sections written may not be marked done yet.
    """
    titles = outline["sections"]
    material = notes.outline(params.notes, params.sections)[0]  # the same notes: the same cut
    if [s.title for s in material] != titles:  # e.g. a new jieba between a run and its retry
        raise RuntimeError(
            "The notes' outline has changed since the outline stage; retry from scratch"
        )
    writer = engines.engine(params.engine)
    texts = dict(ctx.saved.get("texts", {}))
    numbered = list(enumerate(titles, 1))
    for number, title in ctx.each(numbered, key=lambda pair: f"section {pair[0]}"):
        ctx.check_cancelled()
        if str(number) in texts:  # saved, but killed before its item was recorded done
            continue
        said = tuple(material[number - 1].sentences) if number <= len(material) else ()
        request = engines.Request(params.title, title, said, number, len(titles))
        texts[str(number)] = clean(writer.write(request))
        ctx.save({"texts": texts})  # before the item is recorded done: a kill redoes only it
        ctx.log(f"section {number} of {len(titles)} written ({len(texts[str(number)])} chars)")
    return {
        "written": len(texts),
        "failed": [n for n, _ in numbered if str(n) not in texts],
        "texts": texts,
    }


@document.stage("cover")
def cover(ctx, params, outline):
    with tempfile.TemporaryDirectory() as work:
        target = Path(work) / "cover.png"
        used = covers.draw(params.title, subtitle(outline), target)
        ctx.artifact("cover.png", target)
    if covers.needs_cjk(params.title) and not covers.has_cjk(used):
        ctx.log("no font with Chinese glyphs was found: install fonts-noto-cjk")
    return {"font": used.name if used else "Pillow's built-in font"}


@document.stage("render")
def render(ctx, params, outline, content):
    sections = [
        (title, content["texts"].get(str(number)))
        for number, title in enumerate(outline["sections"], 1)
    ]
    ctx.artifact("document.md", markdown(params.title, sections))
    with tempfile.TemporaryDirectory() as work:  # the same cover as the cover stage drew
        target = Path(work) / "cover.png"
        covers.draw(params.title, subtitle(outline), target)
        picture = base64.b64encode(target.read_bytes()).decode()
    ctx.artifact("document.html", page(params.title, sections, picture))
    return {"sections": len(sections), "missing": sum(text is None for _, text in sections)}


def subtitle(outline: dict) -> str:
    """The first section titles, for the cover."""
    text = " · ".join(outline["sections"][:3])
    return text if len(text) <= 60 else text[:59] + "…"


MISSING = "(This section could not be written; the task's failed items say why.)"


def markdown(title: str, sections: list[tuple[str, str | None]]) -> str:
    parts = [f"# {title}"]
    for heading, text in sections:
        parts += [f"## {heading}", text if text is not None else f"*{MISSING}*"]
    return "\n\n".join(parts) + "\n"


STYLE = (
    "body{font:17px/1.65 system-ui,'Noto Sans CJK SC',sans-serif;max-width:44rem;"
    "margin:2rem auto;padding:0 1rem;color:#1d2330;background:#fff}"
    "img{width:100%;height:auto;border-radius:6px}h1{line-height:1.2}"
    "h2{margin-top:2rem}.missing{color:#8a3b12;font-style:italic}"
)


def page(title: str, sections: list[tuple[str, str | None]], picture: str) -> str:
    """The document as one HTML page: escaped text, inline style, the cover as a data URL."""
    e = html.escape
    body = [f'<img src="data:image/png;base64,{picture}" alt="">', f"<h1>{e(title)}</h1>"]
    for heading, text in sections:
        body.append(f"<h2>{e(heading)}</h2>")
        if text is None:
            body.append(f'<p class="missing">{e(MISSING)}</p>')
            continue
        body += [f"<p>{e(p.strip())}</p>" for p in text.split("\n\n") if p.strip()]
    return (
        '<!doctype html>\n<html><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)}</title><style>{STYLE}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
