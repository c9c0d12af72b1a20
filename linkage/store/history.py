"""The rows an entity id's history is read from (linkage.jobs.history): the job's complete runs,
the id's members in each, where each of those records sat in every run, and the reviewers'
decisions. Only the store package touches the store's tables. Membership rows are versions
(linkage.store.versions), expanded here to the runs each was valid in."""
from __future__ import annotations

import json
from typing import NamedTuple

import numpy as np
import pandas as pd
import sqlalchemy as sa

from linkage.store.tables import decisions, entity_members, runs

IN_CHUNK = 400  # (source, record_id) pairs per IN list


class EntityTrail(NamedTuple):
    runs: list  # rows: run_id, started_at, finished_at, summary; oldest first
    own: pd.DataFrame  # run_id, source, record_id: the id's members per run
    where: pd.DataFrame  # run_id, source, record_id, entity_id: those records in every run
    decisions: pd.DataFrame  # sl, rl, sr, rr, decision, reviewer, decided_at


def entity_trail(engine: sa.Engine, job: str, entity_id: str) -> EntityTrail:
    with engine.connect() as conn:
        done = conn.execute(sa.select(runs.c.run_id, runs.c.started_at, runs.c.finished_at,
                                      runs.c.summary)
                            .where(runs.c.job == job, runs.c.status == "complete")
                            .order_by(runs.c.finished_at, runs.c.run_id)).all()
        done = [r for r in done if not _pruned(r.summary)]  # their state is gone (keep_runs)
        run_ids = [r.run_id for r in done]
        of_job = sa.select(runs.c.run_id).where(runs.c.job == job, runs.c.status == "complete")
        versions = pd.DataFrame(conn.execute(
            sa.select(entity_members.c.run_id, entity_members.c.valid_to,
                      entity_members.c.source, entity_members.c.record_id)
            .where(entity_members.c.entity_id == entity_id,
                   entity_members.c.run_id.in_(of_job))).all(),
            columns=["run_id", "valid_to", "source", "record_id"])
        own = per_run(versions, run_ids)[["run_id", "source", "record_id"]]
        keys = list(own[["source", "record_id"]].drop_duplicates()
                    .itertuples(index=False, name=None))
        parts = [pd.DataFrame(conn.execute(
            sa.select(entity_members.c.run_id, entity_members.c.valid_to,
                      entity_members.c.source, entity_members.c.record_id,
                      entity_members.c.entity_id)
            .where(entity_members.c.run_id.in_(of_job),
                   sa.tuple_(entity_members.c.source, entity_members.c.record_id).in_(
                       keys[start:start + IN_CHUNK]))).all(),
            columns=["run_id", "valid_to", "source", "record_id", "entity_id"])
            for start in range(0, len(keys), IN_CHUNK)]
        where = per_run(pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
            columns=["run_id", "valid_to", "source", "record_id", "entity_id"]), run_ids)
        where = where[["run_id", "source", "record_id", "entity_id"]]
        decided = pd.DataFrame(conn.execute(sa.select(
            decisions.c.source_l, decisions.c.record_l, decisions.c.source_r, decisions.c.record_r,
            decisions.c.decision, decisions.c.reviewer, decisions.c.decided_at)).all(),
            columns=["sl", "rl", "sr", "rr", "decision", "reviewer", "decided_at"])
    return EntityTrail(done, own, where, decided)


def _pruned(summary: str | None) -> bool:
    from linkage.store.database import PRUNED

    return bool(summary and PRUNED in summary and json.loads(summary).get(PRUNED))


def per_run(rows: pd.DataFrame, run_ids: list[str]) -> pd.DataFrame:
    """Versions (``run_id`` the run that wrote each, ``valid_to`` the run that closed it)
    expanded to one row per run each was valid in, ``run_ids`` being the job's complete runs
    in order (linkage.store.versions)."""
    position = {run: i for i, run in enumerate(run_ids)}
    start = rows["run_id"].map(position)
    end = rows["valid_to"].map(position).where(rows["valid_to"].notna(), len(run_ids))
    keep = start.notna().to_numpy() & end.notna().to_numpy()
    rows, start, end = rows[keep], start[keep].astype(int), end[keep].astype(int)
    spans = (end - start).clip(lower=0).to_numpy()
    at = np.repeat(np.arange(len(rows)), spans)
    offset = np.arange(len(at)) - np.repeat(np.cumsum(spans) - spans, spans)
    out = rows.iloc[at].reset_index(drop=True)
    out["run_id"] = np.asarray(run_ids, dtype=object)[start.to_numpy()[at] + offset] \
        if len(at) else pd.Series([], dtype=object)
    return out
