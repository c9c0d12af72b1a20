"""The card roster and the two lists the office chases: not verified, and conflicts.

The office issues one social-security card per real person, and a card application needs the
resident ID (which is the social-security number), name, gender, ethnicity, birthdate and the
registered address. Only entities the police registry confirms (VERIFIED) go on the roster;
insurance records nobody in the registry confirms, and entities the linkage could not settle,
go on lists with the reason, so the office knows whom to ask for papers.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from linkage.outputs.enrolments import GENDER_WORDS, entered
from linkage.outputs.view import RunView, isin, join_distinct

ROSTER_COLUMNS = [
    "entity_id", "resident_id", "name", "gender", "ethnicity", "birth_date", "township",
    "village", "address", "household_id", "schemes", "n_enrolments", "tier", "subsidy",
    "insurance_household_ids", "record_ids", "remarks",
]
NOT_VERIFIED_COLUMNS = [
    "entity_id", "reason", "scheme", "source", "record_id", "name_entered", "id_entered",
    "id_status", "birth_date_entered", "gender_entered", "household_id", "township", "village",
    "clerk", "receipt", "records_in_entity",
]
CONFLICT_COLUMNS = [
    "entity_id", "reason", "source", "record_id", "name_entered", "id_entered", "id_status",
    "birth_date_entered", "gender_entered", "household_id", "township", "village",
]
ID_HINTS = {
    "missing": "ID number missing",
    "valid": "valid ID number the registry does not hold",
    "upgraded": "old 15-digit ID number the registry does not hold",
    "bad_check": "ID check digit wrong",
    "bad_date": "ID number holds an impossible birthdate",
    "bad_region": "ID number has an unknown region code",
    "excel_damaged": "ID number damaged by Excel",
    "malformed": "ID number malformed",
}


def roster(view: RunView, enrol: pd.DataFrame) -> pd.DataFrame:
    """One row per VERIFIED entity (ROSTER_COLUMNS), ordered by township, village, household."""
    gold = view.golden
    v = gold[gold["status"] == "VERIFIED"].set_index("entity_id")
    out = pd.DataFrame(index=v.index)
    out["resident_id"] = v["id_number"]
    out["name"] = v["name"]
    out["gender"] = v["gender"].map(GENDER_WORDS)
    for column in ("ethnicity", "birth_date", "township", "village"):
        out[column] = v[column]
    auth = view.authority
    address = pd.Series(view.text("address")[auth], index=view.entity_id[auth]).dropna()
    out["address"] = address[~address.index.duplicated()].reindex(out.index)
    out["household_id"] = v["household_id"]
    out["schemes"] = v["schemes"].replace("", None)
    out["n_enrolments"] = v["n_enrolments"].astype(int)
    out["tier"] = _tiers(enrol).reindex(out.index)
    out["subsidy"] = join_distinct(enrol["entity_id"].to_numpy(), enrol["subsidy"].to_numpy(),
                                   "+").reindex(out.index)
    out["insurance_household_ids"] = join_distinct(
        enrol["entity_id"].to_numpy(), enrol["household_id"].to_numpy()).reindex(out.index)
    out["record_ids"] = v["lineage"]
    out["remarks"] = _remarks(v, out)
    out = out.reset_index()  # golden rows come sorted by entity id: the tie-break
    out = out.sort_values(["township", "village", "household_id", "birth_date"],
                          na_position="last", kind="stable")
    return out[ROSTER_COLUMNS].reset_index(drop=True)


def _tiers(enrol: pd.DataFrame) -> pd.Series:
    """The tier per entity; 'NCMS:一档;URBAN:二档' when its enrolments disagree."""
    t = enrol[["entity_id", "scheme", "tier"]].dropna(subset=["tier"])
    distinct = t.drop_duplicates(["entity_id", "tier"])
    mixed = isin(t["entity_id"].to_numpy(),
                 distinct.loc[distinct["entity_id"].duplicated(), "entity_id"].to_numpy())
    labelled = t[mixed].sort_values(["entity_id", "scheme"], kind="stable")
    labels = np.concatenate([t.loc[~mixed, "tier"].to_numpy(dtype=object),
                             (labelled["scheme"].astype(str) + ":" + labelled["tier"]).to_numpy(
                                 dtype=object)])
    keys = np.concatenate([t.loc[~mixed, "entity_id"].to_numpy(dtype=object),
                           labelled["entity_id"].to_numpy(dtype=object)])
    return join_distinct(keys, labels)


def _remarks(v: pd.DataFrame, out: pd.DataFrame) -> np.ndarray:
    """What the office must know before printing the card, as '; '-joined notes."""
    flags = [
        (v["deceased"].astype(bool), "deceased in the registry: do not issue"),
        (out["n_enrolments"] == 0, "not insured in any scheme"),
        (v["duplicate_enrolment"].astype(bool), "insured more than once: see duplicate_enrolments"),
        (out["resident_id"].isna(), "no valid ID number: check the papers"),
        (out["resident_id"].notna() & out["resident_id"].duplicated(keep=False),
         "ID number shared with another roster row"),
        (v["id_repaired"].astype(bool), "insurance record had another ID number: registry's used"),
        (v["needs_review"].astype(bool), "a pair with this person awaits review"),
    ]
    remarks = np.full(len(out), "", dtype=object)
    for flag, note in flags:
        hit = flag.to_numpy(dtype=bool)
        remarks = np.where(hit & (remarks == ""), note,
                           np.where(hit, remarks + "; " + note, remarks))
    return np.where(remarks == "", None, remarks)


def not_verified(view: RunView, enrol: pd.DataFrame) -> pd.DataFrame:
    """Insurance records of entities no registry person confirms (UNVERIFIED), with the reason."""
    gold = view.golden.set_index("entity_id")
    rows = enrol[enrol["status"] == "UNVERIFIED"].copy()
    hint = rows["id_status"].map(ID_HINTS).fillna("ID number unreadable")
    rows["reason"] = gold["status_reason"].reindex(rows["entity_id"]).to_numpy() + "; " + hint
    rows["records_in_entity"] = gold["n_records"].reindex(rows["entity_id"]).to_numpy()
    rows = rows.sort_values(["township", "village", "household_id", "entity_id", "record_id"],
                            na_position="last", kind="stable")
    return rows[NOT_VERIFIED_COLUMNS].reset_index(drop=True)


def conflicts(view: RunView) -> pd.DataFrame:
    """Every record of a CONFLICT entity, registry records included, with the reason."""
    conflict_ids = view.golden.loc[view.golden["status"] == "CONFLICT", "entity_id"]
    rows = entered(view, isin(view.entity_id, conflict_ids.to_numpy()))
    reason = view.golden.set_index("entity_id")["status_reason"]
    rows["reason"] = reason.reindex(rows["entity_id"]).to_numpy()
    rows = rows.sort_values(["entity_id", "source", "record_id"], kind="stable")
    return rows[CONFLICT_COLUMNS].reset_index(drop=True)
