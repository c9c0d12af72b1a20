"""The fixed geography of Tongliao: counties, townships, villages and their clerks.

Why: places come from linkage/data/tongliao_places.json (package data) with a generator of its
own seed, so every world has the same names; only how many villages are used grows with size.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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


def build_geo(persons: int) -> Geo:
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

    def obj(xs) -> np.ndarray:
        return np.array(xs, dtype=object)

    vcount = np.bincount(np.array(v[0]), minlength=len(units))
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
        clerk_code=obj(clerk_codes), cu_start=cu_start, cu_count=cu_count,
        external_codes=np.array([int(c) for c in spec["external_region_codes"]]),
        province=spec["province"], prefecture=spec["prefecture"],
    )
