"""The world in one call: persons, three sources, truth and error log; same seed, same world.

Why: every random draw happens in a fixed order from one generator, stage by stage, so a seed
reproduces the world bit for bit; the stages themselves live in the modules this one calls.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from linkage.synth import households as hh_events
from linkage.synth.arrays import zfill
from linkage.synth.geo import build_geo
from linkage.synth.negatives import KINDS, hard_negatives
from linkage.synth.params import MONGOL, REF_YEAR
from linkage.synth.people import make_people
from linkage.synth.persons import People
from linkage.synth.receipts import add_receipts, receipt_rng
from linkage.synth.records import ErrorLog
from linkage.synth.sources import household_order, ncms_export, police_export, urban_export


@dataclass
class World:
    """The three sources, the truth (one row per record), the log of injected errors and the
    hard-negative pairs (records of two persons a matcher could be tempted to merge)."""

    police: pd.DataFrame
    ncms: pd.DataFrame
    urban: pd.DataFrame
    truth: pd.DataFrame
    errors: pd.DataFrame
    seed: int
    persons: int
    households: int
    counts: dict[str, int] = field(default_factory=dict)
    hard_negatives: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=["kind", "source_l", "record_l", "source_r", "record_r"]))


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
    ncms, ncms_idx, ncms_hh = ncms_export(rng, p, geo, hh_rank, log)
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
    errors = log.frame()
    step("hard negatives")
    negatives = hard_negatives(p, {"police": (police["人员编号"].to_numpy(), police_idx),
                                   "ncms": (ncms["参合编号"].to_numpy(), ncms_idx),
                                   "urban": (urban["ryid"].to_numpy(), urban_idx)},
                               errors, ncms_hh)
    step("receipts")  # last, from a generator of their own: the columns above stay as they were
    paid_log = ErrorLog()
    twice = ncms["参合编号"].isin(errors.loc[errors["error"] == "entered_twice", "record_id"])
    birth = (p.by[ncms_idx].astype(np.int64) * 10000 + p.bm[ncms_idx].astype(np.int64) * 100
             + p.bd[ncms_idx].astype(np.int64))
    ncms = add_receipts(receipt_rng(seed), ncms, birth, twice.to_numpy(), paid_log)
    errors = pd.concat([errors, paid_log.frame()], ignore_index=True)
    counts = {
        "persons": persons, "households": len(p.hh_start), "police": len(police), "ncms": len(ncms),
        "police_households": int(police["户号"].nunique()),
        "ncms_households": int(ncms["家庭编号"].nunique()),
        "urban": len(urban), "unregistered": int(p.unregistered.sum()),
        "deceased_marked": int((p.dead == 1).sum()), "deceased_unmarked": int((p.dead == 2).sum()),
        "twin_pairs": int((p.twin_of >= 0).sum()), "mongolian": int((p.eth == MONGOL).sum()),
        "rural": int((~p.hh_urban[p.hh]).sum()),
        "insured_more_than_once": int(
            (truth.loc[truth.source != "police", "person_id"].value_counts() > 1).sum()),
        "registered_twice": int((truth.loc[truth.source == "police", "person_id"].value_counts()
                                 > 1).sum()),
        **_hard_class_counts(p, ncms_idx, errors),
        **{f"hard_negatives_{kind}": int((negatives["kind"] == kind).sum()) for kind in KINDS},
    }
    return World(police=police, ncms=ncms, urban=urban, truth=truth, errors=errors, seed=seed,
                 persons=persons, households=len(p.hh_start), counts=counts,
                 hard_negatives=negatives)


def _hard_class_counts(p: People, ncms_idx: np.ndarray, errors: pd.DataFrame) -> dict[str, int]:
    """How common the hard classes of issue 16 are: persons, records and households."""
    e = errors[errors["source"] == "ncms"]["error"].value_counts()
    age = REF_YEAR - p.by[ncms_idx]
    young = age <= 6
    milk = p.milk[ncms_idx] != ""

    def households(events: np.ndarray, label: str) -> int:
        return int(len(np.unique(p.hh[events == label])))

    return {
        "ncms_children_0_6": int(young.sum()),
        "ncms_milk_name_records": int(milk.sum()),
        "ncms_milk_name_records_0_6": int((milk & young).sum()),
        "milk_names_distinct": int(len(np.unique(p.milk_key[p.milk_key != ""]))),
        "ncms_children_no_id_year_only": int(e.get("id_missing_child", 0)),
        "ncms_children_0_14": int((age <= 14).sum()),
        "ncms_child_with_parent_id": int(e.get("id_parent_number", 0)),
        "sons_named_after_father": int((p.named_after >= 0).sum()),
        "ncms_married_daughter_twice": int(e.get("married_daughter_twice", 0)),
        "households_split_in_registry": households(p.police_event, hh_events.SPLIT_POLICE),
        "households_split_in_ncms": households(p.ncms_event, hh_events.SPLIT_NCMS),
        "heads_replaced_in_registry": households(p.police_event, hh_events.HEAD_REPLACED),
        "heads_replaced_in_ncms": households(p.ncms_event, hh_events.HEAD_REPLACED),
        "heads_differ_in_ncms": households(p.ncms_event, hh_events.HEAD_DIFFERS),
    }


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
