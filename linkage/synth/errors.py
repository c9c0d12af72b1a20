"""Error injection per class: names, resident IDs and gender, at the rates of params.RATES.

Why this shape: an error class is one small function of one record (a homophone, a swapped pair
of digits, Excel's 1.50521E+17); _inject draws which records receive it, vectorised, and calls
the function only on those, so per-record Python runs on a small subset. Dates are in dates.py.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np

from linkage.synth import names as pools
from linkage.synth.arrays import resident_ids
from linkage.synth.dates import date_errors
from linkage.synth.params import MALE, RATES, REF_YEAR
from linkage.synth.records import ErrorLog, Rec


@lru_cache(maxsize=1)
def _homophones() -> dict[str, tuple[str, ...]]:
    """Same-sound characters among name characters (tone included), computed once with pypinyin."""
    from pypinyin import Style, lazy_pinyin

    chars = set(pools.HOMOPHONE_EXTRA) | {c for s in pools.HAN_GIVEN.values() for c in s}
    chars |= {c for s in pools.HAN_GIVEN_COMMON.values() for c in s if not c.isspace()}
    chars |= {c for s, _ in pools.HAN_SURNAMES for c in s}
    chars |= {c for e in pools.MONGOL_MALE + pools.MONGOL_FEMALE for c in e}
    chars = sorted(chars)
    sounds = lazy_pinyin(chars, style=Style.TONE3)
    by_sound: dict[str, list[str]] = {}
    for c, s in zip(chars, sounds):
        by_sound.setdefault(s, []).append(c)
    return {c: tuple(x for x in by_sound[s] if x != c) for c, s in zip(chars, sounds)}


@lru_cache(maxsize=1)
def _lookalikes() -> dict[str, str]:
    table: dict[str, str] = {}
    for group in pools.LOOKALIKE_GROUPS:
        for c in group:
            table[c] = table.get(c, "") + group.replace(c, "")
    return table


_DOTS = {False: ("·", "•", "．", "・", ""), True: ("·", "．", ".", "")}  # by "target is GBK"
_S2T = str.maketrans(pools.SIMPLIFIED_TO_TRADITIONAL)
_FULLWIDTH = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")
_VARIANT_KEYS = sorted(pools.MONGOL_VARIANTS, key=len, reverse=True)
_MONGOL_ELEMENTS = frozenset(pools.MONGOL_MALE + pools.MONGOL_FEMALE)

# Name errors: (surname, separator, given name, two uniforms, target is GBK) -> new name or None.
def _homophone(sn: str, sep: str, gn: str, u: float, v: float, gbk: bool) -> str | None:
    homo = _homophones()
    for j in range(len(gn)):
        pos = (int(u * len(gn)) + j) % len(gn)
        alts = homo.get(gn[pos])
        if alts:
            return sn + sep + gn[:pos] + alts[int(v * len(alts))] + gn[pos + 1:]
    return None


def _lookalike(sn: str, sep: str, gn: str, u: float, v: float, gbk: bool) -> str | None:
    look, full = _lookalikes(), sn + sep + gn
    hits = [j for j, c in enumerate(full) if c in look]
    if not hits:
        return None
    j = hits[int(u * len(hits))]
    return full[:j] + look[full[j]][int(v * len(look[full[j]]))] + full[j + 1:]


def _space(sn: str, sep: str, gn: str, u: float, v: float, gbk: bool) -> str | None:
    if sn and not sep:
        return sn + " " + gn
    full = sn + sep + gn
    j = 1 + int(u * (len(full) - 1))
    return full[:j] + " " + full[j:] if len(full) >= 2 else None


def _dot_variant(sn: str, sep: str, gn: str, u: float, v: float, gbk: bool) -> str | None:
    others = [x for x in _DOTS[gbk] if x != sep]
    return sn + others[int(u * len(others))] + gn if sn else None


def _translit(sn: str, sep: str, gn: str, u: float, v: float, gbk: bool) -> str | None:
    keys = [key for key in _VARIANT_KEYS if key in gn]
    if not keys:
        return None
    key = keys[int(u * len(keys))]
    alts = pools.MONGOL_VARIANTS[key]
    return sn + sep + gn.replace(key, alts[int(v * len(alts))], 1)


NAME_ERRORS: dict[str, Callable[[str, str, str, float, float, bool], str | None]] = {
    "name_homophone": _homophone,
    "name_lookalike": _lookalike,
    "name_traditional": lambda sn, sep, gn, u, v, gbk: (sn + sep + gn).translate(_S2T),
    "name_space": _space,
    "name_dropped_char": lambda sn, sep, gn, u, v, gbk: (
        sn + sep + gn[: int(u * len(gn))] + gn[int(u * len(gn)) + 1:] if len(gn) >= 2 else None),
    "name_doubled_char": lambda sn, sep, gn, u, v, gbk: (
        sn + sep + gn[: int(u * len(gn)) + 1] + gn[int(u * len(gn)):]),
    "name_swapped_given": lambda sn, sep, gn, u, v, gbk: (
        sn + sep + gn[::-1] if len(gn) == 2 and gn not in _MONGOL_ELEMENTS else None),
    "name_dot_variant": _dot_variant,
    "name_surname_dropped": lambda sn, sep, gn, u, v, gbk: gn if sn else None,
    "name_translit_variant": _translit,
    "name_cut4": lambda sn, sep, gn, u, v, gbk: (sn + sep + gn)[:4],
}


# ID errors: (records, index, two uniforms) -> new text or None.
def _id_15digit(rec: Rec, i: int, u: float, v: float) -> str | None:
    if rec.y[i] >= 1985 or rec.region[i] != rec.region15[i]:
        return None  # only numbers issued before 1999 had 15 digits
    return f"{rec.region15[i]:06d}{rec.y[i] % 100:02d}{rec.m[i]:02d}{rec.d[i]:02d}{rec.seq[i]:03d}"


def _id_mistyped(rec: Rec, i: int, u: float, v: float) -> str | None:
    s, j = rec.rid[i], int(u * 17)
    return s[:j] + [c for c in "0123456789" if c != s[j]][int(v * 9)] + s[j + 1:]


def _id_swapped(rec: Rec, i: int, u: float, v: float) -> str | None:
    s = rec.rid[i]
    for t in range(17):
        j = (int(u * 17) + t) % 17
        if s[j] != s[j + 1]:
            return s[:j] + s[j + 1] + s[j] + s[j + 2:]
    return None


def _id_spaces(rec: Rec, i: int, u: float, v: float) -> str | None:
    s, j = rec.rid[i], 1 + int(v * 16)
    return f"{s[:6]} {s[6:14]} {s[14:]}" if u < 0.6 else s[:j] + " " + s[j:]


def _id_excel_float(rec: Rec, i: int, u: float, v: float) -> str | None:
    """What Excel shows for an 18-digit number in a General cell: 1.50521E+17."""
    s = rec.rid[i]
    if not s.isdigit():
        return None  # an X makes it text, which Excel leaves alone
    mantissa, exponent = f"{int(s):.5E}".split("E")
    return mantissa.rstrip("0").rstrip(".") + "E" + exponent


def _id_reissued(rec: Rec, i: int, u: float, v: float, other_region: bool) -> str:
    """A valid number for the same birthdate: another sequence, or the county's other code."""
    seq, region = rec.seq[i], rec.region[i]
    if other_region:
        region = rec.region_new[i] if region == rec.region15[i] else rec.region15[i]
    else:
        seq = (seq + 2 * (1 + int(u * 60))) % 1000 or seq
    return resident_ids(np.array([region]), rec.y[i:i + 1], rec.m[i:i + 1], rec.d[i:i + 1],
                        np.array([seq]))[0]


ID_ERRORS: dict[str, Callable[[Rec, int, float, float], str | None]] = {
    "id_blank": lambda rec, i, u, v: "",
    "id_placeholder": lambda rec, i, u, v: ("无", "0", "待补", "不详")[int(u * 4)],
    "id_15digit": _id_15digit,
    "id_wrong_check": lambda rec, i, u, v: rec.rid[i][:17] + [
        c for c in "0123456789X" if c != rec.rid[i][17]][int(u * 10)],
    "id_mistyped_digit": _id_mistyped,
    "id_swapped_digits": _id_swapped,
    "id_fullwidth": lambda rec, i, u, v: rec.rid[i].translate(_FULLWIDTH),
    "id_lowercase_x": lambda rec, i, u, v: (
        rec.rid[i][:17] + "x" if rec.rid[i].endswith("X") else None),
    "id_spaces": _id_spaces,
    "id_excel_float": _id_excel_float,
    "id_excel_000": lambda rec, i, u, v: rec.rid[i][:15] + "000" if rec.rid[i].isdigit() else None,
    "id_parent_number": lambda rec, i, u, v: rec.parent_rid[i] or None,
    "id_renumbered": lambda rec, i, u, v: _id_reissued(rec, i, u, v, other_region=False),
    "id_region_variant": lambda rec, i, u, v: _id_reissued(rec, i, u, v, other_region=True),
}


def apply_name_error(kind: str, rec: Rec, idx: np.ndarray, r: np.ndarray) -> list:
    """New names for the records at idx; None where the class cannot apply or changes nothing."""
    fn = NAME_ERRORS[kind]
    out = []
    for k, i in enumerate(idx):
        new = fn(rec.sn[i], rec.sep[i], rec.gn[i], r[k, 0], r[k, 1], rec.gbk)
        out.append(None if new == rec.sn[i] + rec.sep[i] + rec.gn[i] else new)
    return out


def apply_id_error(kind: str, rec: Rec, idx: np.ndarray, r: np.ndarray) -> list:
    """New ID numbers for the records at idx; None where the class cannot apply or changes
    nothing."""
    fn = ID_ERRORS[kind]
    out = []
    for k, i in enumerate(idx):
        new = fn(rec, i, r[k, 0], r[k, 1])
        out.append(None if new == rec.rid[i] else new)
    return out


# Milk names are not among them: they are a property of the child (identity.add_milk_names),
# written by the source before these errors are drawn (Rec.milk).
_NAME_CLASSES = ["name_cut4", "name_translit_variant", "name_surname_dropped",
                 "name_dot_variant", "name_homophone", "name_lookalike", "name_traditional",
                 "name_space", "name_dropped_char", "name_doubled_char", "name_swapped_given"]
_ID_CLASSES = ["id_parent_number", "id_blank", "id_placeholder", "id_15digit", "id_wrong_check",
               "id_mistyped_digit", "id_swapped_digits", "id_fullwidth", "id_lowercase_x",
               "id_spaces", "id_excel_float", "id_excel_000", "id_renumbered"]
_OVERSAMPLE = {"name_lookalike": 6, "name_traditional": 2, "name_translit_variant": 2,
               "id_lowercase_x": 12, "id_15digit": 2}


def _eligible(kind: str, rec: Rec) -> np.ndarray | None:
    """Vectorised eligibility where it is cheap; None means every record (the transform decides)."""
    if kind in ("name_dot_variant", "name_surname_dropped"):
        return rec.mstyle & (rec.sn != "")
    if kind == "name_translit_variant":
        return rec.mstyle
    if kind == "name_cut4":
        return (np.array([len(x) for x in rec.sn]) + np.array([len(x) for x in rec.gn])
                + (rec.sep != "")) > 4
    if kind == "id_15digit":
        return (rec.y < 1985) & (rec.region == rec.region15)
    if kind == "id_parent_number":
        return rec.parent_rid != ""
    return None


def _inject(rng, rec: Rec, values: np.ndarray, labels: np.ndarray, classes: list[str],
            rates: dict[str, float], factor: np.ndarray, apply: Callable) -> None:
    """At most one error per record and field; a rate is conditional on the error being possible.

    Records are drawn K times too often, the transform keeps those it can change, and 1/K of those
    survive: so the realised rate among possible records is the nominal one.
    """
    n = len(values)
    free = labels == ""
    for kind in classes:
        rate = rates.get(kind, 0.0)
        if rate <= 0:
            continue
        k = _OVERSAMPLE.get(kind, 1.5)
        p = np.minimum(rate * factor, 0.95)
        p1 = np.minimum(p * k, 1.0)
        mask = free & (rng.random(n) < p1)
        elig = _eligible(kind, rec)
        if elig is not None:
            mask &= elig
        idx = np.flatnonzero(mask)
        if len(idx) == 0:
            continue
        new = apply(kind, rec, idx, rng.random((len(idx), 2)))
        keep = np.array([x is not None for x in new], dtype=bool)
        keep &= rng.random(len(idx)) < (p[idx] / p1[idx])
        hit = idx[keep]
        values[hit] = np.array(new, dtype=object)[keep]
        labels[hit] = kind
        free[hit] = False


def apply_errors(rng: np.random.Generator, rec: Rec, source: str, factor: np.ndarray,
                 ids: np.ndarray, log: ErrorLog) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Names, IDs and birthdates of one source with its errors; logs what was done.

    Records with a milk name (rec.milk) show it and get no other name error; children entered
    with no ID and the birth year only (rec.no_id) get no other ID or date error.
    """
    rates = RATES[source]
    names = rec.sn + rec.sep + rec.gn
    labels = np.full(len(names), "", dtype=object)
    if rec.milk is not None:
        milk = rec.milk != ""
        names[milk] = rec.milk[milk]
        labels[milk] = "name_milk_name"
    _inject(rng, rec, names, labels, _NAME_CLASSES, rates, factor, apply_name_error)
    log.add(source, ids, "name", labels)
    rid = rec.rid.copy()
    labels = np.full(len(rid), "", dtype=object)
    if rec.no_id is not None:
        rid[rec.no_id] = ""
        labels[rec.no_id] = "id_missing_child"
    infant = np.where(rec.y >= REF_YEAR - 2, 6.0, 1.0)
    # newborns often have no number yet
    _inject(rng, rec, rid, labels, ["id_blank"], rates, factor * infant, apply_id_error)
    _inject(rng, rec, rid, labels, _ID_CLASSES, {**rates, "id_blank": 0.0}, factor,
            apply_id_error)
    log.add(source, ids, "id", labels)
    y, m, d, ym, labels = date_errors(rng, rec, rates, factor)
    log.add(source, ids, "birth_date", labels)
    return names, rid, (y, m, d, ym)


def gender_text(rng: np.random.Generator, gender: np.ndarray, coded: np.ndarray,
                rates: dict[str, float], factor: np.ndarray, source: str, ids: np.ndarray,
                log: ErrorLog) -> np.ndarray:
    """Gender as the source writes it (男/女 or, where coded, 1/2), with wrong and blank values."""
    n = len(gender)
    g = gender.copy()
    labels = np.full(n, "", dtype=object)
    wrong = rng.random(n) < rates.get("gender_wrong", 0) * factor
    g[wrong] = 3 - g[wrong]
    labels[wrong] = "gender_wrong"
    out = np.where(coded, np.where(g == MALE, "1", "2"), np.where(g == MALE, "男", "女"))
    out = out.astype(object)
    blank = ~wrong & (rng.random(n) < rates.get("gender_blank", 0) * factor)
    out[blank] = ""
    labels[blank] = "gender_blank"
    log.add(source, ids, "gender", labels)
    return out
