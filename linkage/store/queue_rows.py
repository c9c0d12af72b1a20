"""The review queue kept in the store: built once per run, then kept up to date pair by pair.

A run's queue (``review_queue``) holds the pairs a reviewer must see (the review band and the
merges clustering refused), each with its place in the hand-out order and whether it still
waits (no standing match / non-match decision, or an open second-review request). The run's
tally (``review_tally``) counts its pairs and the settled ones. Every change of a pair's state
(a decision, a reversal, a second-review request or its closing) calls :func:`sync_pair` in
the transaction that makes the change, which re-derives the pair's state from the decisions and
requests themselves and moves the tally by the difference: the kept rows can only disagree
with a recount if a change bypasses the store package.

On PostgreSQL a queue build and the state changes take one advisory lock (the build
exclusively, changes shared), so a decision committed while a queue is built is never missed;
SQLite serialises them by its write lock already (each begins with a write).
"""
from __future__ import annotations

import hashlib
from operator import itemgetter

import sqlalchemy as sa

from linkage.store.tables import (
    decisions,
    review_queue,
    review_tally,
    runs,
    scored_pairs,
    second_reviews,
)

STICKY = ("match", "non_match")  # the decisions the next run applies
SECOND_REVIEW, REFUSED_MERGE, REVIEW_BAND = 0, 1, 2  # tiers, handed out in this order
PG_QUEUE_LOCK = 0x6C6B7175657565  # "lkqueue": builds against state changes
BUILD_CHUNK = 20_000
BUILD_CACHE_KIB = 256 * 1024

Key = tuple[str, str]


def pair_token(left: Key, right: Key) -> str:
    """The store's key of a pair in canonical order: a plain digest of its record ids."""
    return hashlib.sha256("\x1f".join((*left, *right)).encode("utf-8")).hexdigest()[:32]


def base_tier(band: str | None, reason: str | None) -> int:
    """A merge clustering refused comes before the review band (before any second review)."""
    return REFUSED_MERGE if reason and band != "review" else REVIEW_BAND


def closeness(probability: float | None) -> float:
    """Distance from p = 0.5: the nearer, the sooner a reviewer sees the pair."""
    return abs(probability - 0.5) if probability is not None else 1.0


def pairs_of(run_id: str):
    """The clause picking a run's stored pairs: its own and those of the run it names in
    ``runs.pairs_from``, and so on back to a full run. An `add` stores only the pairs of its
    batch and names its base run, whose pairs still wait for their reviewers (it used to copy
    them all: 864,224 rows, 6.7 s and about 600 MB of store per `add` at a million persons)."""
    chain = (sa.select(runs.c.run_id, runs.c.pairs_from).where(runs.c.run_id == run_id)
             .cte("pair_runs", recursive=True))
    chain = chain.union_all(sa.select(runs.c.run_id, runs.c.pairs_from)
                            .where(runs.c.run_id == chain.c.pairs_from))
    return scored_pairs.c.run_id.in_(sa.select(chain.c.run_id))


def needs_review():
    """The stored pairs a reviewer must see: the review band and the merges refused."""
    return sa.or_(scored_pairs.c.band == "review",
                  sa.and_(scored_pairs.c.reason.is_not(None), scored_pairs.c.reason != ""))


def _lock(conn, exclusive: bool) -> None:
    if conn.dialect.name == "postgresql":
        fn = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        conn.execute(sa.text(f"SELECT {fn}(:key)"), {"key": PG_QUEUE_LOCK})


def is_built(conn, run_id: str) -> bool:
    return conn.execute(sa.select(review_tally.c.run_id)
                        .where(review_tally.c.run_id == run_id)).first() is not None


def build(engine: sa.Engine, run_id: str) -> bool:
    """Fill the run's queue and tally unless built; True if this call built them.

    One transaction: the pairs to review, each settled or waiting as the stored decisions and
    open second-review requests say, and the pairs under an open second-review request that
    the run did not store for review (scored as the newest run that stored them scored them).
    """
    with engine.connect() as conn:
        if is_built(conn, run_id):
            return False
    try:
        with engine.begin() as conn:
            # The tally row first: a write (SQLite takes its write lock here) whose primary
            # key lets exactly one of two processes building at once go on.
            conn.execute(review_tally.insert().values(run_id=run_id, pairs=0, decided=0))
            _lock(conn, exclusive=True)
            settled = _settled_tokens(conn)
            reopened = _reopened(conn)
            rows = conn.execute(sa.select(
                scored_pairs.c.source_l, scored_pairs.c.record_l, scored_pairs.c.source_r,
                scored_pairs.c.record_r, scored_pairs.c.probability, scored_pairs.c.band,
                scored_pairs.c.reason).where(pairs_of(run_id), needs_review())).all()
            seen: set[str] = set()
            out = []
            for sl, rl, sr, rr, p, band, reason in rows:
                token = pair_token((sl, rl), (sr, rr))
                if token in seen:
                    continue
                seen.add(token)
                out.append(_row(run_id, token, (sl, rl), (sr, rr), p, band, reason,
                                token in reopened, token in settled and token not in reopened))
            for token, (left, right) in reopened.items():
                if token not in seen:
                    p, band, reason = _newest_score(conn, left, right)
                    out.append(_row(run_id, token, left, right, p, band, reason, True, False))
            out.sort(key=lambda r: r["pair_token"])  # the primary key's order: appends, not splits
            _insert(conn, out)
            decided = sum(1 for r in out if not r["waiting"])
            conn.execute(review_tally.update().where(review_tally.c.run_id == run_id)
                         .values(pairs=len(out), decided=decided))
            # Statistics for the planner: without them SQLite takes `run_id = ?` for a handful
            # of rows and reads a run's whole queue by its order index to find a few pairs.
            conn.execute(sa.text("ANALYZE review_queue"))
        return True
    except sa.exc.IntegrityError:
        return False  # another process built it meanwhile


def _insert(conn, rows: list[dict]) -> None:
    """Insert queue rows with the driver's executemany on plain tuples (SQLAlchemy's per-row
    parameter handling cost as much as the database at 150,000 pairs)."""
    if not rows:
        return
    columns = list(rows[0])
    statement = review_queue.insert().compile(dialect=conn.dialect, column_keys=columns)
    names = statement.positiontup
    cursor = conn.connection.driver_connection.cursor()
    try:
        if conn.dialect.name == "sqlite":  # room for the indexes' pages while they grow
            cursor.execute(f"PRAGMA cache_size=-{BUILD_CACHE_KIB}")
        for start in range(0, len(rows), BUILD_CHUNK):
            part = rows[start:start + BUILD_CHUNK]
            if names:
                cursor.executemany(str(statement), list(map(itemgetter(*names), part)))
            else:
                cursor.executemany(str(statement), part)
    finally:
        if conn.dialect.name == "sqlite":  # the pooled connection gives the pages back
            cursor.execute("PRAGMA cache_size=-2000")
        cursor.close()


def _row(run_id, token, left, right, p, band, reason, reopened: bool, settled: bool) -> dict:
    base = base_tier(band, reason)
    return {"run_id": run_id, "pair_token": token, "source_l": left[0], "record_l": left[1],
            "source_r": right[0], "record_r": right[1], "base_tier": base,
            "tier": SECOND_REVIEW if reopened else base, "closeness": closeness(p),
            "waiting": not settled, "probability": p, "band": band, "reason": reason}


def _settled_tokens(conn) -> set[str]:
    rows = conn.execute(sa.select(decisions.c.source_l, decisions.c.record_l,
                                  decisions.c.source_r, decisions.c.record_r)
                        .where(decisions.c.active, decisions.c.decision.in_(STICKY))).all()
    return {pair_token((a, b), (c, d)) for a, b, c, d in rows}


def _reopened(conn) -> dict[str, tuple[Key, Key]]:
    rows = conn.execute(sa.select(second_reviews.c.source_l, second_reviews.c.record_l,
                                  second_reviews.c.source_r, second_reviews.c.record_r)
                        .where(second_reviews.c.closed_at.is_(None))).all()
    return {pair_token((a, b), (c, d)): ((a, b), (c, d)) for a, b, c, d in rows}


def _latest_built_runs(conn) -> set[str]:
    """Each job's latest complete run, where its queue is built."""
    latest: dict[str, str] = {}
    for run_id, job in conn.execute(
            sa.select(runs.c.run_id, runs.c.job).where(runs.c.status == "complete")
            .order_by(runs.c.finished_at, runs.c.run_id)).all():
        latest[job] = run_id
    built = conn.execute(sa.select(review_tally.c.run_id).where(
        review_tally.c.run_id.in_(list(latest.values())))).scalars()
    return set(built)


def _pair_is(table, left: Key, right: Key):
    return ((table.c.source_l == left[0]) & (table.c.record_l == left[1])
            & (table.c.source_r == right[0]) & (table.c.record_r == right[1]))


def _newest_score(conn, left: Key, right: Key) -> tuple:
    row = conn.execute(
        sa.select(scored_pairs.c.probability, scored_pairs.c.band, scored_pairs.c.reason)
        .join(runs, runs.c.run_id == scored_pairs.c.run_id)
        .where(_pair_is(scored_pairs, left, right), runs.c.status == "complete")
        .order_by(runs.c.finished_at.desc()).limit(1)).first()
    return tuple(row) if row is not None else (None, None, None)


def sync_pair(conn, left: Key, right: Key) -> None:
    """Bring the pair's queue rows (in every built run) and their tallies to the pair's state,
    inside the caller's transaction; ``left``, ``right`` in canonical order.

    A pair waiting for a second review joins the queue of each job's latest run that lacks it
    (a supervisor may reopen a pair that run did not store for review).
    """
    _lock(conn, exclusive=False)
    token = pair_token(left, right)
    sticky = conn.execute(sa.select(decisions.c.decision_id).where(
        _pair_is(decisions, left, right), decisions.c.active,
        decisions.c.decision.in_(STICKY)).limit(1)).first() is not None
    reopened = conn.execute(sa.select(second_reviews.c.request_id).where(
        second_reviews.c.pair_token == token,
        second_reviews.c.closed_at.is_(None)).limit(1)).first() is not None
    waiting = reopened or not sticky
    # By primary key in each built run's queue (there are few: one per run a server served).
    rows = conn.execute(sa.select(review_queue.c.run_id, review_queue.c.waiting,
                                  review_queue.c.tier, review_queue.c.base_tier)
                        .where(review_queue.c.run_id.in_(sa.select(review_tally.c.run_id)),
                               review_queue.c.pair_token == token)).all()
    if reopened:
        for run_id in _latest_built_runs(conn) - {r.run_id for r in rows}:
            p, band, reason = _newest_score(conn, left, right)
            conn.execute(review_queue.insert().values(
                _row(run_id, token, left, right, p, band, reason, True, False)))
            conn.execute(review_tally.update().where(review_tally.c.run_id == run_id)
                         .values(pairs=review_tally.c.pairs + 1))
    for run_id, was_waiting, tier, base in rows:
        new_tier = SECOND_REVIEW if reopened else base
        if bool(was_waiting) == waiting and tier == new_tier:
            continue
        conn.execute(review_queue.update().where(review_queue.c.run_id == run_id,
                                                 review_queue.c.pair_token == token)
                     .values(waiting=waiting, tier=new_tier))
        if bool(was_waiting) != waiting:
            conn.execute(review_tally.update().where(review_tally.c.run_id == run_id).values(
                decided=review_tally.c.decided + (1 if was_waiting else -1)))
