"""The files root: the one folder pipelines read from, and the param types that keep them in it.

`FolderParam` and `FileParam` are text relative to the root, which is what
the user types and what the task shows. Validation resolves them, following
symlinks, and refuses `..`, absolute paths elsewhere and links that lead out,
naming the param (a 422), so a stage is handed a path it may read. `walk()`
skips, and reports, symlinks met on the way that lead out.

The root is the app's TASKDECK_FILES_ROOT (default `<data dir>/files`),
handed to this module through the environment, so a stage in an isolated
child process has it too. `state_dir()` is where a pipeline keeps what
outlives a task (`<data dir>/state/<pipeline>`).
"""

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated

from flask_babel import gettext
from pydantic import AfterValidator, Field

# Set by the app for the pipelines it loads (and inherited by isolated stages): the folders
# it resolved from its configuration (TASKDECK_FILES_ROOT and the data dir), under names of
# their own, so a second app in one process never takes the first one's for the user's.
ROOT_ENV = "TASKDECK_RUN_FILES_ROOT"
STATE_ENV = "TASKDECK_RUN_STATE_DIR"
PATH_MAX = 1000
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


def inside(path: Path, root: Path | None = None) -> bool:
    """True when the real path of `path` is the root or under it."""
    root = root or files_root()
    real = path.resolve()
    return real == root or root in real.parents


def resolve(relative: str) -> Path:
    """The real path of `relative` under the root; ValueError naming why when it is not."""
    if "\x00" in relative:
        raise ValueError(gettext("a path cannot contain NUL"))
    root = files_root()
    path = (root / relative).resolve()  # an absolute `relative` replaces the root: refused below
    if not inside(path, root):
        raise ValueError(gettext("is outside the files root"))
    return path


def relative(path: Path) -> str:
    """`path` as stored in params: relative to the root, with "/" ("." for the root itself)."""
    return path.relative_to(files_root()).as_posix() or "."


def _folder(value: str) -> str:
    path = resolve(value)
    if not path.is_dir():
        raise ValueError(gettext("is not a folder under the files root"))
    return relative(path)


def _file(value: str) -> str:
    path = resolve(value)
    if not path.is_file():
        raise ValueError(gettext("is not a file under the files root"))
    return relative(path)


FolderParam = Annotated[
    str,
    Field(min_length=1, max_length=PATH_MAX, json_schema_extra={"format": "taskdeck-folder"}),
    AfterValidator(_folder),
]
FileParam = Annotated[
    str,
    Field(min_length=1, max_length=PATH_MAX, json_schema_extra={"format": "taskdeck-file"}),
    AfterValidator(_file),
]


PATH_FORMATS = ("taskdeck-folder", "taskdeck-file")


def walk(folder: Path, skipped: Callable[[Path], None]) -> Iterator[Path]:
    """The regular files under `folder`, in a stable order.

    Symlinks are not followed into folders (no loops, no escapes); a linked
    file is kept only if it leads to a file under the root, else `skipped`
    is told, so the stage can log it.
    """
    root = files_root()
    for here, folders, names in os.walk(folder):
        folders.sort()
        for name in [f for f in folders if (Path(here) / f).is_symlink()]:
            folders.remove(name)
            if not inside(Path(here) / name, root):
                skipped(Path(here) / name)
        for name in sorted(names):
            path = Path(here) / name
            if path.is_symlink() and not (inside(path, root) and path.resolve().is_file()):
                skipped(path)
            elif path.is_file():
                yield path


def suggestions(kind: str) -> list[str]:
    """Folders (kind "taskdeck-folder") or files under the root, for the form to offer."""
    try:
        root = files_root()
    except ValueError:
        return []
    found: list[str] = ["."] if kind == "taskdeck-folder" else []
    for here, folders, names in os.walk(root):
        depth = len(Path(here).relative_to(root).parts)
        folders[:] = sorted(
            f for f in folders if not f.startswith(".") and not (Path(here) / f).is_symlink()
        )
        if depth >= SUGGESTION_DEPTH:
            folders.clear()
        entries = folders if kind == "taskdeck-folder" else sorted(names)
        found += [(Path(here) / e).relative_to(root).as_posix() for e in entries]
        if len(found) >= SUGGESTIONS_MAX:
            break
    return found[:SUGGESTIONS_MAX]
