"""task counts kept by triggers, and an index of finished tasks: the dashboard at a million tasks

Run it with the workers stopped: on SQLite each statement commits by
itself, so a task that changed state between the triggers and the count
below would be counted twice. The triggers are those app/models.py
declares. A later migration that
rebuilds `tasks` on SQLite (batch mode's copy-and-move) drops them: it
must create them again.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from app.models import TASK_COUNT_TRIGGERS

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("tasks") as batch:
        batch.drop_index("ix_tasks_finished")
        batch.create_index(
            "ix_tasks_finished",
            ["finished_at", "state", "owner_id"],
            sqlite_where=sa.text("finished_at IS NOT NULL"),
            postgresql_where=sa.text("finished_at IS NOT NULL"),
        )
    op.create_table(
        "task_counts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("delta", sa.Integer(), nullable=False),
    )
    # The triggers first, then the count of what is there (see above).
    for statement in TASK_COUNT_TRIGGERS[op.get_bind().dialect.name]:
        op.execute(statement)
    op.execute(
        "INSERT INTO task_counts (owner_id, type, state, delta)"
        " SELECT owner_id, type, state, COUNT(*) FROM tasks GROUP BY owner_id, type, state"
    )


def downgrade():
    postgres = op.get_bind().dialect.name == "postgresql"
    for name in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER IF EXISTS task_counts_{name}" + (" ON tasks" if postgres else ""))
    if postgres:
        op.execute("DROP FUNCTION IF EXISTS task_counts_track()")
    op.drop_table("task_counts")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_index("ix_tasks_finished")
        batch.create_index("ix_tasks_finished", ["finished_at"])
