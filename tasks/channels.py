"""The database side of `ctx`: what a stage reports, written through the service layer in batches.

Log lines and finished items are buffered and written at most every
FLUSH_SECONDS (or FLUSH_SIZE entries), so a stage looping over thousands of
fast items costs a few transactions, not one per item. An isolated stage's
parent process applies its child's messages to the same object.

Only the thread that runs the stage writes to the database (it holds the
app context and the session). A stage's own threads may call `ctx.log`
and `ctx.progress`: their calls are buffered, under a lock, for that
thread's next write.
"""

import logging
import threading
import time
from pathlib import Path

from flask import current_app

from app.extensions import db
from app.models import utcnow
from app.services import artifacts, items, lease, logs
from tasks.context import ArtifactRefused, StageContext, clean

log = logging.getLogger("taskdeck.stage")

FLUSH_SECONDS = 0.5
FLUSH_SIZE = 1000


class LocalChannel:
    def __init__(self, run: lease.StageRun):
        self.run = run
        self.artifact_max = current_app.config["ARTIFACT_MAX_BYTES"]
        self._owner = threading.get_ident()
        self._lock = threading.Lock()
        self._lines: list[logs.Line] = []
        self._done: list[str] = []
        self._failed: dict[str, str] = {}
        self._total: int | None = None
        self._progress: tuple[float, str | None] | None = None
        self._stopping = False
        self._recorded: set[str] | None = None
        self._last_flush = time.monotonic()
        self._staged = False

    def _mine(self) -> bool:
        return threading.get_ident() == self._owner

    # --- immediate (from the stage's thread) --------------------------------------

    def progress(self, fraction: float, message: str | None) -> None:
        if not self._mine():
            with self._lock:
                self._progress = (fraction, message)
            return
        self.flush_if_due()
        lease.report_progress(self.run, fraction, message)

    def should_stop(self) -> bool:
        if not self._mine():
            return self._stopping  # as the stage's thread last saw it
        self.flush_if_due()
        self._stopping = lease.should_stop(self.run)
        return self._stopping

    def staging_dir(self) -> Path:
        self._staged = True
        return artifacts.staging_dir(self.run.task_id, self.run.dispatch_seq)

    def discard_staged(self) -> None:
        """Drop what this run staged and left unrecorded (it raised, its child was killed).

        Most stages stage nothing: they cost no look at the disk (a stat per
        stage was a few per cent of a short stage's time, bench/overhead.py).
        """
        if self._staged:
            artifacts.discard_staging(self.run.task_id, self.run.dispatch_seq)

    def artifact(self, name: str, staged: Path) -> None:
        """Record a finished file; a bad name or size stops the stage (ArtifactRefused).

        Fenced by the lease: a run that lost its stage (taken over, ended)
        replaces no file that the task, or a retry sharing it, now shows.
        """
        self.flush()
        if not lease.hold(self.run):
            db.session.rollback()
            staged.unlink(missing_ok=True)
            return
        try:
            artifacts.store(self.run.task_id, self.run.stage_name, name, staged)
        except artifacts.ArtifactError as exc:
            db.session.rollback()
            raise ArtifactRefused(str(exc), exc.code) from exc
        except BaseException:  # never leave the write transaction (and its lock) open
            db.session.rollback()
            raise
        db.session.commit()

    def save(self, data: dict) -> None:
        self.flush()
        items.save(self.run, data)

    def recorded_keys(self) -> set[str]:
        if self._recorded is None:
            self._recorded = items.recorded_keys(self.run.task_id, self.run.stage_index)
        with self._lock:
            return self._recorded | set(self._done) | set(self._failed)

    # --- buffered --------------------------------------------------------------------

    def log(self, stream: str, text: str) -> None:
        now = utcnow()
        lines = [
            logs.Line(now, self.run.stage_name, stream, line) for line in logs.split(clean(text))
        ]
        for line in lines:
            log.debug("[%s %s] %s", self.run.task_id, self.run.stage_name, line.line)
        with self._lock:
            self._lines.extend(lines)
        self.flush_if_due()

    def item(self, key: str, error: str | None) -> None:
        with self._lock:
            if error is None:
                self._done.append(key)
            else:
                self._failed[key] = clean(error)
        self.flush_if_due()

    def items_total(self, total: int) -> None:
        self._total = total

    def flush_if_due(self) -> None:
        if not self._mine():
            return
        pending = len(self._lines) + len(self._done) + len(self._failed)
        if pending >= FLUSH_SIZE or (
            (pending or self._total is not None or self._progress)
            and time.monotonic() - self._last_flush >= FLUSH_SECONDS
        ):
            self.flush()

    def flush(self) -> None:
        """Write what is buffered: log lines, then items (fenced by the lease), then progress."""
        self._last_flush = time.monotonic()
        with self._lock:
            lines, self._lines = self._lines, []
            done, failed, total = self._done, self._failed, self._total
            self._done, self._failed, self._total = [], {}, None
            progress, self._progress = self._progress, None
        if lines:
            logs.append(self.run.task_id, lines)
            db.session.commit()
        if done or failed or total is not None:
            if self._recorded is not None:
                with self._lock:
                    self._recorded.update(done, failed)
            items.record(self.run, done, failed, total)
        if progress:
            lease.report_progress(self.run, *progress)


def local_context(
    run: lease.StageRun, handing_back=lambda: False, deadline: float | None = None
) -> tuple[StageContext, LocalChannel]:
    """`ctx` for a stage running in this thread, and the channel to flush when it ends."""
    channel = LocalChannel(run)
    ctx = StageContext(
        task_id=run.task_id,
        stage=run.stage_name,
        stage_index=run.stage_index,
        retry_number=run.retry_number,
        attempt=run.attempt,
        saved=run.saved,
        channel=channel,
        handing_back=handing_back,
        deadline=deadline,
    )
    return ctx, channel
