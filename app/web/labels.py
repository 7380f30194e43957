"""Words shown for machine values (states, event actions), in the page's language.

Data keeps the English machine values (URLs, data-state, the JSON API);
only what a person reads is translated.
"""

from functools import wraps

from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from jinja2 import pass_context

from app import constants as c
from app.services import states
from app.web import bp


def language_filter(name):
    """Register a template filter that Jinja must not fold into a constant.

    Jinja evaluates a filter on a literal (`'failed'|state_label`) once, when
    the template is compiled, in whichever language that request had; asking
    for the context makes it run on every render.
    """

    def decorator(fn):
        @pass_context
        @wraps(fn)
        def per_render(_context, *args):
            return fn(*args)

        bp.add_app_template_filter(per_render, name)
        return fn

    return decorator


@bp.record_once
def _rules(state):
    """The lists templates loop over, from their one declaration (never typed in a template)."""
    state.app.jinja_env.globals.update(
        STATES=states.STATES,
        TERMINAL_STATES=states.TERMINAL_STATES,
        ACTIVE_STATES=states.ACTIVE_STATES,
        PRIORITIES=range(c.PRIORITY_MIN, c.PRIORITY_MAX + 1),
    )


# Not a state: how a running task whose next stage waits in the queue is shown.
WAITING = "waiting"

STATE_LABELS = {
    WAITING: _l("Waiting"),
    c.QUEUED: _l("Queued"),
    c.RUNNING: _l("Running"),
    c.CANCELLING: _l("Cancelling…"),
    c.SUCCEEDED: _l("Succeeded"),
    c.PARTIAL_SUCCESS: _l("Partly succeeded"),
    c.FAILED: _l("Failed"),
    c.CANCELLED: _l("Cancelled"),
    c.STAGE_PENDING: _l("Pending"),
    c.STAGE_SKIPPED: _l("Skipped"),
}
# Whole sentences for an empty filtered list (a label lower-cased into a sentence reads badly,
# and not at all in Chinese).
EMPTY_LABELS = {
    c.QUEUED: _l("No queued tasks"),
    c.RUNNING: _l("No running tasks"),
    c.CANCELLING: _l("No tasks being cancelled"),
    c.SUCCEEDED: _l("No succeeded tasks"),
    c.PARTIAL_SUCCESS: _l("No partly succeeded tasks"),
    c.FAILED: _l("No failed tasks"),
    c.CANCELLED: _l("No cancelled tasks"),
}
EVENT_LABELS = {
    c.EV_SUBMITTED: _l("submitted"),
    c.EV_STAGE_STARTED: _l("stage started"),
    c.EV_STAGE_FINISHED: _l("stage finished"),
    c.EV_STAGE_FAILED: _l("stage failed"),
    c.EV_CANCEL_REQUESTED: _l("cancel requested"),
    c.EV_CANCELLED: _l("cancelled"),
    c.EV_PRIORITY_CHANGED: _l("priority changed"),
    c.EV_RETRIED: _l("retried"),
    c.EV_STAGE_REQUEUED: _l("stage requeued"),
    c.EV_STAGE_RETRYING: _l("stage retrying"),
    c.EV_REDISPATCHED: _l("redispatched"),
    c.EV_WORKER_LOST: _l("worker lost"),
}
ACTOR_LABELS = {c.ACTOR_WORKER: _l("worker"), c.ACTOR_SYSTEM: _l("system")}
PRIORITY_WORDS = {0: _l("urgent"), 3: _l("high"), 6: _l("normal"), 9: _l("low"), 11: _l("lowest")}


@language_filter("state_label")
def state_label(state: str) -> str:
    return str(STATE_LABELS.get(state, state))


@bp.app_template_filter("shown_state")
def shown_state(task) -> str:
    """The state a badge shows: "waiting" for a running task between stages, else the state."""
    return WAITING if task.waiting else task.state


@bp.app_template_filter("stage_shown_state")
def stage_shown_state(stage) -> str:
    """A stage that finished with failed items shows as partly succeeded, as its task does."""
    if stage.state == c.SUCCEEDED and stage.items and stage.items.failed:
        return c.PARTIAL_SUCCESS
    return stage.state


@language_filter("empty_label")
def empty_label(state: str) -> str:
    return str(EMPTY_LABELS[state])


@language_filter("event_label")
def event_label(action: str) -> str:
    return str(EVENT_LABELS.get(action, action.replace("_", " ")))


@language_filter("actor_label")
def actor_label(actor: str) -> str:
    """Worker and system are translated; user names are shown as they are."""
    return str(ACTOR_LABELS.get(actor, actor))


@language_filter("priority_label")
def priority_label(priority: int) -> str:
    word = PRIORITY_WORDS.get(priority)
    return f"{priority} · {word}" if word else str(priority)


@language_filter("translated")
def translated(text: str) -> str:
    """Translate text marked elsewhere with N_() (pipeline titles, help), leaving '%' alone."""
    return gettext(text)
