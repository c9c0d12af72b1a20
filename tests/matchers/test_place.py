from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matchers import make_comparison
from matchers.base import MISSING
from matchers.place import (
    chinese_number,
    parse_village,
    place_comparison,
    standardise_township,
    standardise_village,
    township_core,
)


@pytest.mark.parametrize(
    "raw, core",
    [
        ("努古斯台镇", "努古斯台"),
        ("宝龙山镇", "宝龙山"),
        (" 宝龙山 镇 ", "宝龙山"),
        ("宝龙山", "宝龙山"),
        ("巴彦塔拉苏木", "巴彦塔拉"),
        ("巴彦塔拉乡", "巴彦塔拉"),
        ("珠日河牧场", "珠日河牧场"),
        ("科左中旗宝龙山镇", "宝龙山"),
        ("科尔沁左翼中旗宝龙山镇人民政府", "宝龙山"),
        ("通辽市科尔沁区大林镇", "大林"),
        ("科尔沁区永清街道办事处", "永清"),
        ("科左中旗珠日河牧场", "珠日河牧场"),
        ("胜利满族乡", "胜利"),
        ("新区街道", "新区"),
        ("镇", None),
        ("", None),
        (None, None),
        (float("nan"), None),
        (12, None),
    ],
)
def test_township_core(raw, core):
    assert township_core(raw) == core


@pytest.mark.parametrize(
    "raw, village, group",
    [
        ("哈日干吐嘎查", "哈日干吐", None),
        ("哈日干吐村", "哈日干吐", None),
        ("哈日干吐嘎查村", "哈日干吐", None),
        ("哈日干吐噶查", "哈日干吐", None),
        ("哈日干吐嘎查三组", "哈日干吐", "3"),
        ("哈日干吐嘎查3组", "哈日干吐", "3"),
        ("哈日干吐村第三组", "哈日干吐", "3"),
        ("哈日干吐村3社", "哈日干吐", "3"),
        ("哈日干吐村第3村民小组", "哈日干吐", "3"),
        ("哈日干吐村十二组", "哈日干吐", "12"),
        ("哈日干吐村二十组", "哈日干吐", "20"),
        ("哈日干吐村九十九组", "哈日干吐", "99"),
        ("哈日干吐村０３组", "哈日干吐", "3"),
        ("哈日干吐 嘎查 三组", "哈日干吐", "3"),
        ("哈日干吐村民委员会", "哈日干吐", None),
        ("努古斯台镇哈日干吐嘎查三组", "哈日干吐", "3"),
        ("科左中旗努古斯台镇哈日干吐村", "哈日干吐", None),
        ("珠日河牧场三分场", "三分场", None),
        ("三分场", "三分场", None),
        ("光明社区居委会", "光明社区", None),
        ("光明社区", "光明社区", None),
        ("新乡村", "新乡", None),
        ("宝龙山镇新村", "新", None),
        ("三组", None, "3"),
        ("村", None, None),
        ("", None, None),
        (None, None, None),
        (3.0, None, None),
    ],
)
def test_parse_village(raw, village, group):
    assert parse_village(raw) == {"village_norm": village, "village_group": group}


@pytest.mark.parametrize("text, number", [
    ("三", 3), ("十", 10), ("十三", 13), ("二十", 20), ("二十三", 23), ("九十九", 99), ("两", 2),
    ("一〇", 10), ("07", 7), ("十十", None), ("", None), ("x", None),
])
def test_chinese_number(text, number):
    assert chinese_number(text) == number


def test_standardisers_keep_index():
    towns = pd.Series(["宝龙山镇", None, "宝龙山镇"], index=[7, 8, 9])
    assert standardise_township(towns).to_dict("list") == {
        "township_norm": ["宝龙山", None, "宝龙山"]}
    assert list(standardise_township(towns).index) == [7, 8, 9]
    villages = standardise_village(pd.Series(["哈日干吐嘎查三组", None], index=["a", "b"]))
    assert list(villages.index) == ["a", "b"]
    assert villages.to_dict("list") == {
        "village_norm": ["哈日干吐", None], "village_group": ["3", None]
    }


def _frame(rows):
    towns = standardise_township(pd.Series([t for t, _ in rows], dtype=object))
    villages = standardise_village(pd.Series([v for _, v in rows], dtype=object))
    return pd.concat([towns, villages], axis=1)


@pytest.mark.parametrize(
    "left, right, label",
    [
        (("努古斯台镇", "哈日干吐嘎查"), ("努古斯台苏木", "哈日干吐村三组"), "same_village"),
        ((None, "哈日干吐嘎查"), ("努古斯台镇", "哈日干吐村"), "same_village"),
        (("努古斯台镇", "哈日干吐嘎查"), ("努古斯台镇", "巴彦嘎查"), "same_township"),
        (("努古斯台镇", None), ("努古斯台镇", "巴彦嘎查"), "same_township"),
        (("努古斯台镇", "新村"), ("宝龙山镇", "新村"), "different"),  # common village names repeat
        (("努古斯台镇", "哈日干吐嘎查"), ("宝龙山镇", "巴彦嘎查"), "different"),
        ((None, "哈日干吐嘎查"), ("宝龙山镇", None), "different"),
        ((None, None), ("宝龙山镇", "巴彦嘎查"), MISSING),
        (("", "  "), ("宝龙山镇", "巴彦嘎查"), MISSING),
        (("宝龙山镇", "巴彦嘎查"), (None, "三组"), MISSING),
    ],
)
def test_levels(left, right, label):
    comparison = place_comparison()
    out = comparison.compare(_frame([left]), _frame([right]))[0]
    assert (out if label == MISSING else comparison.labels[out]) == label


def test_registration():
    comparison = make_comparison("place")
    assert comparison.name == "place"
    assert comparison.columns == ("township_norm", "village_norm")
    assert comparison.labels == ("same_village", "same_township", "different")


PLACE_TEXT = st.text(alphabet="苏木乡镇街道嘎查村分场社区组第一二三十0123 旗县市区民委员会牧",
                     max_size=15)


@settings(max_examples=1000, deadline=None)
@given(st.one_of(st.text(), PLACE_TEXT, st.none(), st.floats(), st.integers()))
def test_never_raises(value):
    core = township_core(value)
    assert core is None or (isinstance(core, str) and core)
    parsed = parse_village(value)
    village = parsed["village_norm"]
    assert village is None or (isinstance(village, str) and village)
    assert parsed["village_group"] is None or parsed["village_group"].isdigit()
