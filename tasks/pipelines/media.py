"""`media_index`: index a folder of photos and notes under the files root.

scan → preprocess → thumbnails → index, as a media library indexer does.
What preprocess learns of each file (hash, type, image size, EXIF, the
start of its text) goes into a per-folder catalogue, a SQLite file in the
pipeline's state folder, committed file by file. So a re-run over the same
folder reuses every file whose size and modification time are unchanged,
and a run resumed after a kill -9 or a retry finds the files it had done.
A file that cannot be read or decoded is a failed item: the task ends
partly succeeded, not failed. The index is an SQLite FTS5 table (trigram
tokens, so Chinese words are found without a word list) kept as the
`index.sqlite` artifact; `search()` queries it.
"""

import hashlib
import os
import sqlite3
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import filetype
import ftfy
from charset_normalizer import from_bytes
from PIL import Image, ImageOps
from pydantic import Field

from tasks.pipelines.authoring import N_, Params, Pipeline
from tasks.pipelines.files import (
    FolderParam,
    files_root,
    open_inside,
    relative,
    resolve,
    state_dir,
    walk,
)

TEXT_BYTES = 64 * 1024
HEAD_BYTES = 262  # what filetype reads to recognise a type
# Larger images are a failed item, not a worker's memory (Pillow only refuses above ~179 MP).
MAX_PIXELS = 64_000_000
HASH_CHUNK = 1024 * 1024
TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".csv", ".log", ".json", ".rst"}
# EXIF tags: DateTimeOriginal (in the Exif IFD), DateTime, Make, Model.
EXIF_IFD, DATE_ORIGINAL, DATE, MAKE, MODEL = 0x8769, 0x9003, 0x0132, 0x010F, 0x0110
# Images by their bytes that Pillow cannot decode (HEIC, camera raw, CAD, GIMP, JPEG XR):
# indexed as images with what their name and path say, without a size or a thumbnail,
# rather than counted as broken files.
UNDECODED = {
    "image/heic",
    "image/x-canon-cr2",
    "image/vnd.dwg",
    "image/x-xcf",
    "image/vnd.ms-photo",
}
INDEX = "index.sqlite"
SEARCH_MAX = 100


class MediaParams(Params):
    folder: FolderParam = Field(
        title=N_("Folder"), description=N_("A folder under the files root, e.g. photos/2026.")
    )
    thumbnails: bool = Field(True, title=N_("Thumbnails"), description=N_("Make image thumbnails."))
    thumb_size: int = Field(
        256, ge=64, le=1024, title=N_("Thumbnail size (px)"), description=N_("Longest side.")
    )


media_index = Pipeline(
    "media_index",
    title=N_("Media index"),
    description=N_(
        "Scan a folder under the files root, read each file's type, EXIF and text, "
        "make thumbnails and a searchable index (Chinese and English)."
    ),
    params=MediaParams,
)


def catalogue(folder: str) -> sqlite3.Connection:
    """The folder's catalogue: what preprocess learned of each file, kept between tasks.

    `task` is the task that described the file (the rest reused it).
    """
    name = hashlib.sha256(folder.encode()).hexdigest()[:24]
    db = sqlite3.connect(state_dir("media_index") / f"{name}.sqlite", timeout=30)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(
        "CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER,"
        " sha256 TEXT, kind TEXT, mime TEXT, width INTEGER, height INTEGER, taken TEXT,"
        " camera TEXT, text TEXT, task TEXT)"
    )
    return db


def files_in(folder: str, ctx) -> list[Path]:
    root = files_root()

    def skipped(path: Path) -> None:  # repr: a name with a newline cannot forge log lines
        ctx.log(f"skipped (leads out or not text): {str(path.relative_to(root))!r}")

    return list(walk(resolve(folder), skipped))


@media_index.stage("scan")
def scan(ctx, params):
    by_kind: dict[str, int] = {}
    count = size = 0
    for path in files_in(params.folder, ctx):
        try:
            with open_inside(path) as fh:
                kind = kind_of(path, fh)[0]
                size += os.fstat(fh.fileno()).st_size
        except (OSError, ValueError) as exc:  # gone since the walk (a sync client's temp file)
            ctx.log(f"skipped ({exc}): {str(path.relative_to(files_root()))!r}")
            continue
        by_kind[kind] = by_kind.get(kind, 0) + 1
        count += 1
    ctx.log(f"{count} files in {params.folder!r}")
    return {"files": count, "bytes": size, "by_kind": by_kind}


@media_index.stage("preprocess")
def preprocess(ctx, params):
    """Each file once: unchanged ones (same size and mtime) are reused from the catalogue.

    Rows carry the task that wrote them, so the counts hold across a resume.
    """
    found = files_in(params.folder, ctx)
    db = catalogue(params.folder)
    try:
        for path in ctx.each(found, key=relative):
            ctx.check_cancelled()  # a cancel stops here, between files
            stat = path.stat()
            known = db.execute(
                "SELECT 1 FROM files WHERE path = ? AND size = ? AND mtime_ns = ?",
                (relative(path), stat.st_size, stat.st_mtime_ns),
            ).fetchone()
            if known:
                continue
            # Changed: its old row goes first, so a file now broken is not "unchanged".
            db.execute("DELETE FROM files WHERE path = ?", (relative(path),))
            db.commit()
            row = describe(path, ctx.check_cancelled)  # raises for a corrupt file: a failed item
            db.execute(
                "INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (relative(path), stat.st_size, stat.st_mtime_ns, *row, ctx.task_id),
            )
            db.commit()  # before ctx.each records the item done
        here = {relative(p) for p in found}
        rows = dict(db.execute("SELECT path, task FROM files").fetchall())
        db.executemany("DELETE FROM files WHERE path = ?", [(p,) for p in rows if p not in here])
        db.commit()
    finally:
        db.close()
    mine = {p for p in here if p in rows and rows[p] == ctx.task_id}
    return {
        "processed": len(mine),
        "unchanged": len(here & rows.keys()) - len(mine),
        "failed": len(here - rows.keys()),
    }


@media_index.stage("thumbnails", priority_offset=3)
def thumbnails(ctx, params):
    if not params.thumbnails:
        return {"made": 0}
    db = catalogue(params.folder)
    try:
        rows = db.execute(
            "SELECT sha256, min(path) FROM files WHERE kind = 'image' AND width IS NOT NULL"
            " GROUP BY 1"
        )
        images = sorted(rows.fetchall())  # one thumbnail per distinct image: copies share it
    finally:
        db.close()
    made = ctx.saved.get("made", 0)  # kept across a resume: the loop skips what was done
    for sha, path in ctx.each(images, key=lambda row: row[0]):
        ctx.check_cancelled()
        with tempfile.NamedTemporaryFile(suffix=".jpg") as out:
            thumbnail(files_root() / path, params.thumb_size, Path(out.name))
            ctx.artifact(thumb_name(sha), Path(out.name))
        made += 1
        ctx.save({"made": made})
    return {"made": made}


@media_index.stage("index")
def index(ctx, params):
    db = catalogue(params.folder)
    try:
        rows = db.execute(
            "SELECT path, kind, size, CASE WHEN width IS NULL THEN NULL ELSE sha256 END,"
            " taken, camera, text FROM files"
        )
        with tempfile.TemporaryDirectory() as work:
            target = Path(work) / INDEX
            count = build_index(target, rows, params.thumbnails)
            ctx.artifact(INDEX, target)
    finally:
        db.close()
    return {"indexed": count}


def build_index(target: Path, rows, thumbnails: bool = True) -> int:
    """Write the search index: (path, kind, size, sha256, taken, camera, text) rows.

    An image's sha256 names its thumbnail; None for one that has no thumbnail.
    """
    out = sqlite3.connect(target)
    try:
        out.executescript(
            "CREATE TABLE files (path TEXT PRIMARY KEY, kind TEXT, size INTEGER, thumb TEXT);"
            "CREATE VIRTUAL TABLE docs USING fts5(path, name, taken, camera, text,"
            " tokenize='trigram');"
        )
        count = 0
        for path, kind, size, sha, taken, camera, text in rows:
            thumb = thumb_name(sha) if kind == "image" and sha and thumbnails else None
            out.execute("INSERT INTO files VALUES (?,?,?,?)", (path, kind, size, thumb))
            out.execute(
                "INSERT INTO docs VALUES (?,?,?,?,?)",
                (path, Path(path).name, taken or "", camera or "", text or ""),
            )
            count += 1
        out.commit()
    finally:
        out.close()
    return count


def thumb_name(sha: str) -> str:
    return f"thumb-{sha[:20]}.jpg"


def kind_of(path: Path, fh: BinaryIO) -> tuple[str, str | None]:
    """(kind, media type) from the file's first bytes (filetype); text by its suffix."""
    fh.seek(0)
    guess = filetype.guess(fh.read(HEAD_BYTES))
    fh.seek(0)
    if guess is not None:
        kind = guess.mime.split("/")[0]
        if kind in ("image", "video", "audio"):
            return kind, guess.mime
        return "document", guess.mime
    if path.suffix.lower() in TEXT_SUFFIXES:
        return "text", "text/markdown" if path.suffix.lower() in (
            ".md",
            ".markdown",
        ) else "text/plain"
    return "other", None


def describe(path: Path, check: Callable[[], None]) -> tuple:
    """(sha256, kind, mime, width, height, taken, camera, text) of one file.

    One open file serves every read (see files.open_inside); `check` is the
    stage's cancel check, between chunks of a large file.
    """
    digest = hashlib.sha256()
    with open_inside(path) as fh:
        while chunk := fh.read(HASH_CHUNK):
            digest.update(chunk)
            check()
        kind, mime = kind_of(path, fh)
        width = height = taken = camera = text = None
        if kind == "image" and mime not in UNDECODED:
            width, height, taken, camera = read_image(fh)
        elif kind == "text":
            text = read_text(fh)
    return digest.hexdigest(), kind, mime, width, height, taken, camera, text


def read_image(fh: BinaryIO) -> tuple:
    """(width, height, EXIF date, camera); raises for a corrupt image or one too large."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)  # refuse, not just warn
        with Image.open(fh) as image:
            width, height = image.size  # before draft(), which shrinks JPEGs as they decode
            if width * height > MAX_PIXELS:
                raise ValueError(f"{width}×{height} is more than {MAX_PIXELS:,} pixels")
            image.draft("RGB", (512, 512))  # JPEG decodes at a fraction of full size
            image.load()  # a truncated or corrupt image raises here
            exif = image.getexif()
    taken = exif.get_ifd(EXIF_IFD).get(DATE_ORIGINAL) or exif.get(DATE)
    camera = " ".join(str(exif[t]).strip() for t in (MAKE, MODEL) if exif.get(t)) or None
    return width, height, str(taken) if taken else None, camera


def read_text(fh: BinaryIO) -> str:
    """The first 64 KiB as text, whatever its encoding, mojibake repaired."""
    head = fh.read(TEXT_BYTES)
    if len(head) == TEXT_BYTES and b"\n" in head:  # cut at a line end, not inside a character
        head = head[: head.rindex(b"\n") + 1]
    for end in range(len(head), max(len(head) - 4, 0), -1):  # or drop a cut-off character
        best = from_bytes(head[:end]).best()
        if best is not None:
            return ftfy.fix_text(str(best))
    raise ValueError("not readable as text in any known encoding")


def thumbnail(source: Path, size: int, target: Path) -> None:
    """A JPEG of `source` at most `size` px on its longest side, turned as its EXIF says."""
    with open_inside(source) as fh, Image.open(fh) as image:
        image.draft("RGB", (size, size))
        image = ImageOps.exif_transpose(image).convert("RGB")
        image.thumbnail((size, size))
        image.save(target, "JPEG", quality=80)


def search(index: Path, query: str, limit: int) -> list[dict]:
    """Matches in an index artifact: FTS5 for 3+ characters, a scan with LIKE for fewer.

    Either way the snippet marks the match in [brackets].
    """
    db = sqlite3.connect(f"{index.as_uri()}?mode=ro", uri=True)
    try:
        db.execute("PRAGMA trusted_schema=OFF")
        if len(query) >= 3:
            phrase = '"' + query.replace('"', '""') + '"'
            rows = db.execute(
                "SELECT d.path, f.kind, f.size, snippet(docs, -1, '[', ']', '…', 12), f.thumb"
                " FROM docs d JOIN files f ON f.path = d.path WHERE docs MATCH ?"
                " ORDER BY rank LIMIT ?",
                (phrase, limit),
            ).fetchall()
        else:
            like = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            found = db.execute(
                "SELECT d.path, f.kind, f.size, d.path || ' ' || d.taken || ' ' || d.camera"
                " || ' ' || d.text, f.thumb FROM docs d JOIN files f ON f.path = d.path"
                " WHERE d.path || ' ' || d.taken || ' ' || d.camera || ' ' || d.text"
                " LIKE ? ESCAPE '\\' LIMIT ?",
                (like, limit),
            ).fetchall()
            rows = [(p, k, s, _marked(text, query), t) for p, k, s, text, t in found]
    finally:
        db.close()
    keys = ("path", "kind", "size", "snippet", "thumbnail")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def _marked(text: str, query: str, around: int = 30) -> str:
    """`query` in [brackets] with a little text either side, as FTS5's snippet() gives it."""
    at = text.lower().find(query.lower())
    start, end = max(at - around, 0), at + len(query)
    before = ("…" if start else "") + text[start:at]
    after = text[end : end + around] + ("…" if end + around < len(text) else "")
    return f"{before}[{text[at:end]}]{after}".replace("\n", " ")
