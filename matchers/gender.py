"""Gender as 'M', 'F' or None from the spellings rosters use (男/女, 1/2, M/F, male/female).

The codes 1/2 follow GB/T 2261.1 (1 male, 2 female, 0 unknown, 9 unspecified); a disagreement
is strong evidence against a match, so anything unclear becomes None rather than a guess.
"""
from __future__ import annotations

import math
import unicodedata

import numpy as np
import pandas as pd

from matchers.base import (
    Comparison,
    Level,
    either_missing,
    equal,
    per_distinct,
    register,
    select_levels,
)

_MALE = {"男", "男性", "男士", "男孩", "1", "m", "male", "man", "boy"}
_FEMALE = {"女", "女性", "女士", "女孩", "2", "f", "female", "woman", "girl"}


def parse_gender(value: object) -> str | None:
    """'M', 'F' or None (blank, 未知, 0, 9 or anything unrecognised); never raises."""
    if value is None or isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, np.integer)):
        value = str(int(value))
    elif isinstance(value, (float, np.floating)):
        if not math.isfinite(value) or value != int(value):
            return None
        value = str(int(value))
    if not isinstance(value, str):
        return None
    text = "".join(unicodedata.normalize("NFKC", value).split()).lower().rstrip(".")
    if text.endswith(".0"):  # a code read back from a float column
        text = text[:-2]
    if text in _MALE:
        return "M"
    if text in _FEMALE:
        return "F"
    return None


def standardise(series: pd.Series) -> pd.DataFrame:
    """Column ``gender`` per row, parsing each distinct value once."""
    return pd.DataFrame({"gender": per_distinct(series, parse_gender)}, index=series.index)


@register("gender")
def gender_comparison(levels: list[str] | None = None) -> Comparison:
    """'equal' or 'different'; missing where either side is unknown."""
    return Comparison(
        name="gender",
        columns=("gender",),
        levels=select_levels((Level("equal", equal("gender"), "same gender"),), levels),
        missing=either_missing("gender"),
    )
