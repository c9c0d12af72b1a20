"""The review app's rows: the pairs a run leaves for reviewers, who holds which pair (leases),
reviewers' decisions, second-review requests and reversals.

A pair is handed out by inserting a lease row whose primary key is the pair's token, inside a
transaction that first deletes an expired lease on it and afterwards re-checks that the pair
still needs this reviewer. Two reviewers racing for one pair both try the same insert; the
database lets exactly one commit (SQLite by its write lock, PostgreSQL by the unique index), and
the loser moves on to the next pair. A decision re-takes the lease in the transaction that
stores it with its audit row, so a late decision on a pair someone else now holds is refused
instead of silently overwriting, and a reviewer may decide only a pair they hold a live lease
on (a supervisor may settle any pair).

Rows name a pair by `PairRef.token`, a plain digest of its record ids, which anyone who sees the
ids can compute: it is a key, not a capability (the review app's URLs carry a keyed digest of
it instead, linkage/web/queue.py).

Which pairs wait, in which order, and how many are settled is kept per run in the store
(linkage/store/queue_rows.py): a page reads a few indexed rows and a tally, never every pair.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from linkage.store import audit, queue_rows
from linkage.store.database import (
    canonical_pair,
    insert_decision,
    latest_complete,
    pair_condition,
)
from linkage.store.tables import (
    decision_reversals,
    decisions,
    review_leases,
    review_queue,
    review_tally,
    runs,
    scored_pairs,
    second_reviews,
)

STICKY = queue_rows.STICKY  # the decisions the next run applies


@dataclass(frozen=True)
class PairRef:
    """A pair in canonical order and its store token (what lease, second-review and audit rows
    carry; never a URL: see linkage.web.queue.url_token)."""
    token: str
    left: tuple[str, str]
    right: tuple[str, str]


def pair_ref(a: tuple[str, str], b: tuple[str, str]) -> PairRef:
    left, right = canonical_pair((str(a[0]), str(a[1])), (str(b[0]), str(b[1])))
    return PairRef(queue_rows.pair_token(left, right), left, right)


class LeaseConflict(Exception):
    """Another reviewer holds a live lease on the pair."""

    def __init__(self, holder: str | None):
        super().__init__(f"pair is held by {holder}")
        self.holder = holder


class PairClosed(Exception):
    """The pair no longer needs this reviewer (decided meanwhile, or already by them)."""


class NotHeld(PairClosed):
    """The reviewer holds no live lease on the pair: it ran out, or was never handed to them."""


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _ref(row) -> PairRef:
    return pair_ref((row[0], row[1]), (row[2], row[3]))


_PAIR = (decisions.c.source_l, decisions.c.record_l, decisions.c.source_r, decisions.c.record_r)
_UNREVERSED = decisions.c.decision_id.not_in(sa.select(decision_reversals.c.decision_id))


# ---------------------------------------------------------------------- what is in the queue
def latest_complete_run(engine: sa.Engine, job: str | None = None) -> str | None:
    """The latest complete run of the job; of any job when ``job`` is None."""
    with engine.connect() as conn:
        return latest_complete(conn, job)


def pairs_to_review(engine: sa.Engine, run_id: str) -> list:
    """The run's stored pairs a reviewer must see, the review band and the merges clustering
    refused, as rows with the scored_pairs columns as attributes."""
    with engine.connect() as conn:
        return conn.execute(sa.select(scored_pairs).where(
            queue_rows.pairs_of(run_id), queue_rows.needs_review())).all()


def run_pair_keys(engine: sa.Engine, run_id: str) -> list[tuple[str, str, str, str, bool]]:
    """Every pair the run stored, as (source_l, record_l, source_r, record_r, for_review):
    what the review app needs to know which records its pages can show."""
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(
            scored_pairs.c.source_l, scored_pairs.c.record_l, scored_pairs.c.source_r,
            scored_pairs.c.record_r, queue_rows.needs_review()).where(
            queue_rows.pairs_of(run_id))).all()]


def ensure_queue(engine: sa.Engine, run_id: str) -> bool:
    """Build the run's kept queue unless it is built (once per run); True if built now."""
    return queue_rows.build(engine, run_id)


def _mine():
    """A decision of the reviewer bound as :reviewer on the queue row's pair, ever."""
    q = review_queue.c
    return sa.exists().where(decisions.c.source_l == q.source_l, decisions.c.record_l == q.record_l,
                             decisions.c.source_r == q.source_r, decisions.c.record_r == q.record_r,
                             decisions.c.reviewer == sa.bindparam("reviewer"))


def _leased(others_only: bool):
    """A live lease on the queue row's pair (with ``others_only``, by another reviewer)."""
    cond = [review_leases.c.pair_token == review_queue.c.pair_token,
            review_leases.c.expires_at >= sa.bindparam("now")]
    if others_only:
        cond.append(review_leases.c.reviewer != sa.bindparam("reviewer"))
    return sa.exists().where(*cond)


_ORDER = (review_queue.c.tier, review_queue.c.closeness, review_queue.c.pair_token)


def open_pairs(engine: sa.Engine, run_id: str, reviewer: str, limit: int,
               free_only: bool = False) -> list:
    """The first ``limit`` waiting pairs of the run's queue this reviewer may be handed, in
    hand-out order: not decided by them ever, not held by another reviewer (``free_only``:
    held by nobody). Walks the queue's order index and stops at ``limit``."""
    q = (sa.select(review_queue).where(review_queue.c.run_id == run_id, review_queue.c.waiting,
                                       ~_leased(others_only=not free_only), ~_mine())
         .order_by(*_ORDER).limit(limit))
    with engine.connect() as conn:
        return conn.execute(q, {"reviewer": reviewer, "now": _now()}).all()


def queue_pairs(engine: sa.Engine, run_id: str) -> list:
    """Every row of the run's queue, waiting or settled, in hand-out order (for tests and
    exports: it reads the whole queue)."""
    with engine.connect() as conn:
        return conn.execute(sa.select(review_queue).where(review_queue.c.run_id == run_id)
                            .order_by(*_ORDER)).all()


def queue_row(engine: sa.Engine, run_id: str, token: str):
    """One pair's row in the run's queue, or None."""
    with engine.connect() as conn:
        return conn.execute(sa.select(review_queue).where(
            review_queue.c.run_id == run_id, review_queue.c.pair_token == token)).first()


def queue_tokens(engine: sa.Engine, run_id: str) -> list[str]:
    """The store tokens of every pair in the run's queue."""
    with engine.connect() as conn:
        return list(conn.execute(sa.select(review_queue.c.pair_token)
                                 .where(review_queue.c.run_id == run_id)).scalars())


def queue_counts(engine: sa.Engine, run_id: str, reviewer: str) -> dict:
    """The queue page's numbers from the run's tally and a few primary-key reads: pairs,
    waiting for this reviewer, held by someone now, settled, and the reviewer's standing
    decisions. Nothing here reads the run's pairs: live leases are few (one per reviewer at
    work), and the waiting pairs this reviewer already decided once ('unsure', reversed, or
    before a second review) are found from their own decisions (indexed by reviewer)."""
    now = _now()
    with engine.connect() as conn:
        tally = conn.execute(sa.select(review_tally.c.pairs, review_tally.c.decided)
                             .where(review_tally.c.run_id == run_id)).first()
        pairs, decided = (int(tally[0]), int(tally[1])) if tally else (0, 0)
        leases = dict(conn.execute(sa.select(review_leases.c.pair_token, review_leases.c.reviewer)
                                   .where(review_leases.c.expires_at >= now)).all())
        held = _waiting_of(conn, run_id, list(leases))
        mine = {_ref(r).token for r in conn.execute(
            sa.select(*_PAIR).where(decisions.c.reviewer == reviewer).distinct()).all()}
        mine_waiting = _waiting_of(conn, run_id, [t for t in mine if leases.get(t, reviewer)
                                                  == reviewer])
        own = conn.execute(sa.select(sa.func.count()).select_from(decisions).where(
            decisions.c.reviewer == reviewer, _UNREVERSED)).scalar() or 0
    held_by_others = sum(1 for t, waiting in held.items() if waiting and leases[t] != reviewer)
    return {"pairs": pairs,
            "waiting_for_you": pairs - decided - held_by_others - sum(mine_waiting.values()),
            "in_review": len(held), "decided": decided, "your_decisions": int(own)}


def _waiting_of(conn, run_id: str, tokens: list[str], chunk: int = 500) -> dict[str, bool]:
    """token -> waiting, for those of ``tokens`` in the run's queue (by primary key)."""
    out: dict[str, bool] = {}
    for start in range(0, len(tokens), chunk):
        out.update((t, bool(w)) for t, w in conn.execute(
            sa.select(review_queue.c.pair_token, review_queue.c.waiting).where(
                review_queue.c.run_id == run_id,
                review_queue.c.pair_token.in_(tokens[start:start + chunk]))).all())
    return out


def run_pair(engine: sa.Engine, run_id: str, ref: PairRef):
    """The pair's row as the run stored it (scored_pairs columns as attributes), or None."""
    with engine.connect() as conn:
        return conn.execute(sa.select(scored_pairs).where(
            queue_rows.pairs_of(run_id),
            pair_condition(scored_pairs, ref.left, ref.right)).limit(1)).first()


def reopened_tokens(engine: sa.Engine, tokens: list[str]) -> set[str]:
    """Which of these pairs have an open second-review request."""
    if not tokens:
        return set()
    with engine.connect() as conn:
        return set(conn.execute(sa.select(second_reviews.c.pair_token).where(
            second_reviews.c.pair_token.in_(tokens), second_reviews.c.closed_at.is_(None)))
            .scalars())


def _open_requests(conn) -> dict[str, PairRef]:
    rows = conn.execute(sa.select(second_reviews.c.source_l, second_reviews.c.record_l,
                                  second_reviews.c.source_r, second_reviews.c.record_r)
                        .where(second_reviews.c.closed_at.is_(None))).all()
    refs = [_ref(r) for r in rows]
    return {ref.token: ref for ref in refs}


def find_reviewed_pair(engine: sa.Engine,
                       wanted: Callable[[PairRef], bool]) -> tuple[PairRef | None, bool]:
    """The first reopened pair for which ``wanted`` holds, else the first decided one, and
    whether it has an open second-review request; (None, False) if none.

    The review app finds a pair at a URL token this way: only it can compute the keyed digest.
    """
    with engine.connect() as conn:
        reopened = _open_requests(conn)
        ref = next((r for r in reopened.values() if wanted(r)), None)
        if ref is None:
            for r in conn.execute(sa.select(*_PAIR).distinct()).all():
                candidate = _ref(r)
                if wanted(candidate):
                    ref = candidate
                    break
    return ref, ref is not None and ref.token in reopened


def newest_scored(engine: sa.Engine, ref: PairRef):
    """The pair's row in the newest complete run that stored it (scored_pairs columns as
    attributes), or None."""
    q = (sa.select(scored_pairs).join(runs, runs.c.run_id == scored_pairs.c.run_id)
         .where(pair_condition(scored_pairs, ref.left, ref.right), runs.c.status == "complete")
         .order_by(runs.c.finished_at.desc()).limit(1))
    with engine.connect() as conn:
        return conn.execute(q).first()


def record_pairs(engine: sa.Engine, run_id: str, key: tuple[str, str], limit: int) -> list:
    """At most ``limit`` of the run's stored pairs that involve the record ``key``, most
    probable first (rows with the scored_pairs columns as attributes). One indexed read per
    side: an OR of the two would let the planner read the run's every pair instead."""
    source, record_id = key
    rows = []
    with engine.connect() as conn:
        for side_source, side_record in ((scored_pairs.c.source_l, scored_pairs.c.record_l),
                                         (scored_pairs.c.source_r, scored_pairs.c.record_r)):
            rows += conn.execute(sa.select(scored_pairs).where(
                side_source == source, side_record == record_id,
                queue_rows.pairs_of(run_id))).all()
    rows.sort(key=lambda r: -(r.probability if r.probability is not None else -1.0))
    return rows[:limit]


# ---------------------------------------------------------------------- leases
def _lease(conn, token: str, reviewer: str, now, expires) -> None:
    """Take the pair's lease inside the caller's transaction: drop an expired or own lease,
    then insert; the unique pair token makes a concurrent second insert fail."""
    conn.execute(review_leases.delete().where(
        review_leases.c.pair_token == token,
        sa.or_(review_leases.c.expires_at < now, review_leases.c.reviewer == reviewer)))
    conn.execute(review_leases.insert().values(
        pair_token=token, reviewer=reviewer, leased_at=now, expires_at=expires))


def _still_open(conn, ref: PairRef, reviewer: str) -> bool:
    """Re-check under the lease: decided meanwhile, or ever by this reviewer, means not open.

    A reviewer meets a pair once: after 'unsure' it goes to someone else, after a reversal
    to a fresh pair of eyes, and a second review is by definition another reviewer's.
    """
    sticky = conn.execute(sa.select(sa.func.count()).select_from(decisions).where(
        pair_condition(decisions, ref.left, ref.right), decisions.c.active,
        decisions.c.decision.in_(STICKY))).scalar()
    if sticky:
        reopened = conn.execute(sa.select(sa.func.count()).select_from(second_reviews).where(
            second_reviews.c.pair_token == ref.token,
            second_reviews.c.closed_at.is_(None))).scalar()
        if not reopened:
            return False
    mine = conn.execute(sa.select(sa.func.count()).select_from(decisions).where(
        pair_condition(decisions, ref.left, ref.right),
        decisions.c.reviewer == reviewer)).scalar()
    return not mine


def take_lease(engine: sa.Engine, ref: PairRef, reviewer: str, lease: timedelta) -> bool:
    """Atomically lease one pair to the reviewer (or renew their lease) for ``lease``; False
    if another reviewer holds it or it no longer needs this reviewer."""
    now = _now()
    try:
        with engine.begin() as conn:
            # A write first: on SQLite this takes the write lock before anything is read.
            _lease(conn, ref.token, reviewer, now, now + lease)
            if not _still_open(conn, ref, reviewer):
                raise PairClosed(ref.token)
        return True
    except (sa.exc.IntegrityError, PairClosed):
        return False


def holds_lease(engine: sa.Engine, reviewer: str, token: str) -> bool:
    """Whether the reviewer holds a live lease on the pair with this token."""
    with engine.connect() as conn:
        return conn.execute(sa.select(review_leases.c.pair_token).where(
            review_leases.c.pair_token == token, review_leases.c.reviewer == reviewer,
            review_leases.c.expires_at >= _now())).first() is not None


def leased_token(engine: sa.Engine, reviewer: str) -> str | None:
    """The token of a pair the reviewer holds a live lease on, if any."""
    with engine.connect() as conn:
        return conn.execute(sa.select(review_leases.c.pair_token).where(
            review_leases.c.reviewer == reviewer,
            review_leases.c.expires_at >= _now()).limit(1)).scalar()


def lease_holder(engine: sa.Engine, token: str) -> str | None:
    """Who holds a live lease on the pair with this token, if anyone."""
    with engine.connect() as conn:
        return conn.execute(sa.select(review_leases.c.reviewer).where(
            review_leases.c.pair_token == token,
            review_leases.c.expires_at >= _now())).scalar()


def release_leases(engine: sa.Engine, reviewer: str) -> None:
    """Give back every pair the reviewer holds."""
    with engine.begin() as conn:
        conn.execute(review_leases.delete().where(review_leases.c.reviewer == reviewer))


# ---------------------------------------------------------------------- decisions
def record_decision(engine: sa.Engine, ref: PairRef, reviewer: str, decision: str,
                    probability: float | None, run_id: str | None, note: str | None = None,
                    override: bool = False) -> int:
    """Store the decision, its audit row and the lease release in one transaction.

    The reviewer must hold a live lease on the pair: refused with LeaseConflict when someone
    else holds one, with NotHeld when nobody does (the lease ran out, or the pair was never
    handed to this reviewer) and with PairClosed when the pair no longer needs them.
    `override` (a supervisor settling a pair) needs no lease of its own, only that no one
    else holds the pair; the audit row says so. 'unsure' never replaces a match / non-match
    the next run would apply (a second reviewer's skip must not undo the first reviewer's
    decision); it is kept, inactive, for the log. ``probability`` and ``run_id`` are the
    pair's as the reviewer saw it.
    """
    now = _now()
    taking = True
    try:
        with engine.begin() as conn:
            # A write first (the reviewer's own live lease goes): on SQLite this takes the
            # write lock, on PostgreSQL it locks the lease row, before anything is read.
            held = conn.execute(review_leases.delete().where(
                review_leases.c.pair_token == ref.token, review_leases.c.reviewer == reviewer,
                review_leases.c.expires_at >= now)).rowcount > 0
            if not held and not override:
                holder = conn.execute(sa.select(review_leases.c.reviewer).where(
                    review_leases.c.pair_token == ref.token,
                    review_leases.c.expires_at >= now)).scalar()
                raise LeaseConflict(holder) if holder else NotHeld(ref.token)
            if not held:
                _lease(conn, ref.token, reviewer, now, now)  # fails if another holds it
            taking = False
            if not override and not _still_open(conn, ref, reviewer):
                raise PairClosed(ref.token)
            current = conn.execute(sa.select(decisions.c.decision).where(
                pair_condition(decisions, ref.left, ref.right), decisions.c.active)).scalars()
            sticky = any(d in STICKY for d in current)
            active = not (decision == "unsure" and sticky)
            decision_id = insert_decision(conn, ref.left, ref.right, decision, reviewer,
                                          probability, note or None, active=active)
            closed = 0
            if decision in STICKY:
                closed = conn.execute(second_reviews.update().where(
                    second_reviews.c.pair_token == ref.token,
                    second_reviews.c.closed_at.is_(None)).values(
                    closed_by=reviewer, closed_at=now)).rowcount
            conn.execute(review_leases.delete().where(review_leases.c.pair_token == ref.token))
            if closed:
                queue_rows.sync_pair(conn, ref.left, ref.right)
            audit.record(conn, reviewer, "decide", ref, decision_id, {
                "decision": decision, "probability": probability, "active": active,
                "second_review": bool(closed), "run_id": run_id,
                **({} if held else {"without_lease": True})})
        return decision_id
    except sa.exc.IntegrityError:
        if taking:
            raise LeaseConflict(lease_holder(engine, ref.token)) from None
        raise


# ---------------------------------------------------------------------- the decision log
def _log_query():
    return (sa.select(decisions, decision_reversals.c.reversed_by)
            .join(decision_reversals, decision_reversals.c.decision_id == decisions.c.decision_id,
                  isouter=True))


def _log_rows(conn, query) -> list[dict]:
    reopened = _open_requests(conn)
    out = []
    for r in conn.execute(query).mappings().all():
        ref = pair_ref((r["source_l"], r["record_l"]), (r["source_r"], r["record_r"]))
        out.append({**r, "ref": ref, "reopened": ref.token in reopened})
    return out


def decision_log(engine: sa.Engine, reviewer: str | None = None, limit: int = 200,
                 offset: int = 0) -> list[dict]:
    """Decisions newest first, optionally one reviewer's: the decisions columns, `reversed_by`,
    the pair's `ref` and whether it has an open second-review request (`reopened`)."""
    q = _log_query().order_by(decisions.c.decision_id.desc()).limit(limit).offset(offset)
    if reviewer:
        q = q.where(decisions.c.reviewer == reviewer)
    with engine.connect() as conn:
        return _log_rows(conn, q)


def pair_decisions(engine: sa.Engine, ref: PairRef) -> list[dict]:
    """Every decision ever taken on one pair, oldest first (as in :func:`decision_log`)."""
    q = (_log_query().where(pair_condition(decisions, ref.left, ref.right))
         .order_by(decisions.c.decision_id))
    with engine.connect() as conn:
        return _log_rows(conn, q)


def reviewer_names(engine: sa.Engine) -> list[str]:
    """Everyone who has decided a pair, in name order."""
    with engine.connect() as conn:
        return list(conn.execute(sa.select(decisions.c.reviewer).distinct()
                                 .order_by(decisions.c.reviewer)).scalars())


def standing_judgements(engine: sa.Engine) -> list[tuple[str, str, str, str, str, str]]:
    """Match / non-match decisions not reversed, oldest first, as (source_l, record_l,
    source_r, record_r, reviewer, decision)."""
    q = (sa.select(*_PAIR, decisions.c.reviewer, decisions.c.decision)
         .where(decisions.c.decision.in_(STICKY), _UNREVERSED)
         .order_by(decisions.c.decision_id))
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(q).all()]


def _decision(conn, decision_id: int):
    return conn.execute(sa.select(decisions).where(decisions.c.decision_id == decision_id)
                        ).mappings().first()


def reverse_decision(engine: sa.Engine, decision_id: int, actor: str,
                     note: str | None = None) -> bool:
    """Deactivate a decision and mark it reversed, with its audit row, in one transaction;
    False if the decision is unknown or was reversed before."""
    now = _now()
    try:
        with engine.begin() as conn:
            conn.execute(decision_reversals.insert().values(
                decision_id=decision_id, reversed_by=actor, reversed_at=now, note=note or None))
            row = _decision(conn, decision_id)
            if row is None:
                raise LookupError(decision_id)
            conn.execute(decisions.update().where(decisions.c.decision_id == decision_id)
                         .values(active=False))
            ref = pair_ref((row["source_l"], row["record_l"]), (row["source_r"], row["record_r"]))
            queue_rows.sync_pair(conn, ref.left, ref.right)
            audit.record(conn, actor, "reverse_decision", ref, decision_id,
                         {"decision": row["decision"], "reviewer": row["reviewer"],
                          "was_active": bool(row["active"]), "note": note or ""})
        return True
    except (sa.exc.IntegrityError, LookupError):
        return False


def request_second_review(engine: sa.Engine, decision_id: int, actor: str) -> bool:
    """Open a second-review request on a decided pair, with its audit row, in one transaction;
    False when the decision is not an active match / non-match or a request is open."""
    now = _now()
    with engine.begin() as conn:
        row = _decision(conn, decision_id)
        if row is None or not row["active"] or row["decision"] not in STICKY:
            return False
        ref = pair_ref((row["source_l"], row["record_l"]), (row["source_r"], row["record_r"]))
        already = conn.execute(sa.select(second_reviews.c.request_id).where(
            second_reviews.c.pair_token == ref.token, second_reviews.c.closed_at.is_(None))).first()
        if already:
            return False
        (sl, rl), (sr, rr) = ref.left, ref.right
        conn.execute(second_reviews.insert().values(
            pair_token=ref.token, source_l=sl, record_l=rl, source_r=sr, record_r=rr,
            requested_by=actor, requested_at=now))
        queue_rows.sync_pair(conn, ref.left, ref.right)
        audit.record(conn, actor, "request_second_review", ref, decision_id,
                     {"first_reviewer": row["reviewer"], "decision": row["decision"]})
    return True
