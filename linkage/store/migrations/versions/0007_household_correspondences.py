"""Household correspondences become reviewable: each run's correspondences and reviewers'
decisions on them.

``household_correspondences``: one row per correspondence the household step found in a run
(kind, evidence, members linked and left over, kept or dropped, the assignment), written with
the rest of the run. ``correspondence_decisions``: 同一户 / 不是同一户 / 不确定 on a pair of
households, which the next full run applies. Both start empty: runs made before kept their
correspondences in household_correspondences.csv only.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    have = sa.inspect(op.get_bind())
    if not have.has_table("household_correspondences"):
        op.create_table(
            "household_correspondences",
            sa.Column("run_id", sa.String(40), sa.ForeignKey("runs.run_id"), nullable=False),
            sa.Column("job", sa.String(200), nullable=False),
            sa.Column("insurance_household", sa.String(300), nullable=False),
            sa.Column("registry_household", sa.String(300), nullable=False),
            sa.Column("kind", sa.String(20), nullable=False),
            sa.Column("tier", sa.SmallInteger, nullable=False),
            sa.Column("anchors", sa.Integer, nullable=False),
            sa.Column("members_insurance", sa.Integer, nullable=False),
            sa.Column("members_registry", sa.Integer, nullable=False),
            sa.Column("members_agreeing", sa.Integer, nullable=False),
            sa.Column("left_insurance", sa.Integer, nullable=False),
            sa.Column("left_registry", sa.Integer, nullable=False),
            sa.Column("kept", sa.Boolean, nullable=False),
            sa.Column("decision", sa.String(20), nullable=False),
            sa.Column("assignment", sa.Text),
        )
        op.create_index("ix_household_correspondences_run_id", "household_correspondences",
                        ["run_id"])
        op.create_index("ix_household_correspondences_order", "household_correspondences",
                        ["run_id", "tier", "insurance_household", "registry_household"])
    if not have.has_table("correspondence_decisions"):
        op.create_table(
            "correspondence_decisions",
            sa.Column("decision_id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("insurance_household", sa.String(300), nullable=False),
            sa.Column("registry_household", sa.String(300), nullable=False),
            sa.Column("decision", sa.String(20), nullable=False),
            sa.Column("reviewer", sa.String(100), nullable=False),
            sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("run_id", sa.String(40)),
            sa.Column("note", sa.Text),
            sa.Column("active", sa.Boolean, nullable=False),
        )
        op.create_index("ix_correspondence_decisions_pair", "correspondence_decisions",
                        ["insurance_household", "registry_household"])


def downgrade() -> None:
    op.drop_table("correspondence_decisions")
    op.drop_table("household_correspondences")
