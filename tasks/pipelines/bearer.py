"""JSON over HTTP with a bearer key, for pipelines that call other services.

The key goes only into the Authorization header of requests to the base
address: redirects are refused (urllib would resend the header to wherever
they point), a key that could not be a header value is refused before any
request, and the key is blanked out of every error's text, including what
the other side said.
"""

import json
import urllib.error
import urllib.request
from typing import Any

TIMEOUT = 30
ANSWER_MAX = 1024 * 1024


class RemoteError(RuntimeError):
    """The other side refused or could not be reached; the text never holds the key."""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # the 3xx is answered as an error, naming where it pointed


_opener = urllib.request.build_opener(_NoRedirects)


class Http:
    def __init__(self, base: str, key: str, timeout: float = TIMEOUT):
        if key and (not key.isprintable() or not key.isascii()):
            raise RemoteError("The key must be one line of printable ASCII")
        self.base, self._key, self.timeout = base.rstrip("/"), key, timeout

    def __repr__(self) -> str:
        return f"Http({self.base!r})"

    def scrub(self, text: str) -> str:
        return text.replace(self._key, "****") if self._key else text

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Accept": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        if body is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(
            self.base + path,
            method=method,
            data=None if body is None else json.dumps(body, ensure_ascii=False).encode(),
            headers=headers,
        )
        try:
            with _opener.open(request, timeout=self.timeout) as response:
                return response.status, self._json(response.read(ANSWER_MAX + 1))
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, self._json(exc.read(ANSWER_MAX + 1))
        except (OSError, ValueError) as exc:
            raise RemoteError(self.scrub(f"{self.base} could not be reached: {exc}")) from None

    def ok(self, method: str, path: str, body: Any = None, *, expect=(200, 201)) -> Any:
        status, answer = self.call(method, path, body)
        if status not in expect:
            raise RemoteError(f"{self.base} answered {status}: {self.said(answer)}")
        return answer

    def said(self, answer: Any) -> str:
        """What an answer says, short: Taskdeck's `detail`, an `error`, a `message`, else text."""
        if isinstance(answer, dict):
            for name in ("detail", "error", "message"):
                if answer.get(name):
                    answer = answer[name]
                    break
        if isinstance(answer, dict):  # OpenAI's {"error": {"message": …}}
            answer = answer.get("message", answer)
        # Each text blanked before str() writes it out: repr would escape a key's backslash.
        return self.scrub(str(self._scrubbed(answer)))[:300]

    def _scrubbed(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, dict):
            return {self._scrubbed(k): self._scrubbed(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._scrubbed(v) for v in value]
        return value

    def _json(self, data: bytes) -> Any:
        if len(data) > ANSWER_MAX:
            raise RemoteError(f"{self.base} answered with more than {ANSWER_MAX:,} bytes")
        try:
            return json.loads(data)
        except ValueError:
            return data.decode("utf-8", "replace")
