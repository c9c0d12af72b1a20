"""What the office outputs and the run report read: one run's records, entities and numbers.

A view comes either from a run that just finished (``from_result``) or from the store's latest
complete run (``linkage.outputs.export``), so both paths write the same files the same way.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from linkage.core.config import JobConfig
from linkage.jobs.bookkeeping import RunResult
from linkage.outputs import rows

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
    review: pd.DataFrame | None = None  # the pairs for review, as review_pairs.csv lists them
    # entity_changes.csv (linkage.core.changes); None: not known (the previous run's state
    # was deleted by keep_runs), not written
    successors: pd.DataFrame | None = None
    _text: dict = field(default_factory=dict, repr=False, init=False)

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
            review=result.review,
            successors=result.successors,
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
        """Per record: its entity holds a registry (authority) record (by golden row numbers;
        entities without a golden row, if any, by their ids)."""
        rows = self.golden_row
        known = rows >= 0
        has = np.zeros(len(self.golden), dtype=bool)
        has[rows[self.authority & known]] = True
        out = np.zeros(len(rows), dtype=bool)
        out[known] = has[rows[known]]
        if not known.all():
            out[~known] = isin(self.entity_id[~known], self.entity_id[self.authority & ~known])
        return out

    @cached_property
    def golden_index(self) -> pd.Index:
        """The golden rows' entity ids (kept: its hash table is built once for every lookup)."""
        return pd.Index(self.golden["entity_id"])

    @cached_property
    def golden_row(self) -> np.ndarray:
        """Per record: the position of its entity's row in ``golden`` (-1 if none)."""
        return self.golden_index.get_indexer(self.entity_id)

    def golden_column(self, column: str) -> pd.Series:
        """A golden column indexed by entity id (no copy of the golden frame)."""
        return pd.Series(self.golden[column].to_numpy(), index=self.golden_index, name=column)

    def golden_value(self, column: str, mask: np.ndarray | None = None) -> np.ndarray:
        """A golden column spread over the records, or over the records under ``mask`` (None
        where the entity has no golden row)."""
        values = np.append(self.golden[column].to_numpy(dtype=object), None)
        rows = self.golden_row if mask is None else self.golden_row[mask]
        return values[rows]  # row -1 (no golden row) picks the None appended

    def text(self, column: str, mask: np.ndarray | None = None) -> np.ndarray:
        """A record column as stripped text, None where blank or where no source maps it; only
        the records under ``mask`` when given.

        Kept: several outputs read the same columns. A column of text is stripped for the
        records asked for only (most outputs read the insurance records); any other column is
        made whole first, since its distinct values are found over all records.
        """
        if column not in self._text and mask is not None and column in self.records:
            kept = self._text.get((column, id(mask)))
            if kept is not None and kept[0] is mask:
                return kept[1].copy()  # a copy, as ``text(column)[mask]`` makes
            values = self.records[column]
            if _text_by_value(values):
                part = stripped_text(values.iloc[mask])
                self._text[(column, id(mask))] = (mask, part)  # the mask kept: its id stays its
                return part.copy()
        if column not in self._text:
            if column not in self.records:
                self._text[column] = np.full(len(self.records), None, dtype=object)
            else:
                self._text[column] = stripped_text(self.records[column])
        return self._text[column] if mask is None else self._text[column][mask]

    def text_at(self, column: str, at: np.ndarray) -> np.ndarray:
        """``text(column)[at]`` for a few positions: a column of text is stripped at those
        positions only (the registry double registrations are a few thousand records of
        millions), any other column made whole first as :meth:`text` makes it."""
        if column in self._text or column not in self.records:
            return self.text(column)[at]
        values = self.records[column]
        if _text_by_value(values):
            return stripped_text(values.iloc[at])
        return self.text(column)[at]

    def tier(self, mask: np.ndarray | None = None) -> np.ndarray:
        """Contribution tier per record (under ``mask``) in the office's words (一档 / 二档)."""
        tier = pd.Series(self.text("tier", mask), dtype=object)
        coded = tier.map(TIER_CODES)
        return coded.where(coded.notna(), tier).to_numpy(dtype=object)


def _text_by_value(values: pd.Series) -> bool:
    """Whether :func:`stripped_text` treats each value on its own (text, categories), so a
    part of the column comes out as that part of the whole."""
    return isinstance(values.dtype, pd.CategoricalDtype) or rows.is_text_dtype(values.dtype) or (
        values.dtype == np.dtype(object)
        and pd.api.types.infer_dtype(values.to_numpy(), skipna=True) in ("string", "empty"))


REPEATS_SAMPLE = 20_000  # rows looked at to tell a column of few distinct values


def stripped_text(values: pd.Series) -> np.ndarray:
    """Each value as stripped text (``str(value).strip()``), None where blank or missing.

    A column of text with many distinct values (names, ids) is stripped value by value (one
    C-level map: cheaper than hashing the values), one with few (villages, genders, clerks:
    judged on its first rows) once per distinct value, two to four times faster; a categorical
    column once per category; any other column once per distinct value (1 and 1.0 are one
    value there, written as first seen).
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy()
        return np.append(stripped_text(pd.Series(values.cat.categories, dtype=object)),
                         None)[codes]  # code -1 (missing) picks the None appended
    cells = values.to_numpy(dtype=object)
    if pd.api.types.infer_dtype(cells, skipna=True) not in ("string", "empty"):
        codes, uniques = pd.factorize(cells)
        text = pd.Series(np.asarray(uniques, dtype=object), dtype=object).astype(str)
        return np.append(stripped_text(text), None)[codes]
    if len(pd.unique(cells[:REPEATS_SAMPLE])) * 20 <= min(len(cells), REPEATS_SAMPLE):
        codes, uniques = pd.factorize(cells)
        text = np.array([*map(str.strip, np.asarray(uniques, dtype=object).tolist()), None],
                        dtype=object)
        text[text == ""] = None
        return text[codes]  # code -1 (missing) picks the None appended
    missing = pd.isna(cells)
    if missing.any():
        cells = cells.copy()
        cells[missing] = ""
    out = np.empty(len(cells), dtype=object)
    out[:] = list(map(str.strip, cells.tolist()))
    out[out == ""] = None
    return out


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

    On integer codes: keys and values are hashed once each, the distinct pairs found among
    integers, and only the few keys with several values joined (by one reduceat).
    """
    key_code, key_uniques = pd.factorize(keys)
    value_code, value_uniques = pd.factorize(values)
    text = pd.Series(np.asarray(value_uniques, dtype=object), dtype=object).astype(str)
    text = text.to_numpy(dtype=object)
    keep = (key_code >= 0) & (value_code >= 0)
    keep[keep] = text[value_code[keep]] != ""
    k, v = key_code[keep].astype(np.int64), value_code[keep].astype(np.int64)
    first = ~pd.Series(k * max(len(value_uniques), 1) + v).duplicated().to_numpy()
    k = pd.factorize(k[first])[0]  # keys recoded in first-seen order
    # each pair's value as its first row has it (1 and 1.0 are one value, written as first seen)
    values = pd.Series(np.asarray(values, dtype=object)[keep][first], dtype=object)
    values = values.astype(str).to_numpy(dtype=object)
    key_values = np.asarray(key_uniques)[key_code[keep][first]]
    multi = np.bincount(k)[k] > 1 if len(k) else np.zeros(0, dtype=bool)
    single = pd.Series(values[~multi], index=pd.Index(key_values[~multi], name="key"),
                       dtype=object, name="value")
    order = np.argsort(k[multi], kind="stable")
    grouped, joined = k[multi][order], values[multi][order]
    if not len(grouped):
        return single
    starts = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]])
    joined = pd.Series(np.add.reduceat(joined + sep, starts), dtype=object).str[:-len(sep)]
    joined.index = pd.Index(key_values[multi][order][starts], name="key")
    return pd.concat([single, joined.rename("value")])


def isin(values: np.ndarray, items) -> np.ndarray:
    """np.isin for object arrays by hashing (numpy sorts objects, which is far slower)."""
    wanted = pd.unique(pd.Series(items, dtype=object))
    return pd.Series(values, dtype=object).isin(wanted).to_numpy()


def sort_order(frame: pd.DataFrame, keys: list[str]) -> np.ndarray:
    """The row positions of ``frame.sort_values(keys, na_position="last", kind="stable")``.

    Text keys are ranked once per distinct value by Arrow (UTF-8 byte order is Python's
    code-point order) and the ranks sorted by numpy: pandas sorts text columns by Python
    comparisons, seconds for a million-row roster. A key of any other kind: pandas' own sort.
    """
    ranks = [_text_rank(frame[k].to_numpy(dtype=object)) for k in keys]
    if any(r is None for r in ranks):
        by_pandas = frame[keys].reset_index(drop=True).sort_values(
            keys, na_position="last", kind="stable")
        return by_pandas.index.to_numpy()
    if not ranks:
        return np.arange(len(frame))
    return np.lexsort(ranks[::-1])


def _text_rank(values: np.ndarray) -> np.ndarray | None:
    """Per value its rank among the distinct values in sorted order (missing last), or None
    when the values are not all text."""
    codes, uniques = pd.factorize(values)
    uniques = np.asarray(uniques, dtype=object)
    if pd.api.types.infer_dtype(uniques, skipna=False) not in ("string", "empty"):
        return None
    try:
        order = pc.sort_indices(pa.array(uniques, pa.large_string())).to_numpy()
    except (pa.ArrowException, UnicodeError):  # e.g. a lone surrogate
        return None
    rank = np.empty(len(uniques) + 1, dtype=np.int64)
    rank[order] = np.arange(len(uniques))
    rank[-1] = len(uniques)  # code -1 (missing) sorts last
    return rank[codes]
