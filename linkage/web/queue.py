"""The review queue: which pairs need a reviewer, in which order, and who holds which pair.

A pair is handed out by inserting a lease row whose primary key is the pair's token, inside a
transaction that first deletes an expired lease on it and afterwards re-checks that the pair
still needs this reviewer. Two reviewers racing for one pair both try the same insert; the
database lets exactly one commit (SQLite by its write lock, PostgreSQL by the unique index), and
the loser moves on to the next pair. A decision re-takes the lease in its own transaction, so a
late decision on a pair someone else now holds is refused instead of silently overwriting, and
a reviewer may decide only a pair they hold a live lease on (a supervisor may settle any pair).

The store's rows name a pair by `PairRef.token`, a plain digest of its record ids, which anyone who
sees the ids can compute: it is a key, not a capability. URLs carry `ReviewQueue.url_token`
instead, an HMAC of it under the server's secret, so a pair's address cannot be made up from ids.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from linkage.store import (
    canonical_pair,
    decision_reversals,
    decisions,
    insert_decision,
    pair_condition,
    review_leases,
    runs,
    scored_pairs,
    second_reviews,
)
from linkage.store import audit

LEASE_SECONDS = 600
STICKY = ("match", "non_match")  # the decisions the next run applies


@dataclass(frozen=True)
class PairRef:
    """A pair in canonical order and its store token (what lease, second-review and audit rows
    carry; never a URL: see ReviewQueue.url_token)."""
    token: str
    left: tuple[str, str]
    right: tuple[str, str]


def pair_ref(a: tuple[str, str], b: tuple[str, str]) -> PairRef:
    left, right = canonical_pair((str(a[0]), str(a[1])), (str(b[0]), str(b[1])))
    digest = hashlib.sha256("\x1f".join((*left, *right)).encode("utf-8")).hexdigest()
    return PairRef(digest[:32], left, right)


def url_token(secret: bytes, token: str) -> str:
    """The address of the pair with store token `token` under the server's secret."""
    return hmac.new(secret, b"review-pair\x1f" + token.encode("ascii"),
                    hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True)
class ScoredPair:
    ref: PairRef
    run_id: str | None
    weight: float | None
    probability: float | None
    band: str | None
    reason: str
    explanation: dict
    second_review: bool = False

    @property
    def refused_merge(self) -> bool:
        """Scored as a match but kept apart by a constraint: a reviewer must look."""
        return bool(self.reason) and self.band != "review"

    def sort_key(self) -> tuple:
        """Second reviews a supervisor asked for, then refused merges, then nearest p = 0.5."""
        closeness = abs(self.probability - 0.5) if self.probability is not None else 1.0
        return (0 if self.second_review else 1 if self.refused_merge else 2, closeness,
                self.ref.token)


class LeaseConflict(Exception):
    """Another reviewer holds a live lease on the pair."""

    def __init__(self, holder: str | None):
        super().__init__(f"pair is held by {holder}")
        self.holder = holder


class PairClosed(Exception):
    """The pair no longer needs this reviewer (decided meanwhile, or already by them)."""


class NotHeld(PairClosed):
    """The reviewer holds no live lease on the pair: it ran out, or was never handed to them."""


@dataclass
class _State:
    decided: set[str]  # tokens of pairs with an active match / non-match decision
    mine: set[str]  # tokens this reviewer has decided (even if reversed or skipped)
    reopened: set[str]  # tokens with an open second-review request
    leases: dict[str, str]  # live leases: token -> reviewer


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _row_pair(row) -> ScoredPair:
    try:
        explanation = json.loads(row.explanation) if row.explanation else {}
    except ValueError:
        explanation = {}
    return ScoredPair(pair_ref((row.source_l, row.record_l), (row.source_r, row.record_r)),
                      row.run_id, row.weight, row.probability, row.band, row.reason or "",
                      explanation)


class ReviewQueue:
    """The queue over one store; `job` None means the latest complete run of any job."""

    def __init__(self, engine: sa.Engine, job: str | None = None,
                 lease_seconds: int = LEASE_SECONDS, secret: str | bytes | None = None):
        self.engine = engine
        self.job = job
        self.lease = timedelta(seconds=lease_seconds)
        if secret is None:
            secret = secrets.token_bytes(32)
        self._secret = secret.encode("utf-8") if isinstance(secret, str) else secret
        self._by_url: dict[str, ScoredPair] = {}  # url token -> pair, for the cached run
        self._cache: tuple[str | None, list[ScoredPair], dict[str, ScoredPair]] = (None, [], {})
        self._scored: dict[str, ScoredPair] = {}  # pairs looked up outside the queue, per run
        self._lock = threading.Lock()

    def url_token(self, ref: PairRef | str) -> str:
        """The pair's address in URLs (a PairRef, or a store token as audit rows keep it)."""
        return url_token(self._secret, ref if isinstance(ref, str) else ref.token)

    # ------------------------------------------------------------------ what is in the queue
    def latest_run(self) -> str | None:
        q = sa.select(runs.c.run_id).where(runs.c.status == "complete")
        if self.job:
            q = q.where(runs.c.job == self.job)
        with self.engine.connect() as conn:
            return conn.execute(q.order_by(runs.c.finished_at.desc(), runs.c.run_id.desc())
                                .limit(1)).scalar()

    def _run_pairs(self) -> tuple[str | None, list[ScoredPair], dict[str, ScoredPair]]:
        """The latest run's pairs needing review, loaded once per run."""
        run_id = self.latest_run()
        with self._lock:
            if self._cache[0] != run_id:
                pairs: list[ScoredPair] = []
                if run_id:
                    need = sa.or_(scored_pairs.c.band == "review",
                                  sa.and_(scored_pairs.c.reason.is_not(None),
                                          scored_pairs.c.reason != ""))
                    with self.engine.connect() as conn:
                        rows = conn.execute(sa.select(scored_pairs).where(
                            scored_pairs.c.run_id == run_id, need)).all()
                    pairs = [_row_pair(r) for r in rows]
                self._cache = (run_id, pairs, {p.ref.token: p for p in pairs})
                self._by_url = {self.url_token(p.ref): p for p in pairs}
                self._scored = {}
            return self._cache

    def candidates(self) -> list[ScoredPair]:
        """Every pair that may need a reviewer, most useful first (before per-reviewer filters)."""
        _, pairs, by_token = self._run_pairs()
        with self.engine.connect() as conn:
            reopened = self._reopened(conn)
        out = [replace(p, second_review=p.ref.token in reopened) for p in pairs]
        for token, ref in reopened.items():
            if token not in by_token:
                found = self.scored(ref)
                out.append(replace(found, second_review=True))
        return sorted(out, key=ScoredPair.sort_key)

    def _reopened(self, conn) -> dict[str, PairRef]:
        rows = conn.execute(sa.select(second_reviews.c.source_l, second_reviews.c.record_l,
                                      second_reviews.c.source_r, second_reviews.c.record_r)
                            .where(second_reviews.c.closed_at.is_(None))).all()
        refs = [pair_ref((r[0], r[1]), (r[2], r[3])) for r in rows]
        return {ref.token: ref for ref in refs}

    def _state(self, conn, reviewer: str) -> _State:
        now = _now()
        decided = {pair_ref((r[0], r[1]), (r[2], r[3])).token for r in conn.execute(
            sa.select(decisions.c.source_l, decisions.c.record_l, decisions.c.source_r,
                      decisions.c.record_r)
            .where(decisions.c.active, decisions.c.decision.in_(STICKY))).all()}
        mine = {pair_ref((r[0], r[1]), (r[2], r[3])).token for r in conn.execute(
            sa.select(decisions.c.source_l, decisions.c.record_l, decisions.c.source_r,
                      decisions.c.record_r).where(decisions.c.reviewer == reviewer)).all()}
        leases = dict(conn.execute(sa.select(review_leases.c.pair_token, review_leases.c.reviewer)
                                   .where(review_leases.c.expires_at >= now)).all())
        return _State(decided, mine, set(self._reopened(conn)), leases)

    @staticmethod
    def _open_for(state: _State, token: str) -> bool:
        return (token not in state.decided or token in state.reopened) and token not in state.mine

    def waiting(self, reviewer: str) -> list[ScoredPair]:
        """Pairs this reviewer could be handed now (nobody else holds them), in queue order."""
        pairs = self.candidates()
        with self.engine.connect() as conn:
            state = self._state(conn, reviewer)
        return [p for p in pairs if self._open_for(state, p.ref.token)
                and state.leases.get(p.ref.token, reviewer) == reviewer]

    def stats(self, reviewer: str) -> dict:
        pairs = self.candidates()
        with self.engine.connect() as conn:
            state = self._state(conn, reviewer)
            yours = conn.execute(sa.select(sa.func.count()).select_from(decisions).where(
                decisions.c.reviewer == reviewer,
                decisions.c.decision_id.not_in(sa.select(decision_reversals.c.decision_id))
            )).scalar()
        tokens = [p.ref.token for p in pairs]
        return {
            "run_id": self._run_pairs()[0],
            "pairs": len(tokens),
            "waiting_for_you": sum(1 for t in tokens if self._open_for(state, t)
                                   and state.leases.get(t, reviewer) == reviewer),
            "in_review": sum(1 for t in tokens if t in state.leases),
            "decided": sum(1 for t in tokens if t in state.decided and t not in state.reopened),
            "your_decisions": int(yours or 0),
        }

    # ------------------------------------------------------------------ leases
    def claim_next(self, reviewer: str) -> ScoredPair | None:
        """Hand this reviewer the most useful pair nobody holds (or the one they already hold)."""
        pairs = self.candidates()
        with self.engine.connect() as conn:
            state = self._state(conn, reviewer)
        open_pairs = [p for p in pairs if self._open_for(state, p.ref.token)]
        for p in open_pairs:
            if state.leases.get(p.ref.token) == reviewer and self._take(p.ref, reviewer):
                return p
        self.release_all(reviewer)
        for p in open_pairs:
            if p.ref.token in state.leases:
                continue
            if self._take(p.ref, reviewer):
                return p
        return None

    def _take(self, ref: PairRef, reviewer: str) -> bool:
        """Atomically lease one pair to the reviewer (or renew their lease); False if taken."""
        now = _now()
        try:
            with self.engine.begin() as conn:
                # A write first: on SQLite this takes the write lock before anything is read.
                _lease(conn, ref.token, reviewer, now, now + self.lease)
                if not self._still_open(conn, ref, reviewer):
                    raise PairClosed(ref.token)
            return True
        except (sa.exc.IntegrityError, PairClosed):
            return False

    @staticmethod
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

    def holds(self, reviewer: str, token: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(review_leases.c.pair_token).where(
                review_leases.c.pair_token == token, review_leases.c.reviewer == reviewer,
                review_leases.c.expires_at >= _now())).first() is not None

    def held_by(self, reviewer: str) -> str | None:
        """The token of the pair this reviewer holds now, if any."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(review_leases.c.pair_token).where(
                review_leases.c.reviewer == reviewer,
                review_leases.c.expires_at >= _now()).limit(1)).scalar()

    def holder(self, token: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(review_leases.c.reviewer).where(
                review_leases.c.pair_token == token,
                review_leases.c.expires_at >= _now())).scalar()

    def release_all(self, reviewer: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(review_leases.delete().where(review_leases.c.reviewer == reviewer))

    # ------------------------------------------------------------------ decisions
    def decide(self, reviewer: str, pair: ScoredPair, decision: str,
               note: str | None = None, override: bool = False) -> int:
        """Store the decision, its audit row and the lease release in one transaction.

        The reviewer must hold a live lease on the pair: refused with LeaseConflict when someone
        else holds one, with NotHeld when nobody does (the lease ran out, or the pair was never
        handed to this reviewer) and with PairClosed when the pair no longer needs them.
        `override` (a supervisor settling a pair) needs no lease of its own, only that no one
        else holds the pair; the audit row says so. 'unsure' never replaces a match / non-match
        the next run would apply (a second reviewer's skip must not undo the first reviewer's
        decision); it is kept, inactive, for the log.
        """
        ref, now = pair.ref, _now()
        taking = True
        try:
            with self.engine.begin() as conn:
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
                if not override and not self._still_open(conn, ref, reviewer):
                    raise PairClosed(ref.token)
                current = conn.execute(sa.select(decisions.c.decision).where(
                    pair_condition(decisions, ref.left, ref.right), decisions.c.active)).scalars()
                sticky = any(d in STICKY for d in current)
                active = not (decision == "unsure" and sticky)
                decision_id = insert_decision(conn, ref.left, ref.right, decision, reviewer,
                                              pair.probability, note or None, active=active)
                closed = 0
                if decision in STICKY:
                    closed = conn.execute(second_reviews.update().where(
                        second_reviews.c.pair_token == ref.token,
                        second_reviews.c.closed_at.is_(None)).values(
                        closed_by=reviewer, closed_at=now)).rowcount
                conn.execute(review_leases.delete().where(review_leases.c.pair_token == ref.token))
                audit.record(conn, reviewer, "decide", ref, decision_id, {
                    "decision": decision, "probability": pair.probability, "active": active,
                    "second_review": bool(closed), "run_id": pair.run_id,
                    **({} if held else {"without_lease": True})})
            return decision_id
        except sa.exc.IntegrityError:
            if taking:
                raise LeaseConflict(self.holder(ref.token)) from None
            raise

    # ------------------------------------------------------------------ lookups for pages
    def find(self, token: str) -> ScoredPair | None:
        """The pair at a URL token: in the queue, reopened, or decided at some time."""
        self._run_pairs()
        found = self._by_url.get(token)
        if found is not None:
            return found
        with self.engine.connect() as conn:
            reopened = self._reopened(conn)
            ref = next((r for r in reopened.values() if self.url_token(r) == token), None)
            if ref is None:
                for r in conn.execute(sa.select(decisions.c.source_l, decisions.c.record_l,
                                                decisions.c.source_r, decisions.c.record_r)
                                      .distinct()).all():
                    candidate = pair_ref((r[0], r[1]), (r[2], r[3]))
                    if self.url_token(candidate) == token:
                        ref = candidate
                        break
        if ref is None:
            return None
        return replace(self.scored(ref), second_review=ref.token in reopened)

    def scored(self, ref: PairRef) -> ScoredPair:
        """The pair's scores from the newest complete run that scored it (or none known).

        Remembered until the next run completes: the lookup scans the pairs of every run.
        """
        self._run_pairs()  # forgets remembered lookups when a new run has completed
        if ref.token not in self._scored:
            self._scored[ref.token] = self._scored_now(ref)
        return self._scored[ref.token]

    def _scored_now(self, ref: PairRef) -> ScoredPair:
        q = (sa.select(scored_pairs).join(runs, runs.c.run_id == scored_pairs.c.run_id)
             .where(pair_condition(scored_pairs, ref.left, ref.right), runs.c.status == "complete")
             .order_by(runs.c.finished_at.desc()).limit(1))
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        if row is None:
            return ScoredPair(ref, None, None, None, None, "", {})
        return _row_pair(row)

    def other_pairs(self, key: tuple[str, str], exclude: str, limit: int = 20) -> list[ScoredPair]:
        """Other scored pairs of the latest run that involve this record, best first."""
        run_id = self._run_pairs()[0]
        if run_id is None:
            return []
        source, record_id = key
        q = (sa.select(scored_pairs).where(
            scored_pairs.c.run_id == run_id,
            sa.or_(sa.and_(scored_pairs.c.source_l == source,
                           scored_pairs.c.record_l == record_id),
                   sa.and_(scored_pairs.c.source_r == source,
                           scored_pairs.c.record_r == record_id)))
             .order_by(scored_pairs.c.probability.desc()).limit(limit + 1))
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        return [p for p in map(_row_pair, rows) if p.ref.token != exclude][:limit]


def _lease(conn, token: str, reviewer: str, now, expires) -> None:
    """Take the pair's lease inside the caller's transaction: drop an expired or own lease,
    then insert; the unique pair token makes a concurrent second insert fail."""
    conn.execute(review_leases.delete().where(
        review_leases.c.pair_token == token,
        sa.or_(review_leases.c.expires_at < now, review_leases.c.reviewer == reviewer)))
    conn.execute(review_leases.insert().values(
        pair_token=token, reviewer=reviewer, leased_at=now, expires_at=expires))
