"""Shared set-up for the benchmarks: an app on the backends the environment names.

`bench/run.py` starts each benchmark twice: on SQLite (a temporary data
dir) and on PostgreSQL + Redis (a fresh database). A benchmark prints one
line per figure, prefixed with the backend, e.g.

    [sqlite] bulk cancel: 10000 queued tasks in 1.234 s
"""

import logging
import os
import signal
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app import create_app  # noqa: E402
from app.extensions import db  # noqa: E402
from app.services import (
    accounts,  # noqa: E402
    dispatch,  # noqa: E402
)
from tasks.worker import consumer_for  # noqa: E402

# An in-process consumer logs every revoked (cancelled) message it skips.
logging.getLogger("huey").setLevel(logging.ERROR)

# Quick polling, the same for Taskdeck's consumer and raw Huey's.
POLLING = {
    "periodic": False,
    "initial_delay": 0.01,
    "backoff": 1.1,
    "max_delay": 0.05,
    "check_worker_health": False,
}


def backend() -> str:
    url = os.environ.get("TASKDECK_DATABASE_URL", "")
    return "postgres+redis" if url.startswith("postgresql") else "sqlite"


def figure(text: str) -> None:
    print(f"[{backend()}] {text}", flush=True)


def make_app():
    """An app with empty tables, a user `bench` (admin) and its API token."""
    app = create_app()
    with app.app_context():
        db.drop_all()
        db.create_all()
        user = accounts.create_user("bench", "bench-password", is_admin=True)
        token = accounts.create_token(user, "bench")[1]
        dispatch.stage_queue().huey.flush()
    return app, token


def start_consumer(app, workers: int, raw_huey=None):
    """A real Huey consumer (threads) in this process; stop() it when done.

    Taskdeck's worker on `app`'s queue, or, given `raw_huey`, a plain Huey consumer.
    """
    if raw_huey is None:
        consumer = consumer_for(app, workers, **POLLING)
    else:
        consumer = raw_huey.create_consumer(workers=workers, worker_type="thread", **POLLING)
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    consumer.start()  # it installs signal handlers: keep ours (Ctrl-C)
    for sig, handler in saved.items():
        signal.signal(sig, handler)
    return consumer


def wrk_result(output: str) -> tuple[dict, dict]:
    """The numbers of wrk's RESULT line (bench/wrk_result.lua), and the errors that were not 0."""
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    result = {key: int(value) for key, value in (pair.split("=") for pair in line.split()[1:])}
    kinds = ("connect", "read", "write", "status", "timeout")
    return result, {kind: result[kind] for kind in kinds if result[kind]}


def timed(client, path: str, headers=None, requests: int = 100) -> str:
    """GET `path` `requests` times through a Flask test client: "p50 …, p95 …" (server-side)."""
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(path, headers=headers or {})
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    p50, p95, _ = percentiles(samples)
    return f"p50 {p50:.1f} ms, p95 {p95:.1f} ms"


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    """p50, p95, p99 of `samples`."""
    ordered = sorted(samples)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return statistics.median(ordered), cuts[94], cuts[98]
