"""Persons and their households as aligned arrays: who lives where, born when, named what.

Why arrays: a person is an index, every attribute a numpy column, so a million persons are drawn
in seconds. Households follow templates (params.TEMPLATES), birth years follow the head's, children
carry the father's line, Mongolian names are syllables with the surname dotted, plain or absent.
The hard cases and the resident IDs are added in identity.py; how each source groups the
households (split 户, other heads) in households.py.
"""
from __future__ import annotations

from functools import cache

import numpy as np

from linkage.synth import households, identity, params
from linkage.synth import names as pools
from linkage.synth.arrays import pick, zipf
from linkage.synth.geo import Geo
from linkage.synth.params import CM, FEMALE, HAN, MALE, MONGOL, REF_YEAR, C, D, F, G, H, M, S
from linkage.synth.persons import People


def _households(rng: np.random.Generator, n: int) -> np.ndarray:
    """Templates of households whose sizes add up to exactly n persons."""
    tpl = rng.choice(len(params.TEMPLATES), size=max(n, 1), p=params.SHARE)
    cum = np.cumsum(params.SIZE[tpl])
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
    out = pick(rng, han, len(eth), han_p / han_p.sum())
    is_m = eth == MONGOL
    out[is_m] = pick(rng, mon, int(is_m.sum()), mon_p / mon_p.sum())
    hui = eth == 3  # Hui families are often 马
    out[hui & (rng.random(len(eth)) < 0.3)] = "马"
    return out


ERAS = ("old", "mid", "young")  # born before 1970, 1970-1994, from 1995


@cache
def given_names(gender: str, era: str) -> tuple[np.ndarray, np.ndarray]:
    """The Han given names of one gender ("M", "F") and era, ranked, and the share of each.

    The common names come first, then the names made of the era's characters: two different
    characters, ranked by the product of their ranks, and single characters among them
    (params.GIVEN_NAMES). The shares follow a power law on the rank, so a few names are carried
    by one or two per cent of the cohort and most by a handful of persons in a prefecture.
    """
    spec = params.GIVEN_NAMES[(gender, era)]
    chars = pools.HAN_GIVEN[(gender, era)]
    made = [(spec["single"] * (i + 1), a) for i, a in enumerate(chars)]
    made += [((i + 1) * (j + 1), a + b) for i, a in enumerate(chars)
             for j, b in enumerate(chars) if i != j]
    made.sort(key=lambda t: t[0])
    names = list(dict.fromkeys(pools.HAN_GIVEN_COMMON[(gender, era)].split()
                               + [name for _, name in made]))
    w = 1.0 / (np.arange(len(names)) + spec["offset"]) ** spec["s"]
    return np.array(names, dtype=object), w / w.sum()


def _han_given(rng, gender: np.ndarray, by: np.ndarray) -> np.ndarray:
    era = np.where(by < 1970, 0, np.where(by < 1995, 1, 2))
    out = np.empty(len(gender), dtype=object)
    for g, gname in ((MALE, "M"), (FEMALE, "F")):
        for e, ename in enumerate(ERAS):
            idx = np.flatnonzero((gender == g) & (era == e))
            names, p = given_names(gname, ename)
            out[idx] = names[rng.choice(len(names), size=len(idx), p=p)]
    return out


def _mongol_given(rng, gender: np.ndarray) -> np.ndarray:
    n = len(gender)
    out = np.empty(n, dtype=object)
    for g, elems in ((MALE, pools.MONGOL_MALE), (FEMALE, pools.MONGOL_FEMALE)):
        idx = np.flatnonzero(gender == g)
        arr = np.array(elems, dtype=object)
        p = zipf(len(arr), 0.6, 2.0)
        a, b = pick(rng, arr, len(idx), p), pick(rng, arr, len(idx), p)
        two = (rng.random(len(idx)) < 0.45) & (a != b)
        out[idx] = np.where(two, a + b, a)
    return out


def make_people(rng: np.random.Generator, n: int, geo: Geo) -> People:
    """n persons in households placed in geo: roles, genders, birthdates, ethnicity, names, IDs."""
    tpl = _households(rng, n)
    nh = len(tpl)
    size = params.SIZE[tpl]
    hh_start = np.concatenate([[0], np.cumsum(size)[:-1]])
    slots = params.SLOTS[tpl]
    role = slots[slots >= 0].astype(np.int8)
    hh = np.repeat(np.arange(nh), size)
    pos = np.arange(n) - hh_start[hh]

    # where each household lives
    county = rng.choice(len(geo.share), size=nh, p=geo.share)
    urban = (rng.random(nh) < geo.urban_share[county]).astype(int)
    unit = geo.cu_start[county, urban] + (rng.random(nh) * geo.cu_count[county, urban]).astype(int)
    village = geo.village_in(unit, rng.random(nh))
    group = np.where(geo.vil_groups[village] > 0,
                     1 + (rng.random(nh) * geo.vil_groups[village]).astype(int), 0)

    # gender
    head_male = rng.random(nh) < params.HEAD_MALE[tpl]
    r = rng.random(n)
    gender = np.where(r < 0.53, MALE, FEMALE).astype(np.int8)
    gender[role == H] = np.where(head_male, MALE, FEMALE)
    gender[role == S] = np.where(head_male[hh[role == S]], FEMALE, MALE)
    gender[(role == CM) | (role == F)] = MALE
    gender[(role == M) | (role == D)] = FEMALE

    # birth years by role, from the head's
    lo1, hi1, lo2, hi2, p1 = (params.YEARS[tpl, k] for k in range(5))
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
    gn[rare] = first_char + pick(rng, rare_keys, int(rare.sum()))

    people = People(
        hh=hh, pos=pos, role=role, gender=gender, by=by, bm=bm, bd=bd, eth=eth, sn=sn, sep=sep,
        gn=gn, mstyle=mstyle, rare=rare, region=np.zeros(n, dtype=np.int64),
        seq=np.zeros(n, dtype=np.int64), rid=np.empty(0, dtype=object),
        parent=np.full(n, -1), relation=np.empty(n, dtype=object), dead=np.zeros(n, dtype=np.int8),
        unregistered=np.zeros(n, dtype=bool), twin_of=np.full(n, -1),
        hh_start=hh_start, hh_size=size, hh_county=county, hh_unit=unit, hh_village=village,
        hh_group=group, hh_urban=urban.astype(bool),
    )
    identity.set_parents(rng, people)
    identity.add_twins(rng, people, tpl)
    identity.add_namesakes(rng, people)
    identity.add_father_son_same_name(rng, people)
    identity.add_milk_names(rng, people)
    identity.set_status(rng, people, geo)
    identity.assign_ids(rng, people, geo)
    people.relation = identity.relations_to_head(people)
    households.source_views(rng, people)
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
