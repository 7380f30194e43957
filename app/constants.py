"""Status words, priorities, actions and error codes: the one place they are spelled."""

# Task state words; which moves between them are allowed, and which are
# terminal, cancellable or retryable, is declared in app/services/states.py.
QUEUED = "queued"
RUNNING = "running"
CANCELLING = "cancelling"
SUCCEEDED = "succeeded"
PARTIAL_SUCCESS = "partial_success"
FAILED = "failed"
CANCELLED = "cancelled"

# Stage states.
STAGE_PENDING = "pending"
STAGE_RUNNING = "running"
STAGE_SUCCEEDED = "succeeded"
STAGE_FAILED = "failed"
STAGE_CANCELLED = "cancelled"
STAGE_SKIPPED = "skipped"

STAGE_STATES = (
    STAGE_PENDING,
    STAGE_RUNNING,
    STAGE_SUCCEEDED,
    STAGE_FAILED,
    STAGE_CANCELLED,
    STAGE_SKIPPED,
)

# Priorities: 0 runs first. Huey's storages run the HIGHER number first, so
# the queue module flips them.
PRIORITY_MIN = 0
PRIORITY_MAX = 11
PRIORITY_DEFAULT = 6

# Event actions (task_events.action).
EV_SUBMITTED = "submitted"
EV_STAGE_STARTED = "stage_started"
EV_STAGE_FINISHED = "stage_finished"
EV_STAGE_FAILED = "stage_failed"
EV_CANCEL_REQUESTED = "cancel_requested"
EV_CANCELLED = "cancelled"
EV_PRIORITY_CHANGED = "priority_changed"
EV_RETRIED = "retried"
# A stage handed back to the queue: its worker was lost or is shutting down.
EV_STAGE_REQUEUED = "stage_requeued"
# A queued stage whose message was lost (a crash between commit and enqueue).
EV_REDISPATCHED = "redispatched"
EV_WORKER_LOST = "worker_lost"
# A stage that failed goes back to the queue after a backoff (its `retries`).
EV_STAGE_RETRYING = "stage_retrying"

# Who acts when no user does.
ACTOR_WORKER = "worker"
ACTOR_SYSTEM = "system"

# error_code values on failed tasks.
ERR_STAGE_RAISED = "stage_error"
ERR_BAD_OUTPUT = "bad_stage_output"
ERR_UNKNOWN_PIPELINE = "unknown_pipeline"
ERR_WORKER_LOST = "worker_lost"
ERR_STAGE_TIMEOUT = "stage_timeout"
ERR_EXIT_STATUS = "exit_status"
ERR_ARTIFACT_TOO_LARGE = "artifact_too_large"
ERR_ARTIFACT_NAME = "artifact_bad_name"

# Log lines are numbered per task in a 32-bit column.
LINE_NUMBER_MAX = 2**31 - 1

# Listing.
LIST_LIMIT_DEFAULT = 50
LIST_LIMIT_MAX = 200
RECENT_EVENTS = 50
BULK_RETRY_MAX = 500
