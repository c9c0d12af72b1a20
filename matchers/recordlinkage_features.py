"""Our comparisons as recordlinkage compare features, for teams that already link with it.

recordlinkage (``recordlinkage.Compare``) computes one feature column per compare feature over
the candidate pairs of an index. :class:`ComparisonFeature` is such a feature for any registered
comparison: it standardises the raw columns it is given with our standardisers (each distinct
value once), compares the pairs with the comparison, and yields its level per pair, the
weight-free agreement level the engine trains on: 0 for the strongest level, then 1, 2 ... up to
``len(levels)`` for ``different``, and -1 (``MISSING``) where a side has no value::

    import recordlinkage
    from matchers.recordlinkage_features import ComparisonFeature

    pairs = recordlinkage.Index().block(left_on="姓名", right_on="成员姓名").index(police, ncms)
    compare = recordlinkage.Compare()
    compare.add(ComparisonFeature("chinese_name", "姓名", "成员姓名"))
    compare.add(ComparisonFeature("resident_id",
                                  {"id_number": "公民身份号码", "birth_date": "出生日期"},
                                  {"id_number": "身份证号", "birth_date": "出生日期"}))
    compare.string("地址", "地址", method="jarowinkler", label="address")  # theirs, side by side
    features = compare.compute(pairs, police, ncms)

A comparison reads the standard raw fields whose standardiser yields its columns (the ID
comparison: ``id_number`` and ``birth_date``; place: ``township`` and ``village``); the generic
matchers (``string``, ``exact``, ``numeric_string``, ``date_string``) read one text column. Give
one column label for the comparison's first field, or a mapping from field to label; a field
left out counts as blank on every record. The engine's cross-field fills (gender and birthdate
taken from a valid ID) are not applied: a feature sees only the columns it is given.
"""
from __future__ import annotations

import inspect
from collections.abc import Mapping

import numpy as np
import pandas as pd
from recordlinkage.base import BaseCompareFeature

from matchers import STANDARDISERS, generic, make_comparison, registered
from matchers.base import MISSING, Columns, Comparison

TEXT = "text"  # the one raw field of a generic comparison
_TEXT_COLUMN = "text_std"
VALUES = ("level", "label")


def _derived_columns() -> dict[str, tuple[str, ...]]:
    return {field: tuple(standardise(pd.Series([], dtype=object)).columns)
            for field, standardise in STANDARDISERS.items()}


def fields_read(comparison: Comparison) -> tuple[str, ...]:
    """The raw fields whose standardised columns ``comparison`` reads, in STANDARDISERS order."""
    wanted = set(comparison.columns)
    fields = tuple(f for f, cols in _derived_columns().items() if wanted & set(cols))
    return fields or (TEXT,)


class ComparisonFeature(BaseCompareFeature):
    """A registered comparison (``matcher``, as a job config names it) as a compare feature.

    ``left_on``/``right_on`` are a column label (the comparison's first field) or a mapping
    from raw field to column label; ``right_on`` defaults to ``left_on``. ``values="label"``
    yields the level labels (and ``"missing"``) instead of level indices. Other keyword
    arguments are the matcher's own parameters (``levels``, ``pinyin_high``, ``phonetic`` ...).
    """

    name = "hukou_linkage"
    description = "A Chinese-registry comparison's agreement level per record pair."

    def __init__(self, matcher: str, left_on: str | Mapping[str, str],
                 right_on: str | Mapping[str, str] | None = None, *, label: str | None = None,
                 values: str = "level", **params: object) -> None:
        if values not in VALUES:
            raise ValueError(f"values must be one of {', '.join(VALUES)}, not {values!r}")
        factory = registered().get(matcher)
        if factory is not None and "column" in inspect.signature(factory).parameters:
            name = label if label is not None else _first_label(left_on)
            comparison = make_comparison(matcher, name=name, column=_TEXT_COLUMN, **params)
        else:
            comparison = make_comparison(matcher, **params)
        self.comparison = comparison
        self.values = values
        needed = fields_read(comparison)
        left = _as_mapping(left_on, needed, matcher)
        right = left if right_on is None else _as_mapping(right_on, needed, matcher)
        if set(left) != set(right):
            raise ValueError(f"{matcher}: left_on gives {sorted(left)}, right_on {sorted(right)}; "
                             "give the same fields on both sides")
        self.fields = tuple(f for f in needed if f in left)
        self._needed = needed
        super().__init__([left[f] for f in self.fields], [right[f] for f in self.fields],
                         label=label if label is not None else comparison.name)

    def _compute_vectorized(self, *series: pd.Series) -> pd.Series:
        k = len(self.fields)
        left = self._standardised(series[:k])
        right = self._standardised(series[k:])
        levels = self.comparison.compare(left, right)
        index = series[0].index
        if self.values == "label":
            labels = np.array(("missing", *self.comparison.labels), dtype=object)
            return pd.Series(labels[levels.astype(np.int64) - MISSING], index=index)
        return pd.Series(levels, index=index)

    def _standardised(self, given: tuple[pd.Series, ...]) -> Columns:
        """The comparison's standardised columns for one side of the pairs."""
        raw = dict(zip(self.fields, given))
        n = len(given[0])
        arrays: dict[str, np.ndarray] = {}
        for field in self._needed:
            values = raw.get(field)
            if values is None:  # not given: blank on every record
                values = pd.Series(np.full(n, None, dtype=object))
            values = values.reset_index(drop=True).astype(object)
            if field == TEXT:
                arrays[_TEXT_COLUMN] = generic.standardise_text(values).to_numpy()
            else:
                derived = STANDARDISERS[field](values)
                arrays.update({c: derived[c].to_numpy() for c in derived.columns})
        return Columns({c: arrays[c] for c in self.comparison.columns if c in arrays})


def _first_label(on: str | Mapping[str, str]) -> str:
    return on if isinstance(on, str) else next(iter(on.values()))


def _as_mapping(on: str | Mapping[str, str], needed: tuple[str, ...], matcher: str
                ) -> dict[str, str]:
    if isinstance(on, Mapping):
        unknown = sorted(set(on) - set(needed))
        if unknown or not on:
            raise ValueError(f"{matcher} reads the fields {', '.join(needed)}; "
                             f"got {sorted(on) if on else 'none'}")
        return dict(on)
    return {needed[0]: on}
