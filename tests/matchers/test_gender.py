from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matchers import make_comparison
from matchers.base import MISSING
from matchers.gender import gender_comparison, parse_gender, standardise


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("男", "M"), ("女", "F"), ("男性", "M"), ("女性", "F"), (" 男 ", "M"), ("男 性", "M"),
        ("1", "M"), ("2", "F"), ("１", "M"), ("２", "F"), (1, "M"), (2, "F"), (1.0, "M"),
        ("2.0", "F"),
        (np.int64(2), "F"), ("M", "M"), ("F", "F"), ("m", "M"), ("f", "F"), ("Ｍ", "M"),
        ("male", "M"), ("Female", "F"), ("FEMALE", "F"),
        (None, None), (float("nan"), None), ("", None), ("  ", None),
        ("未知", None), ("不详", None),
        ("0", None), ("9", None), (0, None), (9, None), (1.5, None), (True, None), ("3", None),
        ("男女", None), ("x", None), (pd.NA, None),
    ],
)
def test_parse_gender(raw, expected):
    assert parse_gender(raw) == expected


def test_standardise_once_per_value_keeps_index():
    out = standardise(pd.Series(["男", "2", None, "男", "未知"], index=list("abcde")))
    assert list(out.columns) == ["gender"]
    assert list(out.index) == list("abcde")
    assert out["gender"].tolist() == ["M", "F", None, "M", None]


@pytest.mark.parametrize(
    "left, right, label",
    [("男", "1", "equal"), ("女", "F", "equal"), ("男", "女", "different"), ("2", "M", "different"),
     ("男", None, MISSING), ("未知", "女", MISSING), (None, None, MISSING)],
)
def test_levels(left, right, label):
    comparison = gender_comparison()
    out = comparison.compare(standardise(pd.Series([left], dtype=object)),
                             standardise(pd.Series([right], dtype=object)))[0]
    assert (out if label == MISSING else comparison.labels[out]) == label


def test_registration():
    comparison = make_comparison("gender")
    assert comparison.name == "gender"
    assert comparison.columns == ("gender",)
    assert comparison.labels == ("equal", "different")


@settings(max_examples=1000, deadline=None)
@given(st.one_of(st.text(), st.none(), st.floats(), st.integers(),
                 st.sampled_from(["男", "女", "1", "2"])))
def test_parse_never_raises(value):
    assert parse_gender(value) in ("M", "F", None)
