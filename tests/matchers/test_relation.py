from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matchers import base
from matchers.relation import ROLES, parse_relation, standardise


@pytest.mark.parametrize(
    "raw, role",
    [
        ("户主", "head"), ("本人", "head"), (" 户 主 ", "head"), ("户主本人", "head"),
        ("配偶", "spouse"), ("妻", "spouse"), ("夫", "spouse"), ("妻子", "spouse"),
        ("丈夫", "spouse"),
        ("户主之妻", "spouse"), ("之妻", "spouse"), ("爱人", "spouse"),
        ("长子", "child"), ("次子", "child"), ("三子", "child"), ("子", "child"), ("儿子", "child"),
        ("女", "child"), ("女儿", "child"), ("长女", "child"), ("次女", "child"), ("四女", "child"),
        ("养子", "child"), ("户主的儿子", "child"), ("与户主关系:子", "child"),
        ("孙子", "grandchild"), ("孙女", "grandchild"), ("外孙", "grandchild"),
        ("外孙女", "grandchild"), ("长孙", "grandchild"), ("曾孙", "grandchild"),
        ("父亲", "parent"), ("母亲", "parent"), ("父", "parent"), ("母", "parent"),
        ("公公", "parent"), ("婆婆", "parent"), ("岳母", "parent"),
        ("兄", "sibling"), ("弟", "sibling"), ("姐", "sibling"), ("妹", "sibling"),
        ("兄弟", "sibling"),
        # children-in-law are 'other' (a married daughter is 女 at home, 儿媳 in her husband's)
        ("儿媳", "other"), ("儿媳妇", "other"), ("女婿", "other"), ("嫂子", "other"),
        ("祖母", "other"), ("侄子", "other"), ("表弟", "other"), ("其他", "other"),
        ("非亲属", "other"),
        # GB/T 4761 two-digit codes
        ("01", "head"), ("02", "head"), ("10", "spouse"), ("11", "spouse"), ("12", "spouse"),
        ("20", "child"), ("22", "child"), ("27", "child"), ("28", "other"), ("30", "child"),
        ("38", "other"), ("40", "grandchild"), ("44", "grandchild"), ("45", "other"),
        ("51", "parent"), ("54", "parent"), ("61", "other"), ("71", "sibling"), ("72", "other"),
        ("77", "sibling"), ("80", "other"), ("93", "other"), ("99", "other"), ("０２", "head"),
        # numbers lost their leading zero in Excel: read as two-digit codes
        (1, "head"), (2, "head"), (10, "spouse"), (20.0, "child"), ("20.0", "child"), (0, "head"),
        # one-digit GB/T 4761 codes as text
        ("0", "head"), ("1", "spouse"), ("2", "child"), ("3", "child"), ("4", "grandchild"),
        ("5", "parent"), ("6", "other"), ("7", "sibling"), ("8", "other"),
        # blank and unrecognisable
        (None, None), (float("nan"), None), ("", None), ("  ", None), ("9", None), ("00", None),
        ("100", None), (3, None), (1.5, None), (True, None), ("abc", None), ("未知", None),
        (pd.NA, None),
    ],
)
def test_parse_relation(raw, role):
    assert parse_relation(raw) == role


def test_standardise_keeps_index():
    out = standardise(pd.Series(["户主", "妻", None, "长子", "户主"], index=[3, 4, 5, 6, 7]))
    assert list(out.index) == [3, 4, 5, 6, 7]
    assert out["relation_std"].tolist() == ["head", "spouse", None, "child", "head"]


def test_registers_no_comparison():
    assert "relation" not in base._REGISTRY


@settings(max_examples=1000, deadline=None)
@given(st.one_of(st.text(),
                 st.text(alphabet="户主之的妻子女孙外长次三兄弟姐妹父母媳婿0123456789.",
                         max_size=6),
                 st.none(), st.floats(), st.integers()))
def test_never_raises(value):
    assert parse_relation(value) in ROLES + (None,)
