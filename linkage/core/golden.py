"""Golden records: one row per entity, each field from the best source that has a valid value.

Survivorship is by source precedence (the police registry first) and validity (a valid ID
beats a damaged one whatever its source). Lineage lists every source record behind the entity,
so the card office and auditors can trace each field back to a clerk's entry.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

GOLDEN_COLUMNS = [
    "entity_id", "status", "status_reason", "name", "id_number", "gender", "birth_date",
    "ethnicity", "township", "village", "household_id", "n_records", "n_enrolments", "schemes",
    "duplicate_enrolment", "id_repaired", "deceased", "needs_review", "lineage",
]
DECEASED_WORDS = ("死亡", "已故", "deceased", "dead")


def golden_records(
    records: pd.DataFrame,
    entity_ids: np.ndarray,
    precedence: tuple[str, ...],
    roles: dict[str, str],
    schemes: dict[str, str],
    contested: np.ndarray | None = None,
) -> pd.DataFrame:
    """Survivorship per entity; ``contested`` marks records in pairs clustering refused."""
    n = len(records)
    rank = {name: i for i, name in enumerate(precedence)}
    f = pd.DataFrame({"entity_id": entity_ids, "source": records["source"].to_numpy()})
    f["rank"] = f["source"].map(rank).to_numpy()
    f["authority"] = f["source"].map(roles).eq("authority").to_numpy()
    f["insurance"] = f["source"].map(roles).eq("insurance").to_numpy()
    f["scheme"] = f["source"].map(lambda s: schemes.get(s) or s)
    f["key"] = (records["source"].astype(str) + ":" + records["record_id"].astype(str)).to_numpy()
    f["contested"] = contested if contested is not None else np.zeros(n, dtype=bool)

    status = _col(records, "id_status")
    valid_id = np.isin(status, ["valid", "upgraded"])
    f["id_valid"] = np.where(valid_id, _col(records, "id_norm"), None)
    f["name"] = _col(records, "name_norm")
    f["gender"] = _col(records, "gender")
    birth = _col(records, "birth_date", 0).astype(np.int64)
    quality = _col(records, "birth_quality")
    exact = np.isin(quality, ["exact", "from_id"]) & (birth > 0)
    f["birth_exact"] = np.where(exact, _format_date(birth), None)
    f["birth_any"] = np.where(birth > 0, _format_date(birth), None)
    for col in ("ethnicity", "township", "village", "household_id", "status"):
        f[col] = _col(records, col)
    f["household_auth"] = f["household_id"].where(f["authority"], None)
    f["id_any"] = _col(records, "id_norm")
    f.loc[f["id_valid"].isna() & ~f["authority"], "id_any"] = None

    f = f.sort_values(["entity_id", "rank", "key"], kind="stable")
    g = f.groupby("entity_id", sort=True)
    first = g[["id_valid", "name", "gender", "birth_exact", "birth_any", "ethnicity", "township",
               "village", "household_id", "household_auth"]].first()
    out = pd.DataFrame(index=first.index)
    out["name"] = first["name"]
    out["id_number"] = first["id_valid"]
    out["gender"] = first["gender"]
    out["birth_date"] = first["birth_exact"].fillna(first["birth_any"])
    for col in ("ethnicity", "township", "village"):
        out[col] = first[col]
    out["household_id"] = first["household_auth"].fillna(first["household_id"])
    out["n_records"] = g.size()
    out["n_enrolments"] = g["insurance"].sum().astype(int)
    ins = f.loc[f["insurance"], ["entity_id", "scheme"]].drop_duplicates().sort_values(
        ["entity_id", "scheme"])
    joined = _join_groups(ins["entity_id"].to_numpy(), ins["scheme"].to_numpy(), "+")
    out["schemes"] = pd.Series(joined, dtype=object).reindex(out.index).fillna("")
    has_authority = g["authority"].any()
    authority_ids = f[f["authority"] & f["id_valid"].notna()]
    distinct_auth_ids = authority_ids.groupby("entity_id")["id_valid"].nunique()
    contested_any = g["contested"].any()

    out["duplicate_enrolment"] = out["n_enrolments"] >= 2
    golden_id = out["id_number"].reindex(f["entity_id"]).to_numpy()
    differs = (f["insurance"].to_numpy() & (f["id_any"].to_numpy() != golden_id)
               & pd.notna(golden_id))
    repaired = pd.Series(differs, index=f["entity_id"]).groupby(level=0).any()
    out["id_repaired"] = repaired & has_authority
    registry_status = f["status"].fillna("").astype(str)
    dead = f["authority"] & registry_status.str.contains("|".join(DECEASED_WORDS))
    out["deceased"] = dead.groupby(f["entity_id"]).any()
    out["needs_review"] = contested_any

    status_col = np.where(has_authority, "VERIFIED", "UNVERIFIED").astype(object)
    reason = np.where(has_authority, "", "no police registry record").astype(object)
    two_ids = distinct_auth_ids.reindex(out.index).fillna(0).to_numpy() >= 2
    status_col[two_ids] = "CONFLICT"
    reason[two_ids] = "registry records with different ID numbers merged by a reviewer"
    claimed = contested_any.to_numpy() & ~has_authority.to_numpy()
    status_col[claimed] = "CONFLICT"
    reason[claimed] = "could belong to more than one registry person: needs review"
    out["status"] = status_col
    out["status_reason"] = reason
    out["lineage"] = pd.Series(_join_groups(f["entity_id"].to_numpy(), f["key"].to_numpy(), ";"))
    return out.reset_index()[GOLDEN_COLUMNS]


def _join_groups(groups: np.ndarray, values: np.ndarray, sep: str) -> dict:
    """Join the values of each run of equal (sorted) group labels; one pass, no per-group pandas."""
    if len(groups) == 0:
        return {}
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    ends = np.r_[starts[1:], len(groups)]
    vals = values.tolist()
    return {groups[a]: sep.join(vals[a:b]) for a, b in zip(starts.tolist(), ends.tolist())}


def _col(records: pd.DataFrame, name: str, default=None) -> np.ndarray:
    if name in records:
        return records[name].to_numpy(dtype=object if default is None else None)
    return np.full(len(records), default, dtype=object if default is None else np.int64)


def _format_date(yyyymmdd: np.ndarray) -> np.ndarray:
    """'1965-03-12', '1965-03' or '1965' according to what the int carries."""
    y, m, d = yyyymmdd // 10000, yyyymmdd // 100 % 100, yyyymmdd % 100
    full = pd.Series(y).astype(str).str.zfill(4)
    month = pd.Series(m).astype(str).str.zfill(2)
    day = pd.Series(d).astype(str).str.zfill(2)
    text = np.where(d > 0, full + "-" + month + "-" + day,
                    np.where(m > 0, full + "-" + month, full))
    return np.where(yyyymmdd > 0, text, None)
