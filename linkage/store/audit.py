"""The audit trail: who did what to which pair (or household correspondence), and when;
append-only.

Rows are written inside the same transaction as the act they record (a decision, a reversal),
so there is never a decision without its audit row nor an audit row for a decision that failed.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone

import sqlalchemy as sa

from linkage.store.tables import audit_log

ACTIONS = ("login", "login_failed", "logout", "view_pair", "decide", "reveal_id",
           "reverse_decision", "request_second_review", "api_checks", "account_change",
           "token_change", "view_correspondence", "decide_correspondence")


@dataclass(frozen=True)
class AuditEntry:
    audit_id: int
    at: datetime
    actor: str
    action: str
    pair_token: str | None
    left: str
    right: str
    decision_id: int | None
    detail: dict


def record(conn: sa.Connection, actor: str, action: str, pair=None,
           decision_id: int | None = None, detail: dict | None = None) -> None:
    """Append one row; `pair` is a review.PairRef (or None). Detail must never hold an ID number."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    values = {"at": datetime.now(timezone.utc), "actor": actor[:100], "action": action,
              "decision_id": decision_id,
              "detail": json.dumps(detail, ensure_ascii=False) if detail else None}
    if pair is not None:
        (sl, rl), (sr, rr) = pair.left, pair.right
        values.update(pair_token=pair.token, source_l=sl, record_l=rl, source_r=sr, record_r=rr)
    conn.execute(audit_log.insert().values(**values))


def append(engine: sa.Engine, actor: str, action: str, pair=None,
           decision_id: int | None = None, detail: dict | None = None) -> None:
    """Append one row in a transaction of its own (an act that writes nothing else)."""
    with engine.begin() as conn:
        record(conn, actor, action, pair, decision_id, detail)


def append_many(engine: sa.Engine, rows: Iterable[tuple[str, str, dict]]) -> None:
    """Append (actor, action, detail) rows in one transaction: all of them or none."""
    with engine.begin() as conn:
        for actor, action, detail in rows:
            record(conn, actor, action, detail=detail)


def entries(engine: sa.Engine, actor: str | None = None, action: str | None = None,
            limit: int = 500) -> list[AuditEntry]:
    """Newest first, optionally for one actor and/or one action."""
    q = sa.select(audit_log).order_by(audit_log.c.audit_id.desc()).limit(limit)
    if actor:
        q = q.where(audit_log.c.actor == actor)
    if action:
        q = q.where(audit_log.c.action == action)
    with engine.connect() as conn:
        rows = conn.execute(q).mappings().all()
    return [AuditEntry(r["audit_id"], r["at"], r["actor"], r["action"], r["pair_token"],
                       f"{r['source_l']}:{r['record_l']}" if r["source_l"] else "",
                       f"{r['source_r']}:{r['record_r']}" if r["source_r"] else "",
                       r["decision_id"], json.loads(r["detail"]) if r["detail"] else {})
            for r in rows]
