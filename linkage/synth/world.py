"""The world in one call: persons, three sources, truth and error log; same seed, same world.

Why: every random draw happens in a fixed order from one generator, stage by stage, so a seed
reproduces the world bit for bit; the stages themselves live in the modules this one calls.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from linkage.synth.arrays import zfill
from linkage.synth.geo import build_geo
from linkage.synth.params import MONGOL
from linkage.synth.people import make_people
from linkage.synth.records import ErrorLog
from linkage.synth.sources import household_order, ncms_export, police_export, urban_export


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
    geo = build_geo(persons)
    step("people")
    p = make_people(rng, persons, geo)
    hh_rank = household_order(rng, p)
    log = ErrorLog()
    step("police")
    police, police_idx = police_export(rng, p, geo, hh_rank, log)
    step("ncms")
    ncms, ncms_idx = ncms_export(rng, p, geo, hh_rank, log)
    step("urban")
    urban, urban_idx = urban_export(rng, p, geo, log)
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
    return "P" + zfill(rng.permutation(n) + 1, max(8, len(str(n))))


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
