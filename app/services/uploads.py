"""Files sent with a task (UploadParam): kept under `<data dir>/uploads/<task id>/`.

A submit names each file in params as `upload:<task id>/<param>/<name>` before the
params are validated, and writes the files only once they are; if the
task's row then cannot be committed the folder goes again, so a refused
submit leaves nothing behind. A retry's params name its original's files,
so a folder stays while any task still names it and goes with the last
(`forget`, called by pruning).
"""

import shutil
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from flask import current_app
from flask_babel import gettext
from sqlalchemy import String, cast, select

from app.extensions import db
from app.models import Task
from app.services.artifacts import NAME_MAX, NAME_MAX_BYTES
from app.services.catalog import get_pipeline
from app.services.errors import ParamsError, StorageFull, Unprocessable
from tasks.pipelines.files import UPLOAD, upload_value, uploaded

COPY_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Upload:
    """One file field of a submit: the name the client gave it and its content."""

    filename: str
    stream: BinaryIO


def root() -> Path:
    return Path(current_app.config["UPLOADS_DIR"])


def safe_name(filename: str) -> str:
    """The client's file name as a plain name: no folders, control characters or leading dot.

    Chinese and other scripts are kept; a name with nothing left (only dots
    and spaces, say) is "upload".
    """
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if not unicodedata.category(ch).startswith("C"))
    # An artifact's name limits: one declaration of what a kept file may be called.
    while len(name) > NAME_MAX or len(name.encode("utf-8", "surrogatepass")) > NAME_MAX_BYTES:
        stem, dot, suffix = name.rpartition(".")
        name = (stem[:-1] + dot + suffix) if dot and len(suffix) <= 16 and stem else name[:-1]
    while (tidied := name.strip().lstrip(".")) != name:  # ". ." is "." once stripped once
        name = tidied
    name = name.encode("utf-8", "replace").decode("utf-8")
    return name if uploaded(upload_value("0" * 32, "p", name)) else "upload"


def upload_params(pipeline) -> set[str]:
    """The names of a pipeline's UploadParam params."""
    properties = pipeline.params_schema.get("properties", {}) if pipeline else {}
    return {name for name, spec in properties.items() if spec.get("format") == UPLOAD}


def named(pipeline, task_id: str, uploads: dict[str, Upload]) -> dict[str, str]:
    """The params value of each upload; Unprocessable for a param that takes no file."""
    refused = sorted(set(uploads) - upload_params(pipeline))
    if refused:
        error = ParamsError([f"{name}: " + gettext("takes no file") for name in refused])
        raise Unprocessable(
            gettext("Invalid params: %(errors)s", errors=error), fields=error.by_field
        )
    return {n: upload_value(task_id, n, safe_name(u.filename)) for n, u in uploads.items()}


def store(task_id: str, uploads: dict[str, Upload], values: dict[str, str]) -> Path:
    """Write the files where their values point (a folder per param); the task's folder.

    A disk that cannot take them is a StorageFull (507), their folder gone.
    """
    folder = root() / task_id
    try:
        for name, upload in uploads.items():
            target = folder.joinpath(*uploaded(values[name]).groups()[1:])
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("wb") as out:
                shutil.copyfileobj(upload.stream, out, COPY_CHUNK)
    except OSError as exc:
        discard(folder)
        raise StorageFull(
            gettext("The files could not be stored: %(reason)s", reason=exc.strerror)
        ) from exc
    return folder


def discard(folder: Path | None) -> None:
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def _named_folders(task_type: str, params) -> set[str]:
    """The upload folders (task ids) a task's UploadParam params name."""
    fields = upload_params(get_pipeline(task_type))
    return {
        match.group(1)
        for name, value in (params or {}).items()
        if name in fields and isinstance(value, str) and (match := uploaded(value))
    }


def forget(pruned: list[tuple[str, dict]]) -> int:
    """Remove the upload folders the pruned tasks named, unless a kept task still names them.

    `pruned` holds (type, params) of tasks already deleted (in this
    transaction). Only UploadParam params count, on both sides: text that
    merely looks like an upload keeps no file alive. Returns how many went.
    """
    folders = set().union(*(_named_folders(kind, params) for kind, params in pruned))
    gone = 0
    for owner in sorted(folders):
        candidates = db.session.execute(  # a coarse filter; the params decide
            select(Task.type, Task.params).where(
                cast(Task.params, String).like(f"%upload:{owner}/%")
            )
        )
        if not any(owner in _named_folders(kind, params) for kind, params in candidates):
            shutil.rmtree(root() / owner, ignore_errors=True)
            gone += 1
    return gone
