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
    key_b = _keys(before)
    key_a = _keys(after)
    joined = pd.DataFrame({"key": key_b, "was": before["entity_id"].astype(str).to_numpy()}).merge(
        pd.DataFrame({"key": key_a, "now": after["entity_id"].astype(str).to_numpy()}),
        on="key", how="outer")
    both = joined.dropna(subset=["was", "now"])
    ids_b = pd.unique(before["entity_id"].astype(str))
    ids_a = pd.unique(after["entity_id"].astype(str))
    sources_per_now = both.groupby("now")["was"].nunique()
    targets_per_was = both.groupby("was")["now"].nunique()
    merged_into = sources_per_now[sources_per_now > 1].index
    split_from = targets_per_was[targets_per_was > 1].index
    merges = (both[both["now"].isin(merged_into[:EXAMPLES])].groupby("now")["was"]
              .agg(lambda s: sorted(set(s))))
    splits = (both[both["was"].isin(split_from[:EXAMPLES])].groupby("was")["now"]
              .agg(lambda s: sorted(set(s))))
    roster_b = set(map(str, verified_before))
    roster_a = set(map(str, verified_after))
    return RunChanges(
        previous_run=previous_run,
        entities_before=len(ids_b),
        entities_after=len(ids_a),
        # pandas hashes; np.isin on object arrays compares every pair (minutes at 100k ids)
        created=int((~pd.Index(ids_a).isin(ids_b)).sum()),
        retired=int((~pd.Index(ids_b).isin(ids_a)).sum()),
        merged=len(merged_into),
        split=len(split_from),
        moved_records=int((both["was"] != both["now"]).sum()),
        new_records=int(joined["was"].isna().sum()),
        removed_records=int(joined["now"].isna().sum()),
        roster_added=len(roster_a - roster_b),
        roster_removed=len(roster_b - roster_a),
        merges=[{"into": k, "from": v} for k, v in merges.items()],
        splits=[{"from": k, "into": v} for k, v in splits.items()],
    )


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
    joined = pd.DataFrame({"key": _keys(before),
                           "was": before["entity_id"].astype(str).to_numpy()}).merge(
        pd.DataFrame({"key": _keys(after), "now": after["entity_id"].astype(str).to_numpy()}),
        on="key", how="left")
    moved = (joined["now"].isna() | (joined["now"] != joined["was"])).to_numpy()
    touched = pd.unique(joined.loc[moved, "was"])
    if not len(touched):
        return pd.DataFrame(columns=SUCCESSOR_COLUMNS)
    part = joined[joined["was"].isin(touched)].assign(moved=moved[joined["was"].isin(touched)])
    per = part.groupby("was", sort=True).agg(records=("key", "size"),
                                             records_moved=("moved", "sum"))
    stays = per.index.isin(pd.unique(after["entity_id"].astype(str)))
    # where each id's records are now, other than itself, sorted and ';'-joined
    went = (part.dropna(subset=["now"]).loc[lambda f: f["now"] != f["was"], ["was", "now"]]
            .drop_duplicates().sort_values(["was", "now"]))
    successors = went.groupby("was")["now"].agg(";".join).reindex(per.index, fill_value="")
    n_now = went.groupby("was").size().reindex(per.index, fill_value=0).to_numpy()
    change = np.select([stays, n_now == 0, n_now == 1], ["split_off", "withdrawn", "merged_into"],
                       "split_into")
    out = pd.DataFrame({"entity_id": per.index, "change": change,
                        "successor_ids": successors.to_numpy(),
                        "records": per["records"].to_numpy(),
                        "records_moved": per["records_moved"].to_numpy().astype(int),
                        "previous_run": previous_run})
    out["remarks"] = [REMARKS[c].format(s.replace(";", "、"))
                      for c, s in zip(out["change"], out["successor_ids"])]
    return out.reset_index(drop=True)


def _keys(members: pd.DataFrame) -> np.ndarray:
    """One text per record: source and record id (the unit separator cannot occur in either)."""
    return (members["source"].astype(str) + "\x1f" + members["record_id"].astype(str)).to_numpy()
