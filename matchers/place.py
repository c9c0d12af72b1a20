"""Townships and villages reduced to a core name, so 哈日干吐嘎查 and 哈日干吐村 compare equal.

In Inner Mongolia a township is a 苏木, 乡, 镇 or 街道 and a village a 嘎查 (pastoral) or 村;
clerks use the kinds interchangeably, add the county or township in front, and append the
group (三组, 3社, 第3村民小组) to the village. The standardisers drop the kind suffix, strip a
leading county/township prefix, and move the group into its own field as a digit string.
Kinds that name a different unit (分场, 社区, 牧场) stay part of the name.
"""
from __future__ import annotations

import re
import unicodedata

import numpy as np
import pandas as pd

from matchers.base import (
    Comparison,
    Level,
    Pairs,
    is_blank,
    per_distinct,
    per_distinct_frame,
    register,
    select_levels,
)
from matchers.base import column as column_of

_ETHNIC = r"(?:蒙古|满|回|朝鲜|达斡尔|鄂温克|鄂伦春|锡伯)族"
_TOWNSHIP_KIND = re.compile(rf"(?:{_ETHNIC})?(?:苏木|乡|镇|街道)$")
_TOWNSHIP_OFFICE = re.compile(r"(?:人民政府|政府|办事处)$")
_ADMIN_UNIT = re.compile(r"自治区|省|盟|市|旗|县|区")
_TOWNSHIP_UNIT = re.compile(r"苏木|乡|镇|街道|牧场|农场|林场")
_ANY_UNIT = re.compile(_ADMIN_UNIT.pattern + "|" + _TOWNSHIP_UNIT.pattern)
_VILLAGE_OFFICE = re.compile(r"(?:村民委员会|居民委员会|村委会|居委会|委员会)$")
_VILLAGE_KIND = re.compile(r"(?:[嘎噶]查村?|村)$")
_VILLAGE_ANY = re.compile(r"(?:[嘎噶]查村?|村|分场|社区)$")
_CN_NUMERAL = "零〇一二三四五六七八九十两"
_GROUP = re.compile(rf"第?([0-9]+|[{_CN_NUMERAL}]+)(?:村民小组|居民小组|小组|组|社|队)$")
_CN_DIGITS = {c: i for i, c in enumerate("〇一二三四五六七八九")} | {"零": 0, "两": 2}


def _clean(value: object) -> str:
    if not isinstance(value, str):
        return ""
    return "".join(unicodedata.normalize("NFKC", value).split())


def _strip_prefix(text: str, units: re.Pattern, accept) -> str:
    """Drop a leading county/township name: the last cut after ``units`` the rest passes."""
    for match in reversed(list(units.finditer(text))):
        head, rest = text[: match.end()], text[match.end():]
        if len(head) > len(match.group(0)) and accept(rest):
            return rest
    return text


def _township_core(text: str) -> str:
    return _TOWNSHIP_KIND.sub("", _TOWNSHIP_OFFICE.sub("", text))


def township_core(value: object) -> str | None:
    """宝龙山镇 -> 宝龙山, 巴彦塔拉苏木 -> 巴彦塔拉, 科左中旗珠日河牧场 -> 珠日河牧场."""
    text = _TOWNSHIP_OFFICE.sub("", _clean(value))
    text = _strip_prefix(
        text, _ADMIN_UNIT,
        lambda rest: (_TOWNSHIP_KIND.search(rest) or _TOWNSHIP_UNIT.search(rest[-2:]))
        and len(_township_core(rest)) >= 2,
    )
    return _township_core(text) or None


def chinese_number(text: str) -> int | None:
    """三 -> 3, 十 -> 10, 十三 -> 13, 二十 -> 20, 九十九 -> 99, 一〇 -> 10; else None."""
    if text.isdigit():
        return int(text)
    if any(c not in _CN_NUMERAL for c in text) or not text:
        return None
    if "十" not in text:
        return int("".join(str(_CN_DIGITS[c]) for c in text))
    tens, _, ones = text.partition("十")
    if len(tens) > 1 or len(ones) > 1 or "十" in ones:
        return None
    return _CN_DIGITS.get(tens, 1) * 10 + _CN_DIGITS.get(ones, 0)


def _village_core(text: str) -> str:
    return _VILLAGE_KIND.sub("", _VILLAGE_OFFICE.sub("", text))


def parse_village(value: object) -> dict:
    """village_norm (core name) and village_group (digits) of one village field."""
    text = _clean(value)
    group = None
    match = _GROUP.search(text)
    if match:
        number = chinese_number(match.group(1))
        if number is not None:
            group, text = str(number), text[: match.start()]
    text = _VILLAGE_OFFICE.sub("", text)
    text = _strip_prefix(
        text, _ANY_UNIT,
        lambda rest: bool(_VILLAGE_ANY.search(rest)) and len(_village_core(rest)) >= 1,
    )
    if text.endswith("社区"):
        core = text
    else:
        core = _VILLAGE_KIND.sub("", text)
    return {"village_norm": core or None, "village_group": group}


def standardise_township(series: pd.Series) -> pd.DataFrame:
    """Column ``township_norm`` (core name or None), once per distinct value."""
    return pd.DataFrame({"township_norm": per_distinct(series, township_core)}, index=series.index)


def standardise_village(series: pd.Series) -> pd.DataFrame:
    """Columns ``village_norm`` and ``village_group``, once per distinct value."""
    return per_distinct_frame(series, parse_village, ["village_norm", "village_group"])


def _values(pairs: Pairs, column: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(left values, left blank, right values, right blank); an absent column is all blank."""

    def read() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        out = []
        for frame in (pairs.left, pairs.right):
            if column not in frame:
                out += [np.full(len(frame), None, dtype=object), np.ones(len(frame), dtype=bool)]
            else:
                values = column_of(frame, column, object)
                out += [values, is_blank(values)]
        return tuple(out)

    return pairs.memo(("place", column), read)


def _same_village(pairs: Pairs, rows: np.ndarray) -> np.ndarray:
    va, blank_va, vb, _ = (x[rows] for x in _values(pairs, "village_norm"))
    ta, blank_ta, tb, blank_tb = (x[rows] for x in _values(pairs, "township_norm"))
    return (va == vb) & ~blank_va & ((ta == tb) | blank_ta | blank_tb)


def _same_township(pairs: Pairs, rows: np.ndarray) -> np.ndarray:
    ta, blank_ta, tb, _ = (x[rows] for x in _values(pairs, "township_norm"))
    return (ta == tb) & ~blank_ta


def _no_place(pairs: Pairs) -> np.ndarray:
    _, village_l, _, village_r = _values(pairs, "village_norm")
    _, township_l, _, township_r = _values(pairs, "township_norm")
    return (village_l & township_l) | (village_r & township_r)


@register("place")
def place_comparison(levels: list[str] | None = None) -> Comparison:
    """Same village (within the same township, or a township unknown), same township, different."""
    return Comparison(
        name="place",
        columns=("township_norm", "village_norm"),
        levels=select_levels(
            (
                Level("same_village", _same_village, "same village, townships do not conflict"),
                Level("same_township", _same_township, "same township core"),
            ),
            levels,
        ),
        missing=_no_place,
    )
