"""heartbeats, lost attempts, the stage's worker and the periodic-run claim

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(), nullable=True))
        batch.add_column(
            sa.Column("lost_attempts", sa.Integer(), nullable=False, server_default="0")
        )
        batch.create_index("ix_tasks_state_heartbeat", ["state", "heartbeat_at"])
    op.execute("UPDATE tasks SET heartbeat_at = CURRENT_TIMESTAMP")
    with op.batch_alter_table("task_stages") as batch:
        batch.add_column(sa.Column("worker", sa.String(length=100), nullable=True))
    op.create_table(
        "periodic_runs",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("next_run_at", sa.DateTime(), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("last_run_by", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade():
    op.drop_table("periodic_runs")
    with op.batch_alter_table("task_stages") as batch:
        batch.drop_column("worker")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_index("ix_tasks_state_heartbeat")
        batch.drop_column("lost_attempts")
        batch.drop_column("heartbeat_at")
