"""`ctx`, what a stage gets to talk to the deck, the same in the worker's thread and in a child.

Everything `ctx` does goes through a channel: in the worker's thread the
channel writes to the database (tasks/channels.py); in an isolated stage's
child process it sends messages to the parent, which writes them
(tasks/isolation.py). So a stage behaves the same wherever it runs.
"""

import hashlib
import json
import math
import re
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

# Progress is written at most this often (the final 1.0 always is), so a
# stage reporting every 100 ms does not turn into 10 writes a second.
PROGRESS_INTERVAL = 0.25
KEY_MAX = 500


class TaskCancelled(Exception):
    """Raised by ctx.check_cancelled(); the runner turns it into `cancelled`."""


class StageHandedBack(Exception):
    """Raised by ctx.check_cancelled() during shutdown; the stage is requeued, not cancelled."""


class StageTimedOut(Exception):
    """Raised by ctx.check_cancelled() once an in-thread stage is past its `timeout`."""


class ArtifactRefused(Exception):
    """ctx.artifact() was given too much data or a bad name; the stage fails with `code`.

    The codes are app.constants' ERR_ARTIFACT_* (this module stays free of app/
    imports, so an isolated stage's child starts lean; a test keeps them equal).
    """

    def __init__(self, message: str, code: str = "artifact_bad_name"):
        super().__init__(message)
        self.code = code


STOPS = (TaskCancelled, StageHandedBack, StageTimedOut, ArtifactRefused)


class Channel(Protocol):
    """Where ctx's calls go; see tasks/channels.py (database) and tasks/child.py (pipe)."""

    artifact_max: int

    def progress(self, fraction: float, message: str | None) -> None: ...
    def should_stop(self) -> bool: ...
    def log(self, stream: str, text: str) -> None: ...
    def artifact(self, name: str, staged: Path) -> None: ...
    def staging_dir(self) -> Path: ...
    def recorded_keys(self) -> set[str]: ...
    def item(self, key: str, error: str | None) -> None: ...
    def items_total(self, total: int) -> None: ...
    def save(self, data: dict) -> None: ...


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def clean(text: str) -> str:
    """Text every database stores: NUL (PostgreSQL refuses it) and lone surrogates become U+FFFD."""
    return _UNSTORABLE.sub("\ufffd", text)


def storable(value: Any) -> None:
    """Raise ValueError (or TypeError) unless `value` stores as JSON: finite numbers, valid text."""
    json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8")


def item_key(item: Any, key: Callable[[Any], Any] | None) -> str:
    """The text an item is recorded under: `key(item)` or `str(item)`, hashed if very long."""
    text = clean(str(key(item) if key else item))
    if len(text) > KEY_MAX:
        return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
    return text


class StageContext:
    """`ctx`, the first argument of every stage function (README, "Writing a pipeline")."""

    def __init__(
        self,
        *,
        task_id: str,
        stage: str,
        stage_index: int,
        retry_number: int,
        attempt: int,
        saved: dict | None,
        channel: Channel,
        handing_back: Callable[[], bool],
        deadline: float | None = None,
    ):
        self.task_id, self.stage, self.stage_index = task_id, stage, stage_index
        self.retry_number, self.attempt = retry_number, attempt
        self._saved = dict(saved or {})
        self._channel = channel
        self._handing_back = handing_back
        self._deadline = deadline  # monotonic; in-thread stages time out at their next check
        self._last_write = 0.0
        self._on_cancel: list[Callable[[], str | None]] = []
        self.cancel_notes: list[str] = []  # what on_cancel callbacks answered
        self.in_flight: str | None = None  # the item whose body runs now

    # --- progress, cancellation, logs ------------------------------------

    def progress(self, fraction: float, message: str | None = None) -> None:
        fraction = float(fraction)
        if not math.isfinite(fraction):
            raise ValueError(f"progress must be a finite number, not {fraction}")
        fraction = min(max(fraction, 0.0), 1.0)
        now = time.monotonic()
        if fraction < 1.0 and now - self._last_write < PROGRESS_INTERVAL:
            return
        self._last_write = now
        self._channel.progress(fraction, None if message is None else clean(str(message)))

    def check_cancelled(self) -> None:
        """Raise TaskCancelled if a cancel was asked (after running on_cancel callbacks).

        Also the stage's way out of a worker that is shutting down
        (StageHandedBack) and, in the worker's thread, past its timeout.
        """
        if self._handing_back():  # no on_cancel: the remote work goes on, for the next run
            raise StageHandedBack()
        if self._deadline is not None and time.monotonic() > self._deadline:
            self._run_on_cancel()
            raise StageTimedOut()
        if self._channel.should_stop():
            self._run_on_cancel()
            raise TaskCancelled()

    def on_cancel(self, callback: Callable[[], str | None]) -> None:
        """Register a callback that cancels remote work this stage started.

        It runs when a cancel or a timeout is noticed, not when a stopping
        worker hands the stage back: the next run finds the job in ctx.saved.
        Text it returns (the remote's answer) is logged and, for a stage in
        the worker's thread, added to the cancel's event.
        """
        self._on_cancel.append(callback)

    def _run_on_cancel(self) -> None:
        for callback in self._on_cancel:
            try:
                said = callback()
            except Exception:  # the stop goes on; the log says why the remote side may linger
                self.log("on_cancel callback failed:\n" + traceback.format_exc())
            else:
                if said is not None:
                    self.cancel_notes.append(clean(str(said)))
                    self.log(said)
        self._on_cancel.clear()  # once: a timeout's check and a cancel's would both run them

    def log(self, message: Any) -> None:
        """A line (or lines) in the task's log, kept with the task."""
        self._channel.log("log", str(message))

    # --- artifacts -------------------------------------------------------------

    def artifact(self, name: str, data: bytes | str | Path) -> None:
        """Keep a file with the task: `data` is bytes, text (stored as UTF-8) or a file's path."""
        limit = self._channel.artifact_max
        if isinstance(data, Path):
            if data.stat().st_size > limit:
                raise ArtifactRefused(_too_large(name, limit), "artifact_too_large")
        elif isinstance(data, str):
            data = data.encode("utf-8")
        elif not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError("ctx.artifact() takes bytes, str or a pathlib.Path")
        if not isinstance(data, Path) and len(data) > limit:
            raise ArtifactRefused(_too_large(name, limit), "artifact_too_large")
        with tempfile.NamedTemporaryFile(dir=self._channel.staging_dir(), delete=False) as fh:
            if isinstance(data, Path):
                with open(data, "rb") as source:
                    shutil.copyfileobj(source, fh)
            else:
                fh.write(data)
        self._channel.artifact(name, Path(fh.name))

    # --- items and saved state -------------------------------------------------

    def each(self, iterable: Iterable, key: Callable[[Any], Any] | None = None) -> Iterator:
        """Yield the items not done yet; each one yielded and finished is recorded as done.

        An item whose body raises is recorded as failed with its error; the
        runner then calls the stage again, which resumes after it.
        """
        recorded = self._channel.recorded_keys()
        total = len(iterable) if hasattr(iterable, "__len__") else None
        if total is not None:
            self._channel.items_total(total)
        seen = 0
        for item in iterable:
            seen += 1
            name = item_key(item, key)
            if name in recorded:
                continue  # done before, or a repeat of a key in this run: once is enough
            recorded.add(name)
            self.in_flight = name
            # Not cleared if the loop is left here: the body raising closes this
            # generator before the runner sees the error, so the two look alike.
            yield item
            self.in_flight = None
            self._channel.item(name, None)
            if total:
                self.progress(seen / total)

    def fail_item(self, error: BaseException) -> bool:
        """Record the in-flight item as failed; False when no item was in flight."""
        if self.in_flight is None:
            return False
        text = clean("".join(traceback.format_exception_only(type(error), error)).strip())
        self._channel.item(self.in_flight, text)
        self.log(f"item {self.in_flight!r} failed: {text}")
        self.in_flight = None
        return True

    @property
    def saved(self) -> dict:
        """What this stage last passed to save(), also after a crash, a hand-back or a retry."""
        return dict(self._saved)

    def save(self, data: dict) -> None:
        """Keep a small JSON dict for this stage (a remote job's id, a cursor)."""
        if not isinstance(data, dict):
            raise TypeError("ctx.save() takes a dict")
        storable(data)  # refuse what could not be stored, here and now
        data = json.loads(json.dumps(data))  # as it will read back: {1: ...} has key "1"
        self._channel.save(data)
        self._saved = data


def _too_large(name: str, limit: int) -> str:
    return f"Artifact {name!r} is larger than the limit of {limit:,} bytes"


def call_stage(stage, ctx: StageContext, params, outputs: dict) -> dict | None:
    """Run the stage function; an item that raises is recorded and the function called again.

    A `for` loop cannot go on after its body raised, so the runner resumes
    the stage instead: `ctx.each` skips the items already recorded, failed
    ones included, and the loop continues after the one that failed.
    """
    while True:
        try:
            return stage.call(ctx, params, outputs)
        except STOPS:
            raise
        except Exception as exc:
            if not ctx.fail_item(exc):
                raise
