"""The store as it was before migrations: runs and their results, decisions, review app tables.

A store made by the older `metadata.create_all` code already has some or all of these tables;
each table (with its indexes) is created only when missing, so such a store is adopted in place,
its data kept, and stamped at this revision.

Revision ID: 0001
Revises:
Create Date: 2026-11-30
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _table(name: str, *columns, indexes: tuple[tuple[str, list[str]], ...] = ()) -> None:
    """Create the table and its indexes unless a create_all store already has the table."""
    if sa.inspect(op.get_bind()).has_table(name):
        return
    op.create_table(name, *columns)
    for index, cols in indexes:
        op.create_index(index, name, cols)


def upgrade() -> None:
    _table(
        "runs",
        sa.Column("run_id", sa.String(40), primary_key=True),
        sa.Column("job", sa.String(200), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("summary", sa.Text),
        sa.Column("model", sa.Text),
        indexes=(("ix_runs_job", ["job"]),),
    )
    _table(
        "entity_members",
        sa.Column("run_id", sa.String(40), sa.ForeignKey("runs.run_id"), nullable=False),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("record_id", sa.String(200), nullable=False),
        sa.Column("entity_id", sa.String(40), nullable=False),
        indexes=(("ix_entity_members_run_id", ["run_id"]),),
    )
    _table(
        "golden",
        sa.Column("run_id", sa.String(40), sa.ForeignKey("runs.run_id"), nullable=False),
        sa.Column("entity_id", sa.String(40), nullable=False),
        sa.Column("status", sa.String(20)),
        sa.Column("name", sa.String(200)),
        sa.Column("id_number", sa.String(18)),
        sa.Column("birth_date", sa.String(10)),
        sa.Column("gender", sa.String(1)),
        sa.Column("record", sa.Text),
        indexes=(("ix_golden_run_id", ["run_id"]),),
    )
    _table(
        "scored_pairs",
        sa.Column("run_id", sa.String(40), sa.ForeignKey("runs.run_id"), nullable=False),
        sa.Column("source_l", sa.String(100), nullable=False),
        sa.Column("record_l", sa.String(200), nullable=False),
        sa.Column("source_r", sa.String(100), nullable=False),
        sa.Column("record_r", sa.String(200), nullable=False),
        sa.Column("weight", sa.Float),
        sa.Column("probability", sa.Float),
        sa.Column("band", sa.String(20)),
        sa.Column("reason", sa.String(200)),
        sa.Column("explanation", sa.Text),
        indexes=(("ix_scored_pairs_run_id", ["run_id"]),),
    )
    _table(
        "decisions",
        sa.Column("decision_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("source_l", sa.String(100), nullable=False),
        sa.Column("record_l", sa.String(200), nullable=False),
        sa.Column("source_r", sa.String(100), nullable=False),
        sa.Column("record_r", sa.String(200), nullable=False),
        sa.Column("decision", sa.String(20), nullable=False),
        sa.Column("reviewer", sa.String(100), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("score", sa.Float),
        sa.Column("note", sa.Text),
        sa.Column("active", sa.Boolean, nullable=False),
        indexes=(("ix_decisions_pair", ["source_l", "record_l", "source_r", "record_r"]),),
    )
    _table(
        "users",
        sa.Column("username", sa.String(64), primary_key=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    _table(
        "review_leases",
        sa.Column("pair_token", sa.String(64), primary_key=True),
        sa.Column("reviewer", sa.String(64), nullable=False),
        sa.Column("leased_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        indexes=(("ix_review_leases_reviewer", ["reviewer"]),),
    )
    _table(
        "audit_log",
        sa.Column("audit_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("pair_token", sa.String(64)),
        sa.Column("source_l", sa.String(100)),
        sa.Column("record_l", sa.String(200)),
        sa.Column("source_r", sa.String(100)),
        sa.Column("record_r", sa.String(200)),
        sa.Column("decision_id", sa.Integer),
        sa.Column("detail", sa.Text),
        indexes=(("ix_audit_log_at", ["at"]), ("ix_audit_log_actor", ["actor"])),
    )
    _table(
        "second_reviews",
        sa.Column("request_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("pair_token", sa.String(64), nullable=False),
        sa.Column("source_l", sa.String(100), nullable=False),
        sa.Column("record_l", sa.String(200), nullable=False),
        sa.Column("source_r", sa.String(100), nullable=False),
        sa.Column("record_r", sa.String(200), nullable=False),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_by", sa.String(64)),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
        indexes=(("ix_second_reviews_pair_token", ["pair_token"]),),
    )
    _table(
        "decision_reversals",
        sa.Column("decision_id", sa.Integer, sa.ForeignKey("decisions.decision_id"),
                  primary_key=True),
        sa.Column("reversed_by", sa.String(64), nullable=False),
        sa.Column("reversed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text),
    )


def downgrade() -> None:
    for name in ("decision_reversals", "second_reviews", "audit_log", "review_leases", "users",
                 "decisions", "scored_pairs", "golden", "entity_members", "runs"):
        op.drop_table(name)
