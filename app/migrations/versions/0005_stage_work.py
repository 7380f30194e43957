"""what stages leave behind: logs, artifacts, items, saved state, attempts, forced cancels

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("log_lines", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("task_stages") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("failures", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("error_code", sa.String(64), nullable=True))
        batch.add_column(sa.Column("error_message", sa.Text(), nullable=True))
        batch.add_column(sa.Column("items_total", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("items_done", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(
            sa.Column("items_failed", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("saved", sa.JSON(), nullable=True))
    with op.batch_alter_table("task_events") as batch:
        batch.add_column(
            sa.Column("forced", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "task_items",
        sa.Column("task_id", sa.String(32), sa.ForeignKey("tasks.id", ondelete="CASCADE")),
        sa.Column("position", sa.Integer()),
        sa.Column("key", sa.String(500)),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("task_id", "position", "key"),
    )
    op.create_table(
        "task_logs",
        sa.Column("task_id", sa.String(32), sa.ForeignKey("tasks.id", ondelete="CASCADE")),
        sa.Column("n", sa.Integer(), autoincrement=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("stage", sa.String(100), nullable=True),
        sa.Column("stream", sa.String(8), nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("task_id", "n"),
    )
    op.create_table(
        "task_artifacts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "task_id", sa.String(32), sa.ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("stage", sa.String(100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("path", sa.String(300), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("task_id", "name"),
    )
    op.create_index("ix_task_artifacts_task_id", "task_artifacts", ["task_id"])


def downgrade():
    op.drop_index("ix_task_artifacts_task_id", "task_artifacts")
    op.drop_table("task_artifacts")
    op.drop_table("task_logs")
    op.drop_table("task_items")
    with op.batch_alter_table("task_events") as batch:
        batch.drop_column("forced")
    with op.batch_alter_table("task_stages") as batch:
        for name in ("saved", "items_failed", "items_done", "items_total", "error_message"):
            batch.drop_column(name)
        batch.drop_column("error_code")
        batch.drop_column("failures")
        batch.drop_column("attempts")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("log_lines")
