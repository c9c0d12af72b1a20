"""Synthetic prefecture: police registry, NCMS and urban rosters, with an exact answer key.

Why: the matcher has to be measured on data carrying the errors of DESIGN.md section 3 at
realistic rates, and real rosters are sensitive personal data that cannot live in the repository.
People are generated as numpy arrays of indices into pools (synth_names, data/tongliao_places.json);
per-record Python only runs on the small subsets that receive an error, so 1M persons take about a
minute. The same seed gives the same world.
"""
from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from linkage import synth_names as pools

REF_YEAR = 2020  # the rosters are as of the end of this year
DATA = Path(__file__).parent / "data"

# Roles inside a household (slots of a household template).
# head, spouse, child, married son (lives with his wife), head's father, mother, daughter-in-law,
# grandchild
H, S, C, CM, F, M, D, G = range(8)
MALE, FEMALE = 1, 2
ETHNICITY = np.array(["汉族", "蒙古族", "满族", "回族"], dtype=object)
HAN, MONGOL = 0, 1

# Household templates: slots, share, head's birth years (lo, hi, lo2, hi2, P(first range)),
# P(head is male).
_TEMPLATES: list[tuple[tuple[int, ...], float, tuple[int, int, int, int, float], float]] = [
    ((H,), 0.10, (1928, 1958, 1970, 1998, 0.5), 0.55),
    ((H, S), 0.20, (1935, 1965, 1975, 1997, 0.65), 0.92),
    ((H, S, C), 0.22, (1962, 1993, 0, 0, 1.0), 0.92),
    ((H, S, C, C), 0.18, (1962, 1990, 0, 0, 1.0), 0.92),
    ((H, S, C, C, C), 0.05, (1958, 1988, 0, 0, 1.0), 0.95),
    ((H, S, C, M), 0.04, (1962, 1988, 0, 0, 1.0), 1.0),
    ((H, S, C, C, F, M), 0.03, (1962, 1988, 0, 0, 1.0), 1.0),
    ((H, S, CM, D), 0.02, (1938, 1962, 0, 0, 1.0), 0.92),
    ((H, S, CM, D, G), 0.06, (1938, 1962, 0, 0, 1.0), 0.92),
    ((H, S, CM, D, G, G), 0.05, (1938, 1960, 0, 0, 1.0), 0.92),
    ((H, S, CM, D, G, G, G), 0.01, (1938, 1958, 0, 0, 1.0), 0.95),
    ((H, C), 0.04, (1955, 1990, 0, 0, 1.0), 0.25),
    ((H, C, C), 0.01, (1955, 1985, 0, 0, 1.0), 0.25),
    ((H, S, C, C, C, F, M), 0.005, (1962, 1985, 0, 0, 1.0), 1.0),
]
_SLOTS = np.full((len(_TEMPLATES), 7), -1, dtype=np.int8)
for _t, (_slots, *_rest) in enumerate(_TEMPLATES):
    _SLOTS[_t, : len(_slots)] = _slots
_SIZE = (_SLOTS >= 0).sum(axis=1)
_SHARE = np.array([t[1] for t in _TEMPLATES])
_SHARE = _SHARE / _SHARE.sum()
_YEARS = np.array([t[2] for t in _TEMPLATES], dtype=float)
_HEAD_MALE = np.array([t[3] for t in _TEMPLATES])
# The two slots that can hold twins (first two children, else first two grandchildren), or -1.
_TWIN_SLOTS = np.full((len(_TEMPLATES), 2), -1, dtype=np.int8)
for _t, (_slots, *_rest) in enumerate(_TEMPLATES):
    for _role in (C, G):
        _where = [i for i, r in enumerate(_slots) if r == _role]
        if len(_where) >= 2 and _TWIN_SLOTS[_t, 0] < 0:
            _TWIN_SLOTS[_t] = _where[:2]

# Error rates, conditional on the error being possible for the record (a lowercase x needs an X,
# a lunar date an elderly person). NCMS rates are scaled by each clerk's carelessness.
RATES: dict[str, dict[str, float]] = {
    "police": {
        "name_homophone": 0.003, "name_lookalike": 0.002, "name_translit_variant": 0.02,
        "name_dot_variant": 0.02,
        "id_wrong_check": 0.001, "id_mistyped_digit": 0.001, "id_swapped_digits": 0.001,
        "date_digit_off": 0.002,
    },
    "ncms": {
        "name_milk_name": 0.12, "name_cut4": 0.40, "name_translit_variant": 0.12,
        "name_surname_dropped": 0.10, "name_dot_variant": 0.25, "name_homophone": 0.035,
        "name_lookalike": 0.03, "name_traditional": 0.01, "name_space": 0.012,
        "name_dropped_char": 0.006, "name_doubled_char": 0.004, "name_swapped_given": 0.008,
        "id_blank": 0.02, "id_placeholder": 0.01, "id_15digit": 0.03, "id_wrong_check": 0.008,
        "id_mistyped_digit": 0.012, "id_swapped_digits": 0.007, "id_fullwidth": 0.005,
        "id_lowercase_x": 0.25, "id_spaces": 0.005, "id_excel_float": 0.008, "id_excel_000": 0.007,
        "id_parent_number": 0.02, "id_renumbered": 0.004,
        "date_jan1": 0.01, "date_year_month": 0.008, "date_day_month_swap": 0.008,
        "date_lunar": 0.15, "date_digit_off": 0.008,
        "gender_blank": 0.03, "gender_wrong": 0.003,
    },
    "urban": {
        "name_translit_variant": 0.05, "name_surname_dropped": 0.04, "name_dot_variant": 0.12,
        "name_homophone": 0.015, "name_lookalike": 0.01, "name_traditional": 0.005,
        "name_space": 0.005, "name_dropped_char": 0.003, "name_doubled_char": 0.002,
        "name_swapped_given": 0.003,
        "id_blank": 0.004, "id_placeholder": 0.002, "id_15digit": 0.004, "id_wrong_check": 0.003,
        "id_mistyped_digit": 0.007, "id_swapped_digits": 0.004, "id_fullwidth": 0.003,
        "id_lowercase_x": 0.12, "id_spaces": 0.003, "id_excel_float": 0.003, "id_excel_000": 0.003,
        "id_parent_number": 0.004, "id_renumbered": 0.002,
        "date_jan1": 0.003, "date_year_month": 0.001, "date_day_month_swap": 0.003,
        "date_lunar": 0.02, "date_digit_off": 0.005,
        "gender_blank": 0.01, "gender_wrong": 0.002,
    },
}
# Record selection rates (per eligible person) for the rosters and the duplicate enrolments.
ENROL = {
    "ncms_household": 0.96, "ncms_person": 0.97, "ncms_dead_listed": 0.2,
    "ncms_dead_unlisted": 0.95,
    "urban_child": 0.85, "urban_elderly": 0.8, "urban_adult": 0.45, "urban_dead": 0.03,
    "pupil_in_urban": 0.04, "worker_in_urban": 0.015, "migrant_rural_in_urban": 0.25,
    "married_daughter_twice": 0.012, "ncms_entered_twice": 0.004, "police_double": 0.0025,
}

POLICE_COLUMNS = ["人员编号", "户号", "姓名", "公民身份号码", "性别", "民族", "出生日期", "与户主关系",
                  "苏木乡镇", "嘎查村", "住址", "人员状态"]
NCMS_COLUMNS = ["参合编号", "家庭编号", "户主姓名", "成员姓名", "身份证号", "性别", "出生日期", "与户主关系",
                "乡镇", "村", "参合档次", "补助类别", "缴费金额", "收据号", "录入员"]
URBAN_COLUMNS = ["ryid", "xm", "sfzh", "xb", "csrq", "jdmc", "sqmc", "cbrq", "dc"]
ENCODINGS = {"police": "utf-8", "ncms": "gbk", "urban": "utf-8-sig", "truth": "utf-8",
             "errors": "utf-8"}


@dataclass
class World:
    """The three sources, the truth (one row per record) and the log of injected errors."""

    police: pd.DataFrame
    ncms: pd.DataFrame
    urban: pd.DataFrame
    truth: pd.DataFrame
    errors: pd.DataFrame
    seed: int
    persons: int
    households: int
    counts: dict[str, int] = field(default_factory=dict)


# ---------------------------------------------------------------- vectorised string helpers
_NUM = np.array([str(i) for i in range(2101)], dtype=object)
_Z2 = np.array([f"{i:02d}" for i in range(100)], dtype=object)
_CN = np.array(list(pools.CHINESE_NUMERALS), dtype=object)


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """(n, width) decimal digits of non-negative integers, most significant first."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return ((np.asarray(values, dtype=np.int64)[:, None] // powers) % 10).astype(np.uint8)


def _ascii(codes: np.ndarray) -> np.ndarray:
    """Rows of ASCII codes -> object array of str, through one numpy view (no loop per char)."""
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    width = codes.shape[1]
    return codes.view(f"S{width}").ravel().astype(f"U{width}").astype(object)


def _zfill(values: np.ndarray, width: int) -> np.ndarray:
    return _ascii(_digits(values, width) + 48)


_ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
_CHECK_CHARS = np.frombuffer(b"10X98765432", dtype=np.uint8)


def resident_ids(region: np.ndarray, y: np.ndarray, m: np.ndarray, d: np.ndarray,
                 seq: np.ndarray) -> np.ndarray:
    """GB 11643 numbers (region, birthdate, sequence, ISO 7064 MOD 11-2 check), vectorised."""
    body = np.hstack([_digits(region, 6), _digits(y, 4), _digits(m, 2), _digits(d, 2),
                      _digits(seq, 3)])
    check = _CHECK_CHARS[(body.astype(np.int64) @ _ID_WEIGHTS) % 11]
    return _ascii(np.hstack([body + 48, check[:, None]]))


def _days_in_month(y: np.ndarray, m: np.ndarray) -> np.ndarray:
    leap = (y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0))
    dim = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])[np.clip(m, 1, 12)]
    return dim + ((m == 2) & leap)


def _pick(rng: np.random.Generator, options: np.ndarray, n: int, p=None) -> np.ndarray:
    return options[rng.choice(len(options), size=n, p=p)]


def _zipf(n: int, s: float = 0.9, offset: float = 1.5) -> np.ndarray:
    w = 1.0 / (np.arange(n) + offset) ** s
    return w / w.sum()


# ---------------------------------------------------------------- geography
@dataclass
class _Geo:
    """Counties, townships (units) and villages/communities as parallel arrays."""

    county_code: np.ndarray
    county_name: np.ndarray
    old_code: np.ndarray
    old_code_alt: np.ndarray
    old_alt_p: np.ndarray
    share: np.ndarray
    urban_share: np.ndarray
    mongol_share: np.ndarray
    unit_county: np.ndarray
    unit_name: np.ndarray
    unit_stem: np.ndarray
    unit_suffix: np.ndarray
    unit_urban: np.ndarray
    unit_vstart: np.ndarray
    unit_vcount: np.ndarray
    vil_unit: np.ndarray
    vil_stem: np.ndarray
    vil_suffix: np.ndarray
    vil_name: np.ndarray
    vil_groups: np.ndarray
    vil_clerk: np.ndarray
    clerk_code: np.ndarray
    cu_start: np.ndarray  # [county, urban] -> first unit
    cu_count: np.ndarray
    external_codes: np.ndarray
    province: str
    prefecture: str


def _split_suffix(name: str) -> tuple[str, str]:
    for suffix in ("街道", "苏木", "镇", "乡"):
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], suffix
    return name, ""


def _build_geo(persons: int) -> _Geo:
    """Fixed geography (same names for every seed); how many villages are used grows with size."""
    spec = json.loads((DATA / "tongliao_places.json").read_text(encoding="utf-8"))
    grng = np.random.default_rng(2016)
    mongol_stems, han_stems = spec["mongol_village_stems"], spec["han_village_stems"]
    prefixes, communities = spec["village_prefixes"], spec["community_stems"]
    counties = spec["counties"]
    units, vils = [], []
    clerk_codes: list[str] = []
    cu_start = np.zeros((len(counties), 2), dtype=np.int64)
    cu_count = np.zeros((len(counties), 2), dtype=np.int64)
    for ci, cty in enumerate(counties):
        pop = persons * cty["share"]
        clerk_no = 0
        for urban, names in ((0, cty["townships"]), (1, cty["urban_units"])):
            cu_start[ci, urban], cu_count[ci, urban] = len(units), len(names)
            per_unit = pop * (cty["urban_share"] if urban else 1 - cty["urban_share"]) / len(names)
            for uname in names:
                stem, suffix = _split_suffix(uname)
                ui = len(units)
                units.append((ci, uname, stem, suffix, urban, len(vils)))
                used: set[str] = set()
                if urban:
                    n_max, n_use = len(communities), int(np.clip(round(per_unit / 1500), 2, 25))
                else:
                    n_max, n_use = 40, int(np.clip(round(per_unit / 420), 2, 40))
                made = []
                for k in range(n_max):
                    if urban:
                        vstem, vsuffix = communities[(k + 7 * ui) % len(communities)], "社区"
                    else:
                        mongol = grng.random() < min(0.85, cty["mongol_share"] * 2.2)
                        stems = mongol_stems if mongol else han_stems
                        vstem = stems[grng.integers(len(stems))]
                        vsuffix = "嘎查" if mongol and grng.random() < 0.9 else "村"
                    for _ in range(20):
                        if vstem not in used:
                            break
                        vstem = prefixes[grng.integers(len(prefixes))] + vstem[-3:]
                    used.add(vstem)
                    made.append((vstem, vsuffix, 0 if urban else int(grng.integers(3, 10))))
                for k, (vstem, vsuffix, groups) in enumerate(made[:n_use]):
                    if not urban and k % 2 == 0:
                        clerk_no += 1
                        clerk_codes.append(f"{cty['clerk']}{clerk_no:03d}")
                    clerk = -1 if urban else len(clerk_codes) - 1  # one clerk keys two villages
                    vils.append((ui, vstem, vsuffix, groups, clerk))
    u = list(zip(*units))
    v = list(zip(*vils))
    obj = lambda xs: np.array(xs, dtype=object)  # noqa: E731
    vcount = np.bincount(np.array(v[0]), minlength=len(units))
    return _Geo(
        county_code=np.array([int(c["code"]) for c in counties]),
        county_name=obj([c["name"] for c in counties]),
        old_code=np.array([int(c["old_codes"][0][0]) for c in counties]),
        old_code_alt=np.array([int(c["old_codes"][-1][0]) for c in counties]),
        old_alt_p=np.array([c["old_codes"][-1][1] if len(c["old_codes"]) > 1 else 0.0
                            for c in counties]),
        share=np.array([c["share"] for c in counties]) / sum(c["share"] for c in counties),
        urban_share=np.array([c["urban_share"] for c in counties]),
        mongol_share=np.array([c["mongol_share"] for c in counties]),
        unit_county=np.array(u[0]), unit_name=obj(u[1]), unit_stem=obj(u[2]), unit_suffix=obj(u[3]),
        unit_urban=np.array(u[4], dtype=bool), unit_vstart=np.array(u[5]), unit_vcount=vcount,
        vil_unit=np.array(v[0]), vil_stem=obj(v[1]), vil_suffix=obj(v[2]),
        vil_name=obj(v[1]) + obj(v[2]), vil_groups=np.array(v[3]), vil_clerk=np.array(v[4]),
        clerk_code=obj(clerk_codes), cu_start=cu_start, cu_count=cu_count,
        external_codes=np.array([int(c) for c in spec["external_region_codes"]]),
        province=spec["province"], prefecture=spec["prefecture"],
    )


# ---------------------------------------------------------------- people
@dataclass
class _People:
    """Persons and their households as aligned arrays (no per-person Python objects)."""

    hh: np.ndarray
    pos: np.ndarray
    role: np.ndarray
    gender: np.ndarray
    by: np.ndarray
    bm: np.ndarray
    bd: np.ndarray
    eth: np.ndarray
    sn: np.ndarray
    sep: np.ndarray
    gn: np.ndarray
    mstyle: np.ndarray  # Mongolian (syllable) given name
    rare: np.ndarray  # name holds a character outside GBK
    region: np.ndarray
    seq: np.ndarray
    rid: np.ndarray
    parent: np.ndarray  # a parent in the same household, or -1
    relation: np.ndarray  # police spelling (户主, 配偶, 长子, ...)
    dead: np.ndarray  # 0 alive, 1 dead and marked 死亡, 2 dead but still 正常
    unregistered: np.ndarray  # migrant missing from the police registry
    twin_of: np.ndarray
    hh_start: np.ndarray
    hh_size: np.ndarray
    hh_county: np.ndarray
    hh_unit: np.ndarray
    hh_village: np.ndarray
    hh_group: np.ndarray
    hh_urban: np.ndarray

    @property
    def name(self) -> np.ndarray:
        return self.sn + self.sep + self.gn

    def __len__(self) -> int:
        return len(self.hh)


def _households(rng: np.random.Generator, n: int) -> np.ndarray:
    """Templates of households whose sizes add up to exactly n persons."""
    tpl = rng.choice(len(_TEMPLATES), size=max(n, 1), p=_SHARE)
    cum = np.cumsum(_SIZE[tpl])
    k = int(np.searchsorted(cum, n, side="right"))
    rest = n - (int(cum[k - 1]) if k else 0)
    return np.concatenate([tpl[:k], np.zeros(rest, dtype=tpl.dtype)])


def _child_year(rng, base: np.ndarray, lo: int, span_max: int) -> np.ndarray:
    span = np.clip(REF_YEAR - base - lo, 0, span_max)
    year = base + lo + np.floor(rng.random(len(base)) * (span + 1)).astype(int)
    return np.minimum(year, REF_YEAR)


def _draw_surnames(rng, eth: np.ndarray) -> np.ndarray:
    han = np.array([s for s, _ in pools.HAN_SURNAMES], dtype=object)
    han_p = np.array([w for _, w in pools.HAN_SURNAMES])
    mon = np.array([s for s, _ in pools.MONGOL_SURNAMES], dtype=object)
    mon_p = np.array([w for _, w in pools.MONGOL_SURNAMES])
    out = _pick(rng, han, len(eth), han_p / han_p.sum())
    is_m = eth == MONGOL
    out[is_m] = _pick(rng, mon, int(is_m.sum()), mon_p / mon_p.sum())
    hui = eth == 3  # Hui families are often 马
    out[hui & (rng.random(len(eth)) < 0.3)] = "马"
    return out


def _han_given(rng, gender: np.ndarray, by: np.ndarray) -> np.ndarray:
    n = len(gender)
    era = np.where(by < 1970, 0, np.where(by < 1995, 1, 2))
    one = rng.random(n) < np.where((by >= 1965) & (by < 1995), 0.45, 0.18)
    out = np.empty(n, dtype=object)
    for g, gname in ((MALE, "M"), (FEMALE, "F")):
        for e, ename in enumerate(("old", "mid", "young")):
            idx = np.flatnonzero((gender == g) & (era == e))
            chars = np.array(list(pools.HAN_GIVEN[(gname, ename)]), dtype=object)
            p = _zipf(len(chars))
            first, second = _pick(rng, chars, len(idx), p), _pick(rng, chars, len(idx), p)
            out[idx] = np.where(one[idx], first, first + second)
    return out


def _mongol_given(rng, gender: np.ndarray) -> np.ndarray:
    n = len(gender)
    out = np.empty(n, dtype=object)
    for g, elems in ((MALE, pools.MONGOL_MALE), (FEMALE, pools.MONGOL_FEMALE)):
        idx = np.flatnonzero(gender == g)
        arr = np.array(elems, dtype=object)
        p = _zipf(len(arr), 0.6, 2.0)
        a, b = _pick(rng, arr, len(idx), p), _pick(rng, arr, len(idx), p)
        two = (rng.random(len(idx)) < 0.45) & (a != b)
        out[idx] = np.where(two, a + b, a)
    return out


def _people(rng: np.random.Generator, n: int, geo: _Geo) -> _People:
    tpl = _households(rng, n)
    nh = len(tpl)
    size = _SIZE[tpl]
    hh_start = np.concatenate([[0], np.cumsum(size)[:-1]])
    slots = _SLOTS[tpl]
    role = slots[slots >= 0].astype(np.int8)
    hh = np.repeat(np.arange(nh), size)
    pos = np.arange(n) - hh_start[hh]

    # where each household lives
    county = rng.choice(len(geo.share), size=nh, p=geo.share)
    urban = (rng.random(nh) < geo.urban_share[county]).astype(int)
    unit = geo.cu_start[county, urban] + (rng.random(nh) * geo.cu_count[county, urban]).astype(int)
    village = geo.unit_vstart[unit] + (rng.random(nh) * geo.unit_vcount[unit]).astype(int)
    group = np.where(geo.vil_groups[village] > 0,
                     1 + (rng.random(nh) * geo.vil_groups[village]).astype(int), 0)

    # gender
    head_male = rng.random(nh) < _HEAD_MALE[tpl]
    r = rng.random(n)
    gender = np.where(r < 0.53, MALE, FEMALE).astype(np.int8)
    gender[role == H] = np.where(head_male, MALE, FEMALE)
    gender[role == S] = np.where(head_male[hh[role == S]], FEMALE, MALE)
    gender[(role == CM) | (role == F)] = MALE
    gender[(role == M) | (role == D)] = FEMALE

    # birth years by role, from the head's
    lo1, hi1, lo2, hi2, p1 = (_YEARS[tpl, k] for k in range(5))
    first = rng.random(nh) < p1
    lo, hi = np.where(first, lo1, lo2), np.where(first, hi1, hi2)
    head_year = (lo + np.floor(rng.random(nh) * (hi - lo + 1))).astype(int)
    hy = head_year[hh]
    by = hy.copy()
    spouse_gap = np.clip(np.round(rng.normal(2.5, 2.5, n)), -5, 12).astype(int)
    is_s = role == S
    by[is_s] = hy[is_s] + np.where(gender[is_s] == FEMALE, 1, -1) * spouse_gap[is_s]
    mother_base = np.where(head_male[hh], hy + 2, hy)
    is_c = role == C
    by[is_c] = _child_year(rng, mother_base[is_c], 20, 17)
    is_cm = role == CM
    by[is_cm] = _child_year(rng, hy[is_cm], 21, 8)
    son_year = np.zeros(nh, dtype=int)
    son_year[hh[is_cm]] = by[is_cm]
    is_d = role == D
    by[is_d] = son_year[hh[is_d]] + np.clip(np.round(rng.normal(1.5, 2, int(is_d.sum()))), -3, 8)
    is_g = role == G
    by[is_g] = _child_year(rng, son_year[hh[is_g]] + 1, 20, 14)
    by[role == F] = hy[role == F] - 22 - rng.integers(0, 13, int((role == F).sum()))
    by[role == M] = hy[role == M] - 20 - rng.integers(0, 13, int((role == M).sum()))
    by = np.clip(by, 1920, REF_YEAR)
    bm, bd = _random_day(rng, by)

    # ethnicity and surnames: the line (father's side) and those who married in
    line_eth = _draw_ethnicity(rng, geo.mongol_share[county])
    other_eth = _draw_ethnicity(rng, geo.mongol_share[county[hh]])
    own_eth = np.where(rng.random(n) < 0.75, line_eth[hh], other_eth)
    uses_line = np.isin(role, (C, CM, G, F)) | (np.isin(role, (H, S)) & (gender == MALE))
    eth = np.where(uses_line, line_eth[hh], own_eth).astype(np.int8)
    line_sn = _draw_surnames(rng, line_eth)
    sn = np.where(uses_line, line_sn[hh], _draw_surnames(rng, eth))

    # given names: Han style, or Mongolian syllables with surname dotted, plain or absent
    gn = _han_given(rng, gender, by)
    p_mstyle = np.where(by < 1980, 0.75, np.where(by < 2000, 0.6, 0.5))
    mstyle = (eth == MONGOL) & (rng.random(n) < p_mstyle)
    gn[mstyle] = _mongol_given(rng, gender[mstyle])
    sep = np.full(n, "", dtype=object)
    usage = rng.random(n)
    sn = np.where(mstyle & (usage < 0.45), "", sn)
    sep[mstyle & (usage >= 0.45) & (usage < 0.75)] = "·"
    rare_keys = np.array(list(pools.RARE_NOT_GBK), dtype=object)
    rare = ~mstyle & (np.array([len(x) for x in gn]) == 2) & (rng.random(n) < 0.0005)
    first_char = np.array([x[0] for x in gn[rare]], dtype=object)
    gn[rare] = first_char + _pick(rng, rare_keys, int(rare.sum()))

    people = _People(
        hh=hh, pos=pos, role=role, gender=gender, by=by, bm=bm, bd=bd, eth=eth, sn=sn, sep=sep,
        gn=gn, mstyle=mstyle, rare=rare, region=np.zeros(n, dtype=np.int64),
        seq=np.zeros(n, dtype=np.int64), rid=np.empty(0, dtype=object),
        parent=np.full(n, -1), relation=np.empty(n, dtype=object), dead=np.zeros(n, dtype=np.int8),
        unregistered=np.zeros(n, dtype=bool), twin_of=np.full(n, -1),
        hh_start=hh_start, hh_size=size, hh_county=county, hh_unit=unit, hh_village=village,
        hh_group=group, hh_urban=urban.astype(bool),
    )
    people.parent[is_c] = hh_start[hh[is_c]]
    people.parent[is_g] = hh_start[hh[is_g]] + 2  # the married son's slot
    _twins(rng, people, tpl)
    _namesakes(rng, people)
    _father_son_same_name(rng, people)
    _status(rng, people, geo)
    _assign_ids(rng, people, geo)
    people.relation = _relations(people)
    return people


def _random_day(rng, by: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    leap = (by % 4 == 0) & ((by % 100 != 0) | (by % 400 == 0))
    doy = np.floor(rng.random(len(by)) * (365 + leap)).astype(int)
    date = (by - 1970).astype("datetime64[Y]").astype("datetime64[D]") + doy
    month = date.astype("datetime64[M]")
    bm = (month - (by - 1970).astype("datetime64[Y]").astype("datetime64[M]")).astype(int) + 1
    bd = (date - month.astype("datetime64[D]")).astype(int) + 1
    return bm, bd


def _draw_ethnicity(rng, mongol_share: np.ndarray) -> np.ndarray:
    r = rng.random(len(mongol_share))
    return np.select([r < mongol_share, r < mongol_share + 0.02, r < mongol_share + 0.03],
                     [MONGOL, 2, 3], HAN)


def _twins(rng, p: _People, tpl: np.ndarray) -> None:
    """Twins: same household and birthdate, names one character apart, consecutive sequences."""
    slots = _TWIN_SLOTS[tpl]
    cand = np.flatnonzero((slots[:, 0] >= 0) & (rng.random(len(tpl)) < 0.025))
    a = p.hh_start[cand] + slots[cand, 0]
    b = p.hh_start[cand] + slots[cand, 1]
    ok = ~p.mstyle[a] & ~p.mstyle[b] & ~p.rare[a] & ~p.rare[b]
    a, b = a[ok], b[ok]
    p.bm[b], p.bd[b], p.by[b] = p.bm[a], p.bd[a], p.by[a]
    p.sn[b], p.sep[b] = p.sn[a], p.sep[a]
    r = rng.random(len(a))
    for k, (i, j) in enumerate(zip(a, b)):
        era = "old" if p.by[i] < 1970 else "mid" if p.by[i] < 1995 else "young"
        chars = pools.HAN_GIVEN[("M" if p.gender[j] == MALE else "F", era)]
        given = p.gn[i]
        new = chars[int(r[k] * len(chars))]
        if new == given[-1]:
            new = chars[(int(r[k] * len(chars)) + 1) % len(chars)]
        p.gn[j] = given[:-1] + new
    p.twin_of[b] = a


def _namesakes(rng, p: _People) -> None:
    """Same-name same-birthdate strangers: pairs of heads of one gender and birth year."""
    heads = np.flatnonzero((p.role == H) & ~p.mstyle & ~p.rare)
    order = heads[np.lexsort((rng.random(len(heads)), p.by[heads], p.gender[heads]))]
    key = p.by[order] * 10 + p.gender[order]
    start = np.r_[True, key[1:] != key[:-1]]
    rank = np.arange(len(order)) - np.maximum.accumulate(np.where(start, np.arange(len(order)), 0))
    pick = np.flatnonzero((rank % 2 == 1) & (rng.random(len(order)) < 0.012))
    a, b = order[pick - 1], order[pick]
    p.sn[b], p.sep[b], p.gn[b], p.bm[b], p.bd[b] = p.sn[a], p.sep[a], p.gn[a], p.bm[a], p.bd[a]


def _father_son_same_name(rng, p: _People) -> None:
    """A son registered with his father's name (rare, but a hard negative)."""
    head = p.hh_start[p.hh]
    cand = np.flatnonzero((p.role == C) & (p.gender == MALE) & (p.gender[head] == MALE)
                          & ~p.rare[head])
    _, first = np.unique(p.hh[cand], return_index=True)
    sons = cand[first]
    sons = sons[rng.random(len(sons)) < 0.005]
    fathers = head[sons]
    p.sn[sons], p.sep[sons], p.gn[sons] = p.sn[fathers], p.sep[fathers], p.gn[fathers]
    p.mstyle[sons] = p.mstyle[fathers]


def _status(rng, p: _People, geo: _Geo) -> None:
    """Deceased (marked or not) and migrants missing from the police registry."""
    n = len(p)
    p_dead = np.select([p.by < 1940, p.by < 1950, p.by < 1960], [0.2, 0.08, 0.03], 0.004)
    dead = rng.random(n) < p_dead
    p.dead[dead] = np.where(rng.random(int(dead.sum())) < 0.7, 1, 2)
    married_in = ((p.role == S) & (p.gender == FEMALE)) | (p.role == D)
    young_single = (p.role == H) & (p.hh_size[p.hh] == 1) & (p.by >= 1970)
    p_unreg = np.where(married_in, 0.02, np.where(young_single, 0.05, 0.0))
    p.unregistered[:] = (rng.random(n) < p_unreg) & (p.dead == 0)


def _assign_ids(rng, p: _People, geo: _Geo) -> None:
    """Region code at the time of issue (old 1523xx for many born before 1984), sequence, check."""
    n = len(p)
    county = p.hh_county[p.hh]
    p_old = np.select([p.by < 1984, p.by < 1999], [0.55, 0.05], 0.0)
    old = rng.random(n) < p_old
    alt = old & (p.by < 1970) & (rng.random(n) < geo.old_alt_p[county])
    region = np.where(old, np.where(alt, geo.old_code_alt[county], geo.old_code[county]),
                      geo.county_code[county])
    region[p.unregistered] = _pick(rng, geo.external_codes, int(p.unregistered.sum()))
    odd = p.gender == MALE
    seq = 2 * rng.integers(0, 500, n) + np.where(odd, 1, 2)
    seq = np.minimum(seq, 999 - (~odd))
    twins_b = np.flatnonzero(p.twin_of >= 0)
    twins_a = p.twin_of[twins_b]
    seq[twins_a] = np.minimum(seq[twins_a], 900 + odd[twins_a])
    seq[twins_b] = seq[twins_a] + np.where(p.gender[twins_b] == p.gender[twins_a], 2, 1)
    region[twins_b] = region[twins_a]
    is_twin = np.zeros(n, dtype=bool)
    is_twin[twins_a] = is_twin[twins_b] = True
    date = p.by * 10000 + p.bm * 100 + p.bd
    for _ in range(50):  # a real registry does not hand out one number twice
        key = region * 10**11 + date * 1000 + seq
        dup = np.flatnonzero(pd.Series(key).duplicated(keep=False).to_numpy() & ~is_twin)
        if len(dup) == 0:
            break
        seq[dup] = 2 * rng.integers(0, 500, len(dup)) + np.where(odd[dup], 1, 2)
        seq[dup] = np.minimum(seq[dup], 999 - (~odd[dup]))
    p.region, p.seq = region, seq
    p.rid = resident_ids(region, p.by, p.bm, p.bd, seq)


def _relations(p: _People) -> np.ndarray:
    rel = np.empty(len(p), dtype=object)
    rel[p.role == H] = "户主"
    rel[p.role == S] = "配偶"
    rel[p.role == F] = "父亲"
    rel[p.role == M] = "母亲"
    rel[p.role == D] = "儿媳"
    rel[p.role == G] = np.where(p.gender[p.role == G] == MALE, "孙子", "孙女")
    kids = np.flatnonzero((p.role == C) | (p.role == CM))
    keys = (p.pos[kids], p.bd[kids], p.bm[kids], p.by[kids], p.gender[kids], p.hh[kids])
    order = kids[np.lexsort(keys)]
    key = p.hh[order] * 4 + p.gender[order]
    start = np.r_[True, key[1:] != key[:-1]]
    rank = np.arange(len(order)) - np.maximum.accumulate(np.where(start, np.arange(len(order)), 0))
    ordinals = np.array(list(pools.ORDINALS), dtype=object)
    ordinal = ordinals[np.minimum(rank, len(ordinals) - 1)]
    rel[order] = ordinal + np.where(p.gender[order] == MALE, "子", "女")
    return rel


# ---------------------------------------------------------------- error injection
@lru_cache(maxsize=1)
def _homophones() -> dict[str, tuple[str, ...]]:
    """Same-sound characters among name characters (tone included), computed once with pypinyin."""
    from pypinyin import Style, lazy_pinyin

    chars = set(pools.HOMOPHONE_EXTRA) | {c for s in pools.HAN_GIVEN.values() for c in s}
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


@dataclass
class _Rec:
    """What the error functions of one source see: per-record arrays, aligned."""

    sn: np.ndarray
    sep: np.ndarray
    gn: np.ndarray
    mstyle: np.ndarray
    child: np.ndarray
    rid: np.ndarray
    parent_rid: np.ndarray
    region: np.ndarray
    region15: np.ndarray  # the pre-1999 code (or the migrant's own): what a 15-digit number carries
    region_new: np.ndarray  # the county's code since 1999
    y: np.ndarray
    m: np.ndarray
    d: np.ndarray
    seq: np.ndarray
    gender: np.ndarray
    gbk: bool


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


def _milk(sn: str, sep: str, gn: str, u: float, v: float, gbk: bool) -> str | None:
    milk = pools.MILK_NAMES[int(u * len(pools.MILK_NAMES))]
    return sn + milk if (v < 0.5 and sn) else milk


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
    "name_milk_name": _milk,
    "name_cut4": lambda sn, sep, gn, u, v, gbk: (sn + sep + gn)[:4],
}


# ID errors: (records, index, two uniforms) -> new text or None.
def _id_15digit(rec: _Rec, i: int, u: float, v: float) -> str | None:
    if rec.y[i] >= 1985 or rec.region[i] != rec.region15[i]:
        return None  # only numbers issued before 1999 had 15 digits
    return f"{rec.region15[i]:06d}{rec.y[i] % 100:02d}{rec.m[i]:02d}{rec.d[i]:02d}{rec.seq[i]:03d}"


def _id_mistyped(rec: _Rec, i: int, u: float, v: float) -> str | None:
    s, j = rec.rid[i], int(u * 17)
    return s[:j] + [c for c in "0123456789" if c != s[j]][int(v * 9)] + s[j + 1:]


def _id_swapped(rec: _Rec, i: int, u: float, v: float) -> str | None:
    s = rec.rid[i]
    for t in range(17):
        j = (int(u * 17) + t) % 17
        if s[j] != s[j + 1]:
            return s[:j] + s[j + 1] + s[j] + s[j + 2:]
    return None


def _id_spaces(rec: _Rec, i: int, u: float, v: float) -> str | None:
    s, j = rec.rid[i], 1 + int(v * 16)
    return f"{s[:6]} {s[6:14]} {s[14:]}" if u < 0.6 else s[:j] + " " + s[j:]


def _id_excel_float(rec: _Rec, i: int, u: float, v: float) -> str | None:
    """What Excel shows for an 18-digit number in a General cell: 1.50521E+17."""
    s = rec.rid[i]
    if not s.isdigit():
        return None  # an X makes it text, which Excel leaves alone
    mantissa, exponent = f"{int(s):.5E}".split("E")
    return mantissa.rstrip("0").rstrip(".") + "E" + exponent


def _id_reissued(rec: _Rec, i: int, u: float, v: float, other_region: bool) -> str:
    """A valid number for the same birthdate: another sequence, or the county's other code."""
    seq, region = rec.seq[i], rec.region[i]
    if other_region:
        region = rec.region_new[i] if region == rec.region15[i] else rec.region15[i]
    else:
        seq = (seq + 2 * (1 + int(u * 60))) % 1000 or seq
    return resident_ids(np.array([region]), rec.y[i:i + 1], rec.m[i:i + 1], rec.d[i:i + 1],
                        np.array([seq]))[0]


ID_ERRORS: dict[str, Callable[[_Rec, int, float, float], str | None]] = {
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


def _apply_name_error(kind: str, rec: _Rec, idx: np.ndarray, r: np.ndarray) -> list:
    fn = NAME_ERRORS[kind]
    out = []
    for k, i in enumerate(idx):
        new = fn(rec.sn[i], rec.sep[i], rec.gn[i], r[k, 0], r[k, 1], rec.gbk)
        out.append(None if new == rec.sn[i] + rec.sep[i] + rec.gn[i] else new)
    return out


def _apply_id_error(kind: str, rec: _Rec, idx: np.ndarray, r: np.ndarray) -> list:
    fn = ID_ERRORS[kind]
    out = []
    for k, i in enumerate(idx):
        new = fn(rec, i, r[k, 0], r[k, 1])
        out.append(None if new == rec.rid[i] else new)
    return out


_NAME_CLASSES = ["name_milk_name", "name_cut4", "name_translit_variant", "name_surname_dropped",
                 "name_dot_variant", "name_homophone", "name_lookalike", "name_traditional",
                 "name_space", "name_dropped_char", "name_doubled_char", "name_swapped_given"]
_ID_CLASSES = ["id_parent_number", "id_blank", "id_placeholder", "id_15digit", "id_wrong_check",
               "id_mistyped_digit", "id_swapped_digits", "id_fullwidth", "id_lowercase_x",
               "id_spaces", "id_excel_float", "id_excel_000", "id_renumbered"]
_OVERSAMPLE = {"name_lookalike": 6, "name_traditional": 2, "name_translit_variant": 2,
               "id_lowercase_x": 12, "id_15digit": 2, "name_milk_name": 1}


def _eligible(kind: str, rec: _Rec) -> np.ndarray | None:
    """Vectorised eligibility where it is cheap; None means every record (the transform decides)."""
    if kind == "name_milk_name":
        return rec.child
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


def _inject(rng, rec: _Rec, values: np.ndarray, labels: np.ndarray, classes: list[str],
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


def _date_errors(rng, rec: _Rec, rates: dict[str, float], factor: np.ndarray,
                 elderly_factor: float = 2.0) -> tuple[np.ndarray, ...]:
    """Wrong dates as (y, m, d, year-month only, label); vectorised."""
    n = len(rec.y)
    y, m, d = rec.y.copy(), rec.m.copy(), rec.d.copy()
    ym = np.zeros(n, dtype=bool)
    labels = np.full(n, "", dtype=object)
    free = np.ones(n, dtype=bool)
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
    ym[i] = True
    i = take("date_day_month_swap", (d <= 12) & (d != m))
    m[i], d[i] = d[i], m[i]
    i = take("date_digit_off", np.ones(n, dtype=bool))
    _digit_off(rng, y, d, i)
    return y, m, d, ym, labels


def _digit_off(rng, y: np.ndarray, d: np.ndarray, i: np.ndarray) -> None:
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


def _format_dates(y: np.ndarray, m: np.ndarray, d: np.ndarray, fmt: np.ndarray,
                  ym: np.ndarray) -> np.ndarray:
    """Dates as text in the given format codes; year-month only where ym."""
    Y, M, D, MZ, DZ = _NUM[y], _NUM[m], _NUM[d], _Z2[m], _Z2[d]
    valid = (m >= 1) & (m <= 12) & (d >= 1) & (d <= _days_in_month(y, m))
    fmt = np.where((fmt == 6) & ~valid, 3, fmt)
    out = np.empty(len(y), dtype=object)
    full = {
        0: lambda i: Y[i] + "-" + MZ[i] + "-" + DZ[i],
        1: lambda i: Y[i] + MZ[i] + DZ[i],
        2: lambda i: Y[i] + "/" + M[i] + "/" + D[i],
        3: lambda i: Y[i] + "." + M[i] + "." + D[i],
        4: lambda i: Y[i] + "年" + M[i] + "月" + D[i] + "日",
        5: lambda i: _Z2[y[i] % 100] + "." + M[i] + "." + D[i],
        6: lambda i: _excel_serial(y[i], m[i], d[i]).astype(str).astype(object),
    }
    part = {
        0: lambda i: Y[i] + "-" + MZ[i], 1: lambda i: Y[i] + MZ[i], 2: lambda i: Y[i] + "/" + M[i],
        3: lambda i: Y[i] + "." + M[i], 4: lambda i: Y[i] + "年" + M[i] + "月",
        5: lambda i: _Z2[y[i] % 100] + "." + M[i], 6: lambda i: Y[i] + "-" + MZ[i],
    }
    for code in range(len(DATE_FORMATS)):
        for table, which in ((full, ~ym), (part, ym)):
            i = np.flatnonzero((fmt == code) & which)
            if len(i):
                out[i] = table[code](i)
    return out


def _excel_serial(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    months = (y - 1970) * 12 + (m - 1)
    date = months.astype("datetime64[M]").astype("datetime64[D]") + (d - 1)
    return (date - np.datetime64("1899-12-30")).astype(np.int64)


# ---------------------------------------------------------------- sources
def _records(p: _People, geo: _Geo, idx: np.ndarray, gbk: bool) -> _Rec:
    parent = p.parent[idx]
    parent_rid = np.where(parent >= 0, p.rid[np.maximum(parent, 0)], "")
    county = p.hh_county[p.hh[idx]]
    region, new = p.region[idx], geo.county_code[county]
    return _Rec(
        sn=p.sn[idx], sep=p.sep[idx], gn=p.gn[idx], mstyle=p.mstyle[idx],
        child=p.by[idx] >= REF_YEAR - 11, rid=p.rid[idx], parent_rid=parent_rid,
        region=region, region15=np.where(region != new, region, geo.old_code[county]),
        region_new=new,
        y=p.by[idx].astype(np.int64), m=p.bm[idx].astype(np.int64), d=p.bd[idx].astype(np.int64),
        seq=p.seq[idx], gender=p.gender[idx], gbk=gbk,
    )


class _Log:
    """Collects (source, record_id, field, error) rows."""

    def __init__(self) -> None:
        self.parts: list[pd.DataFrame] = []

    def add(self, source: str, record_ids: np.ndarray, fld: str, labels: np.ndarray) -> None:
        hit = labels != ""
        if hit.any():
            self.parts.append(pd.DataFrame({"source": source, "record_id": record_ids[hit],
                                            "field": fld, "error": labels[hit]}))

    def mark(self, source: str, record_ids: np.ndarray, fld: str, label: str) -> None:
        self.add(source, record_ids, fld, np.full(len(record_ids), label, dtype=object))

    def frame(self) -> pd.DataFrame:
        if not self.parts:
            return pd.DataFrame(columns=["source", "record_id", "field", "error"])
        return pd.concat(self.parts, ignore_index=True)


def _apply_errors(rng, rec: _Rec, source: str, factor: np.ndarray, ids: np.ndarray,
                  log: _Log) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Names, IDs and birthdates of one source with its errors; logs what was done."""
    rates = RATES[source]
    names = rec.sn + rec.sep + rec.gn
    labels = np.full(len(names), "", dtype=object)
    _inject(rng, rec, names, labels, _NAME_CLASSES, rates, factor, _apply_name_error)
    log.add(source, ids, "name", labels)
    rid = rec.rid.copy()
    labels = np.full(len(rid), "", dtype=object)
    infant = np.where(rec.y >= REF_YEAR - 2, 6.0, 1.0)
    # newborns often have no number yet
    _inject(rng, rec, rid, labels, ["id_blank"], rates, factor * infant, _apply_id_error)
    _inject(rng, rec, rid, labels, _ID_CLASSES, {**rates, "id_blank": 0.0}, factor,
            _apply_id_error)
    log.add(source, ids, "id", labels)
    y, m, d, ym, labels = _date_errors(rng, rec, rates, factor)
    log.add(source, ids, "birth_date", labels)
    return names, rid, (y, m, d, ym)


def _gender_text(rng, gender: np.ndarray, coded: np.ndarray, rates: dict[str, float],
                 factor: np.ndarray, source: str, ids: np.ndarray, log: _Log) -> np.ndarray:
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


def _record_ids(rng, prefix: str, n: int, width: int, start: int) -> np.ndarray:
    """Increasing record numbers with gaps (deleted records), as real exports have."""
    return prefix + _zfill(start + np.cumsum(rng.integers(1, 4, n)), width)


def _household_order(rng, p: _People) -> np.ndarray:
    """Rank of each household in an export sorted by county, township, village."""
    order = np.lexsort((rng.random(len(p.hh_start)), p.hh_village, p.hh_unit, p.hh_county))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank


def _addresses(p: _People, geo: _Geo, hh: np.ndarray) -> np.ndarray:
    """Registered address, shared per village and group (one string object per distinct value)."""
    key = p.hh_village[hh] * 16 + p.hh_group[hh]
    uniq, inv = np.unique(key, return_inverse=True)
    v, g = uniq // 16, uniq % 16
    u = geo.vil_unit[v]
    text = (geo.province + geo.prefecture + geo.county_name[geo.unit_county[u]] + geo.unit_name[u]
            + geo.vil_name[v] + np.where(g > 0, _CN[g] + "组", ""))
    return text[inv]


def _police(rng, p: _People, geo: _Geo, hh_rank: np.ndarray,
            log: _Log) -> tuple[pd.DataFrame, np.ndarray]:
    """The registry: one record per registered person, a few registered twice."""
    reg = np.flatnonzero(~p.unregistered)
    rel = p.relation[reg]
    hh = p.hh[reg]
    # double registrations: mostly women married out and never removed from the parents' household
    married = ((p.role[reg] == S) & (p.gender[reg] == FEMALE)) | (p.role[reg] == D)
    p_double = np.where(married, 2.0, 0.6) * ENROL["police_double"]
    dbl = (rng.random(len(reg)) < p_double) & (p.dead[reg] == 0)
    dup = reg[dbl]
    by_county = np.argsort(p.hh_county, kind="stable")
    c_start = np.searchsorted(p.hh_county[by_county], np.arange(len(geo.share)))
    c_count = np.bincount(p.hh_county, minlength=len(geo.share))
    cty = p.hh_county[p.hh[dup]]
    dup_hh = by_county[c_start[cty] + (rng.random(len(dup)) * c_count[cty]).astype(int)]
    idx = np.concatenate([reg, dup])
    hh = np.concatenate([hh, dup_hh])
    rel = np.concatenate([rel, np.where(p.gender[dup] == MALE, "子", "女")])
    pos = np.concatenate([p.pos[reg], np.full(len(dup), 9)])
    order = np.lexsort((pos, hh_rank[hh]))
    idx, hh, rel = idx[order], hh[order], rel[order]
    is_dup = np.concatenate([np.zeros(len(reg), bool), np.ones(len(dup), bool)])[order]
    n = len(idx)
    ids = _record_ids(rng, "GA", n, 9, 100_000_000)
    rec = _records(p, geo, idx, gbk=False)
    names, rid, (y, m, d, ym) = _apply_errors(rng, rec, "police", np.ones(n), ids, log)
    # the second registration differs a little: a homophone, the other region code, a date digit
    dpos = np.flatnonzero(is_dup)
    kind = rng.integers(0, 4, len(dpos))
    for k, cls, fld, values, apply in ((0, "name_homophone", "name", names, _apply_name_error),
                                       (1, "id_region_variant", "id", rid, _apply_id_error)):
        sub = dpos[(kind == k) & (rec.y[dpos] < 1999)] if k == 1 else dpos[kind == k]
        new = apply(cls, rec, sub, rng.random((len(sub), 2)))
        ok = np.array([x is not None for x in new], dtype=bool)
        values[sub[ok]] = np.array(new, dtype=object)[ok]
        log.mark("police", ids[sub[ok]], fld, cls)
    sub = dpos[kind == 2]
    _digit_off(rng, y, d, sub)
    log.mark("police", ids[sub], "birth_date", "date_digit_off")
    log.mark("police", ids[dpos], "record", "double_registration")
    hukou = _zfill(100_000_000 + hh_rank * 7 + 3, 9)
    unit, vil = p.hh_unit[hh], p.hh_village[hh]
    frame = pd.DataFrame({
        "人员编号": ids, "户号": hukou[hh], "姓名": names, "公民身份号码": rid,
        "性别": np.where(p.gender[idx] == MALE, "男", "女"),
        "民族": ETHNICITY[p.eth[idx]],
        "出生日期": _format_dates(y, m, d, np.zeros(n, dtype=int), ym),
        "与户主关系": rel, "苏木乡镇": geo.unit_name[unit], "嘎查村": geo.vil_name[vil],
        "住址": _addresses(p, geo, hh),
        "人员状态": np.where(p.dead[idx] == 1, "死亡", "正常"),
    })
    return frame, idx


def _ncms_members(rng, p: _People) -> tuple[np.ndarray, ...]:
    """Who is on the NCMS roster, in which household, with which relation; plus the duplicates."""
    n = len(p)
    rural = ~p.hh_urban[p.hh]
    hh_in = rng.random(len(p.hh_start)) < ENROL["ncms_household"]
    p_person = np.select([p.dead == 1, p.dead == 2],
                         [ENROL["ncms_dead_listed"], ENROL["ncms_dead_unlisted"]],
                         ENROL["ncms_person"])
    member = np.flatnonzero(rural & hh_in[p.hh] & (rng.random(n) < p_person))
    hh = p.hh[member]
    rel = p.relation[member]
    pos = p.pos[member].astype(float)
    # a married daughter also left in her parents' household (same county, her surname if possible)
    married = member[((p.role[member] == S) & (p.gender[member] == FEMALE)) | (p.role[member] == D)]
    twice = rng.random(len(married)) < ENROL["married_daughter_twice"]
    married = married[(p.by[married] >= 1965) & twice]
    rural_heads = np.flatnonzero((p.role == H) & ~p.hh_urban[p.hh] & hh_in[p.hh])
    pool: dict[tuple[int, str], list[int]] = {}
    for h in rural_heads:
        pool.setdefault((int(p.hh_county[p.hh[h]]), p.sn[h]), []).append(int(p.hh[h]))
    by_county: dict[int, list[int]] = {}
    for h in rural_heads:
        by_county.setdefault(int(p.hh_county[p.hh[h]]), []).append(int(p.hh[h]))
    r = rng.random(len(married))
    home = []
    for k, i in enumerate(married):
        cty = int(p.hh_county[p.hh[i]])
        options = [h for h in pool.get((cty, p.sn[i]), []) if h != p.hh[i]] or by_county[cty]
        home.append(options[int(r[k] * len(options))])
    # a few people keyed twice into the same household
    twice = member[rng.random(len(member)) < ENROL["ncms_entered_twice"]]
    idx = np.concatenate([member, married, twice])
    hh = np.concatenate([hh, np.array(home, dtype=np.int64), p.hh[twice]])
    rel = np.concatenate([rel, np.full(len(married), "女", dtype=object), p.relation[twice]])
    pos = np.concatenate([pos, np.full(len(married), 20.0), p.pos[twice] + 0.5])
    kind = np.concatenate([np.zeros(len(member), np.int8), np.ones(len(married), np.int8),
                           np.full(len(twice), 2, np.int8)])
    return idx, hh, rel, pos, kind


def _relation_spelling(rng, rel: np.ndarray, gender: np.ndarray, style: np.ndarray) -> np.ndarray:
    """Relation as a clerk writes it: the clerk's habit mostly, the registry's word sometimes."""
    out = rel.copy()
    family = np.where(np.char.endswith(rel.astype(str), "子") & (rel != "孙子"), "子",
                      np.where(np.char.endswith(rel.astype(str), "女") & (rel != "孙女"), "女", rel))
    family = np.where((family == "配偶") & (gender == MALE), "丈夫", family)
    choice = np.where(rng.random(len(rel)) < 0.75, style, rng.integers(0, 4, len(rel)))
    for key, spellings in pools.RELATION_SPELLINGS.items():
        i = np.flatnonzero((family == key) & (choice > 0))
        if len(i):
            out[i] = np.array(spellings, dtype=object)[(choice[i] - 1) % len(spellings)]
    return out


def _ncms(rng, p: _People, geo: _Geo, hh_rank: np.ndarray,
          log: _Log) -> tuple[pd.DataFrame, np.ndarray]:
    """The rural roster, by household, keyed by village clerks of varying care."""
    idx, hh, rel, pos, kind = _ncms_members(rng, p)
    order = np.lexsort((pos, hh_rank[hh]))
    idx, hh, rel, kind = idx[order], hh[order], rel[order], kind[order]
    n = len(idx)
    ids = _record_ids(rng, "NH", n, 10, 1_000_000_000)
    vil = p.hh_village[hh]
    clerk = geo.vil_clerk[vil]
    n_clerks = len(geo.clerk_code)
    care = np.clip(rng.lognormal(0.0, 0.5, n_clerks), 0.25, 3.5)
    care = care / care.mean()
    factor = care[clerk]
    rec = _records(p, geo, idx, gbk=True)
    names, rid, (y, m, d, ym) = _apply_errors(rng, rec, "ncms", factor, ids, log)
    # a character GBK cannot hold is replaced by one that sounds alike
    rare = np.flatnonzero(p.rare[idx])
    gbk_sub = str.maketrans(pools.RARE_NOT_GBK)
    names[rare] = np.array([x.translate(gbk_sub) for x in names[rare]], dtype=object)
    log.mark("ncms", ids[rare], "name", "name_gbk_substitute")
    # the clerk's habits: date format, gender coding, relation words, village and group spelling
    fmt_pref = rng.choice(len(DATE_FORMATS), n_clerks, p=[0.3, 0.2, 0.15, 0.12, 0.1, 0.05, 0.08])
    fmt = np.where(rng.random(n) < 0.7, fmt_pref[clerk],
                   rng.choice(len(DATE_FORMATS), n, p=[0.3, 0.2, 0.15, 0.12, 0.1, 0.05, 0.08]))
    clerk_codes_gender = rng.random(n_clerks) < 0.35
    coded = np.where(rng.random(n) < 0.85, clerk_codes_gender[clerk], rng.random(n) < 0.5)
    gender = _gender_text(rng, p.gender[idx], coded, RATES["ncms"], factor, "ncms", ids, log)
    relation = _relation_spelling(rng, rel, p.gender[idx], rng.integers(0, 4, n_clerks)[clerk])
    suffix_pref = rng.choice(3, n_clerks, p=[0.8, 0.13, 0.07])
    suffix_style = np.where(rng.random(n) < 0.85, suffix_pref[clerk], rng.integers(0, 3, n))
    canon = geo.vil_suffix[vil]
    suffix = np.select([suffix_style == 0, suffix_style == 1],
                       [canon, np.where(canon == "嘎查", "村", "嘎查")], "")
    group_pref = rng.choice(3, n_clerks, p=[0.5, 0.35, 0.15])
    gstyle = np.where(rng.random(n) < 0.85, group_pref[clerk], rng.integers(0, 3, n))
    grp = p.hh_group[hh]
    group_text = np.select([gstyle == 0, gstyle == 1], [_CN[grp] + "组", _NUM[grp] + "组"], "")
    village = geo.vil_stem[vil] + suffix + group_text
    log.add("ncms", ids, "village", np.where(suffix != canon, "village_suffix_variant", ""))
    unit = p.hh_unit[hh]
    ustyle = rng.random(n)
    other = np.where(geo.unit_suffix[unit] == "乡", "镇", "乡")
    township = np.where(ustyle < 0.90, geo.unit_name[unit],
                        np.where(ustyle < 0.96, geo.unit_stem[unit], geo.unit_stem[unit] + other))
    # households: family code, head's name as keyed, tier, subsidy, payment, receipt
    hh_u = np.unique(hh)
    fam_rank = np.zeros(len(p.hh_start), dtype=np.int64)
    fam_rank[hh_u] = np.arange(len(hh_u))
    first_in_village = np.full(len(geo.vil_unit), len(hh_u))
    np.minimum.at(first_in_village, p.hh_village[hh_u], fam_rank[hh_u])
    ordinal = fam_rank[hh] - first_in_village[vil] + 1
    county = p.hh_county[hh]
    county_text = geo.county_code.astype(str).astype(object)
    fam_code = (county_text[county] + _Z2[unit - geo.cu_start[county, 0]]
                + _Z2[vil - geo.unit_vstart[unit]] + _zfill(ordinal, 4))
    head_name = p.name[p.hh_start]
    rare_heads = np.flatnonzero(p.rare[p.hh_start])
    head_name[rare_heads] = np.array([x.translate(gbk_sub) for x in head_name[rare_heads]],
                                     dtype=object)
    is_head = (rel == "户主") & (kind == 0)
    head_name[hh[is_head]] = names[is_head]
    tier_hh = np.where(rng.random(len(p.hh_start)) < 0.75, "一档", "二档")
    dibao_hh = rng.random(len(p.hh_start)) < 0.04
    age = REF_YEAR - p.by[idx]
    single = p.hh_size[hh] == 1
    r = rng.random(n)
    subsidy = np.select(
        [dibao_hh[hh], single & (age >= 60) & (r < 0.15), single & (age >= 60) & (r < 0.18),
         (p.gender[idx] == MALE) & (age >= 60) & (r > 0.99), r < 0.008],
        ["低保", "五保", "三无", "优抚", "重度残疾"], "").astype(object)
    fee = np.where(tier_hh[hh] == "一档", "250.00", "350.00").astype(object)
    fee[subsidy == "低保"] = "125.00"
    fee[np.isin(subsidy, ["五保", "三无", "优抚", "重度残疾"])] = "0.00"
    receipt = _zfill(10_000_000 + np.cumsum(rng.integers(1, 3, len(hh_u))), 8)
    frame = pd.DataFrame({
        "参合编号": ids, "家庭编号": fam_code, "户主姓名": head_name[hh], "成员姓名": names,
        "身份证号": rid, "性别": gender, "出生日期": _format_dates(y, m, d, fmt, ym),
        "与户主关系": relation, "乡镇": township, "村": village, "参合档次": tier_hh[hh],
        "补助类别": subsidy, "缴费金额": fee, "收据号": receipt[fam_rank[hh]],
        "录入员": geo.clerk_code[clerk],
    })
    log.add("ncms", ids, "record", np.select([kind == 1, kind == 2],
                                             ["married_daughter_twice", "entered_twice"], ""))
    return frame, idx


def _urban(rng, p: _People, geo: _Geo, log: _Log) -> tuple[pd.DataFrame, np.ndarray]:
    """The urban roster, per person: town residents, and pupils, workers, migrants from villages."""
    n_p = len(p)
    urban = p.hh_urban[p.hh]
    age = REF_YEAR - p.by
    p_urban = np.select([age < 18, age >= 60], [ENROL["urban_child"], ENROL["urban_elderly"]],
                        ENROL["urban_adult"])
    p_urban = np.where(p.dead == 1, ENROL["urban_dead"], p_urban)
    r = rng.random(n_p)
    town = urban & (r < p_urban)
    pupil = ~urban & (age >= 6) & (age <= 18) & (p.dead == 0) & (r < ENROL["pupil_in_urban"])
    worker = (~urban & (p.by >= 1965) & (p.by <= 1998) & ~p.unregistered & (p.dead == 0)
              & (r < ENROL["worker_in_urban"]))
    migrant = ~urban & p.unregistered & (r < ENROL["migrant_rural_in_urban"])
    idx = np.flatnonzero(town | pupil | worker | migrant)
    hh = p.hh[idx]
    county = p.hh_county[hh]
    # where they are enrolled: their street and community, a school, or a town they work in
    unit = p.hh_unit[hh].copy()
    vil = p.hh_village[hh].copy()
    away = ~urban[idx]
    draw = rng.random(int(away.sum())) * geo.cu_count[county[away], 1]
    cu = geo.cu_start[county[away], 1] + draw.astype(int)
    unit[away] = cu
    vil[away] = geo.unit_vstart[cu] + (rng.random(len(cu)) * geo.unit_vcount[cu]).astype(int)
    jdmc, sqmc = geo.unit_name[unit], geo.vil_name[vil]
    school = pupil[idx]
    home = p.hh_unit[hh[school]]
    jdmc[school] = geo.unit_name[home]
    sqmc[school] = geo.unit_stem[home] + np.where(age[idx[school]] < 12, "中心小学", "中学")
    order = np.lexsort((rng.random(len(idx)), sqmc.astype(str), jdmc.astype(str)))
    idx, jdmc, sqmc, school = idx[order], jdmc[order], sqmc[order], school[order]
    n = len(idx)
    ids = _record_ids(rng, "CZ", n, 10, 2_000_000_000)
    rec = _records(p, geo, idx, gbk=False)
    names, rid, (y, m, d, ym) = _apply_errors(rng, rec, "urban", np.ones(n), ids, log)
    fmt = rng.choice(3, n, p=[0.05, 0.93, 0.02])  # iso, compact, slash
    gender = _gender_text(rng, p.gender[idx], np.ones(n, dtype=bool), RATES["urban"], np.ones(n),
                          "urban", ids, log)
    start = np.datetime64("2019-09-01")
    days = np.where(school, rng.integers(0, 30, n) + np.where(rng.random(n) < 0.5, 0, 366),
                    rng.integers(0, 487, n))
    when = start + days
    cbrq = np.datetime_as_string(when, unit="D").astype(object)
    frame = pd.DataFrame({
        "ryid": ids, "xm": names, "sfzh": rid, "xb": gender,
        "csrq": _format_dates(y, m, d, fmt, ym), "jdmc": jdmc, "sqmc": sqmc, "cbrq": cbrq,
        "dc": np.where(rng.random(n) < 0.8, "1", "2"),
    })
    labels = ["pupil_enrolled_by_school", "rural_worker_in_town", "migrant_from_village"]
    kind = np.select([pupil[idx], worker[idx], migrant[idx]], labels, "")
    log.add("urban", ids, "record", kind)
    return frame, idx


# ---------------------------------------------------------------- public API
def generate_world(persons: int, seed: int = 0,
                   progress: Callable[[str], None] | None = None) -> World:
    """A synthetic prefecture of `persons` people and its three rosters; same seed, same world.

    `progress` (optional) is called with the name of each stage as it starts.
    """
    if persons < 1:
        raise ValueError("persons must be at least 1")
    step = progress or (lambda _stage: None)
    rng = np.random.default_rng(seed)
    step("geography")
    geo = _build_geo(persons)
    step("people")
    p = _people(rng, persons, geo)
    hh_rank = _household_order(rng, p)
    log = _Log()
    step("police")
    police, police_idx = _police(rng, p, geo, hh_rank, log)
    step("ncms")
    ncms, ncms_idx = _ncms(rng, p, geo, hh_rank, log)
    step("urban")
    urban, urban_idx = _urban(rng, p, geo, log)
    step("truth")
    pid = _person_ids(rng, persons)
    truth = pd.concat([
        pd.DataFrame({"source": source, "record_id": frame[rid], "person_id": pid[idx]})
        for source, frame, rid, idx in (("police", police, "人员编号", police_idx),
                                        ("ncms", ncms, "参合编号", ncms_idx),
                                        ("urban", urban, "ryid", urban_idx))
    ], ignore_index=True)
    counts = {
        "persons": persons, "households": len(p.hh_start), "police": len(police), "ncms": len(ncms),
        "urban": len(urban), "unregistered": int(p.unregistered.sum()),
        "deceased_marked": int((p.dead == 1).sum()), "deceased_unmarked": int((p.dead == 2).sum()),
        "twin_pairs": int((p.twin_of >= 0).sum()), "mongolian": int((p.eth == MONGOL).sum()),
        "rural": int((~p.hh_urban[p.hh]).sum()),
        "insured_more_than_once": int(
            (truth.loc[truth.source != "police", "person_id"].value_counts() > 1).sum()),
        "registered_twice": int((truth.loc[truth.source == "police", "person_id"].value_counts()
                                 > 1).sum()),
    }
    return World(police=police, ncms=ncms, urban=urban, truth=truth, errors=log.frame(), seed=seed,
                 persons=persons, households=len(p.hh_start), counts=counts)


def _person_ids(rng, n: int) -> np.ndarray:
    """Person ids in random order, so nothing can be read from record order."""
    return "P" + _zfill(rng.permutation(n) + 1, max(8, len(str(n))))


def error_summary(world: World) -> dict[str, dict[str, float]]:
    """Per source: rate of each error class among records, and records with any field error."""
    out: dict[str, dict[str, float]] = {}
    sizes = {"police": len(world.police), "ncms": len(world.ncms), "urban": len(world.urban)}
    e = world.errors
    for source, size in sizes.items():
        sub = e[e["source"] == source]
        rates = (sub["error"].value_counts() / max(size, 1)).round(5).to_dict()
        fields = sub[sub["field"].isin(["name", "id", "birth_date", "gender"])]
        rates["any_field_error"] = round(fields["record_id"].nunique() / max(size, 1), 4)
        out[source] = rates
    return out


def write_world(world: World, out_dir: Path) -> dict[str, Path]:
    """Write the sources in their real encodings (NCMS in GBK), truth, error log and world.json.

    IDs are written as text; read them back with dtype=str (and encoding='gbk' for ncms.csv).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = ("police", "ncms", "urban", "truth", "errors")
    paths = {name: out_dir / f"{name}.csv" for name in names}
    for name, frame in (("police", world.police), ("ncms", world.ncms), ("urban", world.urban),
                        ("truth", world.truth), ("errors", world.errors)):
        frame.to_csv(paths[name], index=False, encoding=ENCODINGS[name])
    paths["world"] = out_dir / "world.json"
    meta = {
        "generator": "linkage.synth", "seed": world.seed, "persons": world.persons,
        "households": world.households, "counts": world.counts,
        "files": {k: {"path": v.name, "encoding": ENCODINGS.get(k, "utf-8")}
                  for k, v in paths.items()},
        "columns": {"police": POLICE_COLUMNS, "ncms": NCMS_COLUMNS, "urban": URBAN_COLUMNS},
        "error_rates": error_summary(world),
        "note": "Synthetic data. truth.csv maps every record to its person; errors.csv lists the "
                "errors injected per record and field.",
    }
    paths["world"].write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")
    return paths


def synth_main(persons: int, seed: int, out: Path | str) -> dict[str, Path]:
    """Entry point of `linkage synth`: generate and write a world, showing progress on stderr."""
    from tqdm import tqdm

    stages = ["geography", "people", "police", "ncms", "urban", "truth", "write"]
    t0 = time.perf_counter()
    with tqdm(total=len(stages), desc="synth", unit="stage", file=sys.stderr) as bar:
        seen: list[str] = []

        def step(stage: str) -> None:
            if seen:
                bar.update(1)
            seen.append(stage)
            bar.set_postfix_str(stage)

        world = generate_world(persons, seed, progress=step)
        step("write")
        paths = write_world(world, Path(out))
        bar.update(1)
    c = world.counts
    print(f"wrote {c['police']:,} police, {c['ncms']:,} NCMS and {c['urban']:,} urban records for "
          f"{persons:,} persons to {out} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return paths
