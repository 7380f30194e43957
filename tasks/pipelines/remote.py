"""`remote_job`: run a job on a remote service and mirror it here, cancel included.

One stage. It submits the job and keeps the remote id with `ctx.save`
before anything else, so a run after a worker crash re-attaches to the
same job and never submits twice. It polls with back-off (quick while the
job moves, slower while it does not), mirrors state, progress, stage and
log lines, and fails with the remote's message when the job fails there.
A cancel here cancels the job there (`ctx.on_cancel`), and the remote's
answer goes into the cancel's event. The credential is named in params
and read from the secrets file (secrets.py); it is sent only to the URL
the file binds it to and blanked out of anything the remote says back.
"""

import time
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, field_validator, model_validator

from tasks.pipelines import secrets
from tasks.pipelines.adapters import ADAPTERS
from tasks.pipelines.authoring import N_, Params, Pipeline
from tasks.pipelines.bearer import RemoteError

# Polls: at once after the job changes state or stage; at most every MOVING_POLL seconds
# while only its progress or log moves (a job reporting progress all the time would
# otherwise be polled twice a second); up to MAX_POLL while nothing moves.
FIRST_POLL, MOVING_POLL, MAX_POLL, TICK = 0.5, 2.0, 10.0, 0.2
ERRORS_IN_A_ROW = 5  # unanswered polls before the stage gives up (the job may go on there)
DONE, ENDED_BADLY = {"succeeded", "partial_success"}, {"failed", "cancelled"}


class RemoteJobFailed(RuntimeError):
    """The job ended badly there; the message is the remote's."""


class RemoteParams(Params):
    adapter: Literal["taskdeck", "runpod"] = Field(
        title=N_("Service"),
        description=N_("taskdeck: another Taskdeck. runpod: a RunPod serverless endpoint."),
    )
    url: str = Field(
        max_length=2000,
        json_schema_extra={"format": "uri"},  # the form's field is one line
        title=N_("URL"),
        description=N_(
            "The other Taskdeck (https://deck.example) or the endpoint "
            "(https://api.runpod.ai/v2/<id>)."
        ),
    )
    secret: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.-]+$",
        title=N_("Secret name"),
        description=N_(
            "The name of the deck's secrets-file entry for this address (its credential, "
            "never the credential itself)."
        ),
    )
    input: dict[str, Any] = Field(
        default_factory=dict,
        title=N_("Input (JSON)"),
        description=N_('What the job gets: for a Taskdeck, {"type": …, "params": {…}}.'),
    )

    @field_validator("url")
    @classmethod
    def _web_address(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// address")
        segments = unquote(parts.path).split("/")
        if ".." in segments or "." in segments or "%2f" in parts.path.lower():
            raise ValueError("must not hold . or .. segments (they would leave the secret's path)")
        if parts.username or parts.password:  # it would be shown with the task
            raise ValueError("must not hold a user name or password; name a secret instead")
        if parts.query or parts.fragment or not value.isprintable() or " " in value:
            raise ValueError("must be a plain address, without a query, spaces or line breaks")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _secret_may_go_there(self):
        """Every job names a secret: the secrets file's addresses are all it may reach (an
        admin's list), so a user cannot point the worker at an internal service."""
        try:
            secrets.secret(self.secret, self.url)
        except secrets.SecretError as exc:
            raise ValueError(f"secret: {exc}") from None
        return self


remote_job = Pipeline(
    "remote_job",
    title=N_("Remote job"),
    description=N_(
        "Run a job on another Taskdeck or a RunPod endpoint and follow it here; "
        "a cancel here cancels it there."
    ),
    params=RemoteParams,
)


@remote_job.stage("remote")
def remote(ctx, params):
    key = secrets.secret(params.secret, params.url).key

    def scrub(text: str) -> str:
        return text.replace(key, "****") if key else text

    service = ADAPTERS[params.adapter](params.url, key)
    job = ctx.saved.get("job")
    if job is None:
        job = service.submit(params.input)
        ctx.save({"job": job, "after": 0})  # before anything else: a new run re-attaches
        ctx.log(scrub(f"submitted to {params.url}: job {job}"))
    else:
        ctx.log(scrub(f"re-attached to job {job} at {params.url}"))
    ctx.on_cancel(
        lambda: scrub(f"cancelled there ({params.url}, job {job}): {service.cancel(job)}")
    )
    after, delay, polls, errors, seen = ctx.saved.get("after", 0), FIRST_POLL, 0, 0, None
    while True:
        try:
            status = service.status(job)
            lines, next_after = service.logs(job, after)
        except RemoteError as exc:
            errors += 1
            ctx.log(scrub(f"poll {polls + 1} unanswered: {exc}"))
            if errors >= ERRORS_IN_A_ROW:
                raise
        else:
            errors, polls = 0, polls + 1
            for line in lines:
                ctx.log(scrub(f"remote: {line}"))
            if next_after != after:
                after = next_after
                ctx.save({"job": job, "after": after})
            if status.progress is not None:
                ctx.progress(status.progress, scrub(status.message or status.state))
            if status.state in DONE:
                return {"job": job, "state": status.state, "polls": polls, "output": status.output}
            if status.state in ENDED_BADLY:
                said = status.error or "no reason given"
                raise RemoteJobFailed(scrub(f"the remote job {status.state} there: {said}"))
            delay = _next_delay(delay, seen, (status.state, status.message, status.progress, after))
            seen = (status.state, status.message, status.progress, after)
        _wait(ctx, delay)


def _next_delay(delay: float, before: tuple | None, now: tuple) -> float:
    """The wait before the next poll, from what changed: (state, stage, progress, log)."""
    if before is None or now[:2] != before[:2]:
        return FIRST_POLL
    longer = delay * 1.5
    return min(longer, MOVING_POLL) if now[2:] != before[2:] else min(longer, MAX_POLL)


def _wait(ctx, seconds: float) -> None:
    """Sleep, noticing a cancel within TICK seconds (which runs the on_cancel above)."""
    until = time.monotonic() + seconds
    while (left := until - time.monotonic()) > 0:
        ctx.check_cancelled()
        time.sleep(min(TICK, left))
    ctx.check_cancelled()
