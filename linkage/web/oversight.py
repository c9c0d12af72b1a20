"""What supervisors do with decisions: read the log, reverse one, ask for a second review, and
measure how often each reviewer agrees with the others on pairs two or more have decided.

Agreement is counted on match / non-match decisions that were not reversed, one (the latest)
per reviewer and pair; a reviewer agrees on a pair when every other reviewer of it decided the
same. 'unsure' is a skip, not a judgement, so it is left out.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from linkage.store import review
from linkage.store.review import STICKY, PairRef, pair_ref


@dataclass(frozen=True)
class LogRow:
    decision_id: int
    ref: PairRef
    decision: str
    reviewer: str
    decided_at: datetime
    score: float | None
    note: str | None
    active: bool
    reversed_by: str | None
    reopened: bool  # an open second-review request on the pair

    @property
    def can_reopen(self) -> bool:
        return self.active and self.decision in STICKY and not self.reopened


@dataclass(frozen=True)
class Agreement:
    reviewer: str
    pairs: int  # double-reviewed pairs this reviewer decided
    agreed: int

    @property
    def rate(self) -> float | None:
        return self.agreed / self.pairs if self.pairs else None


def _log_row(r: dict) -> LogRow:
    return LogRow(r["decision_id"], r["ref"], r["decision"], r["reviewer"], r["decided_at"],
                  r["score"], r["note"], bool(r["active"]), r["reversed_by"], r["reopened"])


def decision_log(engine: sa.Engine, reviewer: str | None = None, limit: int = 200,
                 offset: int = 0) -> list[LogRow]:
    """Decisions newest first, optionally one reviewer's."""
    return [_log_row(r) for r in review.decision_log(engine, reviewer, limit, offset)]


def pair_history(engine: sa.Engine, ref: PairRef) -> list[LogRow]:
    """Every decision ever taken on one pair, oldest first."""
    return [_log_row(r) for r in review.pair_decisions(engine, ref)]


def reviewers(engine: sa.Engine) -> list[str]:
    return review.reviewer_names(engine)


def reverse(engine: sa.Engine, decision_id: int, actor: str, note: str | None = None) -> bool:
    """Deactivate a decision and mark it reversed (audited); False if unknown or done before.

    The pair returns to the queue for reviewers other than those who decided it, unless another
    active decision still covers it.
    """
    return review.reverse_decision(engine, decision_id, actor, note)


def request_second_review(engine: sa.Engine, decision_id: int, actor: str) -> bool:
    """Send a decided pair back to the queue for a reviewer who has not decided it yet.

    The first decision stays active (the next run still applies it) until a second reviewer
    decides; False when the decision is not an active match / non-match or a request is open.
    """
    return review.request_second_review(engine, decision_id, actor)


def agreement(engine: sa.Engine) -> tuple[list[Agreement], list[dict]]:
    """Per-reviewer agreement on double-reviewed pairs, and the pairs where reviewers differ."""
    latest: dict[PairRef, dict[str, str]] = defaultdict(dict)
    for sl, rl, sr, rr, who, what in review.standing_judgements(engine):
        latest[pair_ref((sl, rl), (sr, rr))][who] = what  # later rows overwrite earlier
    pairs: dict[str, int] = defaultdict(int)
    agreed: dict[str, int] = defaultdict(int)
    disagreements = []
    for ref, by in latest.items():
        if len(by) < 2:
            continue
        for who, what in by.items():
            pairs[who] += 1
            agreed[who] += all(other == what for w, other in by.items() if w != who)
        if len(set(by.values())) > 1:
            disagreements.append({"ref": ref, "decisions": dict(sorted(by.items()))})
    table = [Agreement(who, pairs[who], agreed[who]) for who in sorted(pairs)]
    return table, disagreements
