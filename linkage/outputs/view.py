"""What the office outputs and the run report read: one run's records, entities and numbers.

A view comes either from a run that just finished (``from_result``) or from the store's latest
complete run (``linkage.outputs.export``), so both paths write the same files the same way.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from linkage.core.config import JobConfig
from linkage.jobs.bookkeeping import RunResult

# Urban rosters code the tier as 1 / 2; the office reads 一档 / 二档 as NCMS writes them.
TIER_CODES = {"1": "一档", "2": "二档", "一": "一档", "二": "二档"}


@dataclass
class RunView:
    """One run as the writers need it; ``entity_id`` is aligned with ``records``."""

    run_id: str
    summary: dict
    records: pd.DataFrame
    entity_id: np.ndarray
    golden: pd.DataFrame
    config: JobConfig
    model: dict  # FSModel.to_dict(): m, u and weight beside each level
    weights: np.ndarray | None  # match weight (bits) of every candidate pair, where known
    weights_note: str = ""
    notes: list[str] = field(default_factory=list)
    _text: dict[str, np.ndarray] = field(default_factory=dict, repr=False, init=False)

    @classmethod
    def from_result(cls, result: RunResult) -> RunView:
        """From the RunResult of a run that just finished."""
        weights = np.asarray(result.weights)
        candidates = (result.summary.get("blocking") or {}).get("candidate_pairs")
        note = ("every candidate pair of the run" if candidates in (None, len(weights)) else
                f"the {len(weights):,} pairs the engine kept of {candidates:,} candidates")
        return cls(
            run_id=result.run_id,
            summary=result.summary,
            records=result.records,
            entity_id=result.clusters["entity_id"].to_numpy(dtype=object),
            golden=result.golden,
            config=result.config,
            model=result.model.to_dict(),
            weights=weights,
            weights_note=note,
        )

    @cached_property
    def role(self) -> np.ndarray:
        roles = {s.name: s.role for s in self.config.sources}
        return self.records["source"].map(roles).to_numpy(dtype=object)

    @cached_property
    def insurance(self) -> np.ndarray:
        return self.role == "insurance"

    @cached_property
    def authority(self) -> np.ndarray:
        return self.role == "authority"

    @cached_property
    def scheme(self) -> np.ndarray:
        """The insurance scheme of each record (the source name where the config gives none)."""
        schemes = {s.name: s.scheme or s.name for s in self.config.sources}
        return self.records["source"].map(schemes).to_numpy(dtype=object)

    @cached_property
    def in_registry(self) -> np.ndarray:
        """Per record: its entity holds a registry (authority) record."""
        return isin(self.entity_id, self.entity_id[self.authority])

    @cached_property
    def golden_row(self) -> np.ndarray:
        """Per record: the position of its entity's row in ``golden`` (-1 if none)."""
        return pd.Index(self.golden["entity_id"]).get_indexer(self.entity_id)

    def golden_value(self, column: str) -> np.ndarray:
        """A golden column spread over the records (None where the entity has no golden row)."""
        values = self.golden[column].to_numpy(dtype=object)
        out = np.full(len(self.records), None, dtype=object)
        hit = self.golden_row >= 0
        out[hit] = values[self.golden_row[hit]]
        return out

    def text(self, column: str) -> np.ndarray:
        """A record column as stripped text, None where blank or where no source maps it.

        Stripped once per distinct value and kept: several outputs read the same columns.
        """
        if column not in self._text:
            if column not in self.records:
                self._text[column] = np.full(len(self.records), None, dtype=object)
            else:
                codes, uniques = pd.factorize(self.records[column].astype(object))
                text = pd.Series(uniques, dtype=object).astype(str).str.strip()
                text = np.append(text.where(text != "", None).to_numpy(dtype=object), None)
                self._text[column] = text[codes]  # code -1 (missing) picks the None appended
        return self._text[column]

    def tier(self) -> np.ndarray:
        """Contribution tier per record in the office's words (一档 / 二档)."""
        tier = pd.Series(self.text("tier"), dtype=object)
        coded = tier.map(TIER_CODES)
        return coded.where(coded.notna(), tier).to_numpy(dtype=object)


def birth_text(yyyymmdd: np.ndarray) -> np.ndarray:
    """'1965-03-12', '1965-03' or '1965' from the int the birthdate standardiser keeps
    (formatted once per distinct date: a million people share some 30,000 birthdates)."""
    codes, uniques = pd.factorize(np.asarray(yyyymmdd, dtype=np.int64))
    b = pd.Series(uniques)
    y = (b // 10000).astype(str).str.zfill(4)
    m = (b // 100 % 100).astype(str).str.zfill(2)
    d = (b % 100).astype(str).str.zfill(2)
    text = np.where(b % 100 > 0, y + "-" + m + "-" + d,
                    np.where(b // 100 % 100 > 0, y + "-" + m, y))
    return np.where(b > 0, text, None).astype(object)[codes]


def join_distinct(keys: np.ndarray, values: np.ndarray, sep: str = ";") -> pd.Series:
    """Distinct non-blank values per key, joined in first-seen order; indexed by key.

    Nearly every key has one value, so those skip the per-group join (a million entities would
    otherwise cost a million Python calls).
    """
    frame = pd.DataFrame({"key": keys, "value": values}).dropna()
    frame = frame[frame["value"].astype(str) != ""].drop_duplicates()
    multi = frame["key"].duplicated(keep=False).to_numpy()
    single = frame[~multi].set_index("key")["value"].astype(str)
    joined = frame[multi].groupby("key", sort=False)["value"].agg(lambda s: sep.join(map(str, s)))
    return pd.concat([single, joined])


def isin(values: np.ndarray, items) -> np.ndarray:
    """np.isin for object arrays by hashing (numpy sorts objects, which is far slower)."""
    wanted = pd.unique(pd.Series(items, dtype=object))
    return pd.Series(values, dtype=object).isin(wanted).to_numpy()
