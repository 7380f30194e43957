"""Artifacts: files stages produce, kept under ARTIFACTS_DIR and downloadable by owner and admins.

A file lives under the folder of the task that produced it (a stage that
keeps the same name again replaces it, while it holds the stage's lease);
a retry that reuses a stage gets rows pointing at the same files (no copy).
Names are plain file names: no folders, no dot-files, no control characters.
"""

import mimetypes
import os
import shutil
import unicodedata
from pathlib import Path

from flask import current_app
from flask_babel import gettext
from sqlalchemy import delete, insert, select

from app.constants import ERR_ARTIFACT_NAME, ERR_ARTIFACT_TOO_LARGE
from app.extensions import db
from app.models import TaskArtifact, utcnow
from app.services.errors import InvalidRequest, NotFound
from app.services.queries import get_task

ARTIFACTS = TaskArtifact.__table__
NAME_MAX = 200
NAME_MAX_BYTES = 255  # a file name's limit on Linux file systems
# Shown as a grid on the task page rather than listed with the files.
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp", "image/gif")


class ArtifactError(ValueError):
    """A stage's artifact that cannot be kept: a bad name, or over the size cap."""

    def __init__(self, message: str, code: str = ERR_ARTIFACT_NAME):
        super().__init__(message)
        self.code = code


def check_name(name: str) -> str:
    if not isinstance(name, str) or not 0 < len(name) <= NAME_MAX:
        raise ArtifactError(f"An artifact name is 1 to {NAME_MAX} characters")
    if len(name.encode("utf-8", "surrogatepass")) > NAME_MAX_BYTES:
        raise ArtifactError(f"Artifact name {name[:40]!r}… is over {NAME_MAX_BYTES} bytes of UTF-8")
    bad = (
        name.startswith(".")
        or "/" in name
        or "\\" in name
        or any(unicodedata.category(ch).startswith("C") for ch in name)
    )
    if bad:
        raise ArtifactError(
            f"Artifact name {name!r} must be a plain file name (no folders, control characters "
            "or leading dot)"
        )
    return name


def root() -> Path:
    return Path(current_app.config["ARTIFACTS_DIR"])


def staging_dir(task_id: str, run: int) -> Path:
    """Where one run of a stage (or its child) writes files before they are recorded.

    Per run (dispatch number), so a superseded run cleaning up after itself
    cannot delete what the run that took over is writing.
    """
    folder = root() / task_id / ".incoming" / str(run)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def store(task_id: str, stage: str, name: str, source: Path) -> TaskArtifact:
    """Move a finished file from the staging folder into place and record it (caller commits).

    A second artifact with the same name in one task replaces the first.
    """
    check_name(name)
    size = source.stat().st_size
    limit = current_app.config["ARTIFACT_MAX_BYTES"]
    if size > limit:
        source.unlink(missing_ok=True)
        raise ArtifactError(too_large(name, limit), ERR_ARTIFACT_TOO_LARGE)
    relative = f"{task_id}/{name}"
    target = root() / relative
    os.replace(source, target)
    db.session.execute(
        delete(ARTIFACTS).where(ARTIFACTS.c.task_id == task_id, ARTIFACTS.c.name == name)
    )
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    row = TaskArtifact(
        task_id=task_id,
        name=name,
        stage=stage,
        size=size,
        content_type=content_type[:100],
        path=relative,
        created_at=utcnow(),
    )
    db.session.add(row)
    return row


def too_large(name: str, limit: int) -> str:
    return f"Artifact {name!r} is larger than the limit of {limit:,} bytes"


def listing(actor, task_id: str, images: bool | None = None) -> list[TaskArtifact]:
    """The task's artifacts; only its images, or all but them, when `images` says so.

    The split is in the query: a status poll lists the files of a task that
    may hold thousands of thumbnails.
    """
    get_task(actor, task_id)
    query = select(TaskArtifact).where(TaskArtifact.task_id == task_id)
    if images is not None:
        is_image = TaskArtifact.content_type.in_(IMAGE_TYPES)
        query = query.where(is_image if images else ~is_image)
    return list(db.session.scalars(query.order_by(TaskArtifact.id)))


def locate(actor, task_id: str, name: str) -> tuple[TaskArtifact, Path]:
    """The artifact row and its file; NotFound for an unknown name or a file gone from disk."""
    get_task(actor, task_id)
    row = db.session.scalar(
        select(TaskArtifact).where(TaskArtifact.task_id == task_id, TaskArtifact.name == name)
    )
    if row is None:
        raise NotFound(gettext("Artifact not found"))
    path = (root() / row.path).resolve()
    if root().resolve() not in path.parents:
        raise InvalidRequest(gettext("Artifact not found"))
    if not path.is_file():
        raise NotFound(gettext("The artifact's file is missing from the data folder"))
    return row, path


def carry_over(old_id: str, new_id: str, stages: list[str]) -> None:
    """A retry reuses these stages: its rows point at the same files."""
    columns = ["name", "stage", "size", "content_type", "path", "created_at"]
    db.session.execute(
        insert(ARTIFACTS).from_select(
            ["task_id", *columns],
            select(db.literal(new_id), *(ARTIFACTS.c[c] for c in columns)).where(
                ARTIFACTS.c.task_id == old_id, ARTIFACTS.c.stage.in_(stages)
            ),
        )
    )


def discard_staging(task_id: str, run: int) -> None:
    """Drop what a stage's run left half-written (a crash, a kill): it was never recorded."""
    folder = root() / task_id / ".incoming" / str(run)
    if folder.is_dir():  # most stages stage nothing: spare rmtree's error path
        shutil.rmtree(folder, ignore_errors=True)
