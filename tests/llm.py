"""A stand-in for an OpenAI-compatible chat endpoint, for the `openai` document engine.

No server that ships a model installs from the package registries here, so
the tests speak the protocol to this one: a real HTTP server on its own
port that answers `POST /v1/chat/completions` with the section it was asked
for, slowly if told to, with a 500 for the sections told to fail, and a 401
for any key but KEY. It records which section each request asked for. It
can echo the request's Authorization header in an error (as a careless
gateway does), and `/moved/…` answers with a redirect.
"""

import json
import re
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler

from tests import httpd

KEY = "sk-test-never-shown-4f2a9c77e1"
ASKED = re.compile(r"Write section (\d+) of (\d+)")


class Endpoint:
    def __init__(self, delay: float = 0.0, fail: tuple[int, ...] = (), echo: tuple[int, ...] = ()):
        self.delay, self.fail, self.echo = delay, set(fail), set(echo)
        self.asked: list[int] = []
        self.keys: set[str] = set()

    def answer(self, handler: BaseHTTPRequestHandler) -> tuple[int, dict]:
        if handler.path.startswith("/moved/"):
            self.keys.add(handler.headers.get("Authorization", ""))
            return 302, {"location": handler.path.removeprefix("/moved")}
        if handler.path != "/v1/chat/completions":
            return 404, {"error": {"message": "no such route"}}
        self.keys.add(handler.headers.get("Authorization", ""))
        if handler.headers.get("Authorization") != f"Bearer {KEY}":
            return 401, {"error": {"message": "bad key"}}
        body = json.loads(handler.rfile.read(int(handler.headers["Content-Length"])))
        number = int(ASKED.search(body["messages"][0]["content"]).group(1))
        self.asked.append(number)
        time.sleep(self.delay)
        if number in self.echo:
            said = f"cannot use {handler.headers['Authorization']} here"
            return 400, {"error": {"message": said}}
        if number in self.fail:
            return 500, {"error": {"message": f"model overloaded at section {number}"}}
        text = f"第 {number} 节由模型写成。\n\nSection {number}, written by {body['model']}."
        return 200, {"choices": [{"message": {"role": "assistant", "content": text}}]}


@contextmanager
def serving(delay: float = 0.0, fail: tuple[int, ...] = (), echo: tuple[int, ...] = ()):
    """(Endpoint, base URL to set as TASKDECK_LLM_URL) while the block runs."""
    endpoint = Endpoint(delay, fail, echo)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            status, body = endpoint.answer(self)
            data = json.dumps(body, ensure_ascii=False).encode()
            self.send_response(status)
            if "location" in body:
                self.send_header("Location", body["location"])
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):  # quiet
            pass

    with httpd.serving(Handler) as port:
        yield endpoint, f"http://127.0.0.1:{port}/v1"
