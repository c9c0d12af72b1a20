"""The contract every matcher keeps, and the registry a job config picks comparisons from.

A *standardiser* turns one raw column into derived columns, computing each distinct raw value
once (registry data repeats names and villages heavily). A *comparison* is an ordered list of
levels, strongest first, over a batch of aligned pairs given as two frames of standardised
columns: pandas DataFrames, or :class:`Columns` (plain numpy arrays, for the few pairs of an
online check).

Levels share per-batch work one way. :meth:`Comparison.prepare` builds the batch's *features*
once (by default a :class:`Pairs`, which reads each column of both sides once; a matcher whose
levels share more, such as the distinct names of a batch or its IDs as byte matrices, subclasses
it). Each :class:`Level` then tests those features for the pairs no stronger level has claimed:
``level.test(features, rows)`` gives one bool per row of ``rows``. The first level whose test
holds gives the pair its level index; pairs where either side is missing get ``MISSING`` (no
evidence either way); pairs no level claims get the last level, which is always ``different``.
A comparison holds its levels as objects and runs them in order: labels are for reports and
configs, never for finding a level's code.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

MISSING = -1


class Columns:
    """Aligned standardised columns as plain numpy arrays, read like a DataFrame.

    ``len`` is the number of rows, ``name in columns`` and ``columns[name]`` reach a column,
    ``take(rows)`` picks rows. An online check compares a handful of pairs, and building and
    indexing DataFrames for them cost more than the comparisons themselves.
    """

    __slots__ = ("_rows", "arrays")

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.arrays = arrays
        self._rows = len(next(iter(arrays.values()))) if arrays else 0

    def __len__(self) -> int:
        return self._rows

    def __contains__(self, name: object) -> bool:
        return name in self.arrays

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    def take(self, rows: np.ndarray) -> Columns:
        return Columns({name: values[rows] for name, values in self.arrays.items()})


Frame = pd.DataFrame | Columns


def column(frame: Frame, name: str, dtype: object = None) -> np.ndarray:
    """One column of either kind of frame as a numpy array (a category's or an Arrow text
    column's as its texts, None where missing, as the text column it stands for gives them)."""
    values = frame[name]
    if is_compacted(values) and dtype in (None, object):
        return as_objects(values)
    return np.asarray(values, dtype=dtype)


def as_objects(values: pd.Series) -> np.ndarray:
    """A records column as an object array, None where missing, whether compacted or not
    (``to_numpy`` gives a category's missing cells as NaN, an Arrow column's as pd.NA); an
    Arrow column's equal texts come out as one object (faster, and far less memory for names
    than a new str per row)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        categories = np.append(values.cat.categories.to_numpy(dtype=object), None)
        return categories[values.cat.codes.to_numpy()]  # code -1 picks the None appended
    if isinstance(values.dtype, pd.ArrowDtype):  # coded in Arrow: equal texts as one object
        codes, uniques = pd.factorize(values)
        return np.append(uniques.to_numpy(dtype=object, na_value=None), None)[codes]
    return values.to_numpy(dtype=object)


def column_at(frame: Frame, name: str, rows: np.ndarray) -> np.ndarray:
    """``column(frame, name, object)[rows]``, turning only those rows of a compacted column
    into objects (a batch of pairs reads a few of a million records)."""
    values = frame[name]
    if is_compacted(values):
        return as_objects(values.iloc[rows])
    return np.asarray(values, dtype=object)[rows]


def is_compacted(values: object) -> bool:
    """Whether a records column is held compacted (linkage.core.standardise.compact_records:
    a category or Arrow text), so that reading it as objects needs :func:`as_objects`."""
    return isinstance(getattr(values, "dtype", None), (pd.CategoricalDtype, pd.ArrowDtype))


class Pairs:
    """One batch of aligned pairs, the features every comparison's levels start from.

    ``left`` and ``right`` are the two frames (row i of each is pair i). :meth:`sides` reads a
    column of both as numpy arrays and :meth:`memo` keeps anything else derived from them, each
    computed once per batch however many levels use it.
    """

    def __init__(self, left: Frame, right: Frame) -> None:
        self.left, self.right = left, right
        self._memo: dict[object, Any] = {}

    def __len__(self) -> int:
        return len(self.left)

    def memo(self, key: object, compute: Callable[[], Any]) -> Any:
        """``compute()``, called on the first use of ``key`` in this batch only."""
        try:
            return self._memo[key]
        except KeyError:
            value = self._memo[key] = compute()
            return value

    def sides(self, name: str, dtype: object = object) -> tuple[np.ndarray, np.ndarray]:
        """Column ``name`` of the left and of the right side."""
        return self.memo(("sides", name, dtype),
                         lambda: (column(self.left, name, dtype), column(self.right, name, dtype)))


# A level's test: (features, rows) -> one bool per row of ``rows`` (indices into the batch).
LevelTest = Callable[[Any, np.ndarray], np.ndarray]
# Which pairs carry no evidence: features -> one bool per pair of the batch.
MissingTest = Callable[[Any], np.ndarray]


@dataclass(frozen=True)
class Level:
    """One rung of a comparison: a label for reports and a test over the batch's features."""

    label: str
    test: LevelTest
    description: str = ""


@dataclass(frozen=True)
class Comparison:
    """An ordered list of levels over some standardised columns.

    ``features`` builds a batch's features from the two frames (:class:`Pairs` unless the
    matcher shares more between its levels); ``missing`` says which pairs carry no evidence;
    ``tf_column`` names the standardised column whose value frequency adjusts the weight of the
    levels listed in ``tf_levels`` (so that 王伟 = 王伟 counts for less than a rare name agreeing).
    """

    name: str
    columns: tuple[str, ...]
    levels: tuple[Level, ...]
    missing: MissingTest
    tf_column: str | None = None
    tf_levels: tuple[str, ...] = ()
    params: dict = field(default_factory=dict)
    features: Callable[[Frame, Frame], Any] = Pairs

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(level.label for level in self.levels) + ("different",)

    def prepare(self, left: Frame, right: Frame) -> Any:
        """The features of one batch of aligned pairs, for :meth:`levels_of`."""
        return self.features(left, right)

    def levels_of(self, features: Any) -> np.ndarray:
        """Level index per pair of a prepared batch (int8), ``MISSING`` where no evidence."""
        n = len(features)
        out = np.full(n, len(self.levels), dtype=np.int8)  # default: different
        missing = np.asarray(self.missing(features), dtype=bool)
        out[missing] = MISSING
        todo = np.flatnonzero(~missing)
        for index, level in enumerate(self.levels):
            if todo.size == 0:
                break
            hit = np.asarray(level.test(features, todo), dtype=bool)
            out[todo[hit]] = index
            todo = todo[~hit]
        return out

    def compare(self, left: Frame, right: Frame) -> np.ndarray:
        """Level index per aligned row pair (int8), ``MISSING`` where either side is missing."""
        return self.levels_of(self.prepare(left, right))


_REGISTRY: dict[str, Callable[..., Comparison]] = {}


def register(kind: str) -> Callable[[Callable[..., Comparison]], Callable[..., Comparison]]:
    """Register a comparison factory under the name a job config uses (``matcher: kind``)."""

    def wrap(factory: Callable[..., Comparison]) -> Callable[..., Comparison]:
        _REGISTRY[kind] = factory
        return factory

    return wrap


def select_levels(levels: Iterable[Level], wanted: Iterable[str] | None) -> tuple[Level, ...]:
    """Keep only the levels a config asked for, in the matcher's own order."""
    levels = tuple(levels)
    if wanted is None:
        return levels
    wanted = list(wanted)
    known = {level.label for level in levels}
    unknown = [w for w in wanted if w not in known and w != "different"]
    if unknown:
        raise KeyError(f"unknown level(s) {unknown}; this matcher has: {sorted(known)}")
    return tuple(level for level in levels if level.label in wanted)


def per_distinct(values: pd.Series, func: Callable[[object], object]) -> pd.Series:
    """Apply ``func`` once per distinct value and broadcast back (names and villages repeat)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    same = text_memo(uniques)
    mapped = [_one_text(func(v), same) for v in uniques]
    mapped.append(func(None))  # the NA sentinel (-1) picks the last element
    result = np.empty(len(mapped), dtype=object)
    result[:] = mapped
    return pd.Series(result[codes], index=values.index)


def per_distinct_frame(values: pd.Series, func: Callable[[object], dict],
                       columns: list[str]) -> pd.DataFrame:
    """Like :func:`per_distinct` for a parser that yields several fields per value."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    same = text_memo(uniques)
    rows = [{k: _one_text(x, same) for k, x in func(v).items()} for v in uniques]
    rows.append(func(None))
    table = pd.DataFrame.from_records(rows, columns=columns)
    out = table.iloc[codes].reset_index(drop=True)
    out.index = values.index
    return out


def text_memo(uniques) -> dict:
    """Equal texts as one object, seeded with the input's own: a parser makes a new string per
    distinct input even where its output repeats (the region of an ID, a date's quality) or
    equals the input, and a million records holding those copies cost hundreds of MB."""
    return {v: v for v in uniques if type(v) is str}


def _one_text(value, same: dict):
    return same.setdefault(value, value) if type(value) is str else value


def shared_texts(values: np.ndarray, same: dict | None = None) -> np.ndarray:
    """An object array of per-distinct results with equal texts as one object (see text_memo);
    ``same`` shares them with other columns too."""
    same = {} if same is None else same
    out = np.empty(len(values), dtype=object)
    out[:] = [_one_text(v, same) for v in values.tolist()]
    return out


def cpdist_workers(n_pairs: int) -> int:
    """rapidfuzz threads for ``n_pairs``: all cores on big batches, none for a check's few pairs
    (starting threads costs more than the work, and waits for a core on a busy server)."""
    return -1 if n_pairs >= 20_000 else 1


def is_blank(values: pd.Series | np.ndarray) -> np.ndarray:
    """True where a standardised value is absent (None, NaN or empty string)."""
    arr = as_objects(values) if is_compacted(values) else np.asarray(values, dtype=object)
    return pd.isna(arr) | (arr == "")


def either_missing(name: str) -> MissingTest:
    def missing(pairs: Pairs) -> np.ndarray:
        a, b = pairs.sides(name)
        return is_blank(a) | is_blank(b)

    return missing


def equal(name: str) -> LevelTest:
    def test(pairs: Pairs, rows: np.ndarray) -> np.ndarray:
        a, b = pairs.sides(name)
        a, b = a[rows], b[rows]
        return (a == b) & ~is_blank(a)

    return test
