"""The rows each run rejected, so a later run marks those the office was told about already.

``run_rejects``: one row per reject of a run (rejects.csv), with a SHA-256 of the row's cells
and ``first_rejected_run``, the run the same row (source, record id, row hash) was first
rejected in. It starts empty: runs made before it are not known to have rejected anything, so
the first run after the upgrade reports every reject as new.

Skipped where the table exists: a store made by the older create_all code may already hold it.

Revision ID: 0005_run_rejects
Revises: 0004
Create Date: 2026-12-02
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_run_rejects"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("run_rejects"):
        return
    op.create_table(
        "run_rejects",
        sa.Column("run_id", sa.String(40), sa.ForeignKey("runs.run_id"), nullable=False),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("record_id", sa.Text, nullable=False),
        sa.Column("row_sha256", sa.String(64), nullable=False),
        sa.Column("file", sa.Text),
        sa.Column("row_number", sa.Integer),
        sa.Column("column_name", sa.Text),
        sa.Column("reason", sa.Text),
        sa.Column("first_rejected_run", sa.String(40), nullable=False),
    )
    op.create_index("ix_run_rejects_run_id", "run_rejects", ["run_id"])
    op.create_index("ix_run_rejects_row", "run_rejects", ["source", "row_sha256"])


def downgrade() -> None:
    op.drop_table("run_rejects")
