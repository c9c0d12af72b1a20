"""Birthdates as clerks write them: lunar birthdays, placeholders, swaps, and seven formats.

Why: a birthdate differs between rosters in the value (the errors here, vectorised) and in how it
is written (format_dates), and the matcher has to cope with both.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from linkage.synth.arrays import NUM, Z2, days_in_month
from linkage.synth.params import REF_YEAR
from linkage.synth.records import Rec


@lru_cache(maxsize=8)
def _lunar_months(first_year: int, last_year: int) -> np.ndarray:
    """(first day number, lunar year, lunar month) of every lunar month in the range, sorted."""
    from lunar_python import LunarYear

    rows = [(mo.getFirstJulianDay(), mo.getYear(), abs(mo.getMonth()))
            for year in range(first_year, last_year + 1)
            for mo in LunarYear.fromYear(year).getMonthsInYear()]
    return np.array(sorted(rows), dtype=np.int64)


def _lunar(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, ...]:
    """The lunar date of each solar date, to be written as if it were solar."""
    if len(y) == 0:
        return y, m, d
    day = ((y - 1970) * 12 + m - 1).astype("datetime64[M]").astype("datetime64[D]") + (d - 1)
    number = day.astype(np.int64) + 2440588  # lunar-python's day numbers (Julian day at noon)
    table = _lunar_months(int(y.min()) - 1, int(y.max()))
    k = np.searchsorted(table[:, 0], number, side="right") - 1
    return table[k, 1], table[k, 2], number - table[k, 0] + 1


def date_errors(rng: np.random.Generator, rec: Rec, rates: dict[str, float],
                factor: np.ndarray, elderly_factor: float = 2.0) -> tuple[np.ndarray, ...]:
    """Wrong dates as (y, m, d, precision, label); vectorised.

    precision: 0 the full date, 1 year and month only, 2 the year only (the children rec.no_id
    marks, whose families gave the year alone).
    """
    n = len(rec.y)
    y, m, d = rec.y.copy(), rec.m.copy(), rec.d.copy()
    ym = np.zeros(n, dtype=np.int8)
    labels = np.full(n, "", dtype=object)
    free = np.ones(n, dtype=bool)
    if rec.no_id is not None:
        ym[rec.no_id] = 2
        labels[rec.no_id] = "date_year_only"
        free &= ~rec.no_id
    elderly = rec.y < 1960

    def take(kind: str, elig: np.ndarray, boost: np.ndarray | float = 1.0) -> np.ndarray:
        p = np.minimum(rates.get(kind, 0.0) * factor * boost, 0.95)
        hit = free & elig & (rng.random(n) < p)
        labels[hit] = kind
        free[hit] = False
        return np.flatnonzero(hit)

    i = take("date_lunar", elderly)
    if len(i):
        y[i], m[i], d[i] = _lunar(y[i], m[i], d[i])
    i = take("date_jan1", ~((m == 1) & (d == 1)), np.where(elderly, elderly_factor, 1.0))
    m[i], d[i] = 1, 1
    i = take("date_year_month", np.ones(n, dtype=bool))
    ym[i] = 1
    i = take("date_day_month_swap", (d <= 12) & (d != m))
    m[i], d[i] = d[i], m[i]
    i = take("date_digit_off", np.ones(n, dtype=bool))
    digit_off(rng, y, d, i)
    return y, m, d, ym, labels


def digit_off(rng: np.random.Generator, y: np.ndarray, d: np.ndarray, i: np.ndarray) -> None:
    """Change one digit of the day (kept valid) or of the year's last digit, in place at i."""
    on_day = (d[i] <= 28) & (rng.random(len(i)) < 0.6)
    j = i[on_day]
    tens, units = d[j] // 10, d[j] % 10
    lo, hi = np.where(tens == 0, 1, 0), np.where(tens == 2, 8, 9)
    k = lo + np.floor(rng.random(len(j)) * (hi - lo)).astype(int)
    d[j] = tens * 10 + np.where(k >= units, k + 1, k)
    j = i[~on_day]
    shift = 1 + np.floor(rng.random(len(j)) * 9).astype(int)
    y[j] = y[j] - y[j] % 10 + (y[j] % 10 + shift) % 10
    y[j] = np.where(y[j] > REF_YEAR, y[j] - 10, y[j])


# Birthdate formats: ISO, compact, slash, dot, Chinese, two-digit year, Excel serial.
DATE_FORMATS = ("iso", "compact", "slash", "dot", "chinese", "short", "excel")


def format_dates(y: np.ndarray, m: np.ndarray, d: np.ndarray, fmt: np.ndarray,
                  ym: np.ndarray) -> np.ndarray:
    """Dates as text in the given format codes; year-month only where ym is 1 (or True), the
    year alone where it is 2 (2016, or 2016年 in the Chinese format)."""
    Y, M, D, MZ, DZ = NUM[y], NUM[m], NUM[d], Z2[m], Z2[d]
    valid = (m >= 1) & (m <= 12) & (d >= 1) & (d <= days_in_month(y, m))
    fmt = np.where((fmt == 6) & ~valid, 3, fmt)
    out = np.empty(len(y), dtype=object)
    full = {
        0: lambda i: Y[i] + "-" + MZ[i] + "-" + DZ[i],
        1: lambda i: Y[i] + MZ[i] + DZ[i],
        2: lambda i: Y[i] + "/" + M[i] + "/" + D[i],
        3: lambda i: Y[i] + "." + M[i] + "." + D[i],
        4: lambda i: Y[i] + "年" + M[i] + "月" + D[i] + "日",
        5: lambda i: Z2[y[i] % 100] + "." + M[i] + "." + D[i],
        6: lambda i: _excel_serial(y[i], m[i], d[i]).astype(str).astype(object),
    }
    part = {
        0: lambda i: Y[i] + "-" + MZ[i], 1: lambda i: Y[i] + MZ[i], 2: lambda i: Y[i] + "/" + M[i],
        3: lambda i: Y[i] + "." + M[i], 4: lambda i: Y[i] + "年" + M[i] + "月",
        5: lambda i: Z2[y[i] % 100] + "." + M[i], 6: lambda i: Y[i] + "-" + MZ[i],
    }
    year = {code: (lambda i: Y[i] + "年") if code == 4 else (lambda i: Y[i])
            for code in range(len(DATE_FORMATS))}
    ym = np.asarray(ym).astype(np.int8)
    for code in range(len(DATE_FORMATS)):
        for table, which in ((full, ym == 0), (part, ym == 1), (year, ym == 2)):
            i = np.flatnonzero((fmt == code) & which)
            if len(i):
                out[i] = table[code](i)
    return out


def _excel_serial(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    months = (y - 1970) * 12 + (m - 1)
    date = months.astype("datetime64[M]").astype("datetime64[D]") + (d - 1)
    return (date - np.datetime64("1899-12-30")).astype(np.int64)
