"""What supervisors do with decisions: read the log, reverse one, ask for a second review, and
measure how often each reviewer agrees with the others on pairs two or more have decided.

Agreement is counted on match / non-match decisions that were not reversed, one (the latest)
per reviewer and pair; a reviewer agrees on a pair when every other reviewer of it decided the
same. 'unsure' is a skip, not a judgement, so it is left out.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone

import sqlalchemy as sa

from linkage.store import decision_reversals, decisions, pair_condition, second_reviews
from linkage.store import audit
from linkage.web.queue import STICKY, PairRef, pair_ref


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


def _log_query():
    return (sa.select(decisions, decision_reversals.c.reversed_by)
            .join(decision_reversals, decision_reversals.c.decision_id == decisions.c.decision_id,
                  isouter=True))


def _rows(conn, query) -> list[LogRow]:
    reopened = {pair_ref((r[0], r[1]), (r[2], r[3])).token for r in conn.execute(
        sa.select(second_reviews.c.source_l, second_reviews.c.record_l, second_reviews.c.source_r,
                  second_reviews.c.record_r).where(second_reviews.c.closed_at.is_(None))).all()}
    out = []
    for r in conn.execute(query).mappings().all():
        ref = pair_ref((r["source_l"], r["record_l"]), (r["source_r"], r["record_r"]))
        out.append(LogRow(r["decision_id"], ref, r["decision"], r["reviewer"], r["decided_at"],
                          r["score"], r["note"], bool(r["active"]), r["reversed_by"],
                          ref.token in reopened))
    return out


def decision_log(engine: sa.Engine, reviewer: str | None = None, limit: int = 200,
                 offset: int = 0) -> list[LogRow]:
    """Decisions newest first, optionally one reviewer's."""
    q = _log_query().order_by(decisions.c.decision_id.desc()).limit(limit).offset(offset)
    if reviewer:
        q = q.where(decisions.c.reviewer == reviewer)
    with engine.connect() as conn:
        return _rows(conn, q)


def pair_history(engine: sa.Engine, ref: PairRef) -> list[LogRow]:
    """Every decision ever taken on one pair, oldest first."""
    q = (_log_query().where(pair_condition(decisions, ref.left, ref.right))
         .order_by(decisions.c.decision_id))
    with engine.connect() as conn:
        return _rows(conn, q)


def reviewers(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(decisions.c.reviewer).distinct()
                                 .order_by(decisions.c.reviewer)).scalars())


def _decision(conn, decision_id: int):
    return conn.execute(sa.select(decisions).where(decisions.c.decision_id == decision_id)
                        ).mappings().first()


def reverse(engine: sa.Engine, decision_id: int, actor: str, note: str | None = None) -> bool:
    """Deactivate a decision and mark it reversed (audited); False if unknown or done before.

    The pair returns to the queue for reviewers other than those who decided it, unless another
    active decision still covers it.
    """
    now = datetime.now(timezone.utc)
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
            audit.record(conn, actor, "reverse_decision", ref, decision_id,
                         {"decision": row["decision"], "reviewer": row["reviewer"],
                          "was_active": bool(row["active"]), "note": note or ""})
        return True
    except (sa.exc.IntegrityError, LookupError):
        return False


def request_second_review(engine: sa.Engine, decision_id: int, actor: str) -> bool:
    """Send a decided pair back to the queue for a reviewer who has not decided it yet.

    The first decision stays active (the next run still applies it) until a second reviewer
    decides; False when the decision is not an active match / non-match or a request is open.
    """
    now = datetime.now(timezone.utc)
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
        audit.record(conn, actor, "request_second_review", ref, decision_id,
                     {"first_reviewer": row["reviewer"], "decision": row["decision"]})
    return True


def agreement(engine: sa.Engine) -> tuple[list[Agreement], list[dict]]:
    """Per-reviewer agreement on double-reviewed pairs, and the pairs where reviewers differ."""
    q = (sa.select(decisions.c.source_l, decisions.c.record_l, decisions.c.source_r,
                   decisions.c.record_r, decisions.c.reviewer, decisions.c.decision)
         .where(decisions.c.decision.in_(STICKY),
                decisions.c.decision_id.not_in(sa.select(decision_reversals.c.decision_id)))
         .order_by(decisions.c.decision_id))
    latest: dict[PairRef, dict[str, str]] = defaultdict(dict)
    with engine.connect() as conn:
        for sl, rl, sr, rr, who, what in conn.execute(q).all():
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
