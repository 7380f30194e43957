"""`taskdeck worker`: a Huey consumer that hands stages back on shutdown, and the reaper.

Built on Huey's public consumer API: SIGTERM is the graceful signal (take
no new stages, let running ones finish within `shutdown_timeout` =
TASKDECK_SHUTDOWN_GRACE seconds; a second SIGTERM ends the wait), SIGINT
stops at once. Either way, stages still running when the consumer stops
are reported by Huey's `interrupted` signal: they stop at their next check
and are handed back to the queue from their checkpoint. What a stuck stage
still holds when the process exits is recovered by the reaper once its
heartbeat goes stale.
"""

import logging
import threading
import time

from huey.signals import SIGNAL_INTERRUPTED

from app.services import dispatch, recovery
from app.services.transitions import on_postgres
from tasks.runner import StageRunner, worker_identity

log = logging.getLogger("taskdeck.worker")

# After the grace period, how long stages get to notice the hand-back.
HAND_BACK_WAIT = 10.0


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


def threads_pull(huey) -> bool:
    """Whether worker threads take messages themselves (StageRunner._drain); in an app context.

    Only with SQLite at both ends: a Redis or PostgreSQL queue's dequeue
    blocks while it is empty (a held finish would wait for its read
    timeout), and a PostgreSQL transaction holding two tasks' rows could
    deadlock against a cancel-all that locks them in the other order.
    """
    return not huey.storage.blocking and not on_postgres()


def consumer_for(app, workers: int, **options):
    """A Huey thread consumer running this app's stages; `options` tune polling.

    SIGTERM is graceful for `TASKDECK_SHUTDOWN_GRACE` seconds; stages still
    running after it are handed back (Huey's `interrupted` signal).
    """
    with app.app_context():
        queue = dispatch.stage_queue()
        pulls = threads_pull(queue.huey)
    runner = StageRunner(app)
    queue.runner = runner

    deadline = []  # Huey signals once per interrupted stage; all share one wait

    @queue.huey.signal(SIGNAL_INTERRUPTED)
    def hand_back(_signal, task, *_args):
        if not deadline:
            log.warning("handing back the stages still running")
            deadline.append(time.monotonic() + HAND_BACK_WAIT)
        if not runner.hand_back(deadline[0]):
            log.warning(
                "some stages did not stop in %.0f s; the reaper recovers them", HAND_BACK_WAIT
            )

    consumer = queue.huey.create_consumer(
        workers=workers,
        worker_type="thread",
        graceful_signal="TERM",
        shutdown_timeout=app.config["SHUTDOWN_GRACE"],
        **options,
    )
    if pulls:
        runner.pull_from(queue.huey, consumer.stop_flag)
    return consumer


def run_worker(app, workers: int) -> None:
    """Run the consumer and the reaper until a signal stops them."""
    reaper = Reaper(app)
    reaper.start()
    consumer = consumer_for(app, workers, initial_delay=0.1, max_delay=1.0)
    try:
        consumer.run()
    finally:
        reaper.stopped.set()
