"""Resident ID standardiser and comparison. All numbers are synthetic (check digits computed)."""
from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.iso7064 import mod_11_2

from matchers import make_comparison
from matchers.base import MISSING
from matchers.resident_id import (
    COLUMNS,
    STATUSES,
    birth_agrees,
    canonical_region,
    normalise_id,
    parse_id,
    region_codes,
    resident_id_comparison,
    standardise,
)


def make_id(region: str = "150521", birth: str = "19650312", seq: int = 17) -> str:
    body = f"{region}{birth}{seq:03d}"
    return body + mod_11_2.calc_check_digit(body)


def bad_check(number: str) -> str:
    """The same 17 characters with a check character that fails."""
    wrong = "0" if number[17] != "0" else "1"
    return number[:17] + wrong


ID = make_id()  # 150521 19650312 017 + check
PARENT = make_id("150521", "19680704", 31)


# --------------------------------------------------------------------------- normalise_id

@pytest.mark.parametrize(
    "raw, expected",
    [
        (ID, ID),
        (f"  {ID}\t", ID),
        ("".join(chr(ord(c) + 0xFEE0) for c in ID), ID),  # full-width digits
        ("15052119650312001x", "15052119650312001X"),
        ("15052119650312001ｘ", "15052119650312001X"),  # full-width lowercase x
        ("150521 1965 0312 0017", "150521196503120017"),
        ("150521-19650312-0017", "150521196503120017"),
        ("150521\u300019650312\u00a00017", "150521196503120017"),  # ideographic space, NBSP
        (f"'{ID}", ID),  # Excel's text apostrophe
        (f'="{ID}"', ID),
        ("150521650312001.0", "150521650312001"),
        (150521650312001, "150521650312001"),
        (150521650312001.0, "150521650312001"),
        (np.int64(150521650312001), "150521650312001"),
        ("1.50521e+17", "1.50521E+17"),
        ("abc", "ABC"),
    ],
)
def test_normalise_id_cleans(raw: object, expected: str) -> None:
    assert normalise_id(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [None, float("nan"), pd.NA, "", "   ", "无", "（无）", "0", "00", "000000000000000000",
     "111111111111111111", "8", "xxxxxx", "待补", "待补充", "不详", "未知", "暂无", "空", "没有",
     "NULL", "null", "None", "nan", "N/A", "#N/A", "-", "--", "/", "——", "*", "?", True],
)
def test_normalise_id_placeholders(raw: object) -> None:
    assert normalise_id(raw) is None
    assert parse_id(raw)["id_status"] == "missing"


# --------------------------------------------------------------------------- parse_id

FEB30 = "150521196502300012"
FEB30 = FEB30[:17] + mod_11_2.calc_check_digit(FEB30[:17])


@pytest.mark.parametrize(
    "raw, status, norm, birth, gender, region, partial",
    [
        (ID, "valid", ID, 19650312, "M", "150521", None),
        # 150521 did not exist in 1965 (哲里木盟 then); the number is still real and valid.
        (make_id("150521", "19650312", 12), "valid", make_id("150521", "19650312", 12), 19650312,
         "F", "150521", None),
        (make_id("152322", "19650312", 13), "valid", make_id("152322", "19650312", 13), 19650312,
         "M", "152322", None),
        ("150521650312017", "upgraded", ID, 19650312, "M", "150521", None),
        (bad_check(ID), "bad_check", bad_check(ID), 19650312, "M", "150521", None),
        (FEB30, "bad_date", FEB30, 0, "M", "150521", None),
        (make_id("150521", "20990101", 1), "bad_date", make_id("150521", "20990101", 1), 0, "M",
         "150521", None),
        (make_id("150521", "18991231", 2), "bad_date", make_id("150521", "18991231", 2), 0, "F",
         "150521", None),
        # 15 digits implying an age over 100 in 2026 is not trusted
        ("150521200101017", "bad_date", make_id("150521", "19200101", 17), 0, "M", "150521", None),
        ("150521650230017", "bad_date", make_id("150521", "19650230", 17), 0, "M", "150521", None),
        (make_id("999999", "19650312", 17), "bad_region", make_id("999999", "19650312", 17),
         19650312, "M", "999999", None),
        ("1.50521E+17", "excel_damaged", None, 0, None, "150521", "150521"),
        ("1.50521e17", "excel_damaged", None, 0, None, "150521", "150521"),
        ("1,50521E+17", "excel_damaged", None, 0, None, "150521", "150521"),
        ("1.50521196503E+17", "excel_damaged", None, 0, None, "150521", "150521196503"),
        ("1.5052165031E+14", "excel_damaged", None, 0, None, "150521", "1505211965031"),
        ("1.50521650312E+14", "excel_damaged", None, 19650312, None, "150521",
         "15052119650312"),
        (1.50521196503120017e17, "excel_damaged", None, 19650312, None, "150521",
         "150521196503120"),
        ("150521196503120000", "excel_damaged", None, 19650312, None, "150521", "150521196503120"),
        ("ABC", "malformed", None, 0, None, None, None),
        (ID[:17], "malformed", None, 0, None, None, None),
        (ID[:16], "malformed", None, 0, None, None, None),
        ("1505211965X3120017", "malformed", None, 0, None, None, None),
        ("150521********0017", "malformed", None, 0, None, None, None),
        ("1.5E+10", "malformed", None, 0, None, None, None),
        ("无", "missing", None, 0, None, None, None),
    ],
)
def test_parse_id(raw, status, norm, birth, gender, region, partial) -> None:
    assert parse_id(raw) == {"id_norm": norm, "id_status": status, "id_birth": birth,
                             "id_gender": gender, "id_region": region, "id_partial": partial}


def test_excel_damage_needs_a_failing_check() -> None:
    # A real number may end in 000 when its check digit happens to be 0.
    valid_000 = next(n for s in range(0, 1000, 100)
                     if (n := make_id("150521", "19650312", s)).endswith("000"))
    assert parse_id(valid_000)["id_status"] == "valid"


def test_region_table() -> None:
    codes = region_codes()
    assert {"150521", "150502", "152300", "152322", "152327", "110101"} <= codes
    assert "999999" not in codes
    assert region_codes() is codes  # parsed once


@pytest.mark.parametrize(
    "old, current",
    [("152301", "150502"), ("152321", "150502"), ("152322", "150521"), ("152323", "150522"),
     ("152324", "150523"), ("152325", "150524"), ("152326", "150525"), ("152327", "150526"),
     ("152302", "150581"), ("152300", "150500"), ("150521", "150521"), ("110101", "110101"),
     (None, None), ("15", None)],
)
def test_canonical_region(old, current) -> None:
    assert canonical_region(old) == current


def test_standardise_frame() -> None:
    raw = pd.Series([ID, None, "1.50521E+17", ID, "150521650312017", float("nan")],
                    index=[10, 11, 12, 13, 14, 15])
    out = standardise(raw)
    assert list(out.columns) == COLUMNS
    assert list(out.index) == [10, 11, 12, 13, 14, 15]
    assert out["id_birth"].dtype == np.int32
    assert list(out["id_status"]) == ["valid", "missing", "excel_damaged", "valid", "upgraded",
                                      "missing"]
    assert out.loc[14, "id_norm"] == ID


@pytest.mark.parametrize("dtype", ["object", "string"])
def test_standardise_odd_inputs(dtype: str) -> None:
    raw = pd.Series([ID, None, "无", ID], dtype=dtype)
    assert list(standardise(raw)["id_status"]) == ["valid", "missing", "missing", "valid"]
    odd = pd.Series([[ID], {"a": 1}, ID], dtype=object)  # unhashable cells do not break it
    assert list(standardise(odd)["id_status"]) == ["malformed", "malformed", "valid"]


# --------------------------------------------------------------------------- comparison

def frame(ids: list, births: list[int] | None = None, quality: list[str] | None = None):
    parsed = standardise(pd.Series(ids, dtype=object))
    parsed["birth_date"] = np.asarray(births or [0] * len(ids), dtype=np.int32)
    parsed["birth_quality"] = quality or ["exact" if b else "missing" for b in parsed["birth_date"]]
    return parsed


def level_of(left_id, right_id, left_birth=0, right_birth=0, left_q=None, right_q=None, **params):
    comparison = resident_id_comparison(**params)
    left = frame([left_id], [left_birth], [left_q] if left_q else None)
    right = frame([right_id], [right_birth], [right_q] if right_q else None)
    code = int(comparison.compare(left, right)[0])
    return "MISSING" if code == MISSING else comparison.labels[code]


SWAPPED = ID[:15] + ID[16] + ID[15] + ID[17]  # sequence digits 1 and 7 swapped
TYPO_SEQ = ID[:15] + "3" + ID[16:]            # one sequence digit mistyped
TYPO_BIRTH = ID[:13] + "3" + ID[14:]          # day 12 -> 13


@pytest.mark.parametrize(
    "left, right, left_birth, right_birth, expected",
    [
        (ID, ID, 19650312, 19650312, "exact_valid"),
        (ID, ID, 0, 0, "exact_valid"),
        (ID, ID, 19650300, 19650000, "exact_valid"),     # partial dates: known parts agree
        (ID, ID, 19650312, 19650315, "exact_valid"),     # a few days off: lunar tolerance
        (ID, ID, 19651203, 19650312, "exact_valid"),     # day and month swapped
        (ID, "150521650312017", 19650312, 19650312, "exact_upgraded"),
        ("150521650312017", "150521650312017", 0, 0, "exact_upgraded"),
        (bad_check(ID), bad_check(ID), 19650312, 0, "exact_flagged"),
        (ID, bad_check(ID), 19650312, 19650312, "check_digit_only"),
        (ID, SWAPPED, 19650312, 19650312, "one_digit"),
        (ID, TYPO_SEQ, 19650312, 0, "one_digit"),
        # a typo in the birth digits is forgiven where the records' birthdates agree with their
        # own IDs or with the well-formed one: the mistyped side's record says 1965-03-12, its ID
        # 1965-03-13 (see test_strict_birth_tolerance)
        (ID, TYPO_BIRTH, 19650312, 19650312, "one_digit"),      # within the lunar tolerance
        (ID, "150521196503220017", 19650312, 19650312, "different"),
        ("150521196503120000", ID, 19650312, 19650312, "excel_partial"),
        ("1.50521196503E+17", ID, 0, 19650312, "excel_partial"),
        ("1.50521E+17", "1.50521196503E+17", 0, 0, "excel_partial"),
        ("1.50521E+17", make_id("150522", "19650312", 17), 0, 0, "different"),
        # the hard negative: a child's record carrying the parent's ID
        (PARENT, PARENT, 19680704, 20050916, "exact_birth_conflict"),
        (PARENT, bad_check(PARENT), 19680704, 20050916, "exact_birth_conflict"),
        (PARENT, PARENT, 0, 20050000, "exact_birth_conflict"),
        (ID, PARENT, 19650312, 19680704, "different"),
        (ID, make_id("150521", "19650312", 19), 19650312, 19650312, "different"),  # twins
        # a namesake born the same day in 科右中旗: an ID keeps the region it was issued in
        (ID, make_id("152222", "19650312", 17), 19650312, 19650312, "other_region"),
        (make_id("152222", "19820801", 713), make_id("150581", "19820801", 109),
         19820801, 19820801, "other_region"),
        # 哲里木盟's code of the same banner (152322 is today's 150521): renumbered, one region
        (ID, make_id("152322", "19650312", 45), 19650312, 19650312, "different"),
        # a number failing its check says less than a valid one
        (ID, bad_check(make_id("152222", "19650312", 17)), 19650312, 19650312, "different"),
        (ID, None, 19650312, 0, "MISSING"),
        ("无", ID, 0, 0, "MISSING"),
        ("ABC", ID, 0, 0, "MISSING"),
        ("1.505E+17", ID, 0, 0, "MISSING"),  # only 4 surviving digits: no usable ID
        (None, None, 0, 0, "MISSING"),
    ],
)
def test_comparison_levels(left, right, left_birth, right_birth, expected) -> None:
    assert level_of(left, right, left_birth, right_birth) == expected
    assert level_of(right, left, right_birth, left_birth) == expected  # symmetric


def test_strict_birth_tolerance() -> None:
    assert level_of(ID, ID, 19650312, 19650315, birth_tolerance_days=0) == "exact_birth_conflict"
    # The mistyped number fails its check character and both records say the well-formed
    # number's date (谢媛敏 keyed 19800805 in her ID, 1980-03-05 on both forms): one typo.
    assert level_of(ID, TYPO_BIRTH, 19650312, 19650312, birth_tolerance_days=0) == "one_digit"
    # ... but not when the mistyped side's record gives yet another date
    assert level_of(ID, TYPO_BIRTH, 19650312, 19650320, birth_tolerance_days=0) == "different"
    # ... nor a parent's number mistyped on a child's record
    parent_typo = PARENT[:13] + "5" + PARENT[14:]
    assert level_of(PARENT, parent_typo, 19680704, 20050916, birth_tolerance_days=0) == (
        "different")
    assert level_of(ID, ID, 19650300, 19650312, birth_tolerance_days=0) == "exact_valid"


def test_lunar_birthday_across_new_year() -> None:
    # Solar 1965-01-20 is lunar 1964-12-18; an elderly villager writes the lunar date.
    number = make_id("150521", "19650120", 17)
    assert level_of(number, number, 19641218, 0) == "exact_valid"
    assert level_of(number, number, 19640000, 0) == "exact_valid"
    assert level_of(number, number, 19630000, 0) == "exact_birth_conflict"


def test_jan1_placeholder_counts_as_year_only() -> None:
    assert level_of(ID, ID, 19650101, 0, left_q="jan1") == "exact_valid"
    assert level_of(ID, ID, 19650101, 0, left_q="exact", birth_tolerance_days=0) == (
        "exact_birth_conflict")


def test_birth_agrees_vectorised() -> None:
    idb = np.array([19650312, 19650312, 19650312, 0, 19650312])
    bd = np.array([19650312, 19660312, 0, 20010101, 19651203])
    jan1 = np.zeros(5, dtype=bool)
    assert birth_agrees(idb, bd, jan1).tolist() == [True, False, True, True, True]


def test_levels_param_and_registry() -> None:
    full = make_comparison("resident_id")
    assert full.name == "id_number"
    assert full.labels == ("exact_valid", "exact_upgraded", "exact_flagged", "check_digit_only",
                           "one_digit", "excel_partial", "exact_birth_conflict", "other_region",
                           "different")
    some = resident_id_comparison(levels=["exact_valid", "exact_birth_conflict"])
    assert some.labels == ("exact_valid", "exact_birth_conflict", "different")
    left, right = frame([ID, ID, PARENT]), frame([ID, bad_check(ID), PARENT], [0, 0, 20050916])
    assert some.compare(left, right).tolist() == [0, 2, 1]
    with pytest.raises(KeyError):
        resident_id_comparison(levels=["exact"])


def test_one_batch_gives_what_each_pair_alone_gives() -> None:
    """Features shared across a batch's pairs and levels do not change any pair's level."""
    rng = np.random.default_rng(7)
    n = 3000
    births = [f"19{y:02d}0{m}1{d}" for y, m, d in rng.integers([30, 1, 0], [99, 9, 9], (40, 3))]
    bases = [make_id("150521", b, s) for b, s in zip(births, rng.integers(0, 999, 40))]

    def variants(number: str) -> list:
        return [number, number, bad_check(number), number[:15] + "000",
                number[:6] + number[8:17], number[:9] + number[10] + number[9] + number[11:],
                number[:12] + "9" + number[13:], None, "1.50521E+17", "1.505E+17",
                make_id("152222", number[6:14], int(number[14:17]))]  # another region's

    i = rng.integers(0, 40, n)
    j = np.where(rng.random(n) < 0.7, i, rng.integers(0, 40, n))
    pick = rng.integers(0, 11, (n, 2))
    left_ids = [variants(bases[a])[k] for a, k in zip(i, pick[:, 0])]
    right_ids = [variants(bases[b])[k] for b, k in zip(j, pick[:, 1])]
    kinds = rng.integers(0, 3, (n, 2))  # unknown, the ID's own birthdate, a child's birthdate
    own = [[0, int(births[a]), 20050916][k] for a, k in zip(i, kinds[:, 0])]
    other = [[0, int(births[b]), 20050916][k] for b, k in zip(j, kinds[:, 1])]
    left, right = frame(left_ids, own), frame(right_ids, other)
    comparison = resident_id_comparison()
    got = comparison.compare(left, right)
    alone = [comparison.compare(left.iloc[[k]], right.iloc[[k]])[0] for k in range(0, n, 7)]
    assert np.array_equal(got[::7], alone)
    assert np.array_equal(got, comparison.compare(right, left))  # symmetric
    assert set(np.unique(got).tolist()) == {MISSING, 0, 1, 2, 3, 4, 5, 6, 7, 8}


# --------------------------------------------------------------------------- properties

CONTRACT_TYPES = {"id_norm": (str, type(None)), "id_status": str, "id_birth": int,
                  "id_gender": (str, type(None)), "id_region": (str, type(None)),
                  "id_partial": (str, type(None))}


def check_contract(parsed: dict) -> None:
    assert list(parsed) == COLUMNS
    for key, kind in CONTRACT_TYPES.items():
        assert isinstance(parsed[key], kind), key
    assert parsed["id_status"] in STATUSES
    assert parsed["id_gender"] in ("M", "F", None)
    if parsed["id_norm"] is not None:
        assert len(parsed["id_norm"]) == 18


@settings(max_examples=1000, deadline=None)
@given(st.one_of(st.text(), st.none(), st.floats(), st.integers(), st.just(10**5000),
                 st.text(alphabet="0123456789xX１２３ -.Ee+", max_size=22)))
def test_any_value_is_accepted(value: object) -> None:
    cleaned = normalise_id(value)
    assert cleaned is None or isinstance(cleaned, str)
    check_contract(parse_id(value))


REGIONS = sorted(region_codes())
valid_ids = st.builds(
    lambda region, born, seq: make_id(region, born.strftime("%Y%m%d"), seq),
    st.sampled_from(REGIONS),
    st.dates(min_value=date(1900, 1, 1), max_value=date.today()),
    st.integers(0, 999),
)


@settings(max_examples=1000, deadline=None)
@given(valid_ids, st.sampled_from(["plain", "fullwidth", "spaced", "lower"]))
def test_valid_ids_round_trip(number: str, form: str) -> None:
    raw = {"plain": number,
           "fullwidth": "".join(chr(ord(c) + 0xFEE0) for c in number),
           "spaced": f" {number[:6]} {number[6:14]}-{number[14:]} ",
           "lower": number.lower()}[form]
    parsed = parse_id(raw)
    if len(set(number)) == 1:  # a run of one digit is a placeholder, however valid
        assert parsed["id_status"] == "missing"
        return
    assert parsed["id_status"] == "valid"
    assert parsed["id_norm"] == number
    assert parsed["id_birth"] == int(number[6:14])
    assert parsed["id_gender"] == ("M" if int(number[16]) % 2 else "F")


@settings(max_examples=1000, deadline=None)
@given(valid_ids, st.integers(0, 17), st.sampled_from("0123456789X"))
def test_one_substitution_is_never_valid(number: str, position: int, char: str) -> None:
    if char == number[position] or (char == "X" and position < 17):
        return
    changed = number[:position] + char + number[position + 1:]
    parsed = parse_id(changed)
    assert parsed["id_status"] != "valid"
    assert parsed["id_norm"] in (None, changed)


def test_vectorised_standardise_agrees_with_parse_id_on_a_synthetic_roster():
    """The fast path for clean numbers must give exactly what parse_id gives."""
    from linkage.synth import generate_world
    from matchers.resident_id import COLUMNS, parse_id, standardise

    world = generate_world(3000, seed=4)
    raw = pd.concat([world.police["公民身份号码"], world.ncms["身份证号"], world.urban["sfzh"]],
                    ignore_index=True)
    raw = pd.concat([raw, pd.Series(["111111111111111111", "15052119650312001x", None,
                                     "150521196502300016", "999999196503120016"])],
                    ignore_index=True)
    fast = standardise(raw)
    slow = pd.DataFrame([parse_id(v) for v in raw], columns=COLUMNS)
    slow["id_birth"] = slow["id_birth"].astype(np.int32)
    pd.testing.assert_frame_equal(fast.reset_index(drop=True), slow, check_dtype=False)
