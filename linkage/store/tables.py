"""The store's tables: runs and their results, reviewers' decisions, the review app's accounts,
sessions, leases, audit trail, second reviews and reversals, and the check API's tokens.

The schema itself comes from the Alembic migrations in linkage/store/migrations; a test checks
that they build exactly this metadata.
"""
from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

runs = sa.Table(
    "runs", metadata,
    sa.Column("run_id", sa.String(40), primary_key=True),
    sa.Column("job", sa.String(200), nullable=False, index=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("summary", sa.Text),
    sa.Column("model", sa.Text),
    # The run whose scored pairs this one has too (`linkage add`'s base), not copied: see
    # linkage.store.queue_rows.pairs_of.
    sa.Column("pairs_from", sa.String(40)),
)
# Membership and golden records are versions (linkage.store.versions): run_id is the run that
# wrote the row (valid from it), valid_to the run that no longer has it (NULL while current).
entity_members = sa.Table(
    "entity_members", metadata,
    sa.Column("run_id", sa.String(40), sa.ForeignKey("runs.run_id"), nullable=False, index=True),
    sa.Column("source", sa.String(100), nullable=False),
    sa.Column("record_id", sa.String(200), nullable=False),
    sa.Column("entity_id", sa.String(40), nullable=False),
    sa.Column("valid_to", sa.String(40)),
    # a record's versions (closing them; where it sat over time), an entity's (its history)
    sa.Index("ix_entity_members_record", "source", "record_id"),
    sa.Index("ix_entity_members_entity", "entity_id"),
)
golden = sa.Table(
    "golden", metadata,
    sa.Column("run_id", sa.String(40), sa.ForeignKey("runs.run_id"), nullable=False, index=True),
    sa.Column("entity_id", sa.String(40), nullable=False),
    sa.Column("status", sa.String(20)),
    sa.Column("name", sa.String(200)),
    sa.Column("id_number", sa.String(18)),
    sa.Column("birth_date", sa.String(10)),
    sa.Column("gender", sa.String(1)),
    sa.Column("record", sa.Text),  # the whole golden row as JSON
    sa.Column("digest", sa.BigInteger),  # hash of `record`: an unchanged version is kept
    sa.Column("valid_to", sa.String(40)),
    sa.Index("ix_golden_entity", "entity_id"),
)
# The input rows each run rejected (rejects.csv), so a later run can tell the office which it
# was told about already: first_rejected_run is the run the same row (source, record id and
# row_sha256, a SHA-256 of the row's cells) was first rejected in. Text columns: a rejected
# row's record id may be any cell, up to ingest's limit of 10,000 characters.
run_rejects = sa.Table(
    "run_rejects", metadata,
    sa.Column("run_id", sa.String(40), sa.ForeignKey("runs.run_id"), nullable=False, index=True),
    sa.Column("source", sa.String(100), nullable=False),
    sa.Column("record_id", sa.Text, nullable=False),  # '' when the row had none
    sa.Column("row_sha256", sa.String(64), nullable=False),
    sa.Column("file", sa.Text),
    sa.Column("row_number", sa.Integer),
    sa.Column("column_name", sa.Text),
    sa.Column("reason", sa.Text),
    sa.Column("first_rejected_run", sa.String(40), nullable=False),
    sa.Index("ix_run_rejects_row", "source", "row_sha256"),
)
scored_pairs = sa.Table(
    "scored_pairs", metadata,
    sa.Column("run_id", sa.String(40), sa.ForeignKey("runs.run_id"), nullable=False, index=True),
    sa.Column("source_l", sa.String(100), nullable=False),
    sa.Column("record_l", sa.String(200), nullable=False),
    sa.Column("source_r", sa.String(100), nullable=False),
    sa.Column("record_r", sa.String(200), nullable=False),
    sa.Column("weight", sa.Float),
    sa.Column("probability", sa.Float),
    sa.Column("band", sa.String(20)),
    sa.Column("reason", sa.String(200)),
    sa.Column("explanation", sa.Text),
    # A record's pairs (the pair page's other candidates) and one pair's newest score.
    sa.Index("ix_scored_pairs_left", "source_l", "record_l"),
    sa.Index("ix_scored_pairs_right", "source_r", "record_r"),
)
decisions = sa.Table(
    "decisions", metadata,
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
    sa.Column("active", sa.Boolean, nullable=False, default=True),
    sa.Index("ix_decisions_pair", "source_l", "record_l", "source_r", "record_r"),
    sa.Index("ix_decisions_reviewer", "reviewer"),
)
DECISIONS = ("match", "non_match", "unsure")
# The household step's correspondences of each run (linkage.core.household): which NCMS
# household corresponds to which registry household, of what kind, on what evidence, so a
# reviewer can look at one as at a pair. ``tier`` orders the review list: 0 those that need a
# look (split, merged, dropped, rejected), 1 a 1:1 with members left over, 2 a 1:1 whose
# every member agrees. ``assignment``: the assigned member pairs as JSON, [[insurance record
# id, registry record id, household weight, strong], ...]; ``decision`` the reviewers'
# decision the run applied ('' where none).
household_correspondences = sa.Table(
    "household_correspondences", metadata,
    sa.Column("run_id", sa.String(40), sa.ForeignKey("runs.run_id"), nullable=False, index=True),
    sa.Column("job", sa.String(200), nullable=False),
    sa.Column("insurance_household", sa.String(300), nullable=False),
    sa.Column("registry_household", sa.String(300), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("tier", sa.SmallInteger, nullable=False),
    sa.Column("anchors", sa.Integer, nullable=False),
    sa.Column("members_insurance", sa.Integer, nullable=False),
    sa.Column("members_registry", sa.Integer, nullable=False),
    sa.Column("members_agreeing", sa.Integer, nullable=False),
    sa.Column("left_insurance", sa.Integer, nullable=False),  # members not linked inside it
    sa.Column("left_registry", sa.Integer, nullable=False),
    sa.Column("kept", sa.Boolean, nullable=False),
    sa.Column("decision", sa.String(20), nullable=False),
    sa.Column("assignment", sa.Text),
    sa.Index("ix_household_correspondences_order", "run_id", "tier", "insurance_household",
             "registry_household"),
)
# Reviewers' decisions on correspondences (by household labels 'source:household_id'; like
# pair decisions they outlast runs, and the latest active one per household pair stands).
correspondence_decisions = sa.Table(
    "correspondence_decisions", metadata,
    sa.Column("decision_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("insurance_household", sa.String(300), nullable=False),
    sa.Column("registry_household", sa.String(300), nullable=False),
    sa.Column("decision", sa.String(20), nullable=False),
    sa.Column("reviewer", sa.String(100), nullable=False),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("run_id", sa.String(40)),  # the run whose correspondence the reviewer saw
    sa.Column("note", sa.Text),
    sa.Column("active", sa.Boolean, nullable=False, default=True),
    sa.Index("ix_correspondence_decisions_pair", "insurance_household", "registry_household"),
)
CORRESPONDENCE_DECISIONS = ("same", "different", "unsure")

# --- Review app (linkage/web): accounts, leases, audit trail, second reviews, reversals. ---
users = sa.Table(
    "users", metadata,
    sa.Column("username", sa.String(64), primary_key=True),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False, default=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
# One row per pair handed out: the primary key makes a claim atomic on every backend.
review_leases = sa.Table(
    "review_leases", metadata,
    sa.Column("pair_token", sa.String(64), primary_key=True),
    sa.Column("reviewer", sa.String(64), nullable=False, index=True),
    sa.Column("leased_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)
# The review queue of a run, kept: one row per pair a reviewer must see, in the order pairs are
# handed out (tier: 0 second review, 1 merge a constraint refused, 2 review band; then nearest
# p = 0.5), and whether it still waits. Built once per run from its scored pairs; every decision,
# reversal and second-review request updates the rows of its pair and the run's tally in its
# own transaction, so no page counts or sorts a run's pairs.
review_queue = sa.Table(
    "review_queue", metadata,
    sa.Column("run_id", sa.String(40), sa.ForeignKey("runs.run_id"), primary_key=True),
    sa.Column("pair_token", sa.String(64), primary_key=True),
    sa.Column("source_l", sa.String(100), nullable=False),
    sa.Column("record_l", sa.String(200), nullable=False),
    sa.Column("source_r", sa.String(100), nullable=False),
    sa.Column("record_r", sa.String(200), nullable=False),
    sa.Column("base_tier", sa.SmallInteger, nullable=False),  # tier without a second review
    sa.Column("tier", sa.SmallInteger, nullable=False),
    sa.Column("closeness", sa.Float, nullable=False),  # |p - 0.5|, 1 when unscored
    sa.Column("waiting", sa.Boolean, nullable=False),  # not settled by a standing decision
    sa.Column("probability", sa.Float),
    sa.Column("band", sa.String(20)),
    sa.Column("reason", sa.String(200)),
    sa.Index("ix_review_queue_order", "run_id", "waiting", "tier", "closeness", "pair_token"),
)
# Per run: its queue's pairs and how many of them are settled. The row exists once the run's
# queue is built (written in the same transaction as the queue rows).
review_tally = sa.Table(
    "review_tally", metadata,
    sa.Column("run_id", sa.String(40), sa.ForeignKey("runs.run_id"), primary_key=True),
    sa.Column("pairs", sa.Integer, nullable=False),
    sa.Column("decided", sa.Integer, nullable=False),
)
audit_log = sa.Table(
    "audit_log", metadata,
    sa.Column("audit_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("actor", sa.String(100), nullable=False, index=True),
    sa.Column("action", sa.String(40), nullable=False),
    sa.Column("pair_token", sa.String(64)),
    sa.Column("source_l", sa.String(100)),
    sa.Column("record_l", sa.String(200)),
    sa.Column("source_r", sa.String(100)),
    sa.Column("record_r", sa.String(200)),
    sa.Column("decision_id", sa.Integer),
    sa.Column("detail", sa.Text),
)
second_reviews = sa.Table(
    "second_reviews", metadata,
    sa.Column("request_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("pair_token", sa.String(64), nullable=False, index=True),
    sa.Column("source_l", sa.String(100), nullable=False),
    sa.Column("record_l", sa.String(200), nullable=False),
    sa.Column("source_r", sa.String(100), nullable=False),
    sa.Column("record_r", sa.String(200), nullable=False),
    sa.Column("requested_by", sa.String(64), nullable=False),
    sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("closed_by", sa.String(64)),
    sa.Column("closed_at", sa.DateTime(timezone=True)),
)
decision_reversals = sa.Table(
    "decision_reversals", metadata,
    sa.Column("decision_id", sa.Integer, sa.ForeignKey("decisions.decision_id"), primary_key=True),
    sa.Column("reversed_by", sa.String(64), nullable=False),
    sa.Column("reversed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("note", sa.Text),
)

# The check API's bearer tokens; only a SHA-256 of each secret is kept.
api_tokens = sa.Table(
    "api_tokens", metadata,
    sa.Column("token_id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("scope", sa.String(20), nullable=False),
    sa.Column("secret_sha256", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
    sa.Column("last_used_at", sa.DateTime(timezone=True)),
    sa.Column("expires_at", sa.DateTime(timezone=True)),  # None: never
)
# Signed-in review sessions, checked on every request: logout, a password change or disabling
# an account ends them at once. Only a SHA-256 of the session id is kept.
review_sessions = sa.Table(
    "review_sessions", metadata,
    sa.Column("session_sha256", sa.String(64), primary_key=True),
    sa.Column("username", sa.String(64), nullable=False, index=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ended_at", sa.DateTime(timezone=True)),
)
