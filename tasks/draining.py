"""One thread of a worker drains a busy queue of short stages while the others wait for it.

On SQLite a worker process is bound by the GIL and by one writer at a
time. Two threads draining no-op stages slowed each other down: 1,310–1,660
tasks/s at 0.59–0.78 ms of CPU a task, where one thread alone drained
1,890/s at 0.48 ms (GIL hand-overs and write turns; bench/overhead.py).
Threads are there for stages that wait (a sleep, a remote call, a child
process), not for stages shorter than the deck's own work on them.

So while the worker's stages are short (the last one ran under SHORT),
the thread that drains (StageRunner._drain, which pulls the next message
itself) does so alone: Huey's loop in the other threads waits at the
queue's gate before each dequeue. They go on when the drainer stops,
when a stage of its turns out long, or when it has spent PATIENCE on one
claim or stage, whichever comes first. A long stage thus costs the
others at most PATIENCE, once; after it, threads take messages side by
side again until stages are short once more.
"""

import threading
import time


class DrainTurn:
    """Whose turn it is to drain, shared by a worker's threads (StageRunner.pull_from)."""

    SHORT = 0.001  # seconds: a stage under this is no work for a second thread
    PATIENCE = 0.005  # seconds the others wait on one claim or stage of the drainer

    def __init__(self, stop_flag: threading.Event):
        self._changed = threading.Condition()
        self._stop_flag = stop_flag
        self._drainer: int | None = None  # the ident of the thread draining alone
        self._since = 0.0  # when it last began a claim or a stage (monotonic)
        self._short = True  # the last stage this worker ran took under SHORT
        self._began = threading.local()  # when each thread's stage began

    def wait(self) -> None:
        """Huey's loop, before it dequeues: wait while another thread drains alone."""
        with self._changed:
            while self._drainer is not None and not self._stop_flag.is_set():
                left = self._since + self.PATIENCE - time.monotonic()
                if left <= 0:
                    return
                self._changed.wait(left)

    def take(self) -> bool:
        """Before the drainer pulls a message: False while another thread drains alone.

        Alone while stages are short; side by side with the others after a long one.
        """
        me = threading.get_ident()
        with self._changed:
            now = time.monotonic()
            if self._drainer not in (None, me) and now - self._since < self.PATIENCE:
                return False
            if self._short:
                self._drainer, self._since = me, now
            elif self._drainer == me:
                self._let_go()
            return True

    def began_stage(self) -> None:
        now = self._began.at = time.monotonic()
        if self._drainer == threading.get_ident():
            self._since = now

    def ended_stage(self) -> None:
        self._short = time.monotonic() - self._began.at < self.SHORT
        if not self._short:
            self.leave()

    def leave(self) -> None:
        """This thread drains no more (if it did): the others go on at once."""
        with self._changed:
            if self._drainer == threading.get_ident():
                self._let_go()

    def _let_go(self) -> None:
        self._drainer = None
        self._changed.notify_all()
