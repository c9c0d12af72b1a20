"""The rows an entity id's history is read from (linkage.jobs.history): the job's complete runs,
the id's members in each, where each of those records sat in every run, and the reviewers'
decisions. Only the store package touches the store's tables."""
from __future__ import annotations

from typing import NamedTuple

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
        run_ids = [r.run_id for r in done]
        own = pd.DataFrame(conn.execute(
            sa.select(entity_members.c.run_id, entity_members.c.source,
                      entity_members.c.record_id)
            .where(entity_members.c.entity_id == entity_id,
                   entity_members.c.run_id.in_(run_ids))).all(),
            columns=["run_id", "source", "record_id"])
        keys = list(own[["source", "record_id"]].drop_duplicates()
                    .itertuples(index=False, name=None))
        parts = [pd.DataFrame(conn.execute(
            sa.select(entity_members.c.run_id, entity_members.c.source,
                      entity_members.c.record_id, entity_members.c.entity_id)
            .where(entity_members.c.run_id.in_(run_ids),
                   sa.tuple_(entity_members.c.source, entity_members.c.record_id).in_(
                       keys[start:start + IN_CHUNK]))).all(),
            columns=["run_id", "source", "record_id", "entity_id"])
            for start in range(0, len(keys), IN_CHUNK)]
        where = (pd.concat(parts, ignore_index=True) if parts else
                 pd.DataFrame(columns=["run_id", "source", "record_id", "entity_id"]))
        decided = pd.DataFrame(conn.execute(sa.select(
            decisions.c.source_l, decisions.c.record_l, decisions.c.source_r, decisions.c.record_r,
            decisions.c.decision, decisions.c.reviewer, decisions.c.decided_at)).all(),
            columns=["sl", "rl", "sr", "rr", "decision", "reviewer", "decided_at"])
    return EntityTrail(done, own, where, decided)
