"""The persons of a synthetic world: one index per person, every attribute a numpy column.

Kept apart from people.py, which draws them, and identity.py, which adds the hard cases and
the resident IDs to them, so that both name the type without importing each other.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def _none() -> np.ndarray:
    return np.empty(0, dtype=object)


@dataclass
class People:
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
    # filled by identity.py: the milk name the NCMS record shows ("" if none) and the bare milk
    # name (without the surname); the father a son was named after (-1)
    milk: np.ndarray = field(default_factory=_none)
    milk_key: np.ndarray = field(default_factory=_none)
    named_after: np.ndarray = field(default_factory=_none)
    # filled by households.py: how each source groups the persons. A household index below
    # len(hh_start) is a family as generated; above, a 户 split off it (hh_origin says which);
    # hh_county .. hh_urban cover both. Relations are the registry's words relative to the head
    # the source lists; events name what differs ("" if nothing), per person and source.
    hh_origin: np.ndarray = field(default_factory=_none)
    police_hh: np.ndarray = field(default_factory=_none)
    police_rel: np.ndarray = field(default_factory=_none)
    police_event: np.ndarray = field(default_factory=_none)
    ncms_hh: np.ndarray = field(default_factory=_none)
    ncms_rel: np.ndarray = field(default_factory=_none)
    ncms_event: np.ndarray = field(default_factory=_none)
    ncms_listed: np.ndarray = field(default_factory=_none)  # -1 by chance, 0 never, 1 always

    @property
    def name(self) -> np.ndarray:
        return self.sn + self.sep + self.gn

    def __len__(self) -> int:
        return len(self.hh)
