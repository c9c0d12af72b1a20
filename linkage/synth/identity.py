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
from linkage.synth.arrays import pick, resident_ids, zipf
from linkage.synth.params import (
    CM,
    FAMILY,
    FEMALE,
    MALE,
    MILK,
    REF_YEAR,
    TWIN_SLOTS,
    C,
    D,
    F,
    G,
    H,
    M,
    S,
)

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


def _parents(p: People) -> tuple[np.ndarray, np.ndarray]:
    """Father and mother of each child (C) and grandchild (G) in the same household, else -1.

    A child's parents are the head and the spouse (a lone head is the only parent); a
    grandchild's are the married son and the daughter-in-law (template slots 2 and 3).
    """
    start = p.hh_start[p.hh]
    has_s = np.zeros(len(p.hh_start), dtype=bool)
    has_s[p.hh[p.role == S]] = True
    is_c, is_g = p.role == C, p.role == G
    a = np.where(is_g, start + 2, start)
    b = np.where(is_g, start + 3, start + 1)
    b = np.where((is_c & has_s[p.hh]) | is_g, b, -1)
    a_male = p.gender[a] == MALE
    father = np.where(a_male, a, b)
    mother = np.where(a_male, b, a)
    kid = is_c | is_g
    return np.where(kid, father, -1), np.where(kid, mother, -1)


def set_parents(rng: np.random.Generator, p: People) -> None:
    """The parent whose ID a child's record may carry: the father mostly, else the mother."""
    father, mother = _parents(p)
    take_father = rng.random(len(p)) < FAMILY["father_on_parent_id"]
    p.parent[:] = np.where((take_father & (father >= 0)) | (mother < 0), father, mother)


def add_father_son_same_name(rng: np.random.Generator, p: People) -> None:
    """A son registered with his father's name (a hard negative): one son per household at most.

    Sons are children of a father in the household, or grandsons of the married son; twins are
    left alone (their names are one character apart by construction).
    """
    father, _ = _parents(p)
    f = np.maximum(father, 0)
    cand = np.flatnonzero((father >= 0) & (p.gender == MALE) & ~p.rare[f] & (p.twin_of < 0))
    twin_a = np.zeros(len(p), dtype=bool)
    twin_a[p.twin_of[p.twin_of >= 0]] = True
    cand = cand[~twin_a[cand]]
    _, first = np.unique(p.hh[cand], return_index=True)
    sons = cand[first]
    sons = sons[rng.random(len(sons)) < FAMILY["son_named_after_father"]]
    fathers = father[sons]
    p.sn[sons], p.sep[sons], p.gn[sons] = p.sn[fathers], p.sep[fathers], p.gn[fathers]
    p.mstyle[sons] = p.mstyle[fathers]
    p.named_after = np.full(len(p), -1)
    p.named_after[sons] = fathers


def add_milk_names(rng: np.random.Generator, p: People) -> None:
    """Milk names of small children (params.MILK), from a concentrated pool per gender.

    Two children of one household never share one (the family tells them apart); the surname is
    written in front sometimes (王小宝). The NCMS roster shows the milk name, the registry never.
    """
    n = len(p)
    age = REF_YEAR - p.by
    prob = np.select([age <= 2, age <= 6, age <= 11],
                     [MILK["age_0_2"], MILK["age_3_6"], MILK["age_7_11"]], 0.0)
    idx = np.flatnonzero(rng.random(n) < prob)
    boys = np.array(pools.MILK_NAMES_MALE, dtype=object)
    girls = np.array(pools.MILK_NAMES_FEMALE, dtype=object)
    male = p.gender[idx] == MALE
    k_boy = rng.choice(len(boys), len(idx), p=zipf(len(boys), MILK["zipf_s"]))
    k_girl = rng.choice(len(girls), len(idx), p=zipf(len(girls), MILK["zipf_s"]))
    k = np.where(male, k_boy, k_girl)
    size = np.where(male, len(boys), len(girls))

    def bare_names() -> np.ndarray:
        out = np.empty(len(idx), dtype=object)
        out[male], out[~male] = boys[k[male]], girls[k[~male]]
        return out

    bare = bare_names()
    for _ in range(20):
        dup = pd.DataFrame({"h": p.hh[idx], "m": bare}).duplicated().to_numpy()
        if not dup.any():
            break
        k[dup] = (k[dup] + 1) % size[dup]
        bare = bare_names()
    with_sn = (rng.random(len(idx)) < MILK["with_surname"]) & (p.sn[idx] != "")
    p.milk = np.full(n, "", dtype=object)
    p.milk_key = np.full(n, "", dtype=object)
    p.milk_key[idx] = bare
    p.milk[idx] = np.where(with_sn, p.sn[idx] + bare, bare)


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
    rel[kids] = _ordinal_words(p, kids, p.hh[kids])
    return rel


def _ordinal_words(p: People, kids: np.ndarray, group: np.ndarray) -> np.ndarray:
    """长子, 次女, 三子 ...: birth order per gender among the kids of one group (a parent)."""
    order = np.lexsort((p.pos[kids], p.bd[kids], p.bm[kids], p.by[kids], p.gender[kids], group))
    key = group[order].astype(np.int64) * 4 + p.gender[kids[order]]
    start = np.r_[True, key[1:] != key[:-1]]
    rank = np.arange(len(order)) - np.maximum.accumulate(np.where(start, np.arange(len(order)), 0))
    ordinals = np.array(list(pools.ORDINALS), dtype=object)
    out = np.empty(len(kids), dtype=object)
    out[order] = (ordinals[np.minimum(rank, len(ordinals) - 1)]
                  + np.where(p.gender[kids[order]] == MALE, "子", "女"))
    return out


def kin_relation(p: People, member: np.ndarray, head: np.ndarray) -> np.ndarray:
    """The registry's word for each member's relation to another head of the same family.

    For a household listed under the spouse, the married son or an adult child instead of the
    generated head: the old head becomes 配偶 or 父亲/母亲, the head's parents 公公/婆婆 (岳父/岳母
    to a husband), siblings 兄/弟/姐姐/妹妹, the son's children 长子/次女 in their birth order. All
    members of one head must come in one call (the birth order is counted among them).
    """
    out = np.full(len(member), "其他", dtype=object)
    hr, mr = p.role[head], p.role[member]
    male = p.gender[member] == MALE
    date = p.by * 10000 + p.bm * 100 + p.bd
    older = (date[member] < date[head]) | ((date[member] == date[head])
                                           & (p.pos[member] < p.pos[head]))
    parent = np.where(male, "父亲", "母亲")
    grand = np.where(male, "祖父", "祖母")
    sibling = np.where(male, np.where(older, "兄", "弟"), np.where(older, "姐姐", "妹妹"))
    in_law = np.where(p.gender[head] == FEMALE, np.where(male, "公公", "婆婆"),
                      np.where(male, "岳父", "岳母"))
    elders, kin = np.isin(mr, (F, M)), np.isin(mr, (C, CM))
    cases = [
        (hr == H, p.relation[member]),
        ((hr == S) & (mr == H), "配偶"),
        ((hr == S) & elders, in_law),
        ((hr == S) & ~elders & (mr != H), p.relation[member]),  # children and theirs: as before
        (np.isin(hr, (CM, C)) & np.isin(mr, (H, S)), parent),
        ((hr == CM) & (mr == D), "配偶"),
        (np.isin(hr, (CM, C)) & elders, grand),
        (np.isin(hr, (CM, C)) & kin, sibling),
    ]
    for mask, value in cases:
        out[mask] = value[mask] if isinstance(value, np.ndarray) else value
    g = np.flatnonzero((hr == CM) & (mr == G))
    out[g] = _ordinal_words(p, member[g], head[g])
    out[member == head] = "户主"
    return out
