"""The review queue: which pairs need a reviewer, in which order, and who holds which pair.

The rows behind it (the run's kept queue and tally, leases, decisions, second reviews) and how
a pair is handed out atomically live in linkage/store/review.py and queue_rows.py; here the
queue asks the store for a few rows per request, never for the run's every pair. The store's
rows name a pair by `PairRef.token`, a plain digest of its record ids, which anyone who sees the
ids can compute: it is a key, not a capability. URLs carry `ReviewQueue.url_token` instead, an
HMAC of it under the server's secret, so a pair's address cannot be made up from ids; the
server keeps the map from URL tokens back to the run's pairs (about 150 bytes a pair).
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
from linkage.store.queue_rows import SECOND_REVIEW
from linkage.store.review import (
    LeaseConflict,
    NotHeld,
    PairClosed,
    PairRef,
    pair_ref,
)

LEASE_SECONDS = 600
CLAIM_BATCH, CLAIM_ROUNDS = 20, 10  # open pairs read per try, and tries, when others race
# The lease errors ReviewQueue raises and PairRef are the store's (linkage/store/review.py).
__all__ = ["LEASE_SECONDS", "LeaseConflict", "NotHeld", "PairClosed", "PairRef", "QueueCounts",
           "ReviewQueue", "ScoredPair", "pair_ref", "url_token"]


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


@dataclass(frozen=True)
class QueueCounts:
    """The queue page's numbers for one reviewer: every pair of the run in exactly one part,
    so the parts add up to ``pairs``. A pair this reviewer left as 不确定 (or decided before a
    second review was asked) waits for others: it is counted there, not as waiting for them
    and not as decided."""
    pairs: int
    waiting_for_you: int  # nobody holds them and you may be handed them
    yours_now: int  # the pair you hold (0 or 1)
    with_others: int  # held by other reviewers now
    left_for_others: int  # still waiting, but not for you: you have decided them once
    decided: int  # settled: a standing 同一人 / 不是同一人 and no second review open
    your_decisions: int  # every decision you have taken, 不确定 included (all runs)

    @property
    def parts(self) -> tuple[int, int, int, int, int]:
        return (self.waiting_for_you, self.yours_now, self.with_others, self.left_for_others,
                self.decided)


def _row_pair(row, run_id: str | None = None, second_review: bool = False) -> ScoredPair:
    """A pair from a scored_pairs row (explanation and weight included)."""
    try:
        explanation = json.loads(row.explanation) if row.explanation else {}
    except ValueError:
        explanation = {}
    return ScoredPair(pair_ref((row.source_l, row.record_l), (row.source_r, row.record_r)),
                      row.run_id if run_id is None else run_id, row.weight, row.probability,
                      row.band, row.reason or "", explanation, second_review)


def _queued_pair(row) -> ScoredPair:
    """A pair from a review_queue row: what the queue page lists and a claim hands out (the
    explanation is read when the pair's page is opened)."""
    return ScoredPair(pair_ref((row.source_l, row.record_l), (row.source_r, row.record_r)),
                      row.run_id, None, row.probability, row.band, row.reason or "", {},
                      row.tier == SECOND_REVIEW)


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
        self._run: str | None = None  # the run whose queue is built and mapped
        self._by_url: dict[str, str] = {}  # url token -> store token, for the run's queue
        self._lock = threading.Lock()

    def url_token(self, ref: PairRef | str) -> str:
        """The pair's address in URLs (a PairRef, or a store token as audit rows keep it)."""
        return url_token(self._secret, ref if isinstance(ref, str) else ref.token)

    # ------------------------------------------------------------------ what is in the queue
    def latest_run(self) -> str | None:
        return review.latest_complete_run(self.engine, self.job or None)

    def run(self) -> str | None:
        """The latest run, its kept queue built (once per run) and its URL tokens mapped."""
        run_id = self.latest_run()
        if run_id != self._run:
            with self._lock:
                if run_id != self._run:
                    by_url = {}
                    if run_id:
                        review.ensure_queue(self.engine, run_id)
                        by_url = {self.url_token(t): t
                                  for t in review.queue_tokens(self.engine, run_id)}
                    self._by_url, self._run = by_url, run_id
        return run_id

    warm = run  # at start-up, so the first reviewer does not wait for the queue's build

    def candidates(self) -> list[ScoredPair]:
        """Every pair of the run's queue that still waits for someone, in hand-out order
        (before per-reviewer filters). Reads the whole queue: for tests, not for pages."""
        run_id = self.run()
        if run_id is None:
            return []
        return [_queued_pair(r) for r in review.queue_pairs(self.engine, run_id) if r.waiting]

    def waiting(self, reviewer: str, limit: int = 15) -> list[ScoredPair]:
        """The next pairs this reviewer could be handed now (nobody else holds them), in
        queue order, at most ``limit``."""
        run_id = self.run()
        if run_id is None:
            return []
        return [_queued_pair(r) for r in review.open_pairs(self.engine, run_id, reviewer, limit)]

    def stats(self, reviewer: str) -> dict:
        run_id = self.run()
        counts = ({"pairs": 0, "waiting_for_you": 0, "in_review": 0, "decided": 0,
                   "your_decisions": 0} if run_id is None
                  else review.queue_counts(self.engine, run_id, reviewer))
        return {"run_id": run_id, **counts}

    def counts(self, reviewer: str) -> QueueCounts:
        """:meth:`stats` cut into disjoint parts (see QueueCounts), from the same numbers.

        The store counts the reviewer's own held pair among those waiting for them and among
        those in review; here it is counted once, as theirs. The pairs waiting only for others
        are what is left when the parts the store counts directly are taken away.
        """
        s = self.stats(reviewer)
        held = self.held_by(reviewer) if s["run_id"] else None
        row = review.queue_row(self.engine, s["run_id"], held) if held else None
        yours = int(row is not None and bool(row.waiting))
        waiting = max(s["waiting_for_you"] - yours, 0)
        with_others = max(s["in_review"] - int(row is not None), 0)
        left = max(s["pairs"] - s["decided"] - waiting - yours - with_others, 0)
        return QueueCounts(s["pairs"], waiting, yours, with_others, left, s["decided"],
                           s["your_decisions"])

    # ------------------------------------------------------------------ leases
    def claim_next(self, reviewer: str) -> ScoredPair | None:
        """Hand this reviewer the most useful pair nobody holds (or the one they already hold)."""
        run_id = self.run()
        if run_id is None:
            return None
        held = self.held_by(reviewer)
        if held is not None:
            row = review.queue_row(self.engine, run_id, held)
            if row is not None and row.waiting:
                pair = _queued_pair(row)
                if self._take(pair.ref, reviewer):
                    return pair
        self.release_all(reviewer)
        for _ in range(CLAIM_ROUNDS):
            rows = review.open_pairs(self.engine, run_id, reviewer, CLAIM_BATCH, free_only=True)
            for row in rows:
                pair = _queued_pair(row)
                if self._take(pair.ref, reviewer):
                    return pair
            if len(rows) < CLAIM_BATCH:
                return None  # none is left
        return None  # each pair looked at was taken by others meanwhile: ask again later

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
        run_id = self.run()
        stored = self._by_url.get(token)
        if stored is not None:
            row = review.queue_row(self.engine, run_id, stored)
            if row is not None:
                ref = pair_ref((row.source_l, row.record_l), (row.source_r, row.record_r))
                scored = review.run_pair(self.engine, run_id, ref)
                reopened = row.tier == SECOND_REVIEW
                if scored is not None:
                    return _row_pair(scored, run_id, reopened)
                return replace(self.scored(ref), second_review=reopened)
        # Not in the run's queue: a pair decided before (the supervisor's log links to it).
        ref, reopened = review.find_reviewed_pair(self.engine,
                                                  lambda r: self.url_token(r) == token)
        if ref is None:
            return None
        return replace(self.scored(ref), second_review=reopened)

    def scored(self, ref: PairRef) -> ScoredPair:
        """The pair's scores from the newest complete run that scored it (or none known)."""
        row = review.newest_scored(self.engine, ref)
        if row is None:
            return ScoredPair(ref, None, None, None, None, "", {})
        return _row_pair(row)

    def other_pairs(self, key: tuple[str, str], exclude: str, limit: int = 20) -> list[ScoredPair]:
        """Other scored pairs of the latest run that involve this record, best first."""
        run_id = self.run()
        if run_id is None:
            return []
        rows = review.record_pairs(self.engine, run_id, key, limit + 1)
        return [p for p in map(_row_pair, rows) if p.ref.token != exclude][:limit]
