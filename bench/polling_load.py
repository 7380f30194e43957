"""Polling load: 200 simulated browsers poll a running task's status fragment every 2 s for
60 s against gunicorn (`taskdeck web`, default settings) on 127.0.0.1. Goal: p95 ≤ 20 ms, 0 errors.

Each browser is a thread with its own keep-alive connection and the session
cookie of a logged-in user; it sends what htmx sends (`HX-Request: true`).
The load is 100 requests/s; latency is measured client-side.
"""

import http.client
import random
import re
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from pathlib import Path

from harness import figure, percentiles

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.live import ADMIN_PASSWORD, Deck  # noqa: E402

BROWSERS, PERIOD, DURATION = 200, 2.0, 60.0


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


def browser(base, path, cookie, stop_at, samples, errors):
    host = urllib.parse.urlsplit(base)
    conn = None
    time.sleep(random.uniform(0, PERIOD))  # browsers do not all start at once
    while time.monotonic() < stop_at:
        tick = time.monotonic()
        try:
            if conn is None:
                conn = http.client.HTTPConnection(host.hostname, host.port, timeout=10)
            conn.request("GET", path, headers={"Cookie": cookie, "HX-Request": "true"})
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                errors.append(response.status)
            samples.append(time.monotonic() - tick)
            if response.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as exc:
            errors.append(type(exc).__name__)
            conn = None
        time.sleep(max(0.0, PERIOD - (time.monotonic() - tick)))


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="taskdeck-poll-") as folder:
        deck = Deck(Path(folder))
        try:
            deck.start_worker(threads=1)
            task_id = deck.submit(stages=1, seconds=DURATION * 3)
            while deck.task(task_id)["state"] != "running":
                time.sleep(0.1)
            cookie = login_cookie(deck.http.base)
            samples, errors = [], []
            stop_at = time.monotonic() + DURATION
            threads = [
                threading.Thread(
                    target=browser,
                    args=(
                        deck.http.base,
                        f"/tasks/{task_id}/status",
                        cookie,
                        stop_at,
                        samples,
                        errors,
                    ),
                )
                for _ in range(BROWSERS)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            deck.close()
    p50, p95, p99 = percentiles(samples)
    figure(
        f"polling load: {BROWSERS} browsers every {PERIOD:.0f} s for {DURATION:.0f} s: "
        f"{len(samples)} requests ({len(samples) / DURATION:.0f}/s), p50 {p50 * 1000:.1f} ms, "
        f"p95 {p95 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, errors {len(errors)} "
        f"{dict(Counter(errors))}"
    )


if __name__ == "__main__":
    main()
