"""The store: the only code that reads or writes the store's tables.

``database`` opens a store (integrity check, migrations, WAL) and keeps runs, their results and
reviewers' decisions (:class:`Store`); ``review`` keeps the review app's queue rows (leases,
decisions, second reviews, reversals); ``accounts``, ``tokens`` and ``audit`` keep the review
app's users and sessions, the check API's tokens and the audit trail; ``tables`` defines the
schema that the Alembic migrations in ``migrations/`` build (``migrate`` applies them).

The tables are named here for tests, which look at the rows themselves; code outside this
package calls the functions above instead (tests/test_architecture.py holds it to that).
"""
from linkage.store.database import StatePruned, Store, Superseded, canonical_pair
from linkage.store.integrity import StoreDamaged, check_sqlite_file
from linkage.store.tables import (
    CORRESPONDENCE_DECISIONS,
    DECISIONS,
    api_tokens,
    audit_log,
    correspondence_decisions,
    decision_reversals,
    decisions,
    entity_members,
    golden,
    household_correspondences,
    metadata,
    review_leases,
    review_queue,
    review_sessions,
    review_tally,
    runs,
    scored_pairs,
    second_reviews,
    users,
)

__all__ = [
    "CORRESPONDENCE_DECISIONS", "DECISIONS", "StatePruned", "Store", "StoreDamaged",
    "Superseded", "api_tokens", "audit_log", "canonical_pair", "check_sqlite_file",
    "correspondence_decisions", "decision_reversals", "decisions", "entity_members", "golden",
    "household_correspondences", "metadata", "review_leases", "review_queue", "review_sessions",
    "review_tally", "runs", "scored_pairs", "second_reviews", "users",
]
