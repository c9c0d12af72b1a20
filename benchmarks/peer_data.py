"""The three rosters as a competent user of a general-purpose linkage library would prepare them.

Why a separate module: Splink and the Record Linkage Toolkit must start from the same cleaned
table, so that differences in the results come from the tools and not from one of them getting
better input. The cleaning is what a careful engineer does after looking at the files for an
afternoon, without this project's domain matchers: read each file in its encoding, map the
columns, trim, unify the resident ID (full-width to ASCII, uppercase X, spaces removed, old
15-digit numbers upgraded to 18, anything else treated as missing), parse the date formats seen
in the files to ISO, unify gender codes, drop the group (组) from village names, and add pinyin
columns for blocking and fuzzy comparison (DuckDB's string distances count UTF-8 bytes, so
pinyin is the sensible thing to feed them).
"""
from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import numpy as np
import pandas as pd

# source -> (file, encoding, {common column: file column})
SOURCES = {
    "police": ("police.csv", "utf-8", {
        "record_id": "人员编号", "name": "姓名", "id_number": "公民身份号码",
        "birth_date": "出生日期", "gender": "性别", "village": "嘎查村"}),
    "ncms": ("ncms.csv", "gbk", {
        "record_id": "参合编号", "name": "成员姓名", "id_number": "身份证号",
        "birth_date": "出生日期", "gender": "性别", "village": "村"}),
    "urban": ("urban.csv", "utf-8-sig", {
        "record_id": "ryid", "name": "xm", "id_number": "sfzh", "birth_date": "csrq",
        "gender": "xb", "village": "sqmc"}),
}
INSURANCE_SOURCES = {"ncms", "urban"}
COLUMNS = ["source", "record_id", "name", "id_number", "birth_date", "gender", "village"]

_ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
_ID_CHECK = "10X98765432"
_NAME_NOISE = re.compile(r"[\s·•．・.]+")
_GROUP = re.compile(r"[0-9一二三四五六七八九十]+组$")


def load_sources(data_dir: Path) -> pd.DataFrame:
    """The three files mapped to COLUMNS, every value as text, blanks as ''."""
    frames = []
    for source, (file, encoding, mapping) in SOURCES.items():
        raw = pd.read_csv(data_dir / file, dtype=str, encoding=encoding, keep_default_na=False,
                          usecols=list(mapping.values()))
        frame = raw.rename(columns={v: k for k, v in mapping.items()})
        frame.insert(0, "source", source)
        frames.append(frame[COLUMNS])
    return pd.concat(frames, ignore_index=True)


def standardise(records: pd.DataFrame) -> pd.DataFrame:
    """Add the cleaned and derived columns; functions run once per distinct value."""
    out = records.copy()
    out["name"] = _per_distinct(out["name"], clean_name)
    out["id_number"] = _per_distinct(out["id_number"], clean_id)
    out["birth_date"] = _per_distinct(out["birth_date"], parse_date)
    out["birth_year"] = _per_distinct(records["birth_date"], parse_year)
    out["gender"] = _per_distinct(out["gender"], clean_gender)
    out["village"] = _per_distinct(out["village"], clean_village)
    syllables = _per_distinct(out["name"], _pinyin)
    out["name_py"] = syllables.map(lambda s: "".join(s) if s else None)
    out["surname_py"] = syllables.map(lambda s: s[0] if s else None)
    return out


def _per_distinct(values: pd.Series, fn) -> pd.Series:
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    mapped = np.array([fn(v) for v in uniques] + [None], dtype=object)
    return pd.Series(mapped[codes], index=values.index, dtype=object)


def clean_name(text: str) -> str | None:
    """Trim and drop spaces and middle dots of any style (包·巴特尔 = 包巴特尔)."""
    name = _NAME_NOISE.sub("", unicodedata.normalize("NFKC", text or ""))
    return name or None


def _pinyin(name: str | None) -> list[str] | None:
    from pypinyin import lazy_pinyin

    return lazy_pinyin(name) if name else None


def clean_id(text: str) -> str | None:
    """An 18-character resident ID or None; 15-digit numbers upgraded the standard way."""
    value = re.sub(r"\s+", "", unicodedata.normalize("NFKC", text or "")).upper()
    if re.fullmatch(r"\d{17}[\dX]", value):
        return value
    if re.fullmatch(r"\d{15}", value):
        body = value[:6] + "19" + value[6:]
        digits = np.array([int(c) for c in body])
        return body + _ID_CHECK[int((digits * _ID_WEIGHTS).sum() % 11)]
    return None  # blank, placeholder (无, 待补, 0), Excel float: nothing to compare


_DATE_PATTERNS = [
    re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})"),
    re.compile(r"(\d{4})年(\d{1,2})月(\d{1,2})日?"),
    re.compile(r"(\d{4})(\d{2})(\d{2})"),
    re.compile(r"(\d{2})\.(\d{1,2})\.(\d{1,2})"),  # 65.3.12: two-digit year
]
_EXCEL_EPOCH = pd.Timestamp("1899-12-30")


def parse_date(text: str) -> str | None:
    """ISO yyyy-mm-dd for the full-date formats in the rosters; None otherwise."""
    value = (text or "").strip()
    if re.fullmatch(r"\d{5}", value):  # an Excel serial number
        return (_EXCEL_EPOCH + pd.Timedelta(days=int(value))).strftime("%Y-%m-%d")
    for pattern in _DATE_PATTERNS:
        m = pattern.fullmatch(value)
        if m:
            y, mo, d = (int(g) for g in m.groups())
            if y < 100:
                y += 1900 if y > 20 else 2000
            try:
                return pd.Timestamp(year=y, month=mo, day=d).strftime("%Y-%m-%d")
            except ValueError:
                return None
    return None


def parse_year(text: str) -> str | None:
    """Birth year as text, also from year-month-only dates (for blocking)."""
    iso = parse_date(text)
    if iso:
        return iso[:4]
    m = re.match(r"(\d{4})(?:[-/.年]?\d{1,2}月?)?$", (text or "").strip())
    return m.group(1) if m and 1900 <= int(m.group(1)) <= 2030 else None


def clean_gender(text: str) -> str | None:
    value = (text or "").strip().upper()
    return {"男": "M", "1": "M", "M": "M", "女": "F", "2": "F", "F": "F"}.get(value)


def clean_village(text: str) -> str | None:
    """Village without its group: 庆丰嘎查八组 -> 庆丰嘎查."""
    value = _GROUP.sub("", (text or "").strip())
    return value or None


def prepared(data_dir: Path) -> pd.DataFrame:
    return standardise(load_sources(data_dir))


def load_truth(data_dir: Path) -> pd.DataFrame:
    return pd.read_csv(data_dir / "truth.csv", dtype=str)
