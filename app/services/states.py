"""The task state machine, declared once: every move a task may make, and who may make it.

The transition code (app/services/transitions.py) refuses any move this
table lacks; the README's diagram is rendered from it (`mermaid()`, kept
in step by a test) and the state-machine test checks recorded events
against it. Which states can be cancelled or retried is derived from here,
never spelled out again in views or templates.
"""

from typing import NamedTuple

from app import constants as c


class Move(NamedTuple):
    """One allowed transition: the event `action` that records it, and from where to where."""

    action: str
    source: str | None  # None: the task did not exist yet
    target: str
    by: frozenset[str]  # who may make it: USER, WORKER, SYSTEM (the reaper)
    note: str


USER, WORKER, SYSTEM = "user", "worker", "system"


MOVES: tuple[Move, ...] = (
    Move(c.EV_SUBMITTED, None, c.QUEUED, {USER}, "submit or retry"),
    Move(c.EV_PRIORITY_CHANGED, c.QUEUED, c.QUEUED, {USER}, "new priority"),
    Move(c.EV_REDISPATCHED, c.QUEUED, c.QUEUED, {SYSTEM}, "lost message sent again"),
    Move(c.EV_STAGE_STARTED, c.QUEUED, c.RUNNING, {WORKER}, "first stage starts"),
    Move(c.EV_CANCELLED, c.QUEUED, c.CANCELLED, {USER}, "cancel: never starts"),
    Move(c.EV_STAGE_STARTED, c.RUNNING, c.RUNNING, {WORKER}, "next stage starts"),
    Move(c.EV_STAGE_FINISHED, c.RUNNING, c.RUNNING, {WORKER}, "stage ok, next one waits"),
    Move(c.EV_STAGE_RETRYING, c.RUNNING, c.RUNNING, {WORKER}, "stage failed, runs again later"),
    Move(c.EV_STAGE_REQUEUED, c.RUNNING, c.RUNNING, {WORKER, SYSTEM}, "handed back or lost"),
    Move(c.EV_REDISPATCHED, c.RUNNING, c.RUNNING, {SYSTEM}, "lost message sent again"),
    Move(c.EV_STAGE_FINISHED, c.RUNNING, c.SUCCEEDED, {WORKER}, "last stage ok"),
    Move(
        c.EV_STAGE_FINISHED,
        c.RUNNING,
        c.PARTIAL_SUCCESS,
        {WORKER},
        "last stage ok, items failed",
    ),
    Move(c.EV_STAGE_FAILED, c.RUNNING, c.FAILED, {WORKER}, "stage failed for good"),
    Move(c.EV_WORKER_LOST, c.RUNNING, c.FAILED, {SYSTEM}, "worker lost too often"),
    Move(c.EV_CANCELLED, c.RUNNING, c.CANCELLED, {USER}, "cancel between stages"),
    Move(c.EV_CANCEL_REQUESTED, c.RUNNING, c.CANCELLING, {USER}, "cancel while a stage runs"),
    Move(
        c.EV_CANCELLED, c.CANCELLING, c.CANCELLED, {WORKER, SYSTEM}, "stage stopped or worker died"
    ),
    # A retry makes a NEW task; the original only notes it, keeping its state.
    Move(c.EV_RETRIED, c.FAILED, c.FAILED, {USER}, "retried as a new task"),
    Move(c.EV_RETRIED, c.CANCELLED, c.CANCELLED, {USER}, "retried as a new task"),
    Move(c.EV_RETRIED, c.PARTIAL_SUCCESS, c.PARTIAL_SUCCESS, {USER}, "retried as a new task"),
)

ALLOWED: dict[tuple[str, str | None, str], frozenset[str]] = {
    (m.action, m.source, m.target): frozenset(m.by) for m in MOVES
}

# In the order pages list them.
STATES: tuple[str, ...] = (
    c.QUEUED,
    c.RUNNING,
    c.CANCELLING,
    c.SUCCEEDED,
    c.PARTIAL_SUCCESS,
    c.FAILED,
    c.CANCELLED,
)
assert {m.target for m in MOVES} == set(STATES), "every state is reachable, no other is used"
# Terminal: nothing moves the task on, except noting a retry on it.
TERMINAL_STATES: tuple[str, ...] = tuple(
    s
    for s in STATES
    if all(m.action == c.EV_RETRIED or m.target == s for m in MOVES if m.source == s)
)
ACTIVE_STATES: tuple[str, ...] = tuple(s for s in STATES if s not in TERMINAL_STATES)
RETRYABLE_STATES: tuple[str, ...] = tuple(m.source for m in MOVES if m.action == c.EV_RETRIED)
# Cancellable by a user; a `cancelling` task is already on its way.
CANCELLABLE_STATES: tuple[str, ...] = tuple(
    dict.fromkeys(
        m.source
        for m in MOVES
        if USER in m.by and m.action in (c.EV_CANCELLED, c.EV_CANCEL_REQUESTED)
    )
)


# A queued task's priority may change; the table's own move says so.
PRIORITY_CHANGEABLE_STATES: tuple[str, ...] = tuple(
    m.source for m in MOVES if m.action == c.EV_PRIORITY_CHANGED
)


class IllegalMove(RuntimeError):
    """A programming error: code tried a move the table does not declare."""


def kind_of(actor: str) -> str:
    """Who an event's actor is: the worker, the system (reaper), or a user by name."""
    return {c.ACTOR_WORKER: WORKER, c.ACTOR_SYSTEM: SYSTEM}.get(actor, USER)


def check(action: str, source: str | None, target: str, actor: str) -> None:
    """Raise IllegalMove unless the table lets `actor`'s kind make this move."""
    allowed = ALLOWED.get((action, source, target))
    if allowed is None:
        raise IllegalMove(f"{action}: {source} -> {target} is not in the state table")
    if kind_of(actor) not in allowed:
        raise IllegalMove(f"{action}: {source} -> {target} is not a move a {kind_of(actor)} makes")


def mermaid() -> str:
    """The table as a Mermaid state diagram (the README embeds exactly this)."""
    lines = ["stateDiagram-v2"]
    for move in MOVES:
        source = "[*]" if move.source is None else move.source
        who = ", ".join(sorted(move.by))
        lines.append(f"    {source} --> {move.target}: {move.action} by {who} ({move.note})")
    lines.extend(f"    {state} --> [*]" for state in TERMINAL_STATES)
    return "\n".join(lines)
