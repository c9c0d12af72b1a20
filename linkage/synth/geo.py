"""The geography of Tongliao at a given size: counties, townships, villages and their clerks.

Why: places come from linkage/data/tongliao_places.json (package data): the eight county-level
units, their real townships and the stems village names are made of. Villages hold a few hundred
residents (params.GEO) whatever the size, so a larger world has more villages, and a county opens
more townships once its real ones hold as many villages as a township does; the extra names are
made from the same stems, unique within the county. Each county draws from a generator of its
own fixed seed, so the same size always gives the same places.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from linkage.synth.params import GEO

DATA = Path(__file__).parent.parent / "data"  # linkage/data, shipped as package data


@dataclass
class Geo:
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
    vil_key: np.ndarray  # unit + cumulative share of the unit's households up to this village
    clerk_code: np.ndarray
    cu_start: np.ndarray  # [county, urban] -> first unit
    cu_count: np.ndarray
    external_codes: np.ndarray
    province: str
    prefecture: str

    def village_in(self, unit: np.ndarray, u: np.ndarray) -> np.ndarray:
        """The village of each unit a uniform u in [0, 1) falls in, by the villages' sizes."""
        v = np.searchsorted(self.vil_key, unit + u, side="right")
        return np.minimum(v, self.unit_vstart[unit] + self.unit_vcount[unit] - 1)


def _split_suffix(name: str) -> tuple[str, str]:
    for suffix in ("街道", "苏木", "镇", "乡"):
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], suffix
    return name, ""


class _Names:
    """Place names unique within one county, drawn from the stems: a stem, else a prefix and the
    stem (东太平), else the start of one stem and the end of another (乌兰塔拉), else a stem and a
    numeral (和平二)."""

    def __init__(self, rng: np.random.Generator, prefixes: list[str], used: set[str]):
        self.rng, self.prefixes, self.used = rng, prefixes, used

    def take(self, stems: list[str]) -> str:
        rng = self.rng
        stem = stems[rng.integers(len(stems))]
        for k in range(240):
            if k == 0:
                name = stem
            elif k < 12:
                name = self.prefixes[rng.integers(len(self.prefixes))] + stem[-3:]
            else:
                name = stem[:2] + stems[rng.integers(len(stems))][-2:]
            if name not in self.used and self._plausible(name):
                break
        for k in range(2, 100):  # only once the combinations above are nearly all taken
            if name not in self.used:
                break
            name = stem + _numeral(k)
        if name in self.used:
            raise RuntimeError(f"no place name left for the stem {stem}")
        self.used.add(name)
        return name

    def _plausible(self, name: str) -> bool:
        """Not 王家家铺 (a character twice in a row), 前屯前屯, nor 东西屯 (two prefixes)."""
        return (all(a != b for a, b in zip(name, name[1:])) and name[:2] != name[2:]
                and not (name[0] in self.prefixes and name[1] in self.prefixes))


def _numeral(k: int) -> str:
    """2 -> 二, 12 -> 十二, 35 -> 三十五 (k < 100)."""
    digits = "零一二三四五六七八九"
    tens, ones = divmod(k, 10)
    head = "" if tens == 0 else ("十" if tens == 1 else digits[tens] + "十")
    return head + (digits[ones] if ones else "")


def _units_needed(pop: float, listed: int, residents: int, per_unit: int) -> tuple[int, int]:
    """(units, villages per unit): villages of about `residents` each, at most `per_unit` of them
    per unit, more units than the listed ones only where those would hold more."""
    villages = pop / residents
    units = max(listed, math.ceil(villages / per_unit))
    per = int(np.clip(round(villages / units), GEO["min_per_unit"], per_unit))
    return units, per


def build_geo(persons: int) -> Geo:
    """The places of a world of `persons` people; the same size always gives the same places."""
    spec = json.loads((DATA / "tongliao_places.json").read_text(encoding="utf-8"))
    mongol_stems, han_stems = spec["mongol_village_stems"], spec["han_village_stems"]
    prefixes, communities = spec["village_prefixes"], spec["community_stems"]
    counties = spec["counties"]
    units, vils, keys = [], [], []
    clerk_codes: list[str] = []
    cu_start = np.zeros((len(counties), 2), dtype=np.int64)
    cu_count = np.zeros((len(counties), 2), dtype=np.int64)
    for ci, cty in enumerate(counties):
        grng = np.random.default_rng([2016, ci])
        p_mongol = min(0.85, cty["mongol_share"] * 2.2)
        pop = persons * cty["share"]
        listed_stems = {_split_suffix(u)[0] for u in cty["townships"] + cty["urban_units"]}
        unit_names = _Names(grng, prefixes, set(listed_stems))
        place_names = _Names(grng, prefixes, set())
        clerk_no = 0
        for urban, listed in ((0, cty["townships"]), (1, cty["urban_units"])):
            share = cty["urban_share"] if urban else 1 - cty["urban_share"]
            if urban:
                n_units, n_use = _units_needed(pop * share, len(listed), GEO["community_residents"],
                                               GEO["communities_per_unit"])
            else:
                n_units, n_use = _units_needed(pop * share, len(listed), GEO["village_residents"],
                                               GEO["villages_per_township"])
            names = list(listed)
            for _ in range(n_units - len(listed)):
                if urban:
                    names.append(unit_names.take(communities) + "街道")
                elif grng.random() < p_mongol:
                    names.append(unit_names.take(mongol_stems)
                                 + ("苏木" if grng.random() < 0.7 else "镇"))
                else:
                    names.append(unit_names.take(han_stems)
                                 + ("镇" if grng.random() < 0.7 else "乡"))
            cu_start[ci, urban], cu_count[ci, urban] = len(units), len(names)
            for uname in names:
                stem, suffix = _split_suffix(uname)
                ui = len(units)
                units.append((ci, uname, stem, suffix, urban, len(vils)))
                size = np.exp(grng.normal(0.0, GEO["village_size_sigma"], n_use))
                keys.append(ui + np.cumsum(size) / size.sum())
                for k in range(n_use):
                    if urban:
                        vstem, vsuffix, groups = place_names.take(communities), "社区", 0
                    else:
                        mongol = grng.random() < p_mongol
                        vstem = place_names.take(mongol_stems if mongol else han_stems)
                        vsuffix = "嘎查" if mongol and grng.random() < 0.9 else "村"
                        groups = int(grng.integers(3, 10))
                    if not urban and k % 2 == 0:
                        clerk_no += 1
                        clerk_codes.append(f"{cty['clerk']}{clerk_no:03d}")
                    clerk = -1 if urban else len(clerk_codes) - 1  # one clerk keys two villages
                    vils.append((ui, vstem, vsuffix, groups, clerk))
    u = list(zip(*units))
    v = list(zip(*vils))

    def obj(xs) -> np.ndarray:
        return np.array(xs, dtype=object)

    vcount = np.bincount(np.array(v[0]), minlength=len(units))
    vil_key = np.concatenate(keys)
    vil_key[np.cumsum(vcount) - 1] = np.arange(len(units)) + 1.0  # each unit's last ends at 1
    return Geo(
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
        vil_key=vil_key, clerk_code=obj(clerk_codes), cu_start=cu_start, cu_count=cu_count,
        external_codes=np.array([int(c) for c in spec["external_region_codes"]]),
        province=spec["province"], prefecture=spec["prefecture"],
    )
