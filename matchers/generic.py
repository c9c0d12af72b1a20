"""Generic comparisons for fields without a Chinese-specific matcher (FEBRL-like Latin data).

The engine stores ``standardise_text(raw)`` as ``<field>_std``; each comparison here is told
which column to read. String similarities come from rapidfuzz's element-wise ``cpdist`` over
whole columns (C++, all cores, counting characters rather than bytes), never a per-pair loop.
"""
from __future__ import annotations

import math
import unicodedata
from typing import Callable

import numpy as np
import pandas as pd
from rapidfuzz.distance import OSA, JaroWinkler, Levenshtein
from rapidfuzz.process import cpdist

from matchers import birthdate
from matchers.base import (
    Comparison,
    Frame,
    Level,
    cpdist_workers,
    either_missing,
    equal,
    is_blank,
    per_distinct,
    register,
    select_levels,
)
from matchers.base import column as column_of

_METRICS = {
    "jaro_winkler": JaroWinkler.normalized_similarity,
    "levenshtein": Levenshtein.normalized_similarity,
}


def _text(value: object) -> str | None:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return None
        if math.isfinite(value) and value == int(value):
            value = int(value)  # 4051.0 read from a numeric column is the postcode 4051
    try:
        text = value if isinstance(value, str) else str(value)
    except Exception:  # an object that cannot print itself carries no comparable text
        return None
    return " ".join(unicodedata.normalize("NFKC", text).lower().split()) or None


def standardise_text(series: pd.Series) -> pd.Series:
    """Lower-cased text with whitespace collapsed, None where blank; keeps the index."""
    return per_distinct(series, _text)


def _strings(frame: Frame, column: str) -> tuple[np.ndarray, np.ndarray]:
    """The column as an object array of str ('' where blank) and the blank mask."""
    values = column_of(frame, column, object).copy()
    blank = is_blank(values)
    values[blank] = ""
    return values, blank


def _score(a: np.ndarray, b: np.ndarray, scorer: Callable) -> np.ndarray:
    try:
        return cpdist(a, b, scorer=scorer, workers=cpdist_workers(len(a)), dtype=np.float64)
    except TypeError:  # a non-text value slipped into the column: compare its text
        return cpdist(a.astype(str), b.astype(str), scorer=scorer, workers=cpdist_workers(len(a)), dtype=np.float64)


def _pairwise(column: str, scorer: Callable, keep: Callable[[np.ndarray], np.ndarray]):
    """A level test that scores aligned rows with rapidfuzz and keeps scores passing ``keep``."""

    def test(left: Frame, right: Frame) -> np.ndarray:
        a, blank_a = _strings(left, column)
        b, blank_b = _strings(right, column)
        if not len(a):
            return np.zeros(0, dtype=bool)
        scores = _score(a, b, scorer)
        return keep(scores) & ~blank_a & ~blank_b

    return test


@register("string")
def string_comparison(
    column: str,
    name: str | None = None,
    levels: list[str] | None = None,
    high: float = 0.92,
    low: float = 0.80,
    metric: str = "jaro_winkler",
    **_,
) -> Comparison:
    """exact, <metric>_high (similarity >= high), <metric>_low (>= low), different."""
    if metric not in _METRICS:
        raise ValueError(f"unknown metric {metric!r}; known: {', '.join(_METRICS)}")
    scorer = _METRICS[metric]
    return Comparison(
        name=name or column,
        columns=(column,),
        levels=select_levels(
            (
                Level("exact", equal(column), "identical text"),
                Level(f"{metric}_high", _pairwise(column, scorer, lambda s: s >= high),
                      f"{metric} >= {high}"),
                Level(f"{metric}_low", _pairwise(column, scorer, lambda s: s >= low),
                      f"{metric} >= {low}"),
            ),
            levels,
        ),
        missing=either_missing(column),
        tf_column=column,
        tf_levels=("exact",),
        params={"column": column, "high": high, "low": low, "metric": metric},
    )


@register("exact")
def exact_comparison(
    column: str, name: str | None = None, levels: list[str] | None = None, **_
) -> Comparison:
    """exact or different."""
    return Comparison(
        name=name or column,
        columns=(column,),
        levels=select_levels((Level("exact", equal(column), "identical text"),), levels),
        missing=either_missing(column),
        tf_column=column,
        tf_levels=("exact",),
        params={"column": column},
    )


@register("numeric_string")
def numeric_string_comparison(
    column: str, name: str | None = None, levels: list[str] | None = None, **_
) -> Comparison:
    """exact, one_edit (one substitution, insertion, deletion or adjacent swap), different.

    For postcodes, street numbers and social-security numbers, where a typo is one key.
    """
    return Comparison(
        name=name or column,
        columns=(column,),
        levels=select_levels(
            (
                Level("exact", equal(column), "identical text"),
                Level("one_edit", _pairwise(column, OSA.distance, lambda d: d <= 1),
                      "optimal string alignment distance 1"),
            ),
            levels,
        ),
        missing=either_missing(column),
        params={"column": column},
    )


DATE_STRING_LEVELS = ("exact", "swapped", "one_digit", "year_month", "year")


@register("date_string")
def date_string_comparison(
    column: str, name: str | None = None, levels: list[str] | None = None, **_
) -> Comparison:
    """The birthdate levels (exact, swapped, one_digit, year_month, year) over a date in text.

    The column is parsed with :func:`matchers.birthdate.parse_birthdate` on the fly (once per
    distinct value per chunk); text that is no date counts as missing, as in the birthdate matcher.
    """

    def dates(frame: Frame) -> np.ndarray:
        return birthdate.standardise(pd.Series(column_of(frame, column)))["birth_date"].to_numpy()

    def missing(left: Frame, right: Frame) -> np.ndarray:
        return (dates(left) == 0) | (dates(right) == 0)

    all_levels = birthdate.date_levels(dates)
    return Comparison(
        name=name or column,
        columns=(column,),
        levels=select_levels(all_levels, DATE_STRING_LEVELS if levels is None else levels),
        missing=missing,
        params={"column": column},
    )
