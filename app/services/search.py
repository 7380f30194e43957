"""Search in a task's index artifact (media_index's `index.sqlite`), for the page and the API.

The index was written by the task's own stage; this opens it read-only and
leaves the query to the pipeline module that knows its tables.
"""

import contextlib
import sqlite3

from flask_babel import gettext

from app.services import artifacts, queries
from app.services.errors import NotFound
from tasks.pipelines import media


def search(actor, task_id: str, query: str, limit: int) -> list[dict]:
    """Matches for `query`; NotFound when the task has no index (yet, or is of another kind).

    Only media_index's own index is opened: another pipeline's `index.sqlite`
    is a file of unknown make, not for the web process to query.
    """
    task = queries.get_task(actor, task_id)
    row, path = (None, None)
    if task.type == media.media_index.name:
        with contextlib.suppress(NotFound):
            row, path = artifacts.locate(actor, task_id, media.INDEX)
    if row is None or row.stage != media.index.__name__:
        raise NotFound(gettext("This task has no search index"))
    try:
        return media.search(path, query, min(limit, media.SEARCH_MAX))
    except sqlite3.DatabaseError:  # not an index of ours (a pipeline's own index.sqlite)
        raise NotFound(gettext("This task has no search index")) from None
