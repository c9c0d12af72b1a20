"""Hard negatives: pairs of records of two different persons a matcher could be tempted to merge.

Why: issue 16 asks evaluation to count, by kind, the hard negatives that end up in one entity,
so the world writes them beside the truth (hard_negatives.csv). Kinds:
  twins                     every record of one twin with every record of the other
  father_son_same_name      a son named after his father: their records, pairwise
  child_with_parent_id      a child's record carrying a parent's ID, with each of that parent's
                            records (the child's record on the left)
  same_name_same_birthdate  persons of different households with one name and birthdate
  milk_name_namesakes       NCMS records of infants of unrelated households in one township
                            showing the same milk name, born within a year of each other; at
                            most MILK_CAP pairs per milk name and township, so the file stays
                            O(records)
Except for child_with_parent_id, a pair is written once, the smaller (source, record) on the left.
Everything is vectorised: records are addressed by one integer code (source, then row; record
ids increase down each export), pairs of persons are found by sorting on a key and comparing
each row with the next few, and expanded to all their records' pairs with numpy.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from linkage.synth.persons import People

KINDS = ("twins", "father_son_same_name", "child_with_parent_id", "same_name_same_birthdate",
         "milk_name_namesakes")
COLUMNS = ["kind", "source_l", "record_l", "source_r", "record_r"]
MILK_CAP = 20  # pairs per milk name and township
SAME_NAME_SPAN = 50  # persons of one name and birthdate compared with at most this many others
_ROW = 10**10  # record code = source rank * _ROW + row


class _Records:
    """Every record of every source by one integer code, and each person's records."""

    def __init__(self, records: dict[str, tuple[np.ndarray, np.ndarray]], persons: int) -> None:
        self.sources = sorted(records)
        self.ids = {s: records[s][0] for s in self.sources}
        self.person = {s: records[s][1] for s in self.sources}
        codes = [k * _ROW + np.arange(len(records[s][0]), dtype=np.int64)
                 for k, s in enumerate(self.sources)]
        person = np.concatenate([records[s][1] for s in self.sources])
        code = np.concatenate(codes)
        order = np.argsort(person, kind="stable")
        self.code = code[order]
        self.count = np.bincount(person, minlength=persons)
        self.start = np.concatenate([[0], np.cumsum(self.count)[:-1]])

    def of(self, source: str, rows: np.ndarray) -> np.ndarray:
        return self.sources.index(source) * _ROW + np.asarray(rows, dtype=np.int64)

    def expand(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Codes of every record of person a[i] with every record of person b[i]."""
        ca, cb = self.count[a], self.count[b]
        k = ca * cb
        pair = np.repeat(np.arange(len(a)), k)
        offset = np.arange(int(k.sum())) - np.repeat(np.cumsum(k) - k, k)
        left = self.code[self.start[a[pair]] + offset // cb[pair]]
        right = self.code[self.start[b[pair]] + offset % cb[pair]]
        return left, right

    def frame(self, kind: np.ndarray, left: np.ndarray, right: np.ndarray) -> pd.DataFrame:
        out = {"kind": kind}
        for side, code in (("l", left), ("r", right)):
            src = code // _ROW
            row = code % _ROW
            names = np.array(self.sources, dtype=object)[src]
            rec = np.empty(len(code), dtype=object)
            for k, s in enumerate(self.sources):
                hit = src == k
                rec[hit] = self.ids[s][row[hit]]
            out[f"source_{side}"], out[f"record_{side}"] = names, rec
        return pd.DataFrame(out, columns=COLUMNS)


def _neighbours(key: np.ndarray, span: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i, j) of rows with equal key, j among the next `span` rows of i after a stable
    sort on key."""
    order = np.argsort(key, kind="stable")
    k = key[order]
    out_i, out_j = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
    for dist in range(1, min(span, len(k) - 1) + 1):
        same = np.flatnonzero(k[dist:] == k[:-dist])
        if len(same) == 0:
            break
        out_i.append(order[same])
        out_j.append(order[same + dist])
    return np.concatenate(out_i), np.concatenate(out_j)


def _same_name_same_birthdate(p: People) -> tuple[np.ndarray, np.ndarray]:
    name_code = pd.factorize(pd.Series(p.name, dtype=object))[0].astype(np.int64)
    key = name_code * 100_000_000 + (p.by * 10000 + p.bm * 100 + p.bd)
    i, j = _neighbours(key, SAME_NAME_SPAN)
    other = p.hh[i] != p.hh[j]
    return i[other], j[other]


def _milk_namesakes(p: People, idx: np.ndarray, hh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of NCMS records showing one milk name in one township, born within a year of each
    other, of different families: the nearest pairs first, at most MILK_CAP per group."""
    shown = np.flatnonzero(p.milk[idx] != "")
    person = idx[shown]
    code = pd.factorize(pd.Series(p.milk_key[person], dtype=object))[0].astype(np.int64)
    group = p.hh_unit[hh[shown]].astype(np.int64) * 1000 + code
    # within a group, rows sorted by birth year: a pair within one year is among the next few
    order = np.lexsort((shown, p.by[person], group))
    rows, grp, year = shown[order], group[order], p.by[person[order]]
    fam = p.hh[idx[rows]]
    cand_i, cand_j, cand_d = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)], [
        np.zeros(0, dtype=np.int64)]
    for dist in range(1, min(MILK_CAP, len(rows) - 1) + 1):
        near = (grp[dist:] == grp[:-dist]) & (year[dist:] - year[:-dist] <= 1)
        if not near.any():
            break
        ok = np.flatnonzero(near & (fam[dist:] != fam[:-dist]))
        cand_i.append(ok)
        cand_j.append(ok + dist)
        cand_d.append(np.full(len(ok), dist))
    i, j, d = np.concatenate(cand_i), np.concatenate(cand_j), np.concatenate(cand_d)
    first = np.lexsort((i, d, grp[i]))
    i, j = i[first], j[first]
    g = grp[i]
    start = np.r_[True, g[1:] != g[:-1]]
    rank = np.arange(len(g)) - np.maximum.accumulate(np.where(start, np.arange(len(g)), 0))
    keep = rank < MILK_CAP
    return rows[i[keep]], rows[j[keep]]


def _child_with_parent_id(p: People, recs: _Records,
                          errors: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(code of the child's record, code of each of the parent's records)."""
    hit = errors[errors["error"].to_numpy() == "id_parent_number"]
    left, right = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
    for source in recs.sources:
        wanted = hit.loc[hit["source"] == source, "record_id"].to_numpy(dtype=object)
        ids = recs.ids[source]
        rows = np.searchsorted(ids, wanted)  # ids increase down the export
        if len(rows) and not (ids[np.minimum(rows, len(ids) - 1)] == wanted).all():
            raise AssertionError(f"{source}: record ids not in export order")
        person = recs.person[source][rows]
        parent = p.parent[person]
        ok = (parent >= 0) & (parent != person)
        code = recs.of(source, rows[ok])
        parent = parent[ok]
        k = recs.count[parent]
        left.append(np.repeat(code, k))
        offset = np.arange(int(k.sum())) - np.repeat(np.cumsum(k) - k, k)
        right.append(recs.code[recs.start[np.repeat(parent, k)] + offset])
    return np.concatenate(left), np.concatenate(right)


def hard_negatives(p: People, records: dict[str, tuple[np.ndarray, np.ndarray]],
                   errors: pd.DataFrame, ncms_hh: np.ndarray) -> pd.DataFrame:
    """The hard-negative pairs of a world: kind, source_l, record_l, source_r, record_r.

    records maps each source to (record ids, person of each record); ncms_hh is the household
    each NCMS record is listed in; errors is the error log (for the records carrying a parent's
    ID).
    """
    recs = _Records(records, len(p))
    twin_b = np.flatnonzero(p.twin_of >= 0)
    son = np.flatnonzero(p.named_after >= 0)
    same_a, same_b = _same_name_same_birthdate(p)
    milk_l, milk_r = _milk_namesakes(p, records["ncms"][1], ncms_hh)
    parts = [
        (0, *recs.expand(p.twin_of[twin_b], twin_b), True),
        (1, *recs.expand(p.named_after[son], son), True),
        (2, *_child_with_parent_id(p, recs, errors), False),
        (3, *recs.expand(same_a, same_b), True),
        (4, recs.of("ncms", milk_l), recs.of("ncms", milk_r), True),
    ]
    kinds, lefts, rights = [], [], []
    for kind, left, right, symmetric in parts:
        if symmetric:
            left, right = np.minimum(left, right), np.maximum(left, right)
        kinds.append(np.full(len(left), kind, dtype=np.int64))
        lefts.append(left)
        rights.append(right)
    kind, left, right = np.concatenate(kinds), np.concatenate(lefts), np.concatenate(rights)
    order = np.lexsort((right, left, kind))
    kind, left, right = kind[order], left[order], right[order]
    new = np.r_[True, (kind[1:] != kind[:-1]) | (left[1:] != left[:-1])
                | (right[1:] != right[:-1])] & (left != right)
    kind, left, right = kind[new], left[new], right[new]
    return recs.frame(np.array(KINDS, dtype=object)[kind], left, right)
