from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matchers import hanzi, make_comparison
from matchers.base import MISSING
from matchers.person_name import (
    COLUMNS,
    chinese_name_comparison,
    name_frequencies,
    name_key,
    name_pinyin,
    normalise_name,
    split_name,
    standardise,
)

LABELS = (
    "exact", "normalised", "pinyin", "phonetic", "lookalike", "one_edit", "surname_dropped",
    "truncated", "swapped", "pinyin_high", "pinyin_low", "different",
)  # fmt: skip
STRONG = {"exact", "normalised", "pinyin", "phonetic", "lookalike"}


def levels_of(pairs: list[tuple[object, object]], **params) -> list[str | int]:
    comparison = chinese_name_comparison(**params)
    left = standardise(pd.Series([p[0] for p in pairs], dtype=object))
    right = standardise(pd.Series([p[1] for p in pairs], dtype=object))
    out = comparison.compare(left, right)
    return [MISSING if i == MISSING else comparison.labels[i] for i in out]


# --- normalising ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("张伟", "张伟"), (" 张 伟 ", "张伟"), ("张\u3000伟", "张伟"), ("張偉", "張偉"),
        ("包·巴特尔", "包·巴特尔"), ("包•巴特尔", "包·巴特尔"), ("包．巴特尔", "包·巴特尔"),
        ("包・巴特尔", "包·巴特尔"), ("包‧巴特尔", "包·巴特尔"), ("包∙巴特尔", "包·巴特尔"),
        ("包⋅巴特尔", "包·巴特尔"), ("包.巴特尔", "包·巴特尔"), ("包\uff65巴特尔", "包·巴特尔"),
        ("包 · 巴特尔", "包·巴特尔"), ("包··巴特尔", "包·巴特尔"), ("·包巴特尔·", "包巴特尔"),
        ("张\u200b伟", "张伟"), ("ＺＨＡＮＧ", "ZHANG"), ("乾隆", "乾隆"), ("李昇", "李昇"),
        (None, None), (float("nan"), None), (pd.NA, None), ("", None), ("   ", None), ("·", None),
        (123, "123"), (b"\xe5\xbc\xa0\xe4\xbc\x9f", "张伟"), ("张伟".encode("gb18030"), "张伟"),
    ],
)  # fmt: skip
def test_normalise_name(raw, expected):
    assert normalise_name(raw) == expected


@pytest.mark.parametrize(
    "left, right",
    [
        ("張偉", "张伟"), ("张 伟", "张伟"), ("包·巴特尔", "包巴特尔"), ("包•巴特尔", "包巴特尔"),
        ("閻明", "闫明"), ("阎明", "闫明"), ("蕭紅", "肖红"), ("於丽", "于丽"), ("锺华", "钟华"),
        ("嶽飛", "岳飞"), ("李彥", "李彦"), ("瀋陽", "沈阳"), ("甯静", "宁静"),
    ],
)  # fmt: skip
def test_name_key_folds_forms(left, right):
    assert name_key(left) == name_key(right)


def test_opencc_never_changes_the_stored_name():
    out = standardise(pd.Series(["乾隆", "李昇", "於梅"]))
    assert out["name_raw"].tolist() == ["乾隆", "李昇", "於梅"]
    assert out["name_norm"].tolist() == ["乾隆", "李昇", "於梅"]
    assert out["name_key"].tolist() == ["干隆", "李升", "于梅"]


@pytest.mark.parametrize(
    "raw, surname, given_name",
    [
        ("张伟", "张", "伟"), ("欧阳明华", "欧阳", "明华"), ("司马光", "司马", "光"),
        ("诸葛亮", "诸葛", "亮"), ("尉迟恭", "尉迟", "恭"), ("上官婉儿", "上官", "婉儿"),
        ("包·巴特尔", "包", "巴特尔"), ("包巴特尔", "包", "巴特尔"), ("巴特尔", None, "巴特尔"),
        ("乌力吉巴雅尔", None, "乌力吉巴雅尔"), ("其木格", None, "其木格"), ("張偉", "张", "伟"),
        ("王", None, "王"), ("欧阳", "欧", "阳"), (None, None, None),
    ],
)  # fmt: skip
def test_split_name(raw, surname, given_name):
    assert split_name(raw) == (surname, given_name)


@pytest.mark.parametrize(
    "raw, pinyin",
    [
        ("单雄信", "shan xiong xin"), ("曾国藩", "zeng guo fan"), ("区家麟", "ou jia lin"),
        ("仇英", "qiu ying"), ("解缙", "xie jin"), ("查良镛", "zha liang yong"),
        ("翟志刚", "zhai zhi gang"), ("覃小明", "qin xiao ming"), ("朴树", "piao shu"),
        ("盖聂", "ge nie"), ("乐嘉", "yue jia"), ("尉迟恭", "yu chi gong"),
        ("万俟卨", "mo qi xie"), ("长孙无忌", "zhang sun wu ji"), ("黑明", "he ming"),
        ("王单", "wang dan"), ("张曾", "zhang ceng"),  # not at the surname position: default
        ("包·巴特尔", "bao ba te er"), ("张 伟", "zhang wei"), (None, None),
    ],
)  # fmt: skip
def test_pinyin_reads_surnames_as_surnames(raw, pinyin):
    assert name_pinyin(raw) == pinyin


@pytest.mark.parametrize("a, b", [
    ("己", "已"), ("戊", "戌"), ("候", "侯"), ("未", "末"), ("土", "士"),
])
def test_four_corner_look_alikes(a, b):
    assert hanzi.looks_alike(a, b)


@pytest.mark.parametrize("a, b", [
    ("王", "李"), ("己", "己"), ("娜", "娟"), ("国", "军"), ("a", "b"),
])
def test_four_corner_not_alike(a, b):
    assert not hanzi.looks_alike(a, b)


def test_fold_codebook_is_readable_and_stable():
    folded = standardise(pd.Series(["巴特尔", "巴图尔"]))["name_fold"]
    assert folded[0] == folded[1]
    assert hanzi.describe_fold(folded[0]) == "B-A D-E L-E"
    assert hanzi.fold_syllable("dun") == hanzi.fold_syllable("deng")


def test_standardise_columns_index_and_minority():
    out = standardise(pd.Series(["张伟", "包·巴特尔", None, "张伟", "巴特尔", "巴图"],
                                index=list("abcdef")))
    assert list(out.columns) == COLUMNS
    assert list(out.index) == list("abcdef")
    assert out["name_minority"].tolist() == [False, True, False, False, True, False]
    assert out.loc["c"].drop("name_minority").isna().all()


def test_standardise_unhashable_cells():
    out = standardise(pd.Series([["张伟"], "张伟"], dtype=object))
    assert out["name_key"].iloc[1] == "张伟"


def test_name_frequencies():
    freq = name_frequencies(pd.Series(["张伟", "张伟", "李娜", None, ""]))
    assert freq["张伟"] == pytest.approx(2 / 3)
    assert freq["李娜"] == pytest.approx(1 / 3)
    assert "" not in freq.index


# --- comparing -----------------------------------------------------------------------------

LEVEL_CASES = [
    ("张伟", "张伟", "exact"),
    ("包·巴特尔", "包·巴特尔", "exact"),
    ("張偉", "张伟", "normalised"),
    ("张 伟", "张伟", "normalised"),
    ("包·巴特尔", "包•巴特尔", "normalised"),
    ("包·巴特尔", "包巴特尔", "normalised"),
    ("包•巴特尔", "包巴特尔", "normalised"),
    ("阎明", "闫明", "normalised"),
    ("王丽", "王莉", "pinyin"),
    ("刘洋", "刘阳", "pinyin"),
    ("王建国", "王健国", "pinyin"),
    ("巴特勒", "巴特雷", "pinyin"),  # 勒 le/lei
    ("巴特尔", "巴特儿", "pinyin"),  # 尔/儿 are true homophones, so pinyin claims them first
    ("单雄信", "善雄信", "pinyin"),  # surname 单 read shan
    ("巴特尔", "巴图尔", "phonetic"),
    ("巴图尔", "巴特儿", "phonetic"),
    ("其木格", "其米格", "phonetic"),
    ("额尔敦", "额尔登", "phonetic"),
    ("其力嘎", "其贺力嘎", "phonetic"),
    ("包·巴特尔", "包巴图尔", "phonetic"),
    ("王己", "王已", "lookalike"),
    ("李戊生", "李戌生", "lookalike"),
    ("候明", "侯明", "pinyin"),  # look-alikes, but also homophones (hou): pinyin is stronger
    ("李未", "李末", "lookalike"),
    ("王建国", "王建军", "one_edit"),
    ("李娜", "李娟", "one_edit"),
    ("张伟伟", "张伟", "one_edit"),
    ("包·巴特尔", "巴特尔", "surname_dropped"),
    ("王建国", "建国", "surname_dropped"),
    ("欧阳明华", "明华", "surname_dropped"),
    ("乌力吉巴雅尔", "乌力吉巴", "truncated"),
    ("张明华", "张华明", "swapped"),
    ("欧阳明华", "欧阳华明", "swapped"),
    ("张晓明", "张小敏", "pinyin_high"),
    ("王建华", "王剑锋", "pinyin_low"),
    ("王芳", "李娜", "different"),
    ("巴特尔", "巴雅尔", "one_edit"),  # Baatar vs Bayar: not folded alike (e vs a)
    ("巴特尔", "其木格", "different"),
    ("张伟", None, MISSING),
    (None, None, MISSING),
    ("  ", "张伟", MISSING),
]


@pytest.mark.parametrize("left, right, label", LEVEL_CASES)
def test_levels(left, right, label):
    assert levels_of([(left, right)]) == [label]
    assert levels_of([(right, left)]) == [label]  # symmetric


def test_one_batch_gives_what_each_pair_alone_gives():
    # A batch shares its distinct names and cached distances across pairs and levels; that
    # must not change a pair's level (each pair alone is a batch of its own names).
    comparison = chinese_name_comparison()
    lefts, rights = [c[0] for c in LEVEL_CASES], [c[1] for c in LEVEL_CASES]
    left = standardise(pd.Series(lefts * 3, dtype=object))
    right = standardise(pd.Series(rights + rights[::-1] + rights[1:] + rights[:1], dtype=object))
    batch = comparison.compare(left, right)
    alone = [comparison.compare(left.iloc[[i]], right.iloc[[i]])[0] for i in range(len(left))]
    assert batch.dtype == np.int8
    np.testing.assert_array_equal(batch, alone)
    assert len(set(batch.tolist())) == len(LABELS) + 1  # every level, and missing


@pytest.mark.parametrize(
    "left, right",
    [
        ("王建国", "王建军"), ("李娜", "李娟"), ("王秀英", "王秀兰"), ("张文杰", "张文静"),
        ("刘志强", "刘志刚"), ("陈晨", "陈曦"), ("赵磊", "赵鑫"), ("杨欢", "杨乐"),
        ("孙悦", "孙阳"), ("周敏", "周静"), ("吴昊", "吴天"), ("黄佳怡", "黄佳琪"),
    ],
)  # fmt: skip
def test_twins_one_character_apart_stay_weak(left, right):
    (label,) = levels_of([(left, right)])
    assert label not in STRONG


@pytest.mark.parametrize(
    "left, right",
    [("王芳", "李娜"), ("张伟", "刘洋"), ("陈静", "杨磊"), ("赵敏", "孙强"), ("周杰", "吴昊")],
)
def test_common_names_different_in_sound(left, right):
    assert levels_of([(left, right)])[0] in {"different", "pinyin_low"}


def test_han_three_character_names_never_phonetic():
    # The same folded syllables, but Han names: the phonetic level must not apply.
    assert levels_of([("张明华", "张敏华")]) == ["one_edit"]
    assert levels_of([("王明华", "王民花")])[0] not in STRONG


def test_registered_comparison():
    comparison = make_comparison("chinese_name")
    assert comparison.name == "name"
    assert comparison.labels == LABELS
    assert comparison.tf_column == "name_key"
    assert comparison.tf_levels == ("exact", "normalised")
    subset = chinese_name_comparison(levels=["exact", "pinyin", "one_edit"])
    assert subset.labels == ("exact", "pinyin", "one_edit", "different")
    assert levels_of([("王丽", "王莉"), ("李娜", "李娟")], levels=["exact", "one_edit"]) == [
        "one_edit",
        "one_edit",
    ]


def test_thresholds_are_parameters():
    assert levels_of([("王建华", "王剑锋")], pinyin_high=0.8) == ["pinyin_high"]
    assert levels_of([("王建华", "王剑锋")], pinyin_low=0.95, pinyin_high=0.99) == ["different"]


def test_renamed_comparison_gives_the_same_levels():
    renamed = make_comparison("chinese_name", name="name2")
    pairs = [c[:2] for c in LEVEL_CASES]
    left = standardise(pd.Series([p[0] for p in pairs], dtype=object))
    right = standardise(pd.Series([p[1] for p in pairs], dtype=object))
    expected = chinese_name_comparison().compare(left, right)
    np.testing.assert_array_equal(renamed.compare(left, right), expected)


# --- properties ----------------------------------------------------------------------------

names = st.one_of(st.none(), st.text())
separators = st.sampled_from([" ", "·", "•", "．", "・", "\u3000", "."])


@settings(max_examples=1000, deadline=None)
@given(names)
def test_public_functions_accept_anything(value):
    normalise_name(value)
    name_key(value)
    split_name(value)
    name_pinyin(value)


@settings(max_examples=1000, deadline=None)
@given(st.lists(names, max_size=6), st.lists(names, max_size=6))
def test_standardise_and_compare_accept_anything(left_values, right_values):
    size = min(len(left_values), len(right_values))
    left = standardise(pd.Series(left_values[:size], dtype=object))
    right = standardise(pd.Series(right_values[:size], dtype=object))
    out = chinese_name_comparison().compare(left, right)
    assert len(out) == size
    assert set(out.tolist()) <= set(range(-1, len(LABELS)))


@settings(max_examples=1000, deadline=None)
@given(names)
def test_normalisation_is_idempotent(value):
    once = normalise_name(value)
    assert normalise_name(once) == once
    if once is not None:
        assert name_key(once) == name_key(value)
        assert name_key(name_key(value)) == name_key(value)


@settings(max_examples=1000, deadline=None)
@given(st.text(min_size=1), st.lists(st.tuples(st.integers(0, 40), separators), max_size=4))
def test_key_ignores_inserted_spaces_and_dots(name, inserts):
    spaced = name
    for position, separator in inserts:
        position = min(position, len(spaced))
        spaced = spaced[:position] + separator + spaced[position:]
    assert name_key(spaced) == name_key(name)


# Plain ideographs, with traditional forms, variant classes and heteronym surnames among them.
_HAN_NAME_CHARS = ("王李张張陈陳刘劉闫阎萧肖于於单曾区仇解查翟覃缪朴"
                   "欧阳陽司马馬乾昇伟偉芳巴特尔爾㐀䶵鿿")


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet=_HAN_NAME_CHARS, min_size=1, max_size=6))
def test_the_plain_ideograph_fast_path_parses_as_the_general_path(name):
    from matchers.person_name import _parse, _parse_general

    assert _parse(name) == _parse_general(name)


def test_pinyin_blocking_parts_split_at_the_surname():
    out = standardise(pd.Series(["单田芳", "欧阳修", "包·巴特尔", "巴特尔", None]))
    assert out["surname_pinyin"].tolist() == ["shan", "ou yang", "bao", None, None]
    assert out["given_pinyin"].tolist() == ["tian fang", "xiu", "ba te er", "ba te er", None]
    assert out["name_initials"].tolist() == ["stf", "oyx", "bbte", "bte", None]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.frozensets(st.sampled_from(["le", "lei", "li", "xing", "hang", "zhang",
                                                         "chang", "yue", "le5"]), max_size=3),
                         min_size=1, max_size=40), min_size=1, max_size=4))
def test_reading_set_overlap_grows_like_a_rebuild(batches):
    """The overlap matrix, grown set by set between lookups, equals set intersection."""
    from matchers.hanzi import ReadingSets

    sets = ReadingSets()
    for batch in batches:  # sets arrive over several checks, the matrix is read between them
        ids = [sets.han_id(fs) for fs in batch]
        matrix = sets.overlap()
        for a, fa in zip(ids, batch):
            for b, fb in zip(ids, batch):
                assert matrix[a, b] == bool(fa & fb)
    known = list(sets._sets)
    matrix = sets.overlap()
    for a, fa in enumerate(known):
        for b, fb in enumerate(known):
            assert matrix[a, b] == bool(fa & fb)
