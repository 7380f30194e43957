"""Remote services a `remote_job` task runs its job on: one interface, two adapters.

`submit(input) -> job id`, `status(job) -> Status`, `logs(job, after)`
and `cancel(job) -> the remote's answer`. `taskdeck` talks to another
Taskdeck's /api/v1 (a task there, mirrored here); `runpod` to a RunPod
serverless endpoint (`/run`, `/status/{id}`, `/cancel/{id}`). Every error
is a RemoteError whose text holds the remote's status and message, never
the key (bearer.py: it travels only in the Authorization header).
"""

import json
import re
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

from tasks.pipelines.bearer import Http, RemoteError

# RunPod's job states, as this deck names them.
RUNPOD_STATES = {
    "IN_QUEUE": "queued",
    "IN_PROGRESS": "running",
    "COMPLETED": "succeeded",
    "FAILED": "failed",
    "CANCELLED": "cancelled",
    "TIMED_OUT": "failed",
}


@dataclass
class Status:
    state: str  # queued, running, succeeded, failed, cancelled (or another deck's word)
    progress: float | None = None
    message: str | None = None  # e.g. the stage it is in
    error: str | None = None
    output: Any = None
    lines: list[str] = field(default_factory=list)


class Adapter(Protocol):
    def submit(self, job_input: dict) -> str: ...
    def status(self, job: str) -> Status: ...
    def logs(self, job: str, after: int) -> tuple[list[str], int]: ...
    def cancel(self, job: str) -> str: ...


class Taskdeck:
    """Another Taskdeck: `input` is what its POST /api/v1/tasks takes (type, params, priority)."""

    def __init__(self, url: str, key: str):
        self.http = Http(url.rstrip("/") + "/api/v1", key)

    def submit(self, job_input: dict) -> str:
        return str(self.http.ok("POST", "/tasks", job_input)["id"])

    def status(self, job: str) -> Status:
        task = self.http.ok("GET", f"/tasks/{_part(job)}")
        try:
            stage = task.get("stage")
            return Status(
                state=_text(task["state"]),
                progress=_fraction(task.get("progress")),
                message=f"remote stage: {_text(stage)}" if stage else None,
                error=task.get("error_message") or task.get("error"),
                output={_text(s["name"]): s.get("output") for s in task.get("stages", [])},
            )
        except (AttributeError, KeyError, TypeError) as exc:
            raise RemoteError(f"{self.http.base} answered a task of another shape") from exc

    def logs(self, job: str, after: int) -> tuple[list[str], int]:
        page = self.http.ok("GET", f"/tasks/{_part(job)}/logs?after={int(after)}&limit=500")
        try:
            lines = [f"[{i.get('stage') or '-'}] {_text(i['line'])}" for i in page["items"]]
            return lines, int(page.get("next_after", after))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise RemoteError(f"{self.http.base} answered log lines of another shape") from exc

    def cancel(self, job: str) -> str:
        path = f"/tasks/{_part(job)}/cancel"
        status, answer = self.http.call("POST", path, {"reason": "cancelled"})
        return f"{status}: {self.http.said(answer)}"


class RunPod:
    """A RunPod serverless endpoint: `url` is https://api.runpod.ai/v2/<endpoint id>.

    Also the SDK's local test server (`handler.py --rp_serve_api`), which
    takes POST only for status, runs the job inside that status request and
    has no /cancel (so a cancel there answers 404, said in the cancel's event).
    """

    def __init__(self, url: str, key: str):
        self.http = Http(url, key)

    def submit(self, job_input: dict) -> str:
        return str(self.http.ok("POST", "/run", {"input": job_input})["id"])

    def status(self, job: str) -> Status:
        status, answer = self.http.call("GET", f"/status/{_part(job)}")
        if status == 405:  # the SDK's local test server takes POST only
            status, answer = self.http.call("POST", f"/status/{_part(job)}")
        if status != 200 or not isinstance(answer, dict):
            raise RemoteError(f"{self.http.base} answered {status}: {self.http.said(answer)}")
        said = answer.get("status")
        state = RUNPOD_STATES.get(said, str(said).lower())
        return Status(
            state=state,
            error=self._error(said, answer.get("error")) if state == "failed" else None,
            output=answer.get("output"),
        )

    def _error(self, said: Any, error: Any) -> str:
        """The handler's own message, for a job that FAILED or TIMED_OUT there.

        A handler that raises reaches the API as `error`: a JSON text of
        error_type, error_message and traceback (ASCII-escaped, so Chinese is
        \\uXXXX); it becomes "RuntimeError: <message>". A handler that
        returned {"error": …} is that text as it is.
        """
        if isinstance(error, str):
            try:
                raised = json.loads(error)
            except ValueError:
                raised = None
            if isinstance(raised, dict) and raised.get("error_message"):
                kind = re.findall(r"[A-Za-z_]\w*", str(raised.get("error_type", "")))
                kind = kind[-1] if kind and kind[-1] != "class" else "Error"
                error = f"{kind}: {raised['error_message']}"
        text = self.http.scrub(str(error))[:300] if error else "no reason given"
        return text if said == "FAILED" else f"{said}: {text}"

    def logs(self, job: str, after: int) -> tuple[list[str], int]:
        return [], after  # RunPod keeps a worker's logs in its console, not behind the API

    def cancel(self, job: str) -> str:
        status, answer = self.http.call("POST", f"/cancel/{_part(job)}")
        if status == 200 and isinstance(answer, dict) and answer.get("status"):
            return f"{status}: {self.http.scrub(str(answer['status']))}"  # CANCELLED, or done
        return f"{status}: {self.http.said(answer)}"


def _part(job: str) -> str:
    """A remote's job id as one path segment: whatever it holds, it cannot leave the path."""
    return quote(str(job), safe="")


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"not text: {type(value).__name__}")
    return value


def _fraction(value: Any) -> float | None:
    """A remote's progress, if it is a number from 0 to 1 (anything else is no progress)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1:
        return float(value)
    return None


__all__ = ["ADAPTERS", "RemoteError", "Status"]
ADAPTERS = {"taskdeck": Taskdeck, "runpod": RunPod}
