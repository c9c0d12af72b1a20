"""Hard negatives, deaths and migrants; the resident IDs and relations the registry records.

Why apart from people.py: these are the cases that look alike but must not merge (twins,
same-name same-birthdate strangers, a son with his father's name), the deceased and unregistered
migrants, and the resident IDs, whose sequences depend on the twins.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from linkage.synth import names as pools
from linkage.synth.arrays import pick, resident_ids
from linkage.synth.params import CM, FEMALE, MALE, TWIN_SLOTS, C, D, F, G, H, M, S

if TYPE_CHECKING:
    from linkage.synth.geo import Geo
    from linkage.synth.persons import People


def add_twins(rng: np.random.Generator, p: People, tpl: np.ndarray) -> None:
    """Twins: same household and birthdate, names one character apart, consecutive sequences."""
    slots = TWIN_SLOTS[tpl]
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


def add_namesakes(rng: np.random.Generator, p: People) -> None:
    """Same-name same-birthdate strangers: pairs of heads of one gender and birth year."""
    heads = np.flatnonzero((p.role == H) & ~p.mstyle & ~p.rare)
    order = heads[np.lexsort((rng.random(len(heads)), p.by[heads], p.gender[heads]))]
    key = p.by[order] * 10 + p.gender[order]
    start = np.r_[True, key[1:] != key[:-1]]
    rank = np.arange(len(order)) - np.maximum.accumulate(np.where(start, np.arange(len(order)), 0))
    pick = np.flatnonzero((rank % 2 == 1) & (rng.random(len(order)) < 0.012))
    a, b = order[pick - 1], order[pick]
    p.sn[b], p.sep[b], p.gn[b], p.bm[b], p.bd[b] = p.sn[a], p.sep[a], p.gn[a], p.bm[a], p.bd[a]


def add_father_son_same_name(rng: np.random.Generator, p: People) -> None:
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


def set_status(rng: np.random.Generator, p: People, geo: Geo) -> None:
    """Deceased (marked or not) and migrants missing from the police registry."""
    n = len(p)
    p_dead = np.select([p.by < 1940, p.by < 1950, p.by < 1960], [0.2, 0.08, 0.03], 0.004)
    dead = rng.random(n) < p_dead
    p.dead[dead] = np.where(rng.random(int(dead.sum())) < 0.7, 1, 2)
    married_in = ((p.role == S) & (p.gender == FEMALE)) | (p.role == D)
    young_single = (p.role == H) & (p.hh_size[p.hh] == 1) & (p.by >= 1970)
    p_unreg = np.where(married_in, 0.02, np.where(young_single, 0.05, 0.0))
    p.unregistered[:] = (rng.random(n) < p_unreg) & (p.dead == 0)


def assign_ids(rng: np.random.Generator, p: People, geo: Geo) -> None:
    """Region code at the time of issue (old 1523xx for many born before 1984), sequence, check."""
    n = len(p)
    county = p.hh_county[p.hh]
    p_old = np.select([p.by < 1984, p.by < 1999], [0.55, 0.05], 0.0)
    old = rng.random(n) < p_old
    alt = old & (p.by < 1970) & (rng.random(n) < geo.old_alt_p[county])
    region = np.where(old, np.where(alt, geo.old_code_alt[county], geo.old_code[county]),
                      geo.county_code[county])
    region[p.unregistered] = pick(rng, geo.external_codes, int(p.unregistered.sum()))
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


def relations_to_head(p: People) -> np.ndarray:
    """Relation to the head as the registry writes it; children 长, 次, 三 by birth per gender."""
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
