"""Polling load: 200 simulated browsers poll a running task's status fragment every 2 s for
60 s against gunicorn (`taskdeck web`, default settings) on 127.0.0.1. Goal: p95 ≤ 20 ms, 0 errors.

Then throughput: 50 connections as fast as they can for 10 s, on the fragment
and on the app's static CSS file, same gunicorn, same run. Goal: the
fragment at ≥ 0.5 × the CSS file's requests/s.

The browsers are wrk's connections (Debian's `wrk` with `bench/poll.lua`):
each keeps its connection alive, sends the session cookie of a logged-in
user, what htmx sends (`HX-Request: true`) and, as a browser's cache does,
the last ETag it got (`If-None-Match`), and polls every 2 s, out of step
with the others after its first request. The load is 100 requests/s.
wrk measures in C, so the client's own cost stays out of the figures.
"""

import http.client
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

from harness import figure, wrk_result

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.live import ADMIN_PASSWORD, Deck  # noqa: E402

BROWSERS, PERIOD, DURATION = 200, 2.0, 60
FAST_CONNECTIONS, FAST_DURATION = 50, 10
THREADS = 2
SCRIPT = Path(__file__).resolve().parent / "poll.lua"


def login_cookie(base: str) -> str:
    host = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(host.hostname, host.port, timeout=10)
    conn.request("GET", "/login")
    page = conn.getresponse()
    cookie = page.getheader("Set-Cookie").split(";")[0]
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.read().decode()).group(1)
    body = urllib.parse.urlencode(
        {"username": "admin", "password": ADMIN_PASSWORD, "csrf_token": csrf}
    )
    conn.request(
        "POST",
        "/login",
        body,
        {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie},
    )
    answer = conn.getresponse()
    answer.read()
    return answer.getheader("Set-Cookie").split(";")[0]


def poll(url: str, cookie: str, connections=BROWSERS, period=PERIOD, duration=DURATION):
    """Run wrk: (its numbers, its errors), see harness.wrk_result (period 0: as fast as it can)."""
    env = {
        **os.environ,
        "POLL_PERIOD_MS": str(int(period * 1000)),
        "POLL_CONNECTIONS_PER_THREAD": str(connections // THREADS),
    }
    argv = ["wrk", f"-t{THREADS}", f"-c{connections}", f"-d{duration}s", "--timeout", "2s"]
    argv += ["-s", str(SCRIPT), "-H", f"Cookie: {cookie}", url]
    output = subprocess.run(argv, env=env, capture_output=True, text=True, check=True).stdout
    return wrk_result(output)


def main() -> None:
    if shutil.which("wrk") is None:
        sys.exit("the polling-load benchmark needs wrk: apt-get install -y wrk")
    with tempfile.TemporaryDirectory(prefix="taskdeck-poll-") as folder:
        deck = Deck(Path(folder))
        try:
            deck.start_worker(threads=1)
            task_id = deck.submit(stages=1, seconds=DURATION * 3)
            while deck.task(task_id)["state"] != "running":
                time.sleep(0.1)
            cookie = login_cookie(deck.http.base)
            fragment = f"{deck.http.base}/tasks/{task_id}/status?seen=running"
            result, errors = poll(fragment, cookie)
            fast = {
                name: poll(url, cookie, FAST_CONNECTIONS, 0, FAST_DURATION)[0]
                for name, url in (
                    ("fragment", fragment),
                    ("css", f"{deck.http.base}/static/css/taskdeck.css"),
                )
            }
            state = deck.task(task_id)["state"]
        finally:
            deck.close()
    assert state == "running", f"the polled task ended ({state}) before the load did"
    figure(
        f"polling load: {BROWSERS} browsers every {PERIOD:.0f} s for {DURATION} s: "
        f"{result['requests']} requests ({result['requests'] / DURATION:.0f}/s), "
        f"p50 {result['p50_us'] / 1000:.1f} ms, p95 {result['p95_us'] / 1000:.1f} ms, "
        f"p99 {result['p99_us'] / 1000:.1f} ms, errors {sum(errors.values())} {errors}"
    )
    rates = {name: run["requests"] / FAST_DURATION for name, run in fast.items()}
    figure(
        f"polling throughput, {FAST_CONNECTIONS} connections as fast as they can: "
        f"status fragment {rates['fragment']:.0f} req/s, static CSS {rates['css']:.0f} req/s, "
        f"ratio {rates['fragment'] / rates['css']:.2f}"
    )


if __name__ == "__main__":
    main()
