"""Files sent with a task (UploadParam): kept under `<data dir>/uploads/<task id>/`.

A submit names each file in params as `upload:<task id>/<name>` before the
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
from app.services.errors import ParamsError, Unprocessable
from tasks.pipelines.files import UPLOAD, UPLOADED, upload_value

NAME_MAX, NAME_MAX_BYTES = 200, 255
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

    Chinese and other scripts are kept; a name with nothing left is "upload".
    """
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if not unicodedata.category(ch).startswith("C"))
    name = name.strip().lstrip(".").strip()
    while len(name) > NAME_MAX or len(name.encode("utf-8", "surrogatepass")) > NAME_MAX_BYTES:
        stem, dot, suffix = name.rpartition(".")
        name = (stem[:-1] + dot + suffix) if dot and len(suffix) <= 16 and stem else name[:-1]
    return name.encode("utf-8", "replace").decode("utf-8") or "upload"


def named(pipeline, task_id: str, uploads: dict[str, Upload]) -> dict[str, str]:
    """The params value of each upload; Unprocessable for a param that takes no file."""
    properties = pipeline.params_schema.get("properties", {})
    refused = sorted(n for n in uploads if properties.get(n, {}).get("format") != UPLOAD)
    if refused:
        error = ParamsError([f"{name}: " + gettext("takes no file") for name in refused])
        raise Unprocessable(
            gettext("Invalid params: %(errors)s", errors=error), fields=error.by_field
        )
    return {n: upload_value(task_id, safe_name(u.filename)) for n, u in uploads.items()}


def store(task_id: str, uploads: dict[str, Upload], values: dict[str, str]) -> Path | None:
    """Write the files where their values point; the folder (to remove on a failed commit)."""
    if not uploads:
        return None
    folder = root() / task_id
    folder.mkdir(parents=True, exist_ok=True)
    for name, upload in uploads.items():
        target = folder / UPLOADED.match(values[name]).group(2)
        with target.open("wb") as out:
            shutil.copyfileobj(upload.stream, out, COPY_CHUNK)
    return folder


def discard(folder: Path | None) -> None:
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def forget(pruned: list[dict]) -> int:
    """Remove the upload folders the pruned tasks' params named, unless a kept task names them.

    `pruned` holds the params of tasks already deleted (in this transaction).
    Returns how many folders went.
    """
    folders = {
        match.group(1)
        for params in pruned
        for value in (params or {}).values()
        if isinstance(value, str) and (match := UPLOADED.match(value))
    }
    gone = 0
    for owner in sorted(folders):
        still_named = db.session.scalar(
            select(Task.id).where(cast(Task.params, String).like(f"%upload:{owner}/%")).limit(1)
        )
        if still_named is None:
            shutil.rmtree(root() / owner, ignore_errors=True)
            gone += 1
    return gone
