"""Generic comparisons for fields without a Chinese-specific matcher (FEBRL-like Latin data).

The engine stores ``standardise_text(raw)`` as ``<field>_std``; each comparison here is told
which column to read. String similarities come from rapidfuzz's element-wise ``cpdist`` over
whole columns (C++, all cores, counting characters rather than bytes), never a per-pair loop.
"""
from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable
from functools import partial
from typing import Literal

import jellyfish
import numpy as np
import pandas as pd
from rapidfuzz.distance import OSA, JaroWinkler, Levenshtein
from rapidfuzz.process import cpdist

from matchers import birthdate
from matchers.base import (
    Comparison,
    Frame,
    Level,
    LevelTest,
    Pairs,
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
# Phonetic codes for Latin-script words (English-like names, pinyin): jellyfish's encoders.
PHONETIC: dict[str, Callable[[str], str]] = {
    "nysiis": jellyfish.nysiis,
    "metaphone": jellyfish.metaphone,
    "soundex": jellyfish.soundex,
    "match_rating": jellyfish.match_rating_codex,
}
Phonetic = Literal["nysiis", "metaphone", "soundex", "match_rating"]
_WORD_BREAK = re.compile(r"[\s\-.]+")
_LATIN_WORD = re.compile(r"[a-z]+")


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


def _strings(pairs: Pairs, column: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Both sides' column as object arrays of str ('' where blank) and their blank masks."""

    def read() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        out = []
        for frame in (pairs.left, pairs.right):
            values = column_of(frame, column, object).copy()
            blank = is_blank(values)
            values[blank] = ""
            out += [values, blank]
        return tuple(out)

    return pairs.memo(("strings", column), read)


def _score(a: np.ndarray, b: np.ndarray, scorer: Callable) -> np.ndarray:
    try:
        return cpdist(a, b, scorer=scorer, workers=cpdist_workers(len(a)), dtype=np.float64)
    except TypeError:  # a non-text value slipped into the column: compare its text
        return cpdist(a.astype(str), b.astype(str), scorer=scorer, workers=cpdist_workers(len(a)),
                      dtype=np.float64)


def _pairwise(column: str, scorer: Callable, keep: Callable[[np.ndarray], np.ndarray]) -> LevelTest:
    """A level test that scores aligned rows with rapidfuzz and keeps scores passing ``keep``."""

    def test(pairs: Pairs, rows: np.ndarray) -> np.ndarray:
        a, blank_a, b, blank_b = (x[rows] for x in _strings(pairs, column))
        if not len(a):
            return np.zeros(0, dtype=bool)
        scores = _score(a, b, scorer)
        return keep(scores) & ~blank_a & ~blank_b

    return test


def phonetic_code(value: object, encode: Callable[[str], str]) -> str | None:
    """Each word's code, joined by spaces; None unless every word is Latin letters.

    Accents and pinyin tone marks are dropped first (zhāng -> zhang, lü -> lu); text with any
    other script (a name in characters) has no code, so it never agrees phonetically.
    """
    if not isinstance(value, str):
        return None
    plain = "".join(c for c in unicodedata.normalize("NFKD", value.lower())
                    if not unicodedata.combining(c) and c not in "'\u2019")  # o'brien: obrien
    words = [w for w in _WORD_BREAK.split(plain) if w]
    if not words or not all(_LATIN_WORD.fullmatch(w) for w in words):
        return None
    return " ".join(encode(w) for w in words)


def _same_sound(column: str, encode: Callable[[str], str]) -> LevelTest:
    """A level test: the two values have the same phonetic code (each distinct value coded once)."""

    def test(pairs: Pairs, rows: np.ndarray) -> np.ndarray:
        a, b = (x[rows] for x in pairs.sides(column))
        codes = per_distinct(pd.Series(np.concatenate([a, b])),
                             lambda v: phonetic_code(v, encode)).to_numpy()
        code_a, code_b = codes[:len(a)], codes[len(a):]
        return (code_a == code_b) & ~is_blank(code_a)

    return test


@register("string")
def string_comparison(
    column: str,
    name: str | None = None,
    levels: list[str] | None = None,
    high: float = 0.92,
    low: float = 0.80,
    metric: str = "jaro_winkler",
    phonetic: Phonetic | None = None,
) -> Comparison:
    """exact, <metric>_high (similarity >= high), <metric>_low (>= low), different.

    ``phonetic`` (nysiis, metaphone, soundex or match_rating; off by default) adds a level
    ``phonetic`` after exact: the same jellyfish code for Latin or pinyin spellings of a name
    spelt by ear (stephen/steven, wang/wong, zhāng/zhang); text in characters has no code.
    """
    if metric not in _METRICS:
        raise ValueError(f"unknown metric {metric!r}; known: {', '.join(_METRICS)}")
    if phonetic is not None and phonetic not in PHONETIC:
        raise ValueError(f"unknown phonetic code {phonetic!r}; known: {', '.join(PHONETIC)}")
    scorer = _METRICS[metric]
    sound = (Level("phonetic", _same_sound(column, PHONETIC[phonetic]), f"same {phonetic} code"),
             ) if phonetic else ()
    params = {"column": column, "high": high, "low": low, "metric": metric}
    return Comparison(
        name=name or column,
        columns=(column,),
        levels=select_levels(
            (
                Level("exact", equal(column), "identical text"),
                *sound,
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
        params=params | {"phonetic": phonetic} if phonetic else params,
    )


@register("exact")
def exact_comparison(
    column: str, name: str | None = None, levels: list[str] | None = None
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
    column: str, name: str | None = None, levels: list[str] | None = None
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
    column: str, name: str | None = None, levels: list[str] | None = None
) -> Comparison:
    """The birthdate levels (exact, swapped, one_digit, year_month, year) over a date in text.

    The column is parsed with :func:`matchers.birthdate.parse_birthdate` once per distinct value
    per batch; text that is no date counts as missing, as in the birthdate matcher.
    """

    def dates(frame: Frame) -> np.ndarray:
        return birthdate.standardise(pd.Series(column_of(frame, column)))["birth_date"].to_numpy()

    return Comparison(
        name=name or column,
        columns=(column,),
        levels=select_levels(birthdate.date_levels(),
                             DATE_STRING_LEVELS if levels is None else levels),
        missing=birthdate.dates_missing,
        params={"column": column},
        features=partial(birthdate.Dates, dates=dates),
    )
