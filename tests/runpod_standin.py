"""A stand-in for a RunPod serverless endpoint, for what the SDK's local server lacks.

The SDK's own test server (tests/runpod_handler.py) takes POST only for
/status, runs the job inside that request, has no /cancel and ignores the
key. The real API (https://api.runpod.ai/v2/<endpoint id>) is documented as:

    POST /run          {"input": …}  -> {"id", "status": "IN_QUEUE"}
    GET  /status/{id}                -> {"id", "status", "output"?, "error"?, …}
    POST /cancel/{id}                -> {"id", "status": "CANCELLED"}

with `Authorization: Bearer <key>` on every request (401 without it), and
status one of IN_QUEUE, IN_PROGRESS, COMPLETED, FAILED, CANCELLED, TIMED_OUT.
This is a real HTTP server on its own port that answers so, under
/v2/ENDPOINT/. A job's input scripts it: `queued` and `seconds` (how long
it waits, then runs), then `end` (COMPLETED unless told) with `output` or
`error`; an error of "echo the key" says the request's Authorization header
back, as a careless gateway does. It records every Authorization header,
request and cancel.
"""

import json
import threading
import time
import uuid
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler

from tests import httpd

KEY = "rpa_TESTKEY_never_shown_8d41c2f09e"
ENDPOINT = "tdk2test0endpt"


class Endpoint:
    def __init__(self):
        self.jobs: dict[str, dict] = {}  # id -> {"input", "since", "cancelled"}
        self.cancelled: list[tuple[str, float]] = []  # (job, monotonic time)
        self.keys: set[str] = set()
        self.requests: list[tuple[str, str]] = []  # (method, path under the endpoint)
        self.lock = threading.Lock()

    def state(self, job: dict) -> str:
        script, elapsed = job["input"], time.monotonic() - job["since"]
        if job["cancelled"]:
            return "CANCELLED"
        if elapsed < float(script.get("queued", 0.2)):
            return "IN_QUEUE"
        if elapsed < float(script.get("queued", 0.2)) + float(script.get("seconds", 0.3)):
            return "IN_PROGRESS"
        return script.get("end", "COMPLETED")

    def answer(self, method: str, handler: BaseHTTPRequestHandler) -> tuple[int, dict]:
        prefix = f"/v2/{ENDPOINT}"
        if not handler.path.startswith(prefix + "/"):
            return 404, {"error": "no such endpoint"}
        path = handler.path.removeprefix(prefix)
        auth = handler.headers.get("Authorization", "")
        with self.lock:
            self.keys.add(auth)
            self.requests.append((method, path))
        if auth != f"Bearer {KEY}":
            return 401, {"error": "Unauthorized"}
        route, _, job_id = path.strip("/").partition("/")
        if (method, route) == ("POST", "run") and not job_id:
            body = json.loads(handler.rfile.read(int(handler.headers["Content-Length"])))
            job_id = f"{uuid.uuid4()}-u1"
            with self.lock:
                self.jobs[job_id] = {
                    "input": body["input"],
                    "since": time.monotonic(),
                    "cancelled": False,
                }
            return 200, {"id": job_id, "status": "IN_QUEUE"}
        job = self.jobs.get(job_id)
        if job is None or route not in ("status", "cancel"):
            return 404, {"error": f"no {route} for {job_id!r}"}
        if (method, route) == ("POST", "cancel"):
            with self.lock:
                if self.state(job) in ("IN_QUEUE", "IN_PROGRESS"):
                    job["cancelled"] = True
                self.cancelled.append((job_id, time.monotonic()))
            return 200, {"id": job_id, "status": self.state(job)}
        if (method, route) != ("GET", "status"):
            return 405, {"error": "Method Not Allowed"}
        state = self.state(job)
        said = {"id": job_id, "status": state, "delayTime": 200, "workerId": "stand-in"}
        if state == "COMPLETED":
            said |= {"output": job["input"].get("output"), "executionTime": 300}
        elif state == "FAILED":
            error = job["input"].get("error", "")
            said["error"] = f"the worker got {auth}" if error == "echo the key" else error
        return 200, said


@contextmanager
def serving():
    """(Endpoint, its URL as a remote_job task names it) while the block runs."""
    endpoint = Endpoint()

    class Handler(BaseHTTPRequestHandler):
        def reply(self, method: str):
            status, body = endpoint.answer(method, self)
            data = json.dumps(body, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            self.reply("GET")

        def do_POST(self):
            self.reply("POST")

        def log_message(self, *args):  # quiet
            pass

    with httpd.serving(Handler) as port:
        yield endpoint, f"http://127.0.0.1:{port}/v2/{ENDPOINT}"
