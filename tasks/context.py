"""What a stage gets to talk to the system: progress, cancellation, logging."""

import logging
import math
import threading
import time
from collections.abc import Callable

from app.services import lease

log = logging.getLogger("taskdeck.stage")

# Progress is written at most this often (the final 1.0 always is), so a
# stage reporting every 100 ms does not turn into 10 writes a second.
PROGRESS_INTERVAL = 0.25


class TaskCancelled(Exception):
    """Raised by ctx.check_cancelled(); the runner turns it into `cancelled`."""


class StageHandedBack(Exception):
    """Raised by ctx.check_cancelled() during shutdown; the stage is requeued, not cancelled."""


class StageContext:
    """`ctx`, the first argument of every stage function."""

    def __init__(self, run: lease.StageRun, handing_back: threading.Event):
        self._run = run
        # Set when the worker is shutting down and its grace period is over.
        self._handing_back = handing_back
        self._last_write = 0.0
        self._on_cancel: list[Callable[[], None]] = []

    @property
    def task_id(self) -> str:
        return self._run.task_id

    @property
    def stage(self) -> str:
        return self._run.stage_name

    @property
    def stage_index(self) -> int:
        return self._run.stage_index

    @property
    def retry_number(self) -> int:
        """0 for an original task, n for the n-th retry in its chain."""
        return self._run.retry_number

    def progress(self, fraction: float, message: str | None = None) -> None:
        fraction = float(fraction)
        if not math.isfinite(fraction):
            raise ValueError(f"progress must be a finite number, not {fraction}")
        fraction = min(max(fraction, 0.0), 1.0)
        now = time.monotonic()
        if fraction < 1.0 and now - self._last_write < PROGRESS_INTERVAL:
            return
        self._last_write = now
        lease.report_progress(self._run, fraction, message)

    def check_cancelled(self) -> None:
        """Raise TaskCancelled if a cancel was asked (after running on_cancel callbacks).

        Also the stage's chance to leave a worker that is shutting down
        (StageHandedBack), and to notice its lease was taken over.
        """
        if self._handing_back.is_set():
            for callback in self._on_cancel:
                callback()
            raise StageHandedBack()
        if lease.should_stop(self._run):
            for callback in self._on_cancel:
                callback()
            raise TaskCancelled()

    def on_cancel(self, callback: Callable[[], None]) -> None:
        """Register a callback that cancels remote work this stage started."""
        self._on_cancel.append(callback)

    def log(self, message: str) -> None:
        log.info("[%s %s] %s", self.task_id, self.stage, message)
