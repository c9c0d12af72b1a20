"""One source's records before their errors: per-record arrays, and the log of what was changed.

Why: the error functions of every source see the same aligned view of the persons they export,
and every change they make is logged per record and field, so the answer key is exact.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from linkage.synth.geo import Geo
from linkage.synth.params import REF_YEAR
from linkage.synth.people import People


@dataclass
class Rec:
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
    # set by a source whose records show them: the milk name to write instead of the name (""
    # where none), and the children entered with no ID and the birth year only
    milk: np.ndarray | None = None
    no_id: np.ndarray | None = None


def select_records(p: People, geo: Geo, idx: np.ndarray, gbk: bool) -> Rec:
    """The persons at idx as one source sees them (gbk: the source cannot hold rare characters)."""
    parent = p.parent[idx]
    parent_rid = np.where(parent >= 0, p.rid[np.maximum(parent, 0)], "")
    county = p.hh_county[p.hh[idx]]
    region, new = p.region[idx], geo.county_code[county]
    return Rec(
        sn=p.sn[idx], sep=p.sep[idx], gn=p.gn[idx], mstyle=p.mstyle[idx],
        child=p.by[idx] >= REF_YEAR - 11, rid=p.rid[idx], parent_rid=parent_rid,
        region=region, region15=np.where(region != new, region, geo.old_code[county]),
        region_new=new,
        y=p.by[idx].astype(np.int64), m=p.bm[idx].astype(np.int64), d=p.bd[idx].astype(np.int64),
        seq=p.seq[idx], gender=p.gender[idx], gbk=gbk,
    )


class ErrorLog:
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
