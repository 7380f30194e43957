"""Pruning: finished tasks older than a cutoff go, with everything they left, files included.

Files uploaded with a task go with the last task whose params name them
(a retry names its original's).

Stages, events, log lines, items and artifact rows go with their task (ON
DELETE CASCADE); an artifact file goes once no task's row points at it any
more (a retry shares its original's files). A retry of a pruned task stays,
its `retry_of` cleared.
"""

import shutil
from datetime import timedelta

from sqlalchemy import delete, select, update

from app.extensions import db
from app.models import Task, TaskArtifact, utcnow
from app.services import artifacts, uploads
from app.services.states import TERMINAL_STATES

BATCH = 500


def prune(older_than: timedelta) -> dict:
    """Delete tasks that finished more than `older_than` ago; how many tasks, files, uploads."""
    cutoff = utcnow() - older_than
    done = {"tasks": 0, "files": 0, "uploads": 0}
    while ids := db.session.scalars(
        select(Task.id)
        .where(Task.state.in_(TERMINAL_STATES), Task.finished_at < cutoff)
        .limit(BATCH)
    ).all():
        paths = set(
            db.session.scalars(select(TaskArtifact.path).where(TaskArtifact.task_id.in_(ids)))
        )
        params = list(db.session.execute(select(Task.type, Task.params).where(Task.id.in_(ids))))
        db.session.execute(update(Task).where(Task.retry_of.in_(ids)).values(retry_of=None))
        db.session.execute(delete(Task).where(Task.id.in_(ids)))
        still_used = set(
            db.session.scalars(select(TaskArtifact.path).where(TaskArtifact.path.in_(paths)))
        )
        db.session.commit()
        done["uploads"] += uploads.forget(params)
        folders = {artifacts.root() / task_id for task_id in ids}
        for path in paths - still_used:
            file = artifacts.root() / path
            file.unlink(missing_ok=True)
            folders.add(file.parent)
            done["files"] += 1
        for folder in folders:  # emptied (a folder may outlive its task for a retry's sake)
            shutil.rmtree(folder / ".incoming", ignore_errors=True)  # killed runs' half-writes
            if folder.is_dir() and not any(p.is_file() for p in folder.rglob("*")):
                shutil.rmtree(folder, ignore_errors=True)
        done["tasks"] += len(ids)
    return done
