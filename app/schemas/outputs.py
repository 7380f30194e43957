"""What clients get: every JSON response shape, also the objects templates render.

Built from the ORM rows (`from_attributes`), so a field is declared here
once; times stay datetimes in Python and become ISO 8601 UTC text
(`2026-11-24T21:28:21.123456Z`) in JSON.
"""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, create_model, field_validator

from app.constants import STAGE_PENDING
from app.models import iso
from app.services import states
from app.services.states import STATES

UtcTime = Annotated[
    datetime,
    PlainSerializer(iso, return_type=str, when_used="json"),
    Field(json_schema_extra={"format": "date-time"}),
]
State = Literal[STATES]


class Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Error(BaseModel):
    """Every error answer: `{"detail": "..."}`."""

    detail: str


class Task(Output):
    id: str
    type: str
    state: State
    stage: str | None = Field(description="The stage running now or next; null when done")
    stage_index: int
    stage_count: int
    progress: float = Field(ge=0, le=1)
    progress_message: str | None
    eta_seconds: float | None
    priority: int
    params: dict[str, Any]
    error_code: str | None
    error_message: str | None
    retryable: bool
    retry_of: str | None
    retried_by: str | None
    owner: str
    created_at: UtcTime
    started_at: UtcTime | None
    finished_at: UtcTime | None
    cancel_requested_at: UtcTime | None
    waiting: bool = Field(description="Running, but its next stage waits for a worker")
    log_lines: int = Field(description="Log lines written so far (the last one's number)")

    @field_validator("owner", mode="before")
    @classmethod
    def _username(cls, owner: Any) -> Any:
        return getattr(owner, "username", owner)

    # The rules pages show buttons by, read from the state table (not serialised).
    @property
    def is_terminal(self) -> bool:
        return self.state in states.TERMINAL_STATES

    @property
    def can_cancel(self) -> bool:
        return self.state in states.CANCELLABLE_STATES

    @property
    def can_retry(self) -> bool:
        return self.state in states.RETRYABLE_STATES and self.retried_by is None

    @property
    def can_change_priority(self) -> bool:
        return self.state in states.PRIORITY_CHANGEABLE_STATES


class Items(BaseModel):
    total: int | None
    done: int
    failed: int


class Stage(Output):
    name: str
    state: str
    started_at: UtcTime | None
    finished_at: UtcTime | None
    output: Any
    reused: bool
    worker: str | None = Field(description="host:pid that last started it")
    attempts: int = Field(description="Executions started, automatic retries included")
    error_code: str | None
    error_message: str | None
    items: Items | None = Field(description="For stages that iterate items (ctx.each)")

    @property
    def seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class Event(Output):
    action: str
    actor: str
    from_state: str | None
    to_state: str | None
    stage: str | None
    reason: str | None
    forced: bool = Field(description="The stage's process group had to be killed")
    at: UtcTime


class FailedItem(Output):
    stage: str
    key: str
    error: str | None


class TaskDetail(Task):
    stages: list[Stage]
    events: list[Event] = Field(description="The most recent ones, newest last")
    failed_items: list[FailedItem] = Field(description="Items that raised (the first 100)")
    force_stop_at: UtcTime | None = Field(
        description="While cancelling an isolated stage: when its process group will be killed"
    )

    @property
    def failed_attempts(self) -> int:
        """Attempts of the waiting stage that failed: > 0 while it waits out a retry back-off.

        So the page can say "Retrying" rather than "Waiting for a worker" (not serialised).
        """
        if not self.waiting or self.stage_index >= len(self.stages):
            return 0
        current = self.stages[self.stage_index]
        failed = current.state == STAGE_PENDING and current.error_message is not None
        return current.attempts if failed else 0


class LogLine(Output):
    n: int
    at: UtcTime
    stage: str | None
    stream: str
    line: str


class LogPage(BaseModel):
    items: list[LogLine]
    next_after: int


class Artifact(Output):
    name: str
    size: int
    content_type: str
    stage: str
    created_at: UtcTime


class ArtifactList(BaseModel):
    items: list[Artifact]


class SearchMatch(BaseModel):
    path: str = Field(description="Relative to the folder's files root")
    kind: str = Field(description="image, text, video, audio, document or other")
    size: int
    snippet: str = Field(description="Where it matched, the match in [brackets]")
    thumbnail: str | None = Field(description="The name of its thumbnail artifact, if any")


class SearchResult(BaseModel):
    items: list[SearchMatch]


class TaskPage(BaseModel):
    items: list[Task]
    next_cursor: str | None


class Done(BaseModel):
    success: bool = True
    message: str


class CancelResult(Done):
    task_id: str
    previous_state: State
    state: State


class RetryResult(Done):
    task_id: str
    new_task_id: str


class PriorityResult(Done):
    task_id: str
    priority: int


class BulkCancelCounts(BaseModel):
    cancelled: int
    failed: int
    total: int


class BulkCancelResult(Done):
    result: BulkCancelCounts


class BulkCancelByTypeCounts(BulkCancelCounts):
    task_type: str


class BulkCancelByTypeResult(Done):
    result: BulkCancelByTypeCounts


class BulkRetryCounts(BaseModel):
    retried: int
    skipped: int
    total: int
    new_task_ids: list[str]
    errors: dict[str, str]


class BulkRetryResult(Done):
    result: BulkRetryCounts


# What finished in the last hour: the total, the rate, and one count per terminal state.
LastHour = create_model(
    "LastHour",
    since=(UtcTime, ...),
    finished=(int, ...),
    per_minute=(float, ...),
    **{state: (int, ...) for state in states.TERMINAL_STATES},
)


# One count per terminal state, whichever the state table declares.
HourBucket = create_model(
    "HourBucket", hour=(UtcTime, ...), **{state: (int, ...) for state in states.TERMINAL_STATES}
)


class SlowStage(BaseModel):
    type: str
    stage: str
    runs: int
    avg_seconds: float
    max_seconds: float
    slowest_task_id: str


class Stats(BaseModel):
    total: int
    by_state: dict[str, int]
    by_type: dict[str, dict[str, int]]
    last_hour: LastHour
    finished_per_hour: list[HourBucket] = Field(
        description="Last 24 hours, oldest first; the last is the current hour"
    )
    slowest_stages: list[SlowStage] = Field(
        description="Stages run in tasks finished in the last 24 h, slowest first"
    )


class TaskType(BaseModel):
    name: str
    title: str
    description: str
    stages: list[str]
    params_schema: dict[str, Any] = Field(description="JSON Schema")


class TaskTypeList(BaseModel):
    items: list[TaskType]


class Token(Output):
    id: int
    name: str
    prefix: str = Field(description="First characters, to tell tokens apart")
    created_at: UtcTime
    last_used_at: UtcTime | None
    revoked_at: UtcTime | None


class TokenList(BaseModel):
    items: list[Token]


class TokenCreated(Token):
    token: str = Field(description="The bearer token; shown only in this response")


class TokenRevoked(Done):
    token: Token
