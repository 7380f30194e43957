"""The database side of `ctx`: what a stage reports, written through the service layer in batches.

Log lines and finished items are buffered and written at most every
FLUSH_SECONDS (or FLUSH_SIZE entries), so a stage looping over thousands of
fast items costs a few transactions, not one per item. An isolated stage's
parent process applies its child's messages to the same object.
"""

import logging
import time
from pathlib import Path

from flask import current_app

from app.extensions import db
from app.models import utcnow
from app.services import artifacts, items, lease, logs
from tasks.context import StageContext, clean

log = logging.getLogger("taskdeck.stage")

FLUSH_SECONDS = 0.5
FLUSH_SIZE = 1000


class LocalChannel:
    def __init__(self, run: lease.StageRun):
        self.run = run
        self.artifact_max = current_app.config["ARTIFACT_MAX_BYTES"]
        self._lines: list[logs.Line] = []
        self._done: list[str] = []
        self._failed: dict[str, str] = {}
        self._total: int | None = None
        self._recorded: set[str] | None = None
        self._last_flush = time.monotonic()

    # --- immediate -------------------------------------------------------------

    def progress(self, fraction: float, message: str | None) -> None:
        self.flush_if_due()
        lease.report_progress(self.run, fraction, message)

    def should_stop(self) -> bool:
        self.flush_if_due()
        return lease.should_stop(self.run)

    def staging_dir(self) -> Path:
        return artifacts.staging_dir(self.run.task_id)

    def artifact(self, name: str, staged: Path) -> None:
        """Record a finished file (raises ArtifactError for a bad name or size)."""
        self.flush()
        artifacts.store(self.run.task_id, self.run.stage_name, name, staged)
        db.session.commit()

    def save(self, data: dict) -> None:
        self.flush()
        items.save(self.run, data)

    def recorded_keys(self) -> set[str]:
        if self._recorded is None:
            self._recorded = items.recorded_keys(self.run.task_id, self.run.stage_index)
        return self._recorded | set(self._done) | set(self._failed)

    # --- buffered ----------------------------------------------------------------

    def log(self, stream: str, text: str) -> None:
        now = utcnow()
        for line in logs.split(clean(text)):
            log.debug("[%s %s] %s", self.run.task_id, self.run.stage_name, line)
            self._lines.append(logs.Line(now, self.run.stage_name, stream, line))
        self.flush_if_due()

    def item(self, key: str, error: str | None) -> None:
        if error is None:
            self._done.append(key)
        else:
            self._failed[key] = error
        self.flush_if_due()

    def items_total(self, total: int) -> None:
        self._total = total

    def flush_if_due(self) -> None:
        pending = len(self._lines) + len(self._done) + len(self._failed)
        if pending >= FLUSH_SIZE or (
            (pending or self._total is not None)
            and time.monotonic() - self._last_flush >= FLUSH_SECONDS
        ):
            self.flush()

    def flush(self) -> None:
        """Write what is buffered: log lines, then items (fenced by the lease)."""
        self._last_flush = time.monotonic()
        if self._lines:
            logs.append(self.run.task_id, self._lines)
            db.session.commit()
            self._lines = []
        if self._done or self._failed or self._total is not None:
            if self._recorded is not None:
                self._recorded.update(self._done, self._failed)
            items.record(self.run, self._done, self._failed, self._total)
            self._done, self._failed, self._total = [], {}, None


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
