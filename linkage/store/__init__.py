"""The store: the only code that reads or writes the store's tables.

``database`` opens a store (integrity check, migrations, WAL) and keeps runs, their results and
reviewers' decisions; ``accounts``, ``tokens`` and ``audit`` keep the review app's users and
sessions, the check API's tokens and the audit trail; ``tables`` defines the schema that the
Alembic migrations in ``migrations/`` build (``migrate`` applies them).
"""
from linkage.store.database import (
    Store,
    Superseded,
    canonical_pair,
    insert_decision,
    pair_condition,
)
from linkage.store.integrity import StoreDamaged, check_sqlite_file
from linkage.store.tables import (
    DECISIONS,
    api_tokens,
    audit_log,
    decision_reversals,
    decisions,
    entity_members,
    golden,
    metadata,
    review_leases,
    review_sessions,
    runs,
    scored_pairs,
    second_reviews,
    users,
)

__all__ = [
    "DECISIONS", "Store", "StoreDamaged", "Superseded", "api_tokens", "audit_log",
    "canonical_pair", "check_sqlite_file", "decision_reversals", "decisions", "entity_members",
    "golden", "insert_decision", "metadata", "pair_condition", "review_leases", "review_sessions", "runs",
    "scored_pairs", "second_reviews", "users",
]
