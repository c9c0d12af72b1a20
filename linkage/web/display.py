"""What a reviewer sees of two values: character differences, masked ID numbers, weight bars.

Pure functions over strings, so the privacy rules (what part of an ID number leaves the server)
are tested without a browser. Templates only render the segments these return.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from linkage.web.i18n import gettext as _

# What a reviewer sees of an ID number: the province (2 digits) and nothing else. The page shows
# the birth date and gender, which fix the number's 8 date digits and the parity of its 17th;
# the check character follows from the rest. Showing more would let the page complete the
# number: with the prefecture (4 digits) shown only ~10 county codes and 500 sequences are left,
# and showing the check character cuts that by 11 again. With the province alone about 100k
# numbers fit everything the page shows (~200 county codes x 500 sequences).
REVIEW_HEAD = 2
# The check API's masked scope (mask_id) shows the prefecture and the last four characters.
VISIBLE_HEAD = 4
VISIBLE_TAIL = 4
MASK = "*"
_ID_CHAR = re.compile(r"[0-9XxＸｘ０-９]")
_ID_LIKE = re.compile(r"[0-9０-９]{17}[0-9XxＸｘ０-９]|[0-9０-９]{15}")


@dataclass(frozen=True)
class Segment:
    text: str
    changed: bool


@dataclass(frozen=True)
class IdCell:
    char: str
    differs: bool
    masked: bool


def char_diff(a: str | None, b: str | None,
              aligned: bool = False) -> tuple[list[Segment], list[Segment]]:
    """Both strings cut into runs of equal and differing characters (one character = one code
    point, so 王丽/王莉 differ in one place, not in three bytes).

    `aligned` compares position by position when the lengths agree: right for fixed formats
    such as yyyy-mm-dd, where a day/month swap should show as two changed fields.
    """
    a, b = a or "", b or ""
    if aligned and len(a) == len(b):
        return _runs(a, [x != y for x, y in zip(a, b)]), _runs(b, [x != y for x, y in zip(a, b)])
    left: list[Segment] = []
    right: list[Segment] = []
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        same = op == "equal"
        if i2 > i1:
            left.append(Segment(a[i1:i2], not same))
        if j2 > j1:
            right.append(Segment(b[j1:j2], not same))
    return left, right


def _runs(text: str, changed: list[bool]) -> list[Segment]:
    out: list[Segment] = []
    for ch, flag in zip(text, changed):
        if out and out[-1].changed == flag:
            out[-1] = Segment(out[-1].text + ch, flag)
        else:
            out.append(Segment(ch, flag))
    return out


def _visible(i: int, n: int, head: int = VISIBLE_HEAD, tail: int = VISIBLE_TAIL) -> bool:
    return n >= 15 and (i < head or i >= n - tail)


def mask_id_pair(a: str | None, b: str | None) -> tuple[list[IdCell], list[IdCell]]:
    """Two ID numbers masked for a reviewer: the province digits stay, every other digit
    (the check character too) becomes '*', and each position where the numbers differ is marked.

    The reviewer learns where the numbers differ (one typo, two swapped digits, a damaged tail)
    but not the number itself, nor enough of it to complete it from the page's birth date and
    gender (see REVIEW_HEAD). Characters that are not digits (无, 待补, the E+ of Excel damage)
    are shown: they carry no identity.
    """
    a, b = a or "", b or ""

    def cells(s: str, other: str) -> list[IdCell]:
        out = []
        for i, ch in enumerate(s):
            differs = i >= len(other) or other[i] != ch
            hide = bool(_ID_CHAR.match(ch)) and not _visible(i, len(s), REVIEW_HEAD, 0)
            out.append(IdCell(MASK if hide else ch, differs, hide))
        return out

    return cells(a, b), cells(b, a)


def describe_id_difference(a: str | None, b: str | None) -> str:
    """A short phrase on how two ID numbers differ, safe to show (it names no digit)."""
    a, b = a or "", b or ""
    if not a or not b:
        return _("one side has no usable number") if (a or b) else _("no number on either side")
    if a == b:
        return _("identical")
    if len(a) != len(b):
        return _("different lengths (%(a)d and %(b)d characters)") % {"a": len(a), "b": len(b)}
    where = [i for i in range(len(a)) if a[i] != b[i]]
    if len(where) == 2 and where[1] == where[0] + 1 and a[where[0]] == b[where[1]] \
            and a[where[1]] == b[where[0]]:
        return _("two adjacent characters swapped (positions %(first)d-%(second)d)") % {
            "first": where[0] + 1, "second": where[1] + 1}
    if len(where) == 1:
        return _("one character differs (position %(position)d)") % {"position": where[0] + 1}
    return _("%(count)d characters differ") % {"count": len(where)}


def mask_free_text(value: str | None) -> str:
    """Hide anything shaped like a resident ID inside a free-text field (an extra column)."""
    if not value:
        return value or ""
    return _ID_LIKE.sub(lambda m: MASK * len(m.group(0)), value)


@dataclass(frozen=True)
class Bar:
    name: str
    level: str
    weight: float
    x: float  # SVG user units, in a 0..200 box whose centre (100) is weight 0
    width: float


def weight_bars(explanation: dict) -> list[Bar]:
    """Per-field match weights (bits) as bars from a centre line: right for evidence of a match,
    left against; all bars on one scale so their lengths compare."""
    items: list[tuple[str, str, float]] = []
    for name, value in explanation.items():
        if isinstance(value, dict):
            items.append((name, str(value.get("level", "")), float(value.get("weight") or 0.0)))
        elif isinstance(value, (int, float)):
            items.append((name, "", float(value)))
    scale = max((abs(w) for _, _, w in items), default=0.0) or 1.0
    bars = []
    for name, level, w in items:
        width = abs(w) / scale * 98
        bars.append(Bar(name, level, w, 100.0 if w >= 0 else 100.0 - width, width))
    return bars


def mask_id(value: str | None) -> str | None:
    """One ID number masked for check-API clients that may not see IDs: only the province
    digits stay, as on the review pages. The masked answer shows the birth year and the
    caller may send a guess per check, so the prefecture and last four characters (the old
    mask) left a few hundred completions: few enough to probe within a day's record limit."""
    if not value:
        return value
    return "".join(MASK if _ID_CHAR.match(ch) and not _visible(i, len(value), REVIEW_HEAD, 0)
                   else ch for i, ch in enumerate(value))


def mask_name(value: str | None) -> str | None:
    """A name with only its first character shown (张** , 包·***); middle dots stay."""
    if not value:
        return value
    return value[0] + "".join(ch if ch in "·•．・" else MASK for ch in value[1:])
