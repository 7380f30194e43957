"""Items and saved state: what lets a stage resume mid-way after a crash, a hand-back or a retry.

The worker records finished items in batches (one transaction per batch,
not per item); a resumed stage skips every recorded item, so after a crash
only the items of the last unrecorded batch run again.
"""

from sqlalchemy import insert, select
from sqlalchemy.dialects import postgresql, sqlite

from app.extensions import db
from app.models import Task, TaskItem
from app.services.transitions import STAGES, lease, on_postgres

ITEMS = TaskItem.__table__
ERROR_MAX = 2000


def recorded_keys(task_id: str, position: int) -> set[str]:
    """Keys of the items this stage already finished or gave up on."""
    keys = set(
        db.session.scalars(
            select(ITEMS.c.key).where(ITEMS.c.task_id == task_id, ITEMS.c.position == position)
        )
    )
    db.session.commit()
    return keys


def record(run, done: list[str], failed: dict[str, str], total: int | None) -> bool:
    """Add a batch of finished (`done`) and failed items; False once the stage's lease is gone."""
    held = db.session.execute(
        _held_stage(run).values(
            items_done=STAGES.c.items_done + len(done),
            items_failed=STAGES.c.items_failed + len(failed),
            **({"items_total": total} if total is not None else {}),
        ),
        _lease_of(run).params,
    )
    if held.rowcount != 1:
        db.session.rollback()
        return False
    rows = [{"key": key, "ok": True, "error": None} for key in done]
    rows += [{"key": key, "ok": False, "error": error[:ERROR_MAX]} for key, error in failed.items()]
    if rows:
        db.session.execute(
            _insert_once(),
            [{"task_id": run.task_id, "position": run.stage_index, **row} for row in rows],
        )
    db.session.commit()
    return True


def _insert_once():
    """INSERT that skips an item recorded already (a superseded run racing its successor)."""
    dialect = postgresql if on_postgres() else sqlite
    return dialect.insert(ITEMS).on_conflict_do_nothing()


def save(run, data: dict) -> bool:
    """ctx.save(): replace the stage's saved dict; False once the lease is gone."""
    result = db.session.execute(_held_stage(run).values(saved=data), _lease_of(run).params)
    db.session.commit()
    return result.rowcount == 1


def failed_items(task_id: str, limit: int = 100) -> list[TaskItem]:
    """Items that raised, with their errors, for the detail page and the API."""
    return list(
        db.session.scalars(
            select(TaskItem)
            .where(TaskItem.task_id == task_id, TaskItem.ok.is_(False))
            .order_by(TaskItem.position, TaskItem.key)
            .limit(limit)
        )
    )


def carry_over(old_id: str, new_id: str, position: int) -> None:
    """A retry resumes stage `position`: its done items go with it (failed ones run again)."""
    db.session.execute(
        insert(ITEMS).from_select(
            ["task_id", "position", "key", "ok", "error"],
            select(
                db.literal(new_id), ITEMS.c.position, ITEMS.c.key, ITEMS.c.ok, ITEMS.c.error
            ).where(ITEMS.c.task_id == old_id, ITEMS.c.position == position, ITEMS.c.ok.is_(True)),
        )
    )


def _lease_of(run):
    return lease(run.stage_index, run.dispatch_seq, running=True)


def _held_stage(run):
    """UPDATE of the stage's row, matching only while this worker still holds its lease.

    Executed with `_lease_of(run).params`.
    """
    holding = select(Task.id).where(Task.id == run.task_id, *_lease_of(run).clauses)
    return STAGES.update().where(
        STAGES.c.task_id.in_(holding), STAGES.c.position == run.stage_index
    )
