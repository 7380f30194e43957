"""A task's page, what it produced to look at: its artifacts split into files and images,
the images as a paged grid, HTML in a sandboxed frame, a transcript with its speakers,
and a search box over its index (media_index's `index.sqlite`).

Thousands of thumbnails must not ride along with every status poll, so only
the files are listed in the polled block; the grid and the search are drawn
with the page, and once more when the poll sees the task end.
"""

import json
import math

from flask import request
from flask_babel import gettext
from flask_login import current_user

from app.services import artifacts, search
from app.services.errors import ServiceError
from tasks.pipelines import media

IMAGES_PER_PAGE = 48
QUERY_MAX = 200


def files(task_id: str) -> list:
    """The task's artifacts that are not images: what the polled block lists."""
    return artifacts.listing(current_user, task_id, images=False)


def context(task_id: str, listed: list) -> dict:
    """The template context of partials/results.html, from the page's `q` and `images`.

    `listed` is what files() gave; the images are read here, when drawn.
    """
    images = artifacts.listing(current_user, task_id, images=True)
    pages = max(1, math.ceil(len(images) / IMAGES_PER_PAGE))
    page = min(max(request.args.get("images", 1, type=int), 1), pages)
    query = request.args.get("q", "").strip()
    searchable = any(a.name == media.INDEX for a in listed)
    matches, error = [], None
    if query and searchable:
        if len(query) > QUERY_MAX:
            error = gettext("Search for at most %(n)s characters", n=QUERY_MAX)
        else:
            try:
                matches = search.search(current_user, task_id, query, 50)
            except ServiceError as exc:
                error = exc.detail
    start = (page - 1) * IMAGES_PER_PAGE
    return {
        "searchable": searchable,
        "query": query,
        "matches": matches,
        "search_error": error,
        "previews": [a for a in listed if a.content_type == "text/html"],
        "transcript": _transcript(task_id, listed),
        "images": {
            "shown": images[start : start + IMAGES_PER_PAGE],
            "total": len(images),
            "page": page,
            "pages": pages,
        },
    }


TRANSCRIPT = "transcript.json"
TRANSCRIPT_SHOWN = 2000  # segments on the page; the artifacts hold them all


def _transcript(task_id: str, listed: list) -> list[dict] | None:
    """The segments of a transcript.json as `transcribe` writes it, to read on the task page.

    Any pipeline may keep a file of that name: one of another shape (no
    speakers, text times), or whose file is gone, is not shown, and stays
    in the list to download.
    """
    if not any(a.name == TRANSCRIPT for a in listed):
        return None
    try:
        _, path = artifacts.locate(current_user, task_id, TRANSCRIPT)
        segments = json.loads(path.read_text(encoding="utf-8"))["segments"][:TRANSCRIPT_SHOWN]
    except (ServiceError, OSError, ValueError, KeyError, TypeError):
        return None
    return segments if all(_readable(s) for s in segments) else None


def _readable(segment) -> bool:
    """A segment the page can show: a finite start, a speaker numbered from 1, text."""
    if not isinstance(segment, dict) or not isinstance(segment.get("text"), str):
        return False
    start, speaker = segment.get("start"), segment.get("speaker")
    number = isinstance(start, int | float) and not isinstance(start, bool)
    return (
        number
        and math.isfinite(start)
        and start >= 0
        and isinstance(speaker, int)
        and not isinstance(speaker, bool)
        and speaker >= 1
    )
