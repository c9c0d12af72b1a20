"""What a run changed against the previous complete run: entities created, merged, split and
retired, records that moved, and the card roster's rows added and removed.

The data team reads it in the report before the office files go out ("why does the roster have
212 fewer rows today?"), and the card office needs to know when a person's entity was merged
into another. Entity ids are stable across runs (linkage.core.cluster.stable_entity_ids): an id
keeps its meaning, so comparing two runs is comparing which records each id holds.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

EXAMPLES = 10  # ids listed per kind of change in the report


@dataclass
class RunChanges:
    previous_run: str
    entities_before: int
    entities_after: int
    created: int  # ids this run has and the previous did not (new people, or split-off parts)
    retired: int  # ids the previous run had and this one does not (merged away, or withdrawn)
    merged: int  # entities of this run holding records of two or more previous entities
    split: int  # previous entities whose records now sit in two or more entities
    moved_records: int  # records (in both runs) whose entity id changed
    new_records: int  # records this run has and the previous did not
    removed_records: int  # records of the previous run this one no longer has
    roster_added: int  # VERIFIED now, not VERIFIED (or absent) before
    roster_removed: int  # VERIFIED before, not VERIFIED (or absent) now
    merges: list[dict] = field(default_factory=list)  # {"into": id, "from": [ids]}, first few
    splits: list[dict] = field(default_factory=list)  # {"from": id, "into": [ids]}, first few

    def to_dict(self) -> dict:
        return asdict(self)


def compare_runs(previous_run: str, before: pd.DataFrame, after: pd.DataFrame,
                 verified_before: np.ndarray, verified_after: np.ndarray) -> RunChanges:
    """Compare two runs' memberships (``source, record_id, entity_id`` frames) and their
    VERIFIED entity ids (the card roster's rows)."""
    return _compare(previous_run, _Aligned.of(before, after), verified_before, verified_after)


def between(previous_run: str, before: pd.DataFrame, after: pd.DataFrame,
            verified_before: np.ndarray,
            verified_after: np.ndarray) -> tuple[RunChanges, pd.DataFrame]:
    """:func:`compare_runs` and :func:`entity_successors` of two memberships, aligned once
    (what a run reports: at a million records the alignment is most of either)."""
    aligned = _Aligned.of(before, after)
    return (_compare(previous_run, aligned, verified_before, verified_after),
            _successors(previous_run, aligned))


def _compare(previous_run: str, a: _Aligned, verified_before: np.ndarray,
             verified_after: np.ndarray) -> RunChanges:
    both = (a.was >= 0) & (a.now >= 0)
    pairs = np.unique(a.was[both] * a.n_ids + a.now[both])  # each (was, now) once
    was_of, now_of = pairs // a.n_ids, pairs % a.n_ids
    sources_per_now = np.bincount(now_of, minlength=a.n_ids)
    targets_per_was = np.bincount(was_of, minlength=a.n_ids)
    merged_into = a.by_id(np.flatnonzero(sources_per_now > 1))
    split_from = a.by_id(np.flatnonzero(targets_per_was > 1))
    merges = [{"into": a.names[k], "from": sorted(a.names[was_of[now_of == k]])}
              for k in merged_into[:EXAMPLES]]
    splits = [{"from": a.names[k], "into": sorted(a.names[now_of[was_of == k]])}
              for k in split_from[:EXAMPLES]]
    in_before = np.zeros(a.n_ids, dtype=bool)
    in_before[a.ids_before] = True
    in_after = np.zeros(a.n_ids, dtype=bool)
    in_after[a.ids_after] = True
    roster_b = set(map(str, verified_before))
    roster_a = set(map(str, verified_after))
    return RunChanges(
        previous_run=previous_run,
        entities_before=int(in_before.sum()),
        entities_after=int(in_after.sum()),
        created=int((in_after & ~in_before).sum()),
        retired=int((in_before & ~in_after).sum()),
        merged=len(merged_into),
        split=len(split_from),
        moved_records=int((a.was[both] != a.now[both]).sum()),
        new_records=int(((a.now >= 0) & (a.was < 0)).sum()),
        removed_records=int(((a.was >= 0) & (a.now < 0)).sum()),
        roster_added=len(roster_a - roster_b),
        roster_removed=len(roster_b - roster_a),
        merges=merges,
        splits=splits,
    )


@dataclass
class _Aligned:
    """Two memberships over one numbering: per record (either run's), the code of its entity
    id before and now (-1: not in that run); the ids' text by code. Integer codes, because
    joining and grouping a million records by their text took seconds."""

    was: np.ndarray
    now: np.ndarray
    names: np.ndarray  # object: the entity id of each code
    ids_before: np.ndarray  # codes of the previous run's records' ids, per its record
    ids_after: np.ndarray

    @property
    def n_ids(self) -> int:
        return len(self.names)

    @classmethod
    def of(cls, before: pd.DataFrame, after: pd.DataFrame) -> _Aligned:
        records, _ = pd.factorize(np.concatenate([_keys(before), _keys(after)]))
        ids, names = pd.factorize(np.concatenate([before["entity_id"].astype(str).to_numpy(),
                                                  after["entity_id"].astype(str).to_numpy()]))
        n = len(before)
        was = np.full(records.max() + 1 if len(records) else 0, -1, dtype=np.int64)
        now = was.copy()
        was[records[:n]] = ids[:n]
        now[records[n:]] = ids[n:]
        return cls(was, now, np.asarray(names, dtype=object), ids[:n], ids[n:])

    def by_id(self, codes: np.ndarray) -> np.ndarray:
        """Codes in the order of their ids' text (as a sorted groupby lists them)."""
        return codes[np.argsort(self.names[codes], kind="stable")] if len(codes) else codes


SUCCESSOR_COLUMNS = ["entity_id", "change", "successor_ids", "records", "records_moved",
                     "previous_run", "remarks"]
REMARKS = {  # for the card office, in Chinese; `change` holds the code systems key on
    "merged_into": "此编号已并入 {0}（同一人），请按新编号查询、制卡",
    "split_into": "此编号已拆分为 {0}（原为不同的人），已制卡的请核实持卡人",
    "split_off": "部分记录已拆出至 {0}（不是同一人），本编号保留",
    "withdrawn": "此编号的记录已不在任何名单中，编号停用",
}


def entity_successors(previous_run: str, before: pd.DataFrame,
                      after: pd.DataFrame) -> pd.DataFrame:
    """Every entity id of the previous run whose records no longer all sit under it, and where
    they went: the card office looks up the id a card was issued to and finds the person's id
    now (a merged-away id points to its successor; ids never change meaning).

    One row per such id, sorted by id: ``change`` (merged_into, split_into, split_off,
    withdrawn), ``successor_ids`` (';'-joined, sorted; for split_off the other ids only),
    ``records`` (its records in the previous run), ``records_moved`` (those now under
    another id, or gone) and ``remarks``, what it means for the office, in Chinese.
    """
    return _successors(previous_run, _Aligned.of(before, after))


def _successors(previous_run: str, a: _Aligned) -> pd.DataFrame:
    had = np.flatnonzero(a.was >= 0)  # the previous run's records
    was, now = a.was[had], a.now[had]
    moved = now != was  # gone (-1) or under another id
    touched = np.zeros(a.n_ids, dtype=bool)
    touched[was[moved]] = True
    if not touched.any():
        return pd.DataFrame(columns=SUCCESSOR_COLUMNS)
    mine = touched[was]
    was, now, moved = was[mine], now[mine], moved[mine]
    codes = a.by_id(np.flatnonzero(touched))
    records = np.bincount(was, minlength=a.n_ids)[codes]
    records_moved = np.bincount(was, weights=moved, minlength=a.n_ids)[codes].astype(int)
    stays = np.zeros(a.n_ids, dtype=bool)
    stays[a.ids_after] = True
    # where each id's records are now, other than itself, sorted and ';'-joined
    went = np.unique(was[moved & (now >= 0)] * a.n_ids + now[moved & (now >= 0)])
    went_was, went_now = went // a.n_ids, went % a.n_ids
    order = np.lexsort((a.names[went_now], went_was))
    joined = (pd.Series(a.names[went_now[order]]).groupby(went_was[order], sort=False)
              .agg(";".join))
    successors = joined.reindex(codes, fill_value="").to_numpy(dtype=object)
    n_now = np.bincount(went_was, minlength=a.n_ids)[codes]
    change = np.select([stays[codes], n_now == 0, n_now == 1],
                       ["split_off", "withdrawn", "merged_into"], "split_into")
    out = pd.DataFrame({"entity_id": a.names[codes], "change": change,
                        "successor_ids": successors, "records": records,
                        "records_moved": records_moved, "previous_run": previous_run})
    out["remarks"] = [REMARKS[c].format(s.replace(";", "、"))
                      for c, s in zip(out["change"], out["successor_ids"])]
    return out.reset_index(drop=True)


def _keys(members: pd.DataFrame) -> np.ndarray:
    """One text per record: source and record id (the unit separator cannot occur in either)."""
    return (members["source"].astype(str) + "\x1f" + members["record_id"].astype(str)).to_numpy()
