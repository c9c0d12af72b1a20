"""How the registry and the NCMS roster group one family differently: split 户 and other heads.

Why: the two sources are household rosters kept by different offices at different times, so a
family is not always one household with one head in both (issue 16). A married son set up his
own 户 in the registry while NCMS still lists him, his wife and children with his parents (or the
reverse); an adult son registered alone; the head died and one source lists the successor as 户主
while the other still lists the old head; or NCMS simply lists another member as 户主. Each source
gets its own view of the persons (household index, relation to its head), drawn here for rural
households, one event per household at the rates of params.HOUSEHOLD; the exports read the views.
"""
from __future__ import annotations

import numpy as np

from linkage.synth.identity import kin_relation
from linkage.synth.params import CM, HOUSEHOLD, MALE, REF_YEAR, C, D, G, S
from linkage.synth.persons import People

SPLIT_POLICE = "household_split_in_registry"  # the registry lists them in a 户 of their own
SPLIT_NCMS = "household_split_in_ncms"  # NCMS lists them in a household of their own
HEAD_REPLACED = "head_replaced_after_death"  # this source lists the successor as 户主
HEAD_DIFFERS = "head_differs_from_registry"  # NCMS lists another living member as 户主
EVENT_FIELD = {SPLIT_POLICE: "household", SPLIT_NCMS: "household", HEAD_REPLACED: "relation",
               HEAD_DIFFERS: "relation"}


def _first_per_household(p: People, mask: np.ndarray, nh: int) -> np.ndarray:
    """Per household, the eldest person where mask holds (ties by position), else -1."""
    cand = np.flatnonzero(mask)
    date = p.by[cand] * 10000 + p.bm[cand] * 100 + p.bd[cand]
    cand = cand[np.lexsort((p.pos[cand], date, p.hh[cand]))]
    _, first = np.unique(p.hh[cand], return_index=True)
    out = np.full(nh, -1)
    out[p.hh[cand[first]]] = cand[first]
    return out


def source_views(rng: np.random.Generator, p: People) -> None:
    """Fill the police and NCMS views of p (households, relations, events) and the new 户."""
    n, nh = len(p), len(p.hh_start)
    alive = (p.dead == 0) & ~p.unregistered
    start = p.hh_start
    spouse = _first_per_household(p, (p.role == S) & alive, nh)
    son = _first_per_household(p, (p.role == CM) & alive, nh)
    adult = _first_per_household(p, (p.role == C) & alive & (p.by <= REF_YEAR - 18), nh)
    single = _first_per_household(p, (p.role == C) & alive & (p.gender == MALE)
                                  & (p.by <= REF_YEAR - 24), nh)
    u = rng.random((6, nh))
    direction = rng.random(nh)
    free = ~p.hh_urban.copy()
    p.police_hh, p.ncms_hh = p.hh.copy(), p.hh.copy()
    p.police_rel, p.ncms_rel = p.relation.copy(), p.relation.copy()
    p.police_event = np.full(n, "", dtype=object)
    p.ncms_event = np.full(n, "", dtype=object)
    p.ncms_listed = np.full(n, -1, dtype=np.int8)
    origin = [np.arange(nh)]
    in_registry = direction < HOUSEHOLD["split_in_registry_share"]

    def split(households: np.ndarray, movers: np.ndarray, new_head: np.ndarray) -> None:
        """movers (of households) leave for a 户 of their own under new_head, in one source."""
        new = np.full(nh, -1)
        new[households] = sum(len(o) for o in origin) + np.arange(len(households))
        origin.append(households)
        rel = kin_relation(p, movers, new_head[p.hh[movers]])
        reg = in_registry[p.hh[movers]]
        for view, mask, label in (("police", reg, SPLIT_POLICE), ("ncms", ~reg, SPLIT_NCMS)):
            m = movers[mask]
            getattr(p, f"{view}_hh")[m] = new[p.hh[m]]
            getattr(p, f"{view}_rel")[m] = rel[mask]
            getattr(p, f"{view}_event")[m] = label

    # a married son, his wife and children in a 户 of their own
    event = free & (son >= 0) & (u[0] < HOUSEHOLD["split_married_son"])
    free &= ~event
    movers = np.flatnonzero(event[p.hh] & np.isin(p.role, (CM, D, G)))
    split(np.flatnonzero(event), movers, son)
    # an unmarried adult son registered alone
    event = free & (single >= 0) & (u[1] < HOUSEHOLD["split_adult_son"])
    free &= ~event
    split(np.flatnonzero(event), single[event], single)
    # the head died; the successor is 户主 in one source, the old head in the other
    successor = np.where(spouse >= 0, spouse, np.where(son >= 0, son, adult))
    old_ok = (p.dead[start] > 0) & ~p.unregistered[start]
    event = free & old_ok & (successor >= 0) & (u[2] < HOUSEHOLD["head_replaced"])
    free &= ~event
    members = np.flatnonzero(event[p.hh])
    rel = kin_relation(p, members, successor[p.hh[members]])
    renewed_ncms = u[3] < HOUSEHOLD["head_replaced_in_ncms_share"]  # else the registry
    in_ncms = renewed_ncms[p.hh[members]]
    old = start[np.flatnonzero(event)]
    ncms_side = renewed_ncms[p.hh[old]]
    p.ncms_rel[members[in_ncms]] = rel[in_ncms]
    p.ncms_event[members[in_ncms]] = HEAD_REPLACED
    p.ncms_listed[old[ncms_side]] = 0  # the renewed roster dropped the dead
    p.police_rel[members[~in_ncms]] = rel[~in_ncms]
    p.police_event[members[~in_ncms]] = HEAD_REPLACED
    p.dead[old[~ncms_side]] = 1  # the registry recorded the death
    p.ncms_listed[old[~ncms_side]] = 1  # last year's roster, copied
    # the head is alive, but NCMS lists the spouse, the married son or an adult child as 户主
    take_son = u[4] < HOUSEHOLD["head_differs_son_share"]
    other = np.where((son >= 0) & ((spouse < 0) | take_son), son,
                     np.where(spouse >= 0, spouse, adult))
    event = free & (p.dead[start] == 0) & (other >= 0) & (u[5] < HOUSEHOLD["head_differs"])
    members = np.flatnonzero(event[p.hh])
    p.ncms_rel[members] = kin_relation(p, members, other[p.hh[members]])
    p.ncms_event[members] = HEAD_DIFFERS
    # the 户 split off take their origin's place
    origin = np.concatenate(origin)
    p.hh_origin = origin
    for name in ("hh_county", "hh_unit", "hh_village", "hh_group", "hh_urban"):
        setattr(p, name, getattr(p, name)[origin])
