"""Polling load: 200 simulated browsers poll a running task's status fragment every 2 s for
60 s against gunicorn (`taskdeck web`, default settings) on 127.0.0.1. Goal: p95 ≤ 20 ms, 0 errors.

The browsers are wrk's connections (Debian's `wrk` with `bench/poll.lua`):
each keeps its connection alive, sends the session cookie of a logged-in
user and what htmx sends (`HX-Request: true`), and polls every 2 s, out of
step with the others after its first request. The load is 100 requests/s.
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

from harness import figure

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.live import ADMIN_PASSWORD, Deck  # noqa: E402

BROWSERS, PERIOD, DURATION = 200, 2.0, 60
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


def poll(url: str, cookie: str) -> dict:
    """Run wrk; return the numbers of its RESULT line."""
    env = {
        **os.environ,
        "POLL_PERIOD_MS": str(int(PERIOD * 1000)),
        "POLL_CONNECTIONS_PER_THREAD": str(BROWSERS // THREADS),
    }
    argv = ["wrk", f"-t{THREADS}", f"-c{BROWSERS}", f"-d{DURATION}s", "--timeout", "2s"]
    argv += ["-s", str(SCRIPT), "-H", f"Cookie: {cookie}", url]
    output = subprocess.run(argv, env=env, capture_output=True, text=True, check=True).stdout
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    return {key: int(value) for key, value in (pair.split("=") for pair in line.split()[1:])}


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
            result = poll(f"{deck.http.base}/tasks/{task_id}/status", cookie)
            state = deck.task(task_id)["state"]
        finally:
            deck.close()
    assert state == "running", f"the polled task ended ({state}) before the load did"
    errors = {k: result[k] for k in ("connect", "read", "write", "status", "timeout") if result[k]}
    figure(
        f"polling load: {BROWSERS} browsers every {PERIOD:.0f} s for {DURATION} s: "
        f"{result['requests']} requests ({result['requests'] / DURATION:.0f}/s), "
        f"p50 {result['p50_us'] / 1000:.1f} ms, p95 {result['p95_us'] / 1000:.1f} ms, "
        f"p99 {result['p99_us'] / 1000:.1f} ms, errors {sum(errors.values())} {errors}"
    )


if __name__ == "__main__":
    main()
