"""Resident ID numbers (GB 11643): clean, classify and compare them.

The ID is the strongest single field we have, and the most abused one: clerks leave placeholders,
keep old 15-digit numbers, mistype a digit, let Excel round it, or copy a parent's number onto a
child's record. So the standardiser keeps every damaged number it can still use (with a status
saying what is wrong) and the comparison grades how the two numbers agree, cross-checking the
birthdate the ID embeds against each record's own birthdate.
"""
from __future__ import annotations

import math
import re
import unicodedata
from datetime import date
from functools import cache, cached_property, lru_cache, partial
from importlib import resources

import numpy as np
import pandas as pd
from stdnum.iso7064 import mod_11_2

from matchers.base import (
    Comparison,
    Frame,
    Level,
    Pairs,
    column,
    register,
    select_levels,
    shared_texts,
    text_memo,
)

COLUMNS = ["id_norm", "id_status", "id_birth", "id_gender", "id_region", "id_partial"]
STATUSES = ("valid", "upgraded", "bad_check", "bad_date", "bad_region", "excel_damaged",
            "malformed", "missing")

# A 15-digit number implying an age over MAX_AGE_15 at REFERENCE_YEAR is not trusted: most such
# records belong to the dead or to a mistyped year.
REFERENCE_YEAR = 2026
MAX_AGE_15 = 100
MIN_BIRTH_YEAR = 1900

# 哲里木盟 (1523xx) became prefecture-level 通辽市 (1505xx) in 1999. Source: GB/T 2260 history as
# listed in python-stdnum's stdnum/cn/loc.dat (taken from zh.wikipedia's 行政区划代码 tables):
# there 152321 is 通辽县 (merged into county-level 通辽市 in 1986), not 开鲁县 (152324).
_TONGLIAO_OLD_TO_CURRENT = {
    "152300": "150500",  # 哲里木盟 -> 通辽市
    "152301": "150502",  # 通辽市 (county-level) -> 科尔沁区
    "152302": "150581",  # 霍林郭勒市
    "152321": "150502",  # 通辽县 -> 科尔沁区 (via 通辽市, 1986)
    "152322": "150521",  # 科尔沁左翼中旗
    "152323": "150522",  # 科尔沁左翼后旗
    "152324": "150523",  # 开鲁县
    "152325": "150524",  # 库伦旗
    "152326": "150525",  # 奈曼旗
    "152327": "150526",  # 扎鲁特旗
}
# Residence permits for Hong Kong, Macao and Taiwan residents (2018) follow GB 11643 with these.
_EXTRA_REGIONS = ("810000", "820000", "830000")

_PLACEHOLDERS = frozenset({
    "无", "没有", "暂无", "待补", "待补充", "补", "不详", "未知", "空", "缺", "暂缺", "未提供",
    "未填", "未办", "未办理", "无证", "无身份证", "暂无身份证", "待查", "查无", "不知道", "略",
    "待定", "未录入", "NULL", "NONE", "NAN", "NA", "N/A", "NIL", "#N/A", "#NULL!", "#VALUE!",
    "#REF!", "#NAME?", "#NUM!", "#DIV/0!",
})
# Dropped wherever they stand in an ID cell: whitespace (NBSP, ideographic), dash-like marks,
# and the characters that render as nothing (Unicode's default-ignorables: zero-width space and
# joiners, word joiner, BOM, soft hyphen, bidi marks, Mongolian vowel separator and variation
# selectors, Hangul fillers) that copying from a web page, Word or a chat leaves inside a number.
ID_FILLER = ("\\s\\-‐‑‒–—―−_\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f"
             "\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0"
             "\U000e0000-\U000e0fff")
_DROP = re.compile(f"[{ID_FILLER}]+")
_QUOTES = "'\"`"  # Excel's text-forcing apostrophe and ="..." wrappers
_BRACKETS = "()[]{}<>【】「」《》"
_REPEATED = re.compile(r"([0-9X])\1*")
_PUNCT_ONLY = re.compile(r"[\W_]+")
_INT_FLOAT = re.compile(r"([0-9]+)\.0+")
_SCIENTIFIC = re.compile(r"([0-9])(?:[.,]([0-9]*))?E\+?([0-9]{1,3})")
_ID18 = re.compile(r"[0-9]{17}[0-9X]")
_ID15 = re.compile(r"[0-9]{15}")


@lru_cache(maxsize=1)
def region_codes() -> frozenset[str]:
    """Region codes valid at any time in GB/T 2260's history (IDs keep the issue-time code)."""
    text = resources.files("stdnum.cn").joinpath("loc.dat").read_text(encoding="utf-8")
    codes = set(_EXTRA_REGIONS) | set(_TONGLIAO_OLD_TO_CURRENT)
    province = None
    for line in text.splitlines():
        if re.match(r"[0-9]{2} ", line):
            province = line[:2]
        elif province and (m := re.match(r"\s+([0-9]{4}) ", line)):
            codes.add(province + m.group(1))
    return frozenset(codes)


def canonical_region(code: object) -> str | None:
    """Today's code for a region code as written (old Tongliao codes mapped; others unchanged)."""
    if not isinstance(code, str) or len(code) != 6:
        return None
    return _TONGLIAO_OLD_TO_CURRENT.get(code, code)


def _to_text(value: object) -> str | None:
    """Any cell value as text; floats that lost digits come out in scientific notation."""
    if value is None or isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (int, np.integer)):
        # Python refuses str() of ints over 4,300 digits; no ID is that long anyway.
        return str(int(value)) if abs(int(value)) < 10**40 else "#LONG_NUMBER"
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if not math.isfinite(v):
            return None
        return str(int(v)) if v.is_integer() and abs(v) < 2**53 else repr(v)
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return bytes(value).decode("gb18030", errors="replace")
    try:
        if pd.isna(value) is True:  # pd.NA, NaT
            return None
        return str(value)
    except Exception:  # a cell whose __str__ fails carries no ID
        return None


def normalise_id(value: object) -> str | None:
    """Clean text of an ID cell (ASCII digits, upper X, no spaces/dashes); None for placeholders.

    Never raises: rosters put anything in this column. The result is not validated; see
    :func:`parse_id` for that.
    """
    text = _to_text(value)
    if text is None:
        return None
    text = _DROP.sub("", unicodedata.normalize("NFKC", text).upper()).strip(_QUOTES)
    if text.startswith("="):
        text = text[1:].strip(_QUOTES)
    if m := _INT_FLOAT.fullmatch(text):
        text = m.group(1)
    core = text.strip(_BRACKETS)
    if (not core or core in _PLACEHOLDERS or _REPEATED.fullmatch(core)
            or _PUNCT_ONLY.fullmatch(core)):
        return None
    return text


def _result(status: str, norm: str | None = None, birth: int = 0, gender: str | None = None,
            region: str | None = None, partial: str | None = None) -> dict:
    return {"id_norm": norm, "id_status": status, "id_birth": birth, "id_gender": gender,
            "id_region": region, "id_partial": partial}


def _birth(digits: str, min_year: int = MIN_BIRTH_YEAR) -> int:
    """yyyymmdd as int if it is a real, past date from min_year on, else 0."""
    try:
        born = date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        return 0
    return int(digits) if min_year <= born.year and born <= date.today() else 0


def _gender(digit: str) -> str:
    return "M" if int(digit) % 2 else "F"


def _from_norm(status: str, norm: str, birth: int) -> dict:
    return _result(status, norm, birth, _gender(norm[16]), norm[:6])


def _classify(norm: str, birth: int, upgraded: bool) -> dict:
    """Status of a number whose check character holds: date first, then region."""
    if not birth:
        return _from_norm("bad_date", norm, 0)
    if norm[:6] not in region_codes():
        return _from_norm("bad_region", norm, birth)
    return _from_norm("upgraded" if upgraded else "valid", norm, birth)


def _damaged(partial: str) -> dict:
    """An Excel-damaged number: keep the surviving digit prefix (in 18-digit layout)."""
    birth = _birth(partial[6:14]) if len(partial) >= 14 else 0
    gender = _gender(partial[16]) if len(partial) >= 17 else None
    region = partial[:6] if len(partial) >= 6 else None
    return _result("excel_damaged", None, birth, gender, region, partial)


def _parse_scientific(m: re.Match) -> dict:
    """'1.50521E+17': Excel shows (and may keep) only the mantissa; its digits are a prefix.

    Excel rounds the displayed mantissa, so its last digit can be one off; a float keeps at most
    15 reliable digits, so longer mantissas are cut to 15.
    """
    digits = m.group(1) + (m.group(2) or "")
    exponent = int(m.group(3))
    if exponent not in (14, 17) or len(digits) > exponent + 1:
        return _result("malformed")
    digits = digits[:15]
    if exponent == 14 and len(digits) > 6:  # an old 15-digit number: put it in 18-digit layout
        digits = digits[:6] + "19" + digits[6:]
    return _damaged(digits)


def parse_id(value: object) -> dict:
    """Standardised fields of one ID cell (keys as in COLUMNS); never raises.

    ``id_norm`` is kept for bad check digits, dates and regions, since two records carrying the
    same flawed number are still evidence; Excel-damaged values keep only ``id_partial``.
    """
    text = normalise_id(value)
    if text is None:
        return _result("missing")
    if m := _SCIENTIFIC.fullmatch(text):
        return _parse_scientific(m)
    if _ID18.fullmatch(text):
        if mod_11_2.calc_check_digit(text[:17]) != text[17]:
            if text.endswith("000"):  # Excel kept 15 significant digits and zeroed the rest
                return _damaged(text[:15])
            return _from_norm("bad_check", text, _birth(text[6:14]))
        return _classify(text, _birth(text[6:14]), upgraded=False)
    if _ID15.fullmatch(text):
        body = text[:6] + "19" + text[6:]
        norm = body + mod_11_2.calc_check_digit(body)
        return _classify(norm, _birth(norm[6:14], REFERENCE_YEAR - MAX_AGE_15), upgraded=True)
    return _result("malformed")


def standardise(series: pd.Series) -> pd.DataFrame:
    """The six id_* columns for a raw ID column, parsed once per distinct value.

    Most cells are already clean, valid 18-character numbers; those are checked in one
    vectorised pass (check character, date, region) and only the rest go through ``parse_id``.
    """
    try:
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
    except TypeError:  # unhashable cells (lists, dicts): parse their text instead
        codes, uniques = pd.factorize(series.map(lambda v: v if v is None else str(v)))
    table = _parse_distinct(np.asarray(uniques, dtype=object))
    missing = parse_id(None)
    out = {}
    same = text_memo(uniques)
    for col in COLUMNS:  # the NA code -1 picks the appended 'missing' row
        column = np.append(table[col], np.array([missing[col]], dtype=table[col].dtype))
        if column.dtype == object:
            column = shared_texts(column, same)
        out[col] = column[codes]
    frame = pd.DataFrame(out, index=series.index)
    frame["id_birth"] = frame["id_birth"].astype(np.int32)
    return frame


_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
_CHECK = np.frombuffer(b"10X98765432", dtype=np.uint8)
_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


@cache
def _region_numbers() -> np.ndarray:
    return np.array(sorted(int(code) for code in region_codes()), dtype=np.int64)


def _parse_distinct(values: np.ndarray) -> dict[str, np.ndarray]:
    """parse_id over distinct values, with the clean-and-valid majority done at once."""
    n = len(values)
    out = {col: np.full(n, None, dtype=object) for col in COLUMNS}
    out["id_birth"] = np.zeros(n, dtype=np.int64)
    fast, digits = _fast_valid(values)
    if fast.any():
        out["id_norm"][fast] = values[fast]
        out["id_status"][fast] = "valid"
        out["id_birth"][fast] = (digits[:, 6:14] - 48) @ 10 ** np.arange(7, -1, -1)
        out["id_gender"][fast] = np.where((digits[:, 16] - 48) % 2 == 1, "M", "F")
        region = np.ascontiguousarray(digits[:, :6].astype(np.uint8)).view("S6").ravel()
        out["id_region"][fast] = region.astype("U6").astype(object)
    for i in np.flatnonzero(~fast):
        for col, value in parse_id(values[i]).items():
            out[col][i] = value
    return out


def _fast_valid(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which values parse_id would call 'valid' as they stand (clean text, no normalising).

    Returns the mask and the (k, 18) character codes of the values it marks.
    """
    fast = np.zeros(len(values), dtype=bool)
    idx = np.flatnonzero([type(v) is str and len(v) == 18 and v.isascii() for v in values])
    if idx.size == 0:
        return fast, np.zeros((0, 18), dtype=np.int64)
    chars = np.frombuffer("".join(values[idx]).encode("ascii"), dtype=np.uint8).reshape(-1, 18)
    digits = chars.astype(np.int64)
    is_digit = (digits >= 48) & (digits <= 57)
    shaped = is_digit[:, :17].all(axis=1) & (is_digit[:, 17] | (digits[:, 17] == ord("X")))
    check_ok = _CHECK[(digits[:, :17] - 48) @ _WEIGHTS % 11] == digits[:, 17]
    one_char = (digits == digits[:, :1]).all(axis=1)  # 111111111111111111 is a placeholder
    number = (np.where(is_digit, digits - 48, 0)[:, :14] @ 10 ** np.arange(13, -1, -1))
    born, region = number % 10 ** 8, number // 10 ** 8
    year, month, day = born // 10000, born // 100 % 100, born % 100
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    days = _DAYS[np.clip(month, 0, 12)] + ((month == 2) & leap)
    today = date.today()
    date_ok = ((year >= MIN_BIRTH_YEAR) & (month >= 1) & (month <= 12) & (day >= 1)
               & (day <= days) & (born <= today.year * 10000 + today.month * 100 + today.day))
    region_ok = np.isin(region, _region_numbers())
    good = shaped & check_ok & ~one_char & date_ok & region_ok
    fast[idx[good]] = True
    return fast, digits[good]


# --------------------------------------------------------------------------- comparison

def _id_bytes(values: pd.Series | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, 18) uint8 characters of id_norm and a mask of rows holding an 18-char ASCII id."""
    arr = np.asarray(values, dtype=object)
    blank = pd.isna(arr) | (arr == "")
    filled = arr.copy()
    filled[blank] = "?" * 18  # never compared: masked by ``present``
    try:
        text = "".join(filled)
        fast = len(text) == 18 * len(arr) and text.isascii()
    except TypeError:  # a non-string slipped in
        fast = False
    if fast:
        return np.frombuffer(text.encode("ascii"), dtype=np.uint8).reshape(-1, 18), ~blank
    # Off-contract values: check each distinct one (pairs repeat each record's ID many times).
    codes, uniques = pd.factorize(arr, use_na_sentinel=True)
    ok = [isinstance(v, str) and len(v) == 18 and v.isascii() for v in uniques]
    text = "".join(v if good else "?" * 18 for v, good in zip(uniques, ok)) + "?" * 18
    table = np.frombuffer(text.encode("ascii"), dtype=np.uint8).reshape(-1, 18)
    present = np.append(np.asarray(ok, dtype=bool), False)
    return table[codes], present[codes]  # the NA code -1 picks the "?" row


_OLD_REGIONS = np.array(sorted(int(k) for k in _TONGLIAO_OLD_TO_CURRENT), dtype=np.int64)
_NEW_REGIONS = np.array([int(_TONGLIAO_OLD_TO_CURRENT[str(k)]) for k in _OLD_REGIONS],
                        dtype=np.int64)


def _canonical_region_numbers(chars: np.ndarray) -> np.ndarray:
    """Region codes of (m, 6) uint8 digit rows as integers, old Tongliao codes mapped."""
    codes = (chars.astype(np.int64) - ord("0")) @ (10 ** np.arange(5, -1, -1, dtype=np.int64))
    at = np.minimum(np.searchsorted(_OLD_REGIONS, codes), len(_OLD_REGIONS) - 1)
    return np.where(_OLD_REGIONS[at] == codes, _NEW_REGIONS[at], codes)


def _partial_bytes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Left-aligned (m, 18) uint8 digits of id_partial and their lengths (0 when absent)."""
    texts = [v[:18] if isinstance(v, str) and v.isascii() else "" for v in values]
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    chars = np.frombuffer("".join(t.ljust(18, "?") for t in texts).encode("ascii"),
                          dtype=np.uint8).reshape(len(texts), 18)
    return chars, lengths


def _day_number(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01; month 13 means January of the next year."""
    months = ((year - 1970) * 12 + (month - 1)).astype("datetime64[M]")
    return months.astype("datetime64[D]").astype(np.int64) + (day - 1)


def birth_agrees(id_birth: np.ndarray, birth_date: np.ndarray, jan1: np.ndarray,
                 tolerance_days: int = 0) -> np.ndarray:
    """True unless a record's birth_date contradicts the birthdate its ID embeds.

    Only the parts the record knows count (yyyymm00, yyyy0000; a Jan-1 placeholder is a year).
    ``tolerance_days`` forgives a lunar birthday written instead of the solar one, and a
    day/month swap is forgiven too: neither looks like a parent's ID on a child's record.
    """
    idb = np.asarray(id_birth, dtype=np.int64)
    bd = np.asarray(birth_date, dtype=np.int64)
    unknown = (idb <= 0) | (bd <= 0)
    idb = np.where(unknown, 19700101, idb)
    bd = np.where(unknown, 19700101, bd)
    iy, im, iday = idb // 10000, idb // 100 % 100, idb % 100
    by, bm, bday = bd // 10000, bd // 100 % 100, bd % 100
    bm = np.where(jan1, 0, bm)
    bday = np.where(jan1 | (bm == 0), 0, bday)
    lo = _day_number(by, np.maximum(bm, 1), np.maximum(bday, 1))
    hi = np.where(bday > 0, lo,
                  np.where(bm > 0, _day_number(by, bm + 1, 1), _day_number(by + 1, 1, 1)) - 1)
    idn = _day_number(iy, im, iday)
    inside = (idn >= lo - tolerance_days) & (idn <= hi + tolerance_days)
    swapped = (bday > 0) & (iy == by) & (im == bday) & (iday == bm)
    return unknown | inside | swapped


def _column(frame: Frame, name: str, default: object) -> np.ndarray:
    if name in frame:
        return column(frame, name)
    return np.full(len(frame), default, dtype=object if default is None else np.int64)


def _ints(values: np.ndarray) -> np.ndarray:
    """int64 dates from a column that may have gone float or object (NaN counts as unknown)."""
    if values.dtype.kind in "iu":
        return values.astype(np.int64)
    return pd.to_numeric(pd.Series(values), errors="coerce").fillna(0).to_numpy(np.int64)


class IdPairs(Pairs):
    """The features of a batch of ID pairs, each computed lazily and at most once.

    Every feature covers the whole batch (the levels pick their rows); the heavy work
    (birthdates, swaps, partial prefixes) runs only on the few candidate pairs whose IDs are
    within two characters of each other or Excel-damaged.
    """

    def __init__(self, left: Frame, right: Frame, birth_tolerance_days: int,
                 min_partial: int) -> None:
        super().__init__(left, right)
        self.n = len(left)
        self.tolerance, self.min_partial = birth_tolerance_days, min_partial

    @cached_property
    def chars(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        a, pa = _id_bytes(column(self.left, "id_norm", object))
        b, pb = _id_bytes(column(self.right, "id_norm", object))
        return a, b, pa, pb

    def _status(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (column(self.left, "id_status", object)[rows],
                column(self.right, "id_status", object)[rows])

    @cached_property
    def exact_kind(self) -> tuple[np.ndarray, np.ndarray]:
        """(both valid, either upgraded), looked up only where the IDs are identical."""
        both_valid = np.zeros(self.n, dtype=bool)
        upgraded = np.zeros(self.n, dtype=bool)
        rows = np.flatnonzero(self.identical)
        sl, sr = self._status(rows)
        both_valid[rows] = (sl == "valid") & (sr == "valid")
        upgraded[rows] = (sl == "upgraded") | (sr == "upgraded")
        return both_valid, upgraded

    @cached_property
    def both_present(self) -> np.ndarray:
        _, _, pa, pb = self.chars
        return pa & pb

    @cached_property
    def ndiff(self) -> np.ndarray:
        a, b, _, _ = self.chars
        return np.count_nonzero(a != b, axis=1)

    @cached_property
    def same17(self) -> np.ndarray:
        a, b, _, _ = self.chars
        return self.both_present & (a[:, :17] == b[:, :17]).all(axis=1)

    @cached_property
    def identical(self) -> np.ndarray:
        return self.both_present & (self.ndiff == 0)

    @cached_property
    def swap_or_substitution(self) -> np.ndarray:
        out = self.both_present & (self.ndiff == 1)
        rows = np.flatnonzero(self.both_present & (self.ndiff == 2))
        if rows.size:
            a, b, _, _ = self.chars
            a, b = a[rows], b[rows]
            crossed = (a[:, :-1] == b[:, 1:]) & (a[:, 1:] == b[:, :-1]) & (a[:, :-1] != b[:, :-1])
            out[rows] = crossed.any(axis=1)
        return out

    @cached_property
    def other_region(self) -> np.ndarray:
        """Both numbers well-formed (valid or upgraded) and issued in different regions.

        A number is for life and keeps the region of its issue (old Tongliao codes are mapped to
        today's), and a mistyped region digit fails the check character: two valid numbers of two
        regions are two people, even when a namesake was born the same day.
        """
        out = np.zeros(self.n, dtype=bool)
        rows = np.flatnonzero(self.both_present & ~self.same17 & ~self.swap_or_substitution)
        if rows.size == 0:
            return out
        a, b, _, _ = self.chars
        rows = rows[_canonical_region_numbers(a[rows, :6])
                    != _canonical_region_numbers(b[rows, :6])]
        sl, sr = self._status(rows)
        out[rows] = (((sl == "valid") | (sl == "upgraded"))
                     & ((sr == "valid") | (sr == "upgraded")))
        return out

    @cached_property
    def damaged(self) -> tuple[np.ndarray, np.ndarray]:
        """Excel-damaged sides (status excel_damaged and no id_norm)."""
        _, _, pa, pb = self.chars
        dl = np.zeros(self.n, dtype=bool)
        dr = np.zeros(self.n, dtype=bool)
        rows = np.flatnonzero(~(pa & pb))
        sl, sr = self._status(rows)
        dl[rows] = (sl == "excel_damaged") & ~pa[rows]
        dr[rows] = (sr == "excel_damaged") & ~pb[rows]
        return dl, dr

    def _birth_ok(self, rows: np.ndarray, shared: bool,
                  from_left: np.ndarray | None = None) -> np.ndarray:
        """Both records' birthdates agree with their ID's (or, if shared, the pair's) birthdate;
        with ``from_left`` (per row), with the birthdate of that side's ID (else the right's)."""
        ok = np.ones(self.n, dtype=bool)
        if rows.size == 0:
            return ok
        idl = _ints(_column(self.left, "id_birth", 0)[rows])
        idr = _ints(_column(self.right, "id_birth", 0)[rows])
        if shared:
            idl = idr = np.maximum(idl, idr)
        elif from_left is not None:
            idl = idr = np.where(from_left, idl, idr)
        agree = np.ones(rows.size, dtype=bool)
        for frame, idb in ((self.left, idl), (self.right, idr)):
            bd = _ints(_column(frame, "birth_date", 0)[rows])
            jan1 = _column(frame, "birth_quality", None)[rows] == "jan1"
            agree &= birth_agrees(idb, bd, jan1, self.tolerance)
        ok[rows] = agree
        return ok

    @cached_property
    def birth_ok(self) -> np.ndarray:
        ok = self._birth_ok(np.flatnonzero(self.same17 | self.swap_or_substitution), False)
        # A typo or swap in a number fails its check character (GB 11643's MOD 11-2 catches
        # both), so where only one side is well-formed the other is that number mistyped: a typo
        # in its birth digits is forgiven when both records' birthdates agree with the
        # well-formed number's (a parent's number on a child still contradicts the child's).
        rows = np.flatnonzero(self.swap_or_substitution & ~ok)
        if rows.size:
            sl, sr = self._status(rows)
            good_l = (sl == "valid") | (sl == "upgraded")
            good_r = (sr == "valid") | (sr == "upgraded")
            rows, good_l = rows[good_l != good_r], good_l[good_l != good_r]
            ok[rows] = self._birth_ok(rows, False, from_left=good_l)[rows]
        return ok

    @cached_property
    def partial_prefix(self) -> np.ndarray:
        """One side's surviving Excel prefix (>= min_partial digits) starts the other's ID."""
        dl, dr = self.damaged
        out = np.zeros(self.n, dtype=bool)
        rows = np.flatnonzero(dl | dr)
        if rows.size == 0:
            return out
        pl, ll = _partial_bytes(_column(self.left, "id_partial", None)[rows])
        pr, lr = _partial_bytes(_column(self.right, "id_partial", None)[rows])
        a, b, pa, pb = self.chars
        a, b, pa, pb = a[rows], b[rows], pa[rows], pb[rows]
        # Where a side is damaged, stand its partial in for its ID; the other side keeps id_norm
        # (or its own partial when both are damaged).
        left_chars = np.where(dl[rows, None], pl, a)
        right_chars = np.where(dr[rows, None], pr, b)
        left_len = np.where(dl[rows], ll, np.where(pa, 18, 0))
        right_len = np.where(dr[rows], lr, np.where(pb, 18, 0))
        shorter = np.minimum(left_len, right_len)
        position = np.arange(18)[None, :]
        agree = ((left_chars == right_chars) | (position >= shorter[:, None])).all(axis=1)
        out[rows] = agree & (shorter >= self.min_partial)
        return out

    @cached_property
    def partial_birth_ok(self) -> np.ndarray:
        return self._birth_ok(np.flatnonzero(self.partial_prefix), True)

    @cached_property
    def missing(self) -> np.ndarray:
        """No usable ID on a side: no id_norm and no Excel prefix of min_partial digits."""
        _, _, pa, pb = self.chars
        dl, dr = self.damaged
        usable = []
        for present, damaged, frame in ((pa, dl, self.left), (pb, dr, self.right)):
            long_enough = np.zeros(self.n, dtype=bool)
            rows = np.flatnonzero(damaged & ~present)
            if rows.size:
                partial = _column(frame, "id_partial", None)[rows]
                long_enough[rows] = [isinstance(p, str) and len(p) >= self.min_partial
                                     for p in partial]
            usable.append(present | long_enough)
        return ~(usable[0] & usable[1])


# The levels, each an independent predicate over the batch (their order decides overlaps).

def _exact_valid(p: IdPairs, rows: np.ndarray) -> np.ndarray:
    return (p.identical & p.exact_kind[0] & p.birth_ok)[rows]


def _exact_upgraded(p: IdPairs, rows: np.ndarray) -> np.ndarray:
    return (p.identical & p.exact_kind[1] & p.birth_ok)[rows]


def _exact_flagged(p: IdPairs, rows: np.ndarray) -> np.ndarray:
    both_valid, upgraded = p.exact_kind
    return (p.identical & ~both_valid & ~upgraded & p.birth_ok)[rows]


def _check_digit_only(p: IdPairs, rows: np.ndarray) -> np.ndarray:
    return (p.same17 & ~p.identical & p.birth_ok)[rows]


def _one_digit(p: IdPairs, rows: np.ndarray) -> np.ndarray:
    return (p.swap_or_substitution & p.birth_ok)[rows]


def _excel_partial(p: IdPairs, rows: np.ndarray) -> np.ndarray:
    return (p.partial_prefix & p.partial_birth_ok)[rows]


def _exact_birth_conflict(p: IdPairs, rows: np.ndarray) -> np.ndarray:
    return (p.same17 & ~p.birth_ok)[rows]


def _other_region(p: IdPairs, rows: np.ndarray) -> np.ndarray:
    return p.other_region[rows]


LEVELS: tuple[Level, ...] = (
    Level("exact_valid", _exact_valid, "same valid 18-digit ID, birthdates do not contradict it"),
    Level("exact_upgraded", _exact_upgraded, "same ID where a side was upgraded from 15 digits"),
    Level("exact_flagged", _exact_flagged,
          "same ID, but flagged (bad check digit, date or region) on a side"),
    Level("check_digit_only", _check_digit_only,
          "first 17 characters equal, check character differs"),
    Level("one_digit", _one_digit,
          "one digit substituted or two adjacent swapped, birthdates corroborate"),
    Level("excel_partial", _excel_partial,
          "an Excel-damaged side's surviving digits start the other's ID"),
    Level("exact_birth_conflict", _exact_birth_conflict,
          "same ID (first 17) but a record's birthdate contradicts it: "
          "typically a parent's ID typed on a child's record"),
    Level("other_region", _other_region,
          "two valid numbers issued in different regions (old Tongliao codes mapped): "
          "an ID is for life, so two people"),
)


def _id_missing(p: IdPairs) -> np.ndarray:
    return p.missing


@register("resident_id")
def resident_id_comparison(levels: list[str] | None = None, birth_tolerance_days: int = 50,
                           min_partial: int = 6) -> Comparison:
    """Resident-ID comparison named ``id_number``; ``levels`` keeps a subset of the labels.

    ``birth_tolerance_days`` (0 = exact on the known parts) forgives lunar birthdays when
    checking an ID's birthdate against the record's; ``min_partial`` is the fewest surviving
    digits an Excel-damaged ID needs to count.
    """
    params = {"birth_tolerance_days": int(birth_tolerance_days), "min_partial": int(min_partial)}
    return Comparison(
        name="id_number",
        columns=("id_norm", "id_status", "id_birth", "id_partial", "birth_date", "birth_quality"),
        levels=select_levels(LEVELS, levels),
        missing=_id_missing,
        params=params,
        features=partial(IdPairs, **params),
    )
