"""the dashboard's past hours, rolled up once each: rolled_hours, finished_hours, stage_hours

Empty at first: the reaper rolls up the window's past hours on its next
pass (app/services/hourly.py); until then the dashboard groups them live.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "rolled_hours",
        sa.Column("hour", sa.DateTime(), primary_key=True),
        sa.Column("rolled_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "finished_hours",
        sa.Column("hour", sa.DateTime(), primary_key=True),
        sa.Column("owner_id", sa.Integer(), primary_key=True),
        sa.Column("state", sa.String(16), primary_key=True),
        sa.Column("tasks", sa.Integer(), nullable=False),
    )
    op.create_table(
        "stage_hours",
        sa.Column("hour", sa.DateTime(), primary_key=True),
        sa.Column("owner_id", sa.Integer(), primary_key=True),
        sa.Column("type", sa.String(64), primary_key=True),
        sa.Column("stage", sa.String(100), primary_key=True),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("seconds_total", sa.Double(), nullable=False),
        sa.Column("seconds_max", sa.Double(), nullable=False),
        sa.Column("slowest_task_id", sa.String(32), nullable=False),
    )


def downgrade():
    for table in ("stage_hours", "finished_hours", "rolled_hours"):
        op.drop_table(table)
