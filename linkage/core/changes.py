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
        created=int((~np.isin(ids_a, ids_b)).sum()),
        retired=int((~np.isin(ids_b, ids_a)).sum()),
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


def _keys(members: pd.DataFrame) -> np.ndarray:
    """One text per record: source and record id (the unit separator cannot occur in either)."""
    return (members["source"].astype(str) + "\x1f" + members["record_id"].astype(str)).to_numpy()
