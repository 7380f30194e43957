"""partial indexes: heartbeats of unfinished tasks only, retries only

`ix_tasks_state_heartbeat` held every task, finished ones included, though
the reaper reads only queued, running and cancelling ones; `ix_tasks_retry_of`
held a NULL for every task that is no retry. Both now hold only what is read
(app/models.py, HEARTBEAT_STATES and IS_RETRY): a submit and a worker's claim
and finish write fewer index pages (bench/overhead.py counts them).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# Written out rather than imported: a migration keeps the shape it was written for.
_HEARTBEAT_STATES = "state IN ('queued', 'running', 'cancelling')"


def _partial(condition: str) -> dict:
    return {"sqlite_where": sa.text(condition), "postgresql_where": sa.text(condition)}


def upgrade():
    op.drop_index("ix_tasks_state_heartbeat", table_name="tasks")
    op.create_index(
        "ix_tasks_state_heartbeat",
        "tasks",
        ["state", "heartbeat_at"],
        **_partial(_HEARTBEAT_STATES),
    )
    op.drop_index("ix_tasks_retry_of", table_name="tasks")
    op.create_index("ix_tasks_retry_of", "tasks", ["retry_of"], **_partial("retry_of IS NOT NULL"))


def downgrade():
    op.drop_index("ix_tasks_retry_of", table_name="tasks")
    op.create_index("ix_tasks_retry_of", "tasks", ["retry_of"])
    op.drop_index("ix_tasks_state_heartbeat", table_name="tasks")
    op.create_index("ix_tasks_state_heartbeat", "tasks", ["state", "heartbeat_at"])
