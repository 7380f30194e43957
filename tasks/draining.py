"""One thread of a worker drains a busy queue of short stages while the others wait for it.

On SQLite a worker process is bound by the GIL and by one writer at a
time. Two threads draining bench/overhead.py's no-op tasks slowed each
other down: 1,310–1,660 tasks/s at 0.59–0.78 ms of CPU a task, where one
thread alone drained 1,890/s at 0.48 ms (GIL hand-overs and write turns).
Threads are there for stages that wait (a sleep, a remote call, a child
process), not for stages shorter than the deck's own work on them.

So while the worker's stages are short (the last one to end ran under
SHORT), the thread that drains (StageRunner._drain, which pulls the next
message itself) does so alone: Huey's loop in the other threads waits at
the queue's gate before each dequeue. They go on when the drainer stops,
when it has spent PATIENCE on one claim or stage, or when a stage of its
ends having run SHORT or longer, whichever comes first; a stopping worker
takes no message at the gate at all. So a stage that waits on something
(a sleep, a remote call, a child process) keeps the others waiting at
most PATIENCE, and while the stages that end are long no thread drains
alone.

`began_stage`, `ended_stage` and the waiters' reads of `_since` go
without the lock: each is one attribute's read or write, and a stale one
costs at most a thread waiting a little more or less.
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

    def wait(self) -> bool:
        """Huey's loop, before it dequeues: wait while another thread drains alone.

        False when the worker is stopping: then no message is to be taken.
        """
        me = threading.get_ident()
        with self._changed:
            while self._drainer not in (None, me) and not self._stop_flag.is_set():
                left = self._since + self.PATIENCE - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
        return not self._stop_flag.is_set()

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
        """A stage's own work begins in this thread (not its claim, not its finish's write)."""
        now = self._began.at = time.monotonic()
        if self._drainer == threading.get_ident():
            self._since = now

    def ended_stage(self) -> None:
        """That work ended, however: a long one lets the other threads go on at once."""
        self._short = time.monotonic() - self._began.at < self.SHORT
        if not self._short:
            self.leave()

    def leave(self) -> None:
        """This thread drains no more (if it did): the others go on at once."""
        me = threading.get_ident()
        if self._drainer != me:  # only this thread makes itself the drainer: no lock needed
            return
        with self._changed:
            if self._drainer == me:  # not taken over since
                self._let_go()

    def _let_go(self) -> None:
        self._drainer = None
        self._changed.notify_all()
