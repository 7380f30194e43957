"""Actions over many tasks, built from the single-task transitions."""

from flask_babel import gettext
from sqlalchemy import select

from app.extensions import db
from app.models import Task, User
from app.services import cancelling, commands
from app.services.catalog import get_pipeline
from app.services.errors import ServiceError, Unprocessable
from app.services.queries import visible_to
from app.services.states import CANCELLABLE_STATES


def cancel_all(actor: User, cancel_running: bool = False, task_type: str | None = None) -> dict:
    """Cancel every queued (and, if asked, running) task `actor` may act on.

    `total` counts the active tasks matched, `cancelled` those now cancelled
    or cancelling, `failed` those left running or finished meanwhile.
    """
    stmt = select(Task.id).where(Task.state.in_(CANCELLABLE_STATES), *visible_to(actor))
    if task_type is not None:
        stmt = stmt.where(Task.type == task_type)
    task_ids = db.session.scalars(stmt.order_by(Task.created_at)).all()
    reason = f"cancel by type '{task_type}'" if task_type else "cancel all"
    cancelled, failed = cancelling.cancel_set(
        task_ids, actor=actor.username, reason=reason, allow_running=cancel_running
    )
    return {"cancelled": cancelled, "failed": failed, "total": len(task_ids)}


def cancel_by_type(actor: User, task_type: str, cancel_running: bool = False) -> dict:
    """cancel_all limited to one pipeline; raise Unprocessable (422) for an unknown type."""
    if get_pipeline(task_type) is None:
        raise Unprocessable(gettext("Unknown task type '%(type)s'", type=task_type))
    return {**cancel_all(actor, cancel_running, task_type), "task_type": task_type}


def cancel_many(actor: User, task_ids: list[str], reason: str | None = None) -> dict:
    """Cancel the chosen tasks; those that cannot be are counted in `failed` with a reason."""
    unique_ids = list(dict.fromkeys(task_ids))
    cancelled = 0
    errors: dict[str, str] = {}
    for task_id in unique_ids:
        try:
            cancelling.request_cancel(actor, task_id, reason)
        except ServiceError as exc:
            errors[task_id] = exc.detail
        else:
            cancelled += 1
    return {
        "cancelled": cancelled,
        "failed": len(errors),
        "total": len(unique_ids),
        "errors": errors,
    }


def retry_many(actor: User, task_ids: list[str], from_scratch: bool = False) -> dict:
    """Retry each task that can be; the others are skipped with the reason in `errors`."""
    unique_ids = list(dict.fromkeys(task_ids))
    new_ids: list[str] = []
    errors: dict[str, str] = {}
    for task_id in unique_ids:
        try:
            new_ids.append(commands.retry(actor, task_id, from_scratch).new_task_id)
        except ServiceError as exc:
            errors[task_id] = exc.detail
    return {
        "retried": len(new_ids),
        "skipped": len(errors),
        "total": len(unique_ids),
        "new_task_ids": new_ids,
        "errors": errors,
    }


def cancelled_message(result: dict) -> str:
    """The one-line outcome of a bulk cancel, for the API and the pages alike."""
    return gettext(
        "Cancelled %(cancelled)d of %(total)d task(s)",
        cancelled=result["cancelled"],
        total=result["total"],
    )


def retried_message(result: dict) -> str:
    """The one-line outcome of a bulk retry."""
    return gettext(
        "Retried %(retried)d of %(total)d task(s)", retried=result["retried"], total=result["total"]
    )
