"""Entity membership and golden records as versioned rows, so a run writes only what changed.

A row of ``entity_members`` or ``golden`` is a version: written by the run in its ``run_id``
column (valid from that run) and, once a later run no longer has it, closed by that run in
``valid_to`` (valid up to, not including, it). A run's membership is the versions valid in it:
written by a complete run of its job no later than it, and not closed by one of those. Runs are
ordered as everywhere in the store, by (finished_at, run_id); a version is written and closed
only in the transaction that completes its run, so both ends always name complete runs.

At a million persons a run used to write 1.8M membership rows and 1M golden rows whatever it
changed (about 40 s); a run or `linkage add` that moves a few records now writes a few rows.
The diff itself is pure (``diff_members``, ``diff_golden``) and runs on frames the caller
already holds where it can (the previous run's membership, which stable entity ids read
anyway).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import sqlalchemy as sa

from linkage.store.tables import runs

# Past this share of the open rows changing (and this many), closing them one by one costs
# more than closing all of the job's open rows in one statement and writing the state whole.
REWRITE_SHARE = 0.3
REWRITE_MIN = 10_000


@dataclass
class VersionDelta:
    """What storing a run changes in one versioned table, against ``base_run`` (the job's
    latest complete run when the delta was made; None for a job's first run)."""

    base_run: str | None
    new: pd.DataFrame  # rows to write, in the table's columns without run_id / valid_to
    closed: pd.DataFrame  # keys of the open versions this run ends
    rewrite: bool = False  # close every open row of the job and write ``new`` as the state

    @property
    def counts(self) -> dict[str, int]:
        return {"written": len(self.new), "closed": len(self.closed), "rewrite": self.rewrite}


def ordered_before(run_id: str, job: str | None = None) -> sa.Select:
    """The complete runs of ``run_id``'s job up to and including it, as a subquery of ids."""
    this = sa.select(runs.c.job, runs.c.finished_at).where(runs.c.run_id == run_id).subquery()
    return (sa.select(runs.c.run_id)
            .where(runs.c.status == "complete",
                   runs.c.job == sa.select(this.c.job).scalar_subquery(),
                   sa.tuple_(runs.c.finished_at, runs.c.run_id)
                   <= sa.tuple_(sa.select(this.c.finished_at).scalar_subquery(),
                                sa.literal(run_id, sa.String(40)))))


def completed(job: str) -> sa.Select:
    """Every complete run of the job, as a subquery of ids."""
    return sa.select(runs.c.run_id).where(runs.c.status == "complete", runs.c.job == job)


def valid_in(table: sa.Table, run_id: str) -> sa.ColumnElement[bool]:
    """The condition on ``table``'s versions that holds for those valid in the run."""
    upto = ordered_before(run_id)
    return table.c.run_id.in_(upto) & (table.c.valid_to.is_(None) | table.c.valid_to.not_in(upto))


def open_in(table: sa.Table, job: str) -> sa.ColumnElement[bool]:
    """The job's open versions: valid in its latest complete run (and in the one being stored)."""
    return table.c.run_id.in_(completed(job)) & table.c.valid_to.is_(None)


def _codes(*columns: pd.Series) -> np.ndarray:
    """One integer per distinct tuple of the columns' values (read as text), over both halves
    of the concatenated series: joining by integers, because joining a million rows by their
    text took seconds. The unit separator occurs in none of the values."""
    text = columns[0].astype(str)
    for column in columns[1:]:
        text = text + "\x1f" + column.astype(str)
    return pd.factorize(text.to_numpy())[0]


def _changed(old_key: np.ndarray, old_value: np.ndarray, new_key: np.ndarray,
             new_value: np.ndarray, old_known: np.ndarray | bool = True,
             ) -> tuple[np.ndarray, np.ndarray]:
    """For keys unique on each side: which new rows are not an old row (key and value), and
    which old rows are not a new row; an old value not ``old_known`` equals nothing."""
    size = int(max(old_key.max(initial=-1), new_key.max(initial=-1))) + 1
    had, had_any = np.zeros(size, dtype=np.int64), np.zeros(size, dtype=bool)
    had[old_key], had_any[old_key] = old_value, old_known
    has, has_any = np.zeros(size, dtype=np.int64), np.zeros(size, dtype=bool)
    has[new_key], has_any[new_key] = new_value, True
    return (~had_any[new_key] | (had[new_key] != new_value),
            ~(has_any[old_key] & old_known) | (has[old_key] != old_value))


def diff_members(open_rows: pd.DataFrame, members: pd.DataFrame,
                 base_run: str | None) -> VersionDelta:
    """The membership versions a run writes and closes: a record whose entity id changed, a
    new record, a record gone. ``open_rows`` and ``members``: source, record_id, entity_id,
    one row per record on each side."""
    columns = ["source", "record_id", "entity_id"]
    members = members[columns]
    if open_rows.empty:
        return VersionDelta(base_run, members.reset_index(drop=True), open_rows[columns])
    both = pd.concat([open_rows[columns], members], ignore_index=True)
    record = _codes(both["source"], both["record_id"])
    entity = _codes(both["entity_id"])
    n = len(open_rows)
    is_new, is_closed = _changed(record[:n], entity[:n], record[n:], entity[n:])
    new = members[is_new].reset_index(drop=True)
    closed = open_rows.loc[is_closed, columns].reset_index(drop=True)
    if _rewrite(len(closed), len(open_rows)):
        return VersionDelta(base_run, members.reset_index(drop=True), closed, rewrite=True)
    return VersionDelta(base_run, new, closed)


def _rewrite(closed: int, open_rows: int) -> bool:
    return closed > REWRITE_MIN and closed > REWRITE_SHARE * open_rows


def digest(records: pd.Series) -> np.ndarray:
    """A 64-bit hash of each golden row's JSON text (pandas' vectorised hash, as a signed
    integer for the store): what tells an unchanged golden record. One entity's versions are
    compared with each other only, so a collision would need two states of one person."""
    return pd.util.hash_pandas_object(records.astype(str), index=False).to_numpy().view(np.int64)


def diff_golden(open_digests: pd.DataFrame, rows: pd.DataFrame,
                base_run: str | None) -> VersionDelta:
    """The golden versions a run writes and closes. ``open_digests``: entity_id, digest of the
    open versions; ``rows``: the run's golden rows with their ``digest`` (one row per entity
    on each side)."""
    if open_digests.empty:
        return VersionDelta(base_run, rows.reset_index(drop=True), open_digests[["entity_id"]])
    entity = _codes(pd.concat([open_digests["entity_id"], rows["entity_id"]],
                              ignore_index=True))
    n = len(open_digests)
    digest = open_digests["digest"]
    known = digest.notna().to_numpy()  # a store made before digests has none: rewritten
    is_new, is_closed = _changed(entity[:n], digest.where(known, 0).to_numpy(dtype=np.int64),
                                 entity[n:], rows["digest"].to_numpy(dtype=np.int64), known)
    new = rows[is_new].reset_index(drop=True)
    closed = open_digests.loc[is_closed, ["entity_id"]].reset_index(drop=True)
    if _rewrite(len(closed), len(open_digests)):
        return VersionDelta(base_run, rows.reset_index(drop=True), closed, rewrite=True)
    return VersionDelta(base_run, new, closed)
