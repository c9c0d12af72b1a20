"""The review queue: which pairs need a reviewer, in which order, and who holds which pair.

The rows behind it (leases, decisions, second reviews) and how a pair is handed out atomically
live in linkage/store/review.py; here the queue orders the pairs and keeps the latest run's
pairs in memory. The store's rows name a pair by `PairRef.token`, a plain digest of its record
ids, which anyone who sees the ids can compute: it is a key, not a capability. URLs carry
`ReviewQueue.url_token` instead, an HMAC of it under the server's secret, so a pair's address
cannot be made up from ids.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
from dataclasses import dataclass, replace
from datetime import timedelta

import sqlalchemy as sa

from linkage.store import review
from linkage.store.review import (
    LeaseConflict,
    NotHeld,
    PairClosed,
    PairRef,
    QueueState,
    pair_ref,
)

LEASE_SECONDS = 600
# The lease errors ReviewQueue raises and PairRef are the store's (linkage/store/review.py).
__all__ = ["LEASE_SECONDS", "LeaseConflict", "NotHeld", "PairClosed", "PairRef", "ReviewQueue",
           "ScoredPair", "pair_ref", "url_token"]


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
        return review.latest_complete_run(self.engine, self.job or None)

    def _run_pairs(self) -> tuple[str | None, list[ScoredPair], dict[str, ScoredPair]]:
        """The latest run's pairs needing review, loaded once per run."""
        run_id = self.latest_run()
        with self._lock:
            if self._cache[0] != run_id:
                pairs: list[ScoredPair] = []
                if run_id:
                    pairs = [_row_pair(r) for r in review.pairs_to_review(self.engine, run_id)]
                self._cache = (run_id, pairs, {p.ref.token: p for p in pairs})
                self._by_url = {self.url_token(p.ref): p for p in pairs}
                self._scored = {}
            return self._cache

    def candidates(self) -> list[ScoredPair]:
        """Every pair that may need a reviewer, most useful first (before per-reviewer filters)."""
        _, pairs, by_token = self._run_pairs()
        reopened = review.reopened_pairs(self.engine)
        out = [replace(p, second_review=p.ref.token in reopened) for p in pairs]
        for token, ref in reopened.items():
            if token not in by_token:
                found = self.scored(ref)
                out.append(replace(found, second_review=True))
        return sorted(out, key=ScoredPair.sort_key)

    @staticmethod
    def _open_for(state: QueueState, token: str) -> bool:
        return (token not in state.decided or token in state.reopened) and token not in state.mine

    def waiting(self, reviewer: str) -> list[ScoredPair]:
        """Pairs this reviewer could be handed now (nobody else holds them), in queue order."""
        pairs = self.candidates()
        state = review.queue_state(self.engine, reviewer)
        return [p for p in pairs if self._open_for(state, p.ref.token)
                and state.leases.get(p.ref.token, reviewer) == reviewer]

    def stats(self, reviewer: str) -> dict:
        pairs = self.candidates()
        state = review.queue_state(self.engine, reviewer, own_decisions=True)
        tokens = [p.ref.token for p in pairs]
        return {
            "run_id": self._run_pairs()[0],
            "pairs": len(tokens),
            "waiting_for_you": sum(1 for t in tokens if self._open_for(state, t)
                                   and state.leases.get(t, reviewer) == reviewer),
            "in_review": sum(1 for t in tokens if t in state.leases),
            "decided": sum(1 for t in tokens if t in state.decided and t not in state.reopened),
            "your_decisions": state.own_decisions,
        }

    # ------------------------------------------------------------------ leases
    def claim_next(self, reviewer: str) -> ScoredPair | None:
        """Hand this reviewer the most useful pair nobody holds (or the one they already hold)."""
        pairs = self.candidates()
        state = review.queue_state(self.engine, reviewer)
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
        return review.take_lease(self.engine, ref, reviewer, self.lease)

    def holds(self, reviewer: str, token: str) -> bool:
        return review.holds_lease(self.engine, reviewer, token)

    def held_by(self, reviewer: str) -> str | None:
        """The token of the pair this reviewer holds now, if any."""
        return review.leased_token(self.engine, reviewer)

    def holder(self, token: str) -> str | None:
        return review.lease_holder(self.engine, token)

    def release_all(self, reviewer: str) -> None:
        review.release_leases(self.engine, reviewer)

    # ------------------------------------------------------------------ decisions
    def decide(self, reviewer: str, pair: ScoredPair, decision: str,
               note: str | None = None, override: bool = False) -> int:
        """Store the decision, its audit row and the lease release in one transaction; refused
        with LeaseConflict, NotHeld or PairClosed (see review.record_decision). `override`: a
        supervisor settling a pair, which needs no lease of its own."""
        return review.record_decision(self.engine, pair.ref, reviewer, decision,
                                      pair.probability, pair.run_id, note, override)

    # ------------------------------------------------------------------ lookups for pages
    def find(self, token: str) -> ScoredPair | None:
        """The pair at a URL token: in the queue, reopened, or decided at some time."""
        self._run_pairs()
        found = self._by_url.get(token)
        if found is not None:
            return found
        ref, reopened = review.find_reviewed_pair(self.engine,
                                                  lambda r: self.url_token(r) == token)
        if ref is None:
            return None
        return replace(self.scored(ref), second_review=reopened)

    def scored(self, ref: PairRef) -> ScoredPair:
        """The pair's scores from the newest complete run that scored it (or none known).

        Remembered until the next run completes: the lookup scans the pairs of every run.
        """
        self._run_pairs()  # forgets remembered lookups when a new run has completed
        if ref.token not in self._scored:
            self._scored[ref.token] = self._scored_now(ref)
        return self._scored[ref.token]

    def _scored_now(self, ref: PairRef) -> ScoredPair:
        row = review.newest_scored(self.engine, ref)
        if row is None:
            return ScoredPair(ref, None, None, None, None, "", {})
        return _row_pair(row)

    def other_pairs(self, key: tuple[str, str], exclude: str, limit: int = 20) -> list[ScoredPair]:
        """Other scored pairs of the latest run that involve this record, best first."""
        run_id = self._run_pairs()[0]
        if run_id is None:
            return []
        rows = review.record_pairs(self.engine, run_id, key, limit + 1)
        return [p for p in map(_row_pair, rows) if p.ref.token != exclude][:limit]
