"""Soak test: many demo tasks across worker processes that keep getting kill -9'd.

Starts `taskdeck web` and N `taskdeck worker` processes on a temporary data
dir, submits the tasks, SIGKILLs a random worker several times during the
run (restarting it), sends cancels at random, waits for every task to end,
and prints one line:

    lost=0 rerun=0 finished=200 cancels=20 cancelled=20 restarted=5 kills=5 wall=41.2s

lost      tasks not finished (or failed as worker_lost) at the end
rerun     completed stages that ran again (a stage_finished event twice)
finished  tasks that ended succeeded or cancelled
cancels   cancel requests the API accepted; cancelled: how many of those ended cancelled
restarted stage executions lost with a killed worker and run again

Run: .venv/bin/python bench/soak.py [--tasks 200] [--kills 5] (about a minute on 2 cores).
"""

import argparse
import random
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.live import Deck  # noqa: E402

FAST = {
    "TASKDECK_HEARTBEAT_INTERVAL": "0.5",
    "TASKDECK_HEARTBEAT_TIMEOUT": "3",
    "TASKDECK_REAPER_INTERVAL": "0.5",
}


def soak(tasks=200, workers=2, threads=4, kills=5, cancels=20, seconds=0.3, timeout=600) -> dict:
    started = time.monotonic()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="taskdeck-soak-") as folder:
        deck = Deck(Path(folder), FAST)
        try:
            for _ in range(workers):
                deck.start_worker(threads)
            with ThreadPoolExecutor(8) as pool:
                ids = list(pool.map(lambda _: deck.submit(stages=3, seconds=seconds), range(tasks)))
            accepted = set()
            canceller = threading.Thread(
                target=_cancel_at_random, args=(deck, ids, cancels, rng, accepted)
            )
            canceller.start()
            _kill_at_random(deck, kills, rng, expected_seconds=tasks * 3 * seconds / workers)
            canceller.join()
            details = _wait_all_ended(deck, ids, started + timeout)
        finally:
            deck.close()
    return _report(details, accepted, kills, time.monotonic() - started)


def _cancel_at_random(deck, ids, count, rng, accepted):
    for task_id in rng.sample(ids, count):
        time.sleep(rng.uniform(0.05, 0.4))
        status, body = deck.http.call("POST", f"/tasks/{task_id}/cancel", {"reason": "soak"})
        if status == 200:
            accepted.add(task_id)


def _kill_at_random(deck, kills, rng, expected_seconds):
    """Kill -9 a random live worker `kills` times, spread over the expected run, and restart it."""
    for _ in range(kills):
        time.sleep(rng.uniform(0.3, 1.0) * expected_seconds / max(kills, 1) / 4 + 0.5)
        alive = [w for w in deck.workers if w.poll() is None]
        victim = rng.choice(alive)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        deck.start_worker()


def _wait_all_ended(deck, ids, deadline):
    ended = {}
    while len(ended) < len(ids) and time.monotonic() < deadline:
        for task_id in ids:
            if task_id not in ended:
                task = deck.task(task_id)
                if task["state"] in ("succeeded", "failed", "cancelled"):
                    ended[task_id] = task
        time.sleep(0.5)
    return {task_id: ended.get(task_id) or deck.task(task_id) for task_id in ids}


def _report(details, accepted, kills, wall) -> dict:
    lost = rerun = restarted = finished = 0
    for task in details.values():
        counts = Counter(
            (e["action"], e["stage"]) for e in task["events"] if e["action"].startswith("stage_")
        )
        rerun += sum(1 for (action, _), n in counts.items() if action == "stage_finished" and n > 1)
        restarted += sum(n for (action, _), n in counts.items() if action == "stage_requeued")
        if task["state"] in ("succeeded", "cancelled"):
            finished += 1
        else:
            lost += 1
    cancelled = sum(1 for task_id in accepted if details[task_id]["state"] == "cancelled")
    return {
        "lost": lost,
        "rerun": rerun,
        "finished": finished,
        "cancels": len(accepted),
        "cancelled": cancelled,
        "restarted": restarted,
        "kills": kills,
        "wall": f"{wall:.1f}s",
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--cancels", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=0.3, help="per stage")
    args = parser.parse_args(argv)
    result = soak(args.tasks, args.workers, args.threads, args.kills, args.cancels, args.seconds)
    print(" ".join(f"{key}={value}" for key, value in result.items()))
    ok = result["lost"] == 0 and result["rerun"] == 0 and result["cancelled"] == result["cancels"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
