"""`taskdeck worker`: a Huey consumer that hands stages back on shutdown, and the reaper.

On SIGTERM or SIGINT it stops taking stages, lets running ones finish for
SHUTDOWN_GRACE seconds, then asks the rest to stop at their next check and
hands them back to the queue from their checkpoint. A second signal skips
the grace period. What a stuck stage still holds when the process exits is
recovered by the reaper once its heartbeat goes stale.
"""

import logging
import signal
import threading

from huey.consumer import Consumer

from app.services import recovery
from tasks.context import HAND_BACK
from tasks.runner import worker_identity

log = logging.getLogger("taskdeck.worker")

# After the grace period, how long stages get to notice the hand-back.
HAND_BACK_WAIT = 10.0


class GracefulConsumer(Consumer):
    """Huey's thread consumer, with SIGTERM as graceful as SIGINT and a hand-back at the end."""

    def __init__(self, huey, grace: float, **kwargs):
        super().__init__(huey, shutdown_timeout=grace, worker_type="thread", **kwargs)
        self._signal_actions[signal.SIGTERM] = (False, True)
        self._signal_actions[signal.SIGINT] = (False, True)

    def _interrupt_workers(self):
        """The grace period is over: running stages stop at their next check and are requeued."""
        busy = [t for _, t in self.worker_threads if t.is_alive()]
        if busy:
            log.warning("handing back the stages of %d busy worker thread(s)", len(busy))
        HAND_BACK.set()
        for thread in busy:
            thread.join(HAND_BACK_WAIT / len(busy))


class Reaper(threading.Thread):
    """Runs the reaper at start, then once per REAPER_INTERVAL across all workers."""

    def __init__(self, app):
        super().__init__(name="reaper", daemon=True)
        self.app, self.stopped = app, threading.Event()

    def _pass(self, due_only: bool) -> None:
        config = self.app.config
        timeout, max_lost = config["HEARTBEAT_TIMEOUT"], config["MAX_LOST_ATTEMPTS"]
        with self.app.app_context():
            if due_only:
                done = recovery.reap_if_due(
                    config["REAPER_INTERVAL"], timeout, max_lost, by=worker_identity()
                )
            else:
                done = recovery.reap(timeout, max_lost)
        if done and any(done.values()):
            log.warning("reaper: %s", done)

    def run(self) -> None:
        interval = self.app.config["REAPER_INTERVAL"]
        try:
            self._pass(due_only=False)  # the check at worker start
        except Exception:
            log.exception("reaper failed at start")
        while not self.stopped.wait(interval):
            try:
                self._pass(due_only=True)
            except Exception:  # e.g. the database is briefly locked: try next interval
                log.exception("reaper pass failed")


def run_worker(app, huey, workers: int) -> None:
    """Run the consumer and the reaper until a signal stops them."""
    reaper = Reaper(app)
    reaper.start()
    consumer = GracefulConsumer(
        huey, app.config["SHUTDOWN_GRACE"], workers=workers, initial_delay=0.1, max_delay=1.0
    )
    try:
        consumer.run()
    finally:
        reaper.stopped.set()
