"""Household correspondences in the store: each run's (written by Store.finish_run with the
rest of the run) and reviewers' decisions on them, which the next full run applies.

A correspondence is named by its two households as the household step labels them,
'source:household_id' (linkage.core.household): an insurance household and a registry
household. Like pair decisions, correspondence decisions outlast runs; the latest active
同一户 (same) / 不是同一户 (different) on a household pair stands, and 不确定 (unsure) never
replaces one (a second reviewer's skip must not undo the first's decision). Every decision
is stored with its audit row in one transaction.
"""
from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pandas as pd
import sqlalchemy as sa

from linkage.store import audit
from linkage.store.tables import (
    CORRESPONDENCE_DECISIONS,
    correspondence_decisions,
    household_correspondences,
)

STANDING = ("same", "different")  # the decisions the next run applies
# The review list's order: those that need a look, then 1:1 with members left over, then the
# 1:1 whose every member agrees.
LOOK, LEFT_OVER, AGREED = 0, 1, 2
TIERS = {"look": (LOOK,), "left_over": (LEFT_OVER,), "agreed": (AGREED,),
         "all": (LOOK, LEFT_OVER, AGREED)}
COLUMNS = ["job", "insurance_household", "registry_household", "kind", "tier", "anchors",
           "members_insurance", "members_registry", "members_agreeing", "left_insurance",
           "left_registry", "kept", "decision", "assignment"]


def rows_of(correspondences: pd.DataFrame | None, job: str) -> pd.DataFrame:
    """The household step's correspondences (linkage.core.household's frame) as the table's
    rows, without run_id; empty where the step was off."""
    if correspondences is None or "kind" not in correspondences or correspondences.empty:
        return pd.DataFrame(columns=COLUMNS)
    c = correspondences
    size_i = c["members_insurance"].to_numpy(dtype=np.int64)
    size_r = c["members_registry"].to_numpy(dtype=np.int64)
    agree = c["members_agreeing"].to_numpy(dtype=np.int64)
    kind = c["kind"].astype(str).to_numpy()
    tier = np.where(kind != "1:1", LOOK,
                    np.where(agree < np.maximum(size_i, size_r), LEFT_OVER, AGREED))
    kept = (c["kept"].to_numpy(dtype=bool) if "kept" in c
            else ~np.isin(kind, ["dropped", "rejected"]))
    return pd.DataFrame({
        "job": job, "insurance_household": c["insurance_household"].astype(str).to_numpy(),
        "registry_household": c["registry_household"].astype(str).to_numpy(), "kind": kind,
        "tier": tier.astype(int), "anchors": c["anchors"].to_numpy(dtype=np.int64),
        "members_insurance": size_i, "members_registry": size_r, "members_agreeing": agree,
        "left_insurance": np.maximum(size_i - agree, 0),
        "left_registry": np.maximum(size_r - agree, 0), "kept": kept,
        "decision": (c["decision"].fillna("").astype(str).to_numpy() if "decision" in c
                     else ""),
        "assignment": (c["assignment"].to_numpy(dtype=object) if "assignment" in c else "[]"),
    })[COLUMNS]


def with_base(conn: sa.Connection, base_run: str, rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` (a `linkage add` run's, for the households it touched) and the base run's
    correspondences of every other household, so the new run holds all of them."""
    base = pd.DataFrame(conn.execute(
        sa.select(*[household_correspondences.c[c] for c in COLUMNS])
        .where(household_correspondences.c.run_id == base_run)).all(), columns=COLUMNS)
    untouched = (~base["insurance_household"].isin(rows["insurance_household"])
                 & ~base["registry_household"].isin(rows["registry_household"]))
    return pd.concat([base[untouched], rows], ignore_index=True)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _pair(table, insurance: str, registry: str):
    return (table.c.insurance_household == insurance) & (table.c.registry_household == registry)


# ---------------------------------------------------------------------- a run's correspondences
def counts(engine: sa.Engine, run_id: str) -> dict:
    """The run's correspondences per kind and per tier (the list page's numbers)."""
    t = household_correspondences
    with engine.connect() as conn:
        kinds = dict(conn.execute(sa.select(t.c.kind, sa.func.count()).where(
            t.c.run_id == run_id).group_by(t.c.kind)).all())
        tiers = dict(conn.execute(sa.select(t.c.tier, sa.func.count()).where(
            t.c.run_id == run_id).group_by(t.c.tier)).all())
    by_tier = {name: sum(int(tiers.get(k, 0)) for k in ks) for name, ks in TIERS.items()}
    return {"kinds": {str(k): int(v) for k, v in sorted(kinds.items())}, "tiers": by_tier}


def listing(engine: sa.Engine, run_id: str, show: str = "look", limit: int = 50,
            offset: int = 0) -> list:
    """A page of the run's correspondences of the tiers ``show`` names (TIERS), in review order,
    as rows with the table's columns."""
    t = household_correspondences
    q = (sa.select(t).where(t.c.run_id == run_id, t.c.tier.in_(TIERS.get(show, TIERS["look"])))
         .order_by(t.c.tier, t.c.insurance_household, t.c.registry_household)
         .limit(limit).offset(offset))
    with engine.connect() as conn:
        return conn.execute(q).all()


def keys(engine: sa.Engine, run_id: str) -> list[tuple[str, str]]:
    """Every correspondence of the run as (insurance household, registry household)."""
    t = household_correspondences
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(
            t.c.insurance_household, t.c.registry_household).where(t.c.run_id == run_id)).all()]


def households_to_show(engine: sa.Engine, run_id: str, tiers=(LOOK, LEFT_OVER)) -> set[str]:
    """The household labels of the run's correspondences a reviewer should look at (the review
    app reads those households' records)."""
    t = household_correspondences
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t.c.insurance_household, t.c.registry_household).where(
            t.c.run_id == run_id, t.c.tier.in_(tiers))).all()
    return {label for row in rows for label in row}


def get(engine: sa.Engine, run_id: str, insurance: str, registry: str):
    """One correspondence of the run (a row with the table's columns), or None."""
    t = household_correspondences
    with engine.connect() as conn:
        return conn.execute(sa.select(t).where(t.c.run_id == run_id,
                                               _pair(t, insurance, registry))).first()


# ---------------------------------------------------------------------- decisions
def decide(engine: sa.Engine, insurance: str, registry: str, reviewer: str, decision: str,
           run_id: str | None, note: str | None = None) -> int:
    """Store a reviewer's decision on a correspondence with its audit row, in one transaction.
    A same / different decision replaces the household pair's standing one; 'unsure' is kept,
    inactive, when one stands."""
    if decision not in CORRESPONDENCE_DECISIONS:
        raise ValueError(f"decision must be one of {CORRESPONDENCE_DECISIONS}, got {decision!r}")
    d = correspondence_decisions
    with engine.begin() as conn:
        standing = conn.execute(sa.select(d.c.decision_id).where(
            _pair(d, insurance, registry), d.c.active, d.c.decision.in_(STANDING))).first()
        active = not (decision == "unsure" and standing is not None)
        if active:
            conn.execute(d.update().where(_pair(d, insurance, registry), d.c.active)
                         .values(active=False))
        decision_id = int(conn.execute(d.insert().values(
            insurance_household=insurance, registry_household=registry, decision=decision,
            reviewer=reviewer, decided_at=_now(), run_id=run_id, note=note or None,
            active=active)).inserted_primary_key[0])
        audit.record(conn, reviewer, "decide_correspondence", decision_id=decision_id, detail={
            "insurance_household": insurance, "registry_household": registry,
            "decision": decision, "active": active, "run_id": run_id})
    return decision_id


def standing(engine: sa.Engine) -> pd.DataFrame:
    """The standing same / different decisions (insurance_household, registry_household,
    decision): what the household step of the next run applies."""
    d = correspondence_decisions
    with engine.connect() as conn:
        rows = conn.execute(sa.select(d.c.insurance_household, d.c.registry_household,
                                      d.c.decision)
                            .where(d.c.active, d.c.decision.in_(STANDING))
                            .order_by(d.c.decision_id)).all()
    return pd.DataFrame(rows, columns=["insurance_household", "registry_household", "decision"])


def history(engine: sa.Engine, insurance: str, registry: str) -> list:
    """Every decision on one correspondence, oldest first (rows with the table's columns)."""
    d = correspondence_decisions
    with engine.connect() as conn:
        return conn.execute(sa.select(d).where(_pair(d, insurance, registry))
                            .order_by(d.c.decision_id)).all()


def standing_of(engine: sa.Engine, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """The active decision (any, 'unsure' too) of each of these household pairs that has one."""
    if not pairs:
        return {}
    d = correspondence_decisions
    insurance = sorted({p[0] for p in pairs})
    with engine.connect() as conn:
        rows = conn.execute(sa.select(d.c.insurance_household, d.c.registry_household,
                                      d.c.decision).where(
            d.c.active, d.c.insurance_household.in_(insurance))
            .order_by(d.c.decision_id)).all()
    wanted = set(pairs)
    return {(a, b): dec for a, b, dec in rows if (a, b) in wanted}
