from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from lunar_python import LunarYear

from matchers import make_comparison
from matchers.base import MISSING
from matchers.birthdate import (
    QUALITIES,
    birthdate_comparison,
    lunar_to_solar,
    lunar_to_solar_array,
    parse_birthdate,
    standardise,
)

TWO_DIGIT_NOW = dt.date.today().year % 100


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("1965-03-12", (19650312, "exact")),
        ("19650312", (19650312, "exact")),
        ("1965/3/12", (19650312, "exact")),
        ("1965.3.12", (19650312, "exact")),
        ("1965年3月12日", (19650312, "exact")),
        ("1965年03月12号", (19650312, "exact")),
        ("1965 年 3 月 12 日", (19650312, "exact")),
        ("一九六五年三月十二日", (19650312, "exact")),
        ("二〇〇一年十月二十三日", (20011023, "exact")),
        ("65.3.12", (19650312, "exact")),
        ("65-3-12", (19650312, "exact")),
        ("650312", (19650312, "exact")),
        ("１９６５－０３－１２", (19650312, "exact")),
        ("１９６５年３月１２日", (19650312, "exact")),
        ("1965-03-12 00:00:00", (19650312, "exact")),
        ("1965-03-12T08:30", (19650312, "exact")),
        ("1965/3/12 0:00", (19650312, "exact")),
        ("19650312.0", (19650312, "exact")),
        (19650312, (19650312, "exact")),
        (19650312.0, (19650312, "exact")),
        # Excel serial day numbers
        (23813, (19650312, "exact")),
        (23813.0, (19650312, "exact")),
        (23813.75, (19650312, "exact")),
        ("23813", (19650312, "exact")),
        ("23813.5", (19650312, "exact")),
        (np.int64(23813), (19650312, "exact")),
        ("1965年3月", (19650300, "year_month")),
        ("1965-03", (19650300, "year_month")),
        ("1965.3", (19650300, "year_month")),
        # 出生年月 as forms write it, a two-digit year and the month (07.8 for August 2007)
        ("65.3", (19650300, "year_month")),
        ("07.8", (20070800, "year_month")),
        ("88/11", (19881100, "year_month")),
        (1965.3, (19650300, "year_month")),  # typed into Excel, stored as a number
        ("196503", (19650300, "year_month")),
        (196503, (19650300, "year_month")),
        ("1965", (19650000, "year")),
        ("1965年", (19650000, "year")),
        (1965, (19650000, "year")),
        ("1965-01-01", (19650101, "jan1")),
        ("19650101", (19650101, "jan1")),
        (dt.date(1965, 3, 12), (19650312, "exact")),
        (dt.datetime(1965, 3, 12, 14, 5), (19650312, "exact")),
        (pd.Timestamp("1965-03-12"), (19650312, "exact")),
        (np.datetime64("1965-03-12"), (19650312, "exact")),
        # a lunar date said so is converted to the solar date
        ("农历1945年8月15日", (19450920, "exact")),
        ("1945.8.15(农历)", (19450920, "exact")),
        ("公历1965年3月12日", (19650312, "exact")),
        # impossible or out of range
        ("1965-02-30", (0, "unparseable")),
        ("1965-13-01", (0, "unparseable")),
        ("19650230", (0, "unparseable")),
        ("1879-05-01", (0, "unparseable")),
        ("2201-05-01", (0, "unparseable")),
        ("1879", (0, "unparseable")),  # a year out of range, not a serial day in 1905
        ("150521196503120012", (0, "unparseable")),
        ("abc", (0, "unparseable")),
        ("65.0", (0, "unparseable")),  # a number, not a month
        (True, (0, "unparseable")),
        (-5, (0, "unparseable")),
        (float("inf"), (0, "unparseable")),
        # blank and placeholders
        (None, (0, "missing")),
        (float("nan"), (0, "missing")),
        (pd.NaT, (0, "missing")),
        (pd.NA, (0, "missing")),
        (np.datetime64("NaT"), (0, "missing")),
        ("", (0, "missing")),
        ("  ", (0, "missing")),
        ("不详", (0, "missing")),
        ("无", (0, "missing")),
        ("待补", (0, "missing")),
        ("0", (0, "missing")),
        (0, (0, "missing")),
        ("0000-00-00", (0, "missing")),
        ("00000000", (0, "missing")),
    ],
)
def test_parse_formats(raw, expected):
    assert parse_birthdate(raw) == expected


def test_two_digit_year_pivot():
    later = (TWO_DIGIT_NOW + 1) % 100
    assert parse_birthdate(f"{later:02d}.3.12")[0] // 10000 == 1900 + later
    assert parse_birthdate(f"{TWO_DIGIT_NOW:02d}.3.12")[0] // 10000 == 2000 + TWO_DIGIT_NOW
    assert parse_birthdate("05.3.12") == (20050312, "exact")


def test_excel_serial_small_numbers():
    assert parse_birthdate(1) == (19000101, "jan1")
    assert parse_birthdate(59) == (19000228, "exact")
    assert parse_birthdate(60) == (0, "unparseable")  # Excel's fictitious 1900-02-29
    assert parse_birthdate(61) == (19000301, "exact")


def test_standardise_keeps_index_and_types():
    raw = pd.Series(["1965-03-12", None, "不详", "1965-03-12", "1965", "x1"], index=range(10, 16))
    out = standardise(raw)
    assert list(out.index) == [10, 11, 12, 13, 14, 15]
    assert out["birth_date"].dtype == np.int32
    assert out["birth_date"].tolist() == [19650312, 0, 0, 19650312, 19650000, 0]
    assert out["birth_quality"].tolist() == [
        "exact", "missing", "missing", "exact", "year", "unparseable"
    ]


def test_standardise_mixed_types_and_empty():
    raw = pd.Series([23813, "1965.3.12", 1965.3, None, pd.Timestamp("1970-01-02")], dtype=object)
    assert standardise(raw)["birth_date"].tolist() == [19650312, 19650312, 19650300, 0, 19700102]
    assert len(standardise(pd.Series([], dtype=object))) == 0


# ---------------------------------------------------------------- lunar calendar

def test_lunar_to_solar_known_dates():
    # Mid-Autumn Festival 1945 (lunar 8/15) fell on 20 September 1945.
    assert lunar_to_solar(19450815) == 19450920
    # Spring Festival 1950 (lunar 1/1) fell on 17 February 1950.
    assert lunar_to_solar(19500101) == 19500217
    # 1944 has a leap fourth month (闰四月): the leap reading is a month later.
    assert lunar_to_solar(19440415) == 19440507
    assert lunar_to_solar(19440415, leap=True) == 19440605
    assert lunar_to_solar(19450415, leap=True) == 0  # 1945 has no leap month
    # Lunar 1945-01 has 29 days: day 30 does not exist.
    assert lunar_to_solar(19450130) == 0
    # The twelfth lunar month runs into the next solar year.
    assert lunar_to_solar(19451220) // 10000 == 1946
    for bad in (0, 19451301, 19450800, 18000101, -1):
        assert lunar_to_solar(bad) == 0


def test_lunar_array_matches_lunar_python_for_whole_years():
    years = np.array([1880, 1900, 1944, 1945, 1957, 1984, 2020, 2026])
    dates = (years[:, None, None] * 10000 + np.arange(1, 13)[None, :, None] * 100
             + np.arange(1, 31)[None, None, :]).ravel()
    for leap in (False, True):
        fast = lunar_to_solar_array(dates, leap)
        slow = np.array([lunar_to_solar(int(d), leap) for d in dates])
        np.testing.assert_array_equal(fast, slow)
    assert lunar_to_solar_array(np.array([0, 99999999, 19450132]), False).tolist() == [0, 0, 0]


@settings(max_examples=300, deadline=None)
@given(st.dates(min_value=dt.date(1880, 1, 1), max_value=dt.date(2026, 12, 31)), st.booleans())
def test_lunar_array_matches_scalar(day, leap):
    value = day.year * 10000 + day.month * 100 + min(day.day, 30)
    assert lunar_to_solar_array(np.array([value]), leap)[0] == lunar_to_solar(value, leap)


def test_leap_month_lengths_come_from_lunar_python():
    leap_month = LunarYear.fromYear(2020).getLeapMonth()
    assert leap_month == 4
    assert lunar_to_solar(20200401, leap=True) > lunar_to_solar(20200401)


# ---------------------------------------------------------------- comparison levels

LEVEL_CASES = [
    ("1965-03-12", "19650312", "exact"),
    ("1965-03-12", "1965-12-03", "swapped"),
    ("1965-05-07", "1965-07-05", "swapped"),
    # an elderly villager's lunar birthday against the registry's solar date
    ("1945-08-15", "1945-09-20", "lunar"),
    ("1945-09-20", "1945-08-15", "lunar"),
    ("1944-04-15", "1944-06-05", "lunar"),  # read as the leap fourth month of 1944
    ("1945-12-20", lunar_to_solar(19451220), "lunar"),  # across the solar new year
    ("1965-03-12", "1965-03-14", "within_days"),
    ("1964-12-31", "1965-01-02", "within_days"),
    ("1965-02-28", "1965-03-02", "within_days"),
    ("1965-03-12", "1965-03-19", "one_digit"),
    ("1965-03-12", "1966-03-12", "one_digit"),
    ("1965-03-12", "1965-08-12", "one_digit"),
    ("1965-03-12", "1965-03-25", "year_month"),
    ("1965-03", "1965-03-12", "year_month"),
    ("1965-03", "1965年3月", "year_month"),
    ("1965-03-12", "1965-11-11", "year"),
    ("1965", "1965-03-12", "year"),
    ("1965", "1965", "year"),
    # a January-1st placeholder reaches 'year' at most, even against itself
    ("1965-01-01", "1965-01-01", "year"),
    ("1965-01-01", "1965-01-02", "year"),
    ("1965-01-01", "1965-01", "year"),
    ("1965-01-01", "1965-10-01", "year"),
    ("1965-03-12", "1970-03-12", "different"),
    ("1965-03-12", "1975-11-30", "different"),
    ("1965-01-01", "1966-01-01", "different"),
]


def _compare(pairs, **params):
    comparison = birthdate_comparison(**params)
    left = standardise(pd.Series([a for a, _ in pairs], dtype=object))
    right = standardise(pd.Series([b for _, b in pairs], dtype=object))
    return comparison, comparison.compare(left, right)


def test_every_level_by_literal_cases():
    comparison, out = _compare([(a, b) for a, b, _ in LEVEL_CASES])
    got = [comparison.labels[i] for i in out]
    assert got == [label for _, _, label in LEVEL_CASES]


def test_labels_and_registration():
    comparison = birthdate_comparison()
    assert comparison.name == "birth_date"
    assert comparison.columns == ("birth_date", "birth_quality")
    assert comparison.labels == (
        "exact", "swapped", "lunar", "within_days", "one_digit", "year_month", "year", "different"
    )
    assert make_comparison("birthdate").labels == comparison.labels


def test_missing_when_either_side_has_no_date():
    _, out = _compare([("1965-03-12", None), ("不详", "1965-03-12"), ("abc", "abc"), (None, None)])
    assert out.tolist() == [MISSING] * 4


def test_within_days_parameter_and_level_selection():
    _, out = _compare([("1965-03-12", "1965-03-19")], within_days=7)
    assert out.tolist() == [3]
    comparison, out = _compare([("1965-03-12", "1965-12-03"), ("1965-03-12", "1965-03-14")],
                               levels=["exact", "year"])
    assert comparison.labels == ("exact", "year", "different")
    assert [comparison.labels[i] for i in out] == ["year", "year"]


def test_compare_accepts_plain_int64_and_object_columns():
    comparison = birthdate_comparison()
    left = pd.DataFrame({"birth_date": pd.Series([19650312, None], dtype=object)})
    right = pd.DataFrame({"birth_date": np.array([19651203, 19650312], dtype=np.int64)})
    assert comparison.compare(left, right).tolist() == [1, MISSING]


def test_lunar_level_finds_every_lunar_birthday_of_a_year():
    # every day of lunar 1945 and 1984 (a leap-10th-month year) against its solar date
    lunar = np.array([y * 10000 + m * 100 + d
                      for y in (1945, 1984) for m in range(1, 13) for d in range(1, 31)])
    solar = lunar_to_solar_array(lunar)
    keep = solar > 0
    lunar, solar = lunar[keep], solar[keep]
    not_jan1 = (lunar % 10000 != 101) & (solar % 10000 != 101)
    lunar, solar = lunar[not_jan1], solar[not_jan1]

    def frame(dates):
        return pd.DataFrame({"birth_date": dates.astype(np.int32), "birth_quality": "exact"})

    out = birthdate_comparison().compare(frame(lunar), frame(solar))
    # lunar 1984-05-06 is solar 1984-06-05: the stronger 'swapped' level claims it first
    swapped = (lunar // 10000 == solar // 10000) & (lunar % 100 == solar // 100 % 100)
    assert ((out == 2) | ((out == 1) & swapped)).all()
    assert (out == 2).sum() > 650


# ---------------------------------------------------------------- properties

@settings(max_examples=1000, deadline=None)
@given(st.one_of(
    st.text(), st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers(),
    st.text(alphabet="0123456789-./年月日 :０１２３４５６７８９一二三十〇农历", max_size=20),
))
def test_parse_never_raises(value):
    date_int, quality = parse_birthdate(value)
    assert isinstance(date_int, int)
    assert quality in QUALITIES
    assert (date_int == 0) == (quality in ("unparseable", "missing"))


FORMATS = [
    lambda d: d.strftime("%Y-%m-%d"),
    lambda d: d.strftime("%Y%m%d"),
    lambda d: f"{d.year}/{d.month}/{d.day}",
    lambda d: f"{d.year}.{d.month}.{d.day}",
    lambda d: f"{d.year}年{d.month}月{d.day}日",
    lambda d: d.strftime("%Y-%m-%d 00:00:00"),
    lambda d: d.strftime("%Y-%m-%d").translate(
        str.maketrans("0123456789-", "０１２３４５６７８９－")),
    lambda d: (d - dt.date(1899, 12, 30)).days,  # Excel serial
    lambda d: float((d - dt.date(1899, 12, 30)).days),
    lambda d: str((d - dt.date(1899, 12, 30)).days),
    lambda d: d,
    lambda d: pd.Timestamp(d),
]
SERIAL_FORMATS = (7, 8, 9)


@settings(max_examples=1000, deadline=None)
@given(st.dates(min_value=dt.date(1901, 1, 1), max_value=dt.date(2026, 12, 31)),
       st.sampled_from(range(len(FORMATS))))
def test_round_trip_every_format(day, fmt):
    # Serial numbers 1800..2199 (late 1904 to 1905) read as (out-of-range) years by design.
    # Serial numbers as text need four or five digits.
    serial = (day - dt.date(1899, 12, 30)).days
    assume(fmt not in SERIAL_FORMATS or not 1800 <= serial < 2200)
    assume(fmt != SERIAL_FORMATS[-1] or serial >= 1000)
    expected = day.year * 10000 + day.month * 100 + day.day
    quality = "jan1" if (day.month, day.day) == (1, 1) else "exact"
    assert parse_birthdate(FORMATS[fmt](day)) == (expected, quality)


@settings(max_examples=300, deadline=None)
@given(st.dates(min_value=dt.date(1880, 1, 1), max_value=dt.date(2026, 12, 31)))
def test_round_trip_two_digit_years_and_partial_dates(day):
    expected = day.year * 10000 + day.month * 100 + day.day
    yy = day.year % 100
    if (1900 + yy if yy > TWO_DIGIT_NOW else 2000 + yy) == day.year:
        assert parse_birthdate(f"{day.year % 100:02d}.{day.month}.{day.day}")[0] == expected
    assert parse_birthdate(f"{day.year}-{day.month:02d}") == (expected // 100 * 100, "year_month")
    assert parse_birthdate(f"{day.year}年{day.month}月") == (expected // 100 * 100, "year_month")
    assert parse_birthdate(str(day.year)) == (day.year * 10000, "year")


_DATE_TEXT = st.one_of(
    st.from_regex(r"\A[0-9]{8}\Z"),
    st.from_regex(r"\A[0-9]{4}[-/.][0-9]{1,2}[-/.][0-9]{1,2}\Z"),
    st.from_regex(r"\A[0-9]{4}年[0-9]{1,2}月[0-9]{1,2}[日号]?\Z"),
    st.text(alphabet="0123456789-/.年月日号 农历", max_size=12),
)


@settings(max_examples=1000, deadline=None)
@given(st.lists(_DATE_TEXT, min_size=1, max_size=5))
def test_the_vectorised_plain_date_path_parses_as_parse_birthdate(texts):
    out = standardise(pd.Series(texts, dtype=object))
    expected = [parse_birthdate(t) for t in texts]
    assert list(zip(out["birth_date"].tolist(), out["birth_quality"].tolist())) == expected
