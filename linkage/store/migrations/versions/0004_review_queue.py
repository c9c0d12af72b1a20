"""The review queue kept in the store, and the indexes the review pages read by.

``review_queue`` (a run's pairs for reviewers, in hand-out order, each waiting or settled) and
``review_tally`` (per run: pairs, settled) replace sorting and counting every pair of the run
on each request. They start empty: the review app fills a run's queue from its scored pairs and
the decisions, second-review requests and reversals already stored the first time it serves
that run (linkage.store.review.ensure_queue), so an existing store's queue carries over as it
stood. Indexes: a record's scored pairs (left and right), and a reviewer's decisions.

Each table and index is created only when missing: a store made by the older create_all code
may hold them already.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_scored_pairs_left", "scored_pairs", ["source_l", "record_l"]),
    ("ix_scored_pairs_right", "scored_pairs", ["source_r", "record_r"]),
    ("ix_decisions_reviewer", "decisions", ["reviewer"]),
)


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if not inspector.has_table("review_queue"):
        op.create_table(
            "review_queue",
            sa.Column("run_id", sa.String(40), sa.ForeignKey("runs.run_id"), primary_key=True),
            sa.Column("pair_token", sa.String(64), primary_key=True),
            sa.Column("source_l", sa.String(100), nullable=False),
            sa.Column("record_l", sa.String(200), nullable=False),
            sa.Column("source_r", sa.String(100), nullable=False),
            sa.Column("record_r", sa.String(200), nullable=False),
            sa.Column("base_tier", sa.SmallInteger, nullable=False),
            sa.Column("tier", sa.SmallInteger, nullable=False),
            sa.Column("closeness", sa.Float, nullable=False),
            sa.Column("waiting", sa.Boolean, nullable=False),
            sa.Column("probability", sa.Float),
            sa.Column("band", sa.String(20)),
            sa.Column("reason", sa.String(200)),
        )
        op.create_index("ix_review_queue_order", "review_queue",
                        ["run_id", "waiting", "tier", "closeness", "pair_token"])
    if not inspector.has_table("review_tally"):
        op.create_table(
            "review_tally",
            sa.Column("run_id", sa.String(40), sa.ForeignKey("runs.run_id"), primary_key=True),
            sa.Column("pairs", sa.Integer, nullable=False),
            sa.Column("decided", sa.Integer, nullable=False),
        )
    for name, table, columns in INDEXES:
        if name not in {i["name"] for i in inspector.get_indexes(table)}:
            op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in INDEXES:
        op.drop_index(name, table_name=table)
    op.drop_table("review_tally")
    op.drop_table("review_queue")
