"""Birthdates as clerks wrote them, reduced to one yyyymmdd integer and a quality flag.

Rosters mix ISO dates, 19650312, 1965/3/12, 1965.3.12, 1965年3月12日, two-digit years, Excel
serial numbers, year-month or year only, and January-1st placeholders for unknown days. Elderly
villagers often give their *lunar* birthday, 18 to 55 days off the registry's solar date; the
``lunar`` level recognises that instead of calling the pair different.

Partial dates keep their zeros (``yyyymm00``, ``yyyy0000``) so every level is integer arithmetic
over numpy arrays. The quality of a date follows from its digits (0101 is a ``jan1``
placeholder, a zero day is ``year_month``, zero month and day is ``year``), so the level tests
derive it from ``birth_date`` and never compare strings per pair; ``birth_quality`` is kept for
reports and for the quality check of a roster.
"""
from __future__ import annotations

import calendar
import math
import re
import unicodedata
from collections.abc import Callable
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
from lunar_python import Lunar, LunarYear

from matchers.base import (
    Comparison,
    Frame,
    Level,
    Pairs,
    register,
    select_levels,
    shared_texts,
)
from matchers.base import column as column_of

MIN_YEAR = 1880
MAX_YEAR = max(2026, date.today().year)  # newborns enrol in the current year
QUALITIES = ("exact", "jan1", "year_month", "year", "unparseable", "missing")
COLUMNS = ["birth_date", "birth_quality"]

_PLACEHOLDERS = {
    "", "不详", "无", "未知", "待补", "不明", "空", "暂无", "缺", "null", "none", "nan", "nat",
    "na", "n/a", "-", "--", "/", "?", "??", "x", "xx",
}
_TIME = re.compile(r"(?:t|\s+)\d{1,2}:\d{2}(?::\d{2}(?:\.\d*)?)?$")
_LUNAR_WORDS = re.compile(r"农历|阴历|旧历|農曆|陰曆")
_SOLAR_WORDS = re.compile(r"公历|阳历|新历|公曆|陽曆")
_BRACKETS = re.compile(r"[()\[\]【】]")
_CN_DIGITS = {c: i for i, c in enumerate("〇一二三四五六七八九")} | {"零": 0, "○": 0, "两": 2}
_CN_NUMBER = re.compile(r"[〇零○一二三四五六七八九十两]+")
_CHINESE = re.compile(r"^(\d{2}|\d{4})年(?:(\d{1,2})月(?:(\d{1,2})[日号]?)?)?$")
_SEPARATED = re.compile(r"^(\d{2}|\d{4})[-/.](\d{1,2})(?:[-/.](\d{1,2}))?$")
_FLOAT_INT = re.compile(r"^(\d+)\.0+$")
_SERIAL_FRACTION = re.compile(r"^(\d{5})\.\d+$")
_EXCEL_EPOCH = date(1899, 12, 30)


def parse_birthdate(value: object) -> tuple[int, str]:
    """(yyyymmdd, quality) of any value a roster may hold; never raises.

    Unknown or impossible dates give 0 with quality 'unparseable' (something was written) or
    'missing' (blank or a placeholder such as 不详), so reports can tell the two apart.
    """
    if _is_na(value):
        return 0, "missing"
    if isinstance(value, (bool, np.bool_)):
        return 0, "unparseable"
    if isinstance(value, np.datetime64):
        try:
            value = pd.Timestamp(value).to_pydatetime()
        except (ValueError, OverflowError):
            return 0, "unparseable"
    if isinstance(value, (datetime, date)):
        return _result(value.year, value.month, value.day)
    if isinstance(value, (int, np.integer)):
        return _parse_number(int(value))
    if isinstance(value, (float, np.floating)):
        return _parse_float(float(value))
    try:
        text = value if isinstance(value, str) else str(value)
    except Exception:  # an object whose __str__ fails is simply not a date
        return 0, "unparseable"
    return _parse_text(text)


def _is_na(value: object) -> bool:
    if value is None or value is pd.NaT or value is pd.NA:
        return True
    if isinstance(value, (float, np.floating)):
        return math.isnan(value)
    if isinstance(value, np.datetime64):
        return bool(np.isnat(value))
    return False


def _parse_number(n: int) -> tuple[int, str]:
    """An integer from Excel or a numeric column: year, serial day number or yyyymm[dd]."""
    if n == 0:
        return 0, "missing"
    if 1 <= n <= 60000:
        return _year_or_serial(n)
    return _parse_digits(str(n)) if n > 0 else (0, "unparseable")


def _parse_float(x: float) -> tuple[int, str]:
    if not math.isfinite(x):
        return 0, "unparseable"
    if x == int(x):
        return _parse_number(int(x))
    if MIN_YEAR <= int(x) <= MAX_YEAR:  # 1965.3 typed into Excel (1965.10 reads as Jan)
        return _parse_text(repr(x))
    if 1 <= x < 60001:  # an Excel serial with a time of day
        return _excel_serial(int(x))
    return 0, "unparseable"


def _parse_text(text: str) -> tuple[int, str]:
    s = unicodedata.normalize("NFKC", text).strip().lower()
    if s in _PLACEHOLDERS:
        return 0, "missing"
    s = _TIME.sub("", s)
    lunar = bool(_LUNAR_WORDS.search(s))
    s = _BRACKETS.sub("", _SOLAR_WORDS.sub("", _LUNAR_WORDS.sub("", s)))
    s = "".join(s.split())
    if s in _PLACEHOLDERS or (s and set(s) <= set("0-/.年月日")):
        return 0, "missing"
    if "年" in s:
        s = _CN_NUMBER.sub(_chinese_number, s).replace("初", "")
    result = _parse_clean(s)
    if lunar and result[1] in ("exact", "jan1"):
        solar = lunar_to_solar(result[0])
        if not solar:
            return 0, "unparseable"
        return _result(solar // 10000, solar // 100 % 100, solar % 100)
    if lunar and result[1] == "year_month":  # a lunar month straddles two solar months
        return result[0] // 10000 * 10000, "year"
    return result


def _parse_clean(s: str) -> tuple[int, str]:
    match = _CHINESE.match(s) or _SEPARATED.match(s)
    if match:
        y, m, d = match.groups()
        # 65.3 and 07.8 are 出生年月 as forms write it (March 1965, August 2007); 65.0 is a number
        if len(y) == 2 and d is None and match.re is _SEPARATED and int(m) == 0:
            return 0, "unparseable"
        return _result(_full_year(y), int(m or 0), int(d or 0))
    match = _FLOAT_INT.match(s)
    if match:
        return _parse_digits(match.group(1).lstrip("0") or "0")
    match = _SERIAL_FRACTION.match(s)
    if match:
        return _excel_serial(int(match.group(1)))
    if s.isdigit():
        return _parse_digits(s)
    return 0, "unparseable"


def _parse_digits(s: str) -> tuple[int, str]:
    if len(s) == 8:
        return _result(int(s[:4]), int(s[4:6]), int(s[6:]))
    if len(s) == 6:
        year_month = _result(int(s[:4]), int(s[4:]), 0)
        if year_month[1] != "unparseable":
            return year_month
        return _result(_full_year(s[:2]), int(s[2:4]), int(s[4:]))  # yymmdd
    if len(s) in (4, 5):
        return _year_or_serial(int(s))
    return 0, "unparseable"


def _year_or_serial(n: int) -> tuple[int, str]:
    """A bare number is a year when it looks like one, else an Excel serial day number."""
    if MIN_YEAR <= n <= MAX_YEAR:
        return n * 10000, "year"
    if 1800 <= n < 2200:  # a year out of range (1879, 2031), not a day in 1904 or 1905
        return 0, "unparseable"
    return _excel_serial(n) if 1 <= n <= 60000 else (0, "unparseable")


def _chinese_number(match: re.Match) -> str:
    """一九六五 -> 1965 (digit by digit), 十二 -> 12, 二十三 -> 23."""
    word = match.group(0)
    if "十" not in word:
        return "".join(str(_CN_DIGITS[c]) for c in word)
    tens, _, ones = word.partition("十")
    if len(tens) > 1 or len(ones) > 1 or "十" in ones:
        return word  # not a month or a day; leave it to fail
    return str(_CN_DIGITS.get(tens, 1) * 10 + _CN_DIGITS.get(ones, 0))


def _full_year(y: str) -> int:
    """Two-digit years above this year's two digits are last century's (65 -> 1965)."""
    if len(y) != 2:
        return int(y)
    yy = int(y)
    return 1900 + yy if yy > date.today().year % 100 else 2000 + yy


def _excel_serial(n: int) -> tuple[int, str]:
    if n == 60:  # Excel's fictitious 1900-02-29
        return 0, "unparseable"
    day = _EXCEL_EPOCH + timedelta(days=n + (1 if n < 60 else 0))
    return _result(day.year, day.month, day.day)


def _result(y: int, m: int, d: int) -> tuple[int, str]:
    if not MIN_YEAR <= y <= MAX_YEAR or not 0 <= m <= 12 or d < 0:
        return 0, "unparseable"
    if m == 0:
        return (y * 10000, "year") if d == 0 else (0, "unparseable")
    if d == 0:
        return y * 10000 + m * 100, "year_month"
    if d > calendar.monthrange(y, m)[1]:
        return 0, "unparseable"
    return y * 10000 + m * 100 + d, "jan1" if m == 1 and d == 1 else "exact"


def standardise(series: pd.Series) -> pd.DataFrame:
    """birth_date (int32) and birth_quality per row, parsing each distinct value once.

    Most distinct values are plain full dates (19650312, 1965-3-12, 1965.03.12, 1965年3月12日):
    those are parsed in one vectorised pass, the rest one by one with ``parse_birthdate``.
    """
    try:
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
    except TypeError:  # unhashable cells (lists, dicts) are no dates
        codes, uniques = pd.factorize(series.map(_hashable), use_na_sentinel=True)
    uniques = np.asarray(uniques, dtype=object)
    dates = np.zeros(len(uniques) + 1, dtype=np.int64)  # the last row answers the NA code -1
    quality = np.full(len(uniques) + 1, "missing", dtype=object)
    fast, fast_dates, fast_quality = _plain_full_dates(uniques)
    dates[:-1][fast], quality[:-1][fast] = fast_dates, fast_quality
    for i in np.flatnonzero(~fast):
        dates[i], quality[i] = parse_birthdate(uniques[i])
    out = pd.DataFrame({"birth_date": dates[codes].astype(np.int32),
                        "birth_quality": shared_texts(quality)[codes]}, index=series.index)
    return out


def _hashable(value: object) -> object:
    try:
        hash(value)
        return value
    except TypeError:
        return "unhashable"


_PLAIN_FULL = (r"^(?:(?P<a>[0-9]{4})(?P<b>[0-9]{2})(?P<c>[0-9]{2})"
               r"|(?P<d>[0-9]{4})[-/.](?P<e>[0-9]{1,2})[-/.](?P<f>[0-9]{1,2})"
               r"|(?P<g>[0-9]{4})年(?P<h>[0-9]{1,2})月(?P<i>[0-9]{1,2})[日号]?)$")
_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def _plain_full_dates(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mask, yyyymmdd, quality) for the values that are plain ASCII-digit full dates.

    Exactly what ``parse_birthdate`` gives for them (a property test pins that), done on arrays.
    """
    text = pd.Series(values, dtype=object)
    is_text = text.map(type).eq(str).to_numpy()
    mask = np.zeros(len(values), dtype=bool)
    if not is_text.any():
        return mask, np.zeros(0, np.int64), np.zeros(0, object)
    parts = text[is_text].str.extract(_PLAIN_FULL)
    hit = parts.notna().any(axis=1).to_numpy()
    mask[np.flatnonzero(is_text)[hit]] = True
    found = parts.to_numpy(dtype=object)[hit]
    y, m, d = (_first_found(found[:, [k, k + 3, k + 6]]) for k in range(3))
    dates, quality = _results(y, m, d)
    quality[(y == 0) & (m == 0) & (d == 0)] = "missing"  # 00000000, 0000-00-00: a placeholder
    return mask, dates, quality


def _first_found(columns: np.ndarray) -> np.ndarray:
    """Per row, the first alternative's group that matched, as integers."""
    out = columns[:, 0].copy()
    for k in (1, 2):
        missing = pd.isna(out)
        out[missing] = columns[missing, k]
    return out.astype(np.int64)


def _results(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``_result`` over arrays."""
    leap = (y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0))
    days = _DAYS[np.clip(m, 0, 12)] + ((m == 2) & leap)
    ok = (MIN_YEAR <= y) & (y <= MAX_YEAR) & (0 <= m) & (m <= 12) & (d >= 0)
    year_only = ok & (m == 0) & (d == 0)
    year_month = ok & (m > 0) & (d == 0)
    full = ok & (m > 0) & (d > 0) & (d <= days)
    dates = np.where(full, y * 10000 + m * 100 + d,
                     np.where(year_month, y * 10000 + m * 100, np.where(year_only, y * 10000, 0)))
    quality = np.full(len(y), "unparseable", dtype=object)
    quality[year_only] = "year"
    quality[year_month] = "year_month"
    quality[full] = np.where((m[full] == 1) & (d[full] == 1), "jan1", "exact")
    return dates, quality


# ---------------------------------------------------------------- lunar calendar

_FIRST_YEAR = MIN_YEAR - 1
_N_YEARS = MAX_YEAR + 2 - _FIRST_YEAR
_JULIAN_EPOCH = 2440588  # Julian day number of 1970-01-01
# Solar yyyymmdd of every lunar day: [lunar year, month 1..12, leap 0/1, day 1..30], 0 where the
# day does not exist; filled per lunar year from lunar-python on first use.
_SOLAR = np.zeros((_N_YEARS, 13, 2, 32), dtype=np.int64)
_built = np.zeros(_N_YEARS, dtype=bool)
# Epoch day of the first of each solar month: [year, month 1..12].
_MONTH_START = (
    ((np.arange(_N_YEARS)[:, None] + _FIRST_YEAR - 1970) * 12 + np.arange(13)[None, :] - 1)
    .astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
)


def _build_years(rows: np.ndarray) -> None:
    for row in rows[~_built[rows]]:
        year = int(row) + _FIRST_YEAR
        for month in LunarYear.fromYear(year).getMonths():
            if month.getYear() != year:
                continue
            m, count = month.getMonth(), month.getDayCount()
            first = int(month.getFirstJulianDay()) - _JULIAN_EPOCH
            days = _from_epoch_days(first + np.arange(count))
            _SOLAR[row, abs(m), int(m < 0), 1:count + 1] = days
        _built[row] = True


def prepare_lunar_table() -> None:
    """Fill the lunar table for every year now (about half a second), so that a server's first
    checks do not each pay for the years they meet first."""
    _build_years(np.arange(_N_YEARS))


def lunar_to_solar(yyyymmdd: int, leap: bool = False) -> int:
    """Solar yyyymmdd of a date whose digits are read as a lunar date; 0 if no such day.

    ``leap`` reads the month as the leap month of that number (闰月); a villager rarely says so,
    so the comparison tries both readings.
    """
    try:
        y, m, d = int(yyyymmdd) // 10000, int(yyyymmdd) // 100 % 100, int(yyyymmdd) % 100
        if not (MIN_YEAR <= y <= MAX_YEAR and 1 <= m <= 12 and 1 <= d <= 30):
            return 0
        solar = Lunar.fromYmd(y, -m if leap else m, d).getSolar()
    except Exception:  # lunar-python raises bare Exception for days a month lacks
        return 0
    return solar.getYear() * 10000 + solar.getMonth() * 100 + solar.getDay()


def lunar_to_solar_array(dates: np.ndarray, leap: bool = False) -> np.ndarray:
    """Vectorised :func:`lunar_to_solar`: one table lookup per date (0 where invalid).

    The table is lunar-python's own month starts and lengths, computed once per lunar year.
    """
    a = np.asarray(dates, dtype=np.int64)
    y, m, d = a // 10000, a // 100 % 100, a % 100
    ok = (y >= MIN_YEAR) & (y <= MAX_YEAR) & (m >= 1) & (m <= 12) & (d >= 1) & (d <= 30)
    row = y - _FIRST_YEAR
    _build_years(np.flatnonzero(np.bincount(row[ok], minlength=_N_YEARS)))
    flat = np.where(ok, ((row * 13 + m) * 2 + int(leap)) * 32 + d, 0)
    return _SOLAR.ravel()[flat]


def _to_epoch_days(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    row = np.clip(y - _FIRST_YEAR, 0, _N_YEARS - 1)
    return _MONTH_START[row, np.clip(m, 0, 12)] + d - 1


def _from_epoch_days(days: np.ndarray) -> np.ndarray:
    day = np.asarray(days).astype("datetime64[D]")
    month = day.astype("datetime64[M]")
    year = day.astype("datetime64[Y]")
    y = year.astype(np.int64) + 1970
    m = (month - year.astype("datetime64[M]")).astype(np.int64) + 1
    d = (day - month.astype("datetime64[D]")).astype(np.int64) + 1
    return y * 10000 + m * 100 + d


# ---------------------------------------------------------------- comparison levels

def birth_dates(frame: Frame, column: str = "birth_date") -> np.ndarray:
    """The yyyymmdd column as int32, 0 where absent."""
    values = column_of(frame, column)
    if values.dtype == np.int32:
        return values
    numbers = pd.to_numeric(pd.Series(values), errors="coerce").fillna(0).to_numpy()
    return np.clip(numbers, 0, 99_991_231).astype(np.int32)


def _parts(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Year, month, day and whether the day is known and not a Jan-1 placeholder."""
    y = a // 10000
    md = a - y * 10000
    m = md // 100
    d = md - m * 100
    return y, m, d, (m > 0) & (d > 0) & (md != 101)


def _pseudo_days(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Days if every month had 31: never less than the true gap, at most 3 more per month."""
    return y * 372 + m * 31 + d


def _where(n: int, index: np.ndarray, hit: np.ndarray) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[index[hit]] = True
    return out


def same_exact(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a == b) & _parts(a)[3]


def day_month_swapped(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ya, ma, da, fa = _parts(a)
    yb, mb, db, fb = _parts(b)
    return fa & fb & (ya == yb) & (ma == db) & (da == mb) & (a != b)


def lunar_solar(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """One side is the other's lunar birthday converted (ordinary or leap month reading).

    A lunar birthday's solar date is 18 to 55 days after the same digits read as solar, so
    only pairs that far apart are looked up.
    """
    ya, ma, da, fa = _parts(a)
    yb, mb, db, fb = _parts(b)
    gap = np.abs(_pseudo_days(ya, ma, da) - _pseudo_days(yb, mb, db))
    index = np.flatnonzero(fa & fb & (gap >= 10) & (gap <= 75))
    a, b = a[index], b[index]
    hit = np.zeros(len(index), dtype=bool)
    for leap in (False, True):
        hit |= (lunar_to_solar_array(a, leap) == b) | (lunar_to_solar_array(b, leap) == a)
    return _where(len(ya), index, hit)


def within_days(a: np.ndarray, b: np.ndarray, days: int) -> np.ndarray:
    ya, ma, da, fa = _parts(a)
    yb, mb, db, fb = _parts(b)
    gap = np.abs(_pseudo_days(ya, ma, da) - _pseudo_days(yb, mb, db))
    index = np.flatnonzero(fa & fb & (gap <= days + 3 * (days // 28 + 1)))
    start_a = _to_epoch_days(ya[index], ma[index], da[index])
    start_b = _to_epoch_days(yb[index], mb[index], db[index])
    return _where(len(ya), index, np.abs(start_a - start_b) <= days)


def one_digit(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The two eight-digit strings differ in exactly one position (a single mistyped digit).

    Such a pair differs by k * 10**j, which a float log10 finds cheaply; the digit-by-digit
    count then confirms the few candidates.
    """
    fa, fb = _parts(a)[3], _parts(b)[3]
    gap = np.abs(a.astype(np.int64) - b)
    index = np.flatnonzero(fa & fb & (gap > 0))
    power = (10 ** np.floor(np.log10(gap[index]))).astype(np.int64)
    index = index[gap[index] % power == 0]
    x, y = a[index].astype(np.int64), b[index].astype(np.int64)
    digits_x = x[:, None] // _POWERS % 10
    digits_y = y[:, None] // _POWERS % 10
    return _where(len(a), index, (digits_x != digits_y).sum(axis=1) == 1)


_POWERS = 10 ** np.arange(8, dtype=np.int64)


def same_year_month(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    _, ma, da, _ = _parts(a)
    _, mb, db, _ = _parts(b)
    placeholder = ((ma == 1) & (da == 1)) | ((mb == 1) & (db == 1))
    return (a // 100 == b // 100) & (ma > 0) & ~placeholder


def same_year(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a // 10000 == b // 10000) & (a > 0)


class Dates(Pairs):
    """A batch of pairs with both sides' yyyymmdd dates read once (``a`` left, ``b`` right)."""

    def __init__(self, left: Frame, right: Frame,
                 dates: Callable[[Frame], np.ndarray] = birth_dates) -> None:
        super().__init__(left, right)
        self.a, self.b = dates(left), dates(right)


def dates_missing(pairs: Dates) -> np.ndarray:
    return (pairs.a == 0) | (pairs.b == 0)


def date_levels(within: int = 3) -> tuple[Level, ...]:
    """The birthdate levels over the dates of a batch (:class:`Dates`)."""

    def level(label: str, test: Callable, description: str) -> Level:
        return Level(label, lambda pairs, rows: test(pairs.a[rows], pairs.b[rows]), description)

    return (
        level("exact", same_exact, "identical full dates (not a Jan-1 placeholder)"),
        level("swapped", day_month_swapped, "day and month swapped"),
        level("lunar", lunar_solar, "one side is the other's lunar birthday"),
        level("within_days", lambda a, b: within_days(a, b, within), f"<= {within} days apart"),
        level("one_digit", one_digit, "one digit of yyyymmdd differs"),
        level("year_month", same_year_month, "same year and month (a Jan-1 placeholder never)"),
        level("year", same_year, "same year"),
    )


@register("birthdate")
def birthdate_comparison(levels: list[str] | None = None, within_days: int = 3) -> Comparison:
    """Birthdate levels, strongest first; a Jan-1 placeholder reaches 'year' at most."""
    return Comparison(
        name="birth_date",
        columns=("birth_date", "birth_quality"),
        levels=select_levels(date_levels(within_days), levels),
        missing=dates_missing,
        params={"within_days": within_days},
        features=Dates,
    )
