"""The files root: the one folder pipelines read from, and the param types that keep them in it.

`FolderParam` and `FileParam` are text relative to the root. `UploadParam`
is a file sent with the task (multipart) or, from JSON, a file under the
root; an upload is stored under the data dir and named in params as
`upload:<task id>/<param>/<name>` (`located()` finds either kind). Validation
resolves them, following symlinks, and refuses `..`, absolute paths
elsewhere and links that lead out, naming the param (a 422); the task keeps
the resolved path, relative to the root. `walk()` skips, and reports, links
met on the way that lead out; `open_inside()` checks the file it opened, so
a link swapped in later cannot turn a read elsewhere.

The root is the app's TASKDECK_FILES_ROOT (default `<data dir>/files`),
handed to this module through the environment, so a stage in an isolated
child process has it too. `state_dir()` is where a pipeline keeps what
outlives a task (`<data dir>/state/<pipeline>`).
"""

import os
import re
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, BinaryIO

from flask_babel import gettext
from pydantic import AfterValidator, Field, ValidationInfo

# Set by the app for the pipelines it loads (and inherited by isolated stages): the folders
# it resolved from its configuration (TASKDECK_FILES_ROOT and the data dir), under names of
# their own, so a second app in one process never takes the first one's for the user's.
ROOT_ENV = "TASKDECK_RUN_FILES_ROOT"
STATE_ENV = "TASKDECK_RUN_STATE_DIR"
UPLOADS_ENV = "TASKDECK_RUN_UPLOADS_DIR"
PATH_MAX = 1000
# The JSON Schema `format` of each path param type: the form offers suggestions for them
# (an upload param may name a file under the root instead).
FOLDER, FILE, UPLOAD = "taskdeck-folder", "taskdeck-file", "taskdeck-upload"
PATH_FORMATS = (FOLDER, FILE, UPLOAD)
# upload:<task id>/<param>/<file name>: a folder per param, so two files of one name differ.
UPLOADED = re.compile(r"upload:([0-9a-f]{32})/(\w+)/([^./\\][^/\\]*)")
# Suggestions offered by the new-task form (a datalist): enough to pick from, cheap to list.
SUGGESTIONS_MAX = 300
SUGGESTION_DEPTH = 3


def files_root() -> Path:
    """The resolved root; ValueError when it is not configured (a refusal, never a crash)."""
    root = os.environ.get(ROOT_ENV)
    if not root:
        raise ValueError(gettext("no files root is configured"))
    return Path(root).resolve()


def state_dir(pipeline: str) -> Path:
    """A folder a pipeline keeps between its tasks (a catalogue, a cache), made on first use."""
    base = os.environ.get(STATE_ENV)
    if not base:
        raise RuntimeError(f"no state folder is configured ({STATE_ENV} is unset)")
    path = Path(base) / pipeline
    path.mkdir(parents=True, exist_ok=True)
    return path


def inside(path: Path, root: Path) -> bool:
    """True when the real path of `path` is the root or under it (False if it cannot resolve)."""
    try:
        real = path.resolve()
    except (OSError, RuntimeError):  # a link loop, a name too long
        return False
    return real == root or root in real.parents


def resolve(relative: str) -> Path:
    """The real path of `relative` under the root; ValueError naming why when it is not."""
    if "\x00" in relative:
        raise ValueError(gettext("a path cannot contain NUL"))
    root = files_root()
    path = root / relative  # an absolute `relative` replaces the root: refused below
    if not inside(path, root):
        raise ValueError(gettext("is outside the files root"))
    return path.resolve()


def uploads_dir() -> Path:
    """Where files sent with tasks are kept (`<data dir>/uploads`, one folder per task)."""
    base = os.environ.get(UPLOADS_ENV)
    if not base:
        raise ValueError(gettext("no uploads folder is configured"))
    return Path(base).resolve()


def uploaded(value: str) -> re.Match | None:
    """The parts of an upload's params value (task id, param, file name), else None."""
    return UPLOADED.fullmatch(value)


def upload_value(task_id: str, param: str, name: str) -> str:
    """How params name a file uploaded with task `task_id`."""
    return f"upload:{task_id}/{param}/{name}"


def located(value: str) -> Path:
    """The file a FileParam or UploadParam names: an upload, or a path under the root."""
    parts = uploaded(value)
    if parts:
        return uploads_dir().joinpath(*parts.groups())
    return resolve(value)


def open_inside(path: Path) -> BinaryIO:
    """`path` opened for reading if, once open, it is a regular file under the root (or an upload).

    The check is on the open file itself (its /proc/self/fd link), so a link
    swapped in after the walk cannot turn the read to a file elsewhere, and a
    FIFO cannot block the stage (O_NONBLOCK, then "not a regular file").
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError("not a regular file")
        opened = Path(os.readlink(f"/proc/self/fd/{fd}"))
        if not inside(opened, files_root()) and not _uploaded(opened):
            raise ValueError("leads outside the files root")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _uploaded(path: Path) -> bool:
    try:
        return inside(path, uploads_dir())
    except ValueError:  # no uploads folder: nothing is an upload
        return False


def relative(path: Path) -> str:
    """`path` as stored in params: relative to the root, with "/" ("." for the root itself)."""
    return path.relative_to(files_root()).as_posix() or "."


def _checked(value: str, kind: Callable[[Path], bool], refusal: str) -> str:
    """FolderParam's and FileParam's check: under the root and of the kind, else ValueError."""
    path = resolve(value)
    try:
        right_kind = kind(path)
    except OSError:  # unreadable, or a name too long
        right_kind = False
    if not right_kind:
        raise ValueError(refusal)
    return relative(path)


def _folder(value: str) -> str:
    return _checked(value, Path.is_dir, gettext("is not a folder under the files root"))


def _file(value: str) -> str:
    return _checked(value, Path.is_file, gettext("is not a file under the files root"))


def _file_or_upload(value: str, info: ValidationInfo) -> str:
    """UploadParam's check. At submit (a validation context lists the files sent with the
    task) an `upload:` value must be one of them, so JSON cannot name another task's upload;
    stored params (no context) keep theirs."""
    if uploaded(value):
        sent = info.context.get("uploads", ()) if info.context else None
        if sent is not None and value not in sent:
            raise ValueError(gettext("names an upload that was not sent with this task"))
        return value
    return _file(value)


FolderParam = Annotated[
    str,
    Field(min_length=1, max_length=PATH_MAX, json_schema_extra={"format": FOLDER}),
    AfterValidator(_folder),
]
FileParam = Annotated[
    str,
    Field(min_length=1, max_length=PATH_MAX, json_schema_extra={"format": FILE}),
    AfterValidator(_file),
]


UploadParam = Annotated[
    str,
    Field(min_length=1, max_length=PATH_MAX, json_schema_extra={"format": UPLOAD}),
    AfterValidator(_file_or_upload),
]


def walk(folder: Path, skipped: Callable[[Path], None]) -> Iterator[Path]:
    """The regular files under `folder`, in a stable order.

    Symlinks are not followed into folders (no loops, no escapes); a linked
    file is kept only if it leads to a file under the root, else `skipped`
    is told, so the stage can log it.
    """
    root = files_root()
    for here, folders, names in os.walk(folder):
        folders.sort()
        for name in [f for f in folders if (Path(here) / f).is_symlink() or not _utf8(f)]:
            folders.remove(name)
            if not _utf8(name) or not inside(Path(here) / name, root):
                skipped(Path(here) / name)
        for name in sorted(names):
            path = Path(here) / name
            if not _utf8(name) or (path.is_symlink() and not inside(path, root)):
                skipped(path)
            elif path.is_file():
                yield path


def _utf8(name: str) -> bool:
    """A name that is text (not bytes undecodable as UTF-8, which cannot be stored or shown)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _suggestible(path: Path) -> bool:
    return not path.name.startswith(".") and _utf8(path.name) and not path.is_symlink()


def suggestions(kind: str) -> list[str]:
    """Folders (kind "taskdeck-folder") or files under the root, for the form to offer."""
    try:
        root = files_root()
    except ValueError:
        return []
    found: list[str] = ["."] if kind == FOLDER else []  # FILE and UPLOAD: the files
    for here, folders, names in os.walk(root):
        depth = len(Path(here).relative_to(root).parts)
        folders[:] = sorted(f for f in folders if _suggestible(Path(here) / f))
        if depth >= SUGGESTION_DEPTH:
            folders.clear()
        entries = (
            folders if kind == FOLDER else sorted(n for n in names if _suggestible(Path(here) / n))
        )
        found += [(Path(here) / e).relative_to(root).as_posix() for e in entries]
        if len(found) >= SUGGESTIONS_MAX:
            break
    return found[:SUGGESTIONS_MAX]
