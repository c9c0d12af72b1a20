"""Turn mapped raw fields into the standardised columns matchers compare and blocking keys use.

The raw values stay untouched beside the derived ones: the golden record and the roster show
what a clerk typed, the comparison keys only decide.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from matchers.base import per_distinct
from matchers import birthdate, gender, generic, person_name, place, relation, resident_id

STANDARDISERS = {
    "id_number": resident_id.standardise,
    "name": person_name.standardise,
    "birth_date": birthdate.standardise,
    "gender": gender.standardise,
    "township": place.standardise_township,
    "village": place.standardise_village,
    "relation": relation.standardise,
}
# The per-value parser behind each standardiser, for one record at a time (the online check):
# a standardiser's one-row frame costs a millisecond of pandas, the parser microseconds.
# tests/matchers/test_fuzz_standardisers.py pins each pair to agree.
VALUE_PARSERS = {
    "id_number": resident_id.parse_id,
    "name": person_name.parse_name,
    "birth_date": lambda v: dict(zip(birthdate.COLUMNS, birthdate.parse_birthdate(v))),
    "gender": lambda v: {"gender": gender.parse_gender(v)},
    "township": lambda v: {"township_norm": place.township_core(v)},
    "village": place.parse_village,
    "relation": lambda v: {"relation_std": relation.parse_relation(v)},
}
PASS_THROUGH = {"household_id", "ethnicity", "status"}

# Columns derived across fields (blocking rules may use any of them) and the fields they carry.
DERIVED = {
    "birth_year": {"birth_date"},
    "id_region_canon": {"id_number"},
    "id_prefix17": {"id_number"},
    "id_birth_part": {"id_number"},
    "id_birth_agrees": {"id_number", "birth_date"},
}


def column_fields(fields: set[str]) -> dict[str, set[str]]:
    """Which raw fields each standardised column carries information from.

    Training needs it: an EM session over pairs blocked on a birthdate must not estimate the
    birthdate comparison, since every pair there agrees on it by construction.
    """
    out: dict[str, set[str]] = {}
    for field in fields:
        if field in STANDARDISERS:
            for col in STANDARDISERS[field](pd.Series([], dtype=object)).columns:
                out.setdefault(col, set()).add(field)
        else:
            out.setdefault(f"{field}_std" if field not in PASS_THROUGH else field, set()).add(field)
    for col, sources in DERIVED.items():
        if sources & fields:
            out.setdefault(col, set()).update(sources & fields)
    return out


def standardise_records(records: pd.DataFrame, fields: set[str]) -> pd.DataFrame:
    """Add every derived column for the fields any source maps; keeps the records' index."""
    out = records.copy(deep=False)  # new columns only; the raw ones are shared, never written
    for field in sorted(fields):
        if field in STANDARDISERS:
            derived = STANDARDISERS[field](out[field])
            for col in derived.columns:
                out[col] = derived[col].to_numpy()
        elif field in PASS_THROUGH:
            out[field] = _blank_to_none(out[field])
        else:
            out[f"{field}_std"] = generic.standardise_text(out[field]).to_numpy()
    _cross_field(out)
    return out


def _blank_to_none(values: pd.Series) -> pd.Series:
    """Text stripped, blank text and NA as None; other values (numbers) as they are."""
    return per_distinct(values, lambda v: (v.strip() or None) if isinstance(v, str) else v)


def _cross_field(out: pd.DataFrame) -> None:
    """Fill what one field can tell about another (gender and birthdate from the ID)."""
    n = len(out)
    if "id_gender" in out:
        if "gender" not in out:
            out["gender"] = None
        out["gender"] = out["gender"].where(out["gender"].notna(), out["id_gender"])
    if "id_birth" in out and "birth_date" in out:
        idb = out["id_birth"].to_numpy(dtype=np.int64)
        bd = out["birth_date"].to_numpy(dtype=np.int64)
        known = (idb > 0) & (bd > 0)
        out["id_birth_agrees"] = np.where(known, _birth_compatible(idb, bd), True)
    elif "id_birth" in out:
        out["id_birth_agrees"] = True
    if "id_birth" in out and "birth_date" in out:
        # Where the record has no usable birthdate, the ID's birthdate is the best we know.
        bd = out["birth_date"].to_numpy(dtype=np.int64)
        idb = out["id_birth"].to_numpy(dtype=np.int64)
        status = out["id_status"].to_numpy(dtype=object)
        trusted = (status == "valid") | (status == "upgraded")
        out["birth_date"] = np.where((bd == 0) & trusted, idb, bd).astype(np.int32)
        quality = out["birth_quality"].to_numpy(dtype=object).copy()
        quality[(bd == 0) & trusted & (idb > 0)] = "from_id"
        out["birth_quality"] = quality
    if "birth_date" in out:
        year = out["birth_date"].to_numpy(dtype=np.int64) // 10000
        out["birth_year"] = np.where(year > 0, year, 0).astype(np.int32)
    if "id_norm" in out:
        norm = out["id_norm"].astype(object)
        usable = norm.notna().to_numpy()
        prefix = np.full(n, None, dtype=object)
        prefix[usable] = norm[usable].str.slice(0, 17).to_numpy()
        out["id_prefix17"] = prefix
        region = per_distinct(
            out["id_region"], lambda r: resident_id.canonical_region(r) if isinstance(r, str) else None
        )
        out["id_region_canon"] = region.to_numpy()
        birth = out["id_birth"].to_numpy(dtype=np.int64)
        part = np.full(n, None, dtype=object)
        has = (birth > 0) & region.notna().to_numpy()
        part[has] = (region[has].astype(str) + birth[has].astype(str)).to_numpy()
        out["id_birth_part"] = part


def _birth_compatible(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Equal on the parts both know (yyyymm00 and yyyy0000 carry partial dates)."""
    same_year = a // 10000 == b // 10000
    month_a, month_b = a // 100 % 100, b // 100 % 100
    day_a, day_b = a % 100, b % 100
    month_ok = (month_a == 0) | (month_b == 0) | (month_a == month_b)
    day_ok = (day_a == 0) | (day_b == 0) | (day_a == day_b)
    return same_year & month_ok & day_ok
