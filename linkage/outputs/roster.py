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
    """One row per VERIFIED entity (ROSTER_COLUMNS), ordered by township, village, household.

    Built as columns and put in order once (pandas would copy every column at each step of
    a frame built up column by column, then again to sort it).
    """
    gold = view.golden
    verified = (gold["status"] == "VERIFIED").to_numpy()
    index = pd.Index(gold["entity_id"].to_numpy()[verified])
    v = {c: pd.Series(gold[c].to_numpy()[verified], index=index) for c in gold.columns}
    out = {"entity_id": index.to_numpy(), "resident_id": v["id_number"], "name": v["name"],
           "gender": v["gender"].map(GENDER_WORDS)}
    for column in ("ethnicity", "birth_date", "township", "village"):
        out[column] = v[column]
    out["address"] = _registry_address(view)[verified]
    out["household_id"] = v["household_id"]
    out["schemes"] = v["schemes"].replace("", None)
    out["n_enrolments"] = v["n_enrolments"].astype(int)
    # enrolments keyed by their entity's golden row: integers to group by, not ids to hash
    rows, positions = view.golden_index.get_indexer(enrol["entity_id"]), np.flatnonzero(verified)
    out["tier"] = _tiers(enrol, rows).reindex(positions)
    out["subsidy"] = join_distinct(rows, enrol["subsidy"].to_numpy(), "+").reindex(positions)
    out["insurance_household_ids"] = join_distinct(
        rows, enrol["household_id"].to_numpy()).reindex(positions)
    out["record_ids"] = v["lineage"]
    out["remarks"] = _remarks(v, out["resident_id"], out["n_enrolments"])
    out = {c: np.asarray(values) for c, values in out.items()}
    # golden rows come sorted by entity id: the tie-break
    keys = ["township", "village", "household_id", "birth_date"]
    order = pd.DataFrame({k: out[k] for k in keys}).sort_values(
        keys, na_position="last", kind="stable").index.to_numpy()
    return pd.DataFrame({c: out[c][order] for c in ROSTER_COLUMNS}, copy=False)


def _registry_address(view: RunView) -> np.ndarray:
    """Per golden row the address of its entity's first registry record that has one (NaN
    where none has), found by golden row numbers rather than by hashing entity ids."""
    rows = view.golden_row[view.authority]
    address = view.text("address", view.authority)
    has = (rows >= 0) & pd.notna(address)
    rows, address = rows[has], address[has]
    first = ~pd.Series(rows).duplicated().to_numpy()
    out = np.full(len(view.golden), np.nan, dtype=object)
    out[rows[first]] = address[first]
    return out


def _tiers(enrol: pd.DataFrame, entity: np.ndarray) -> pd.Series:
    """The tier per entity (``entity``: a code per enrolment); 'NCMS:一档;URBAN:二档' when its
    enrolments disagree."""
    t = pd.DataFrame({"entity": entity, "scheme": enrol["scheme"].to_numpy(),
                      "tier": enrol["tier"].to_numpy()}, copy=False).dropna(subset=["tier"])
    distinct = t.drop_duplicates(["entity", "tier"])
    mixed = t["entity"].isin(distinct.loc[distinct["entity"].duplicated(), "entity"]).to_numpy()
    labelled = t[mixed].sort_values(["entity", "scheme"], kind="stable")
    labels = np.concatenate([t.loc[~mixed, "tier"].to_numpy(dtype=object),
                             (labelled["scheme"].astype(str) + ":" + labelled["tier"]).to_numpy(
                                 dtype=object)])
    keys = np.concatenate([t.loc[~mixed, "entity"].to_numpy(), labelled["entity"].to_numpy()])
    return join_distinct(keys, labels)


def _remarks(v: dict[str, pd.Series], resident_id: pd.Series,
             n_enrolments: pd.Series) -> np.ndarray:
    """What the office must know before printing the card, as '; '-joined notes.

    The notes of a row follow from which flags it has: each combination that occurs is
    joined once (a handful), not once per person.
    """
    flags = [
        (v["deceased"].astype(bool), "deceased in the registry: do not issue"),
        (n_enrolments == 0, "not insured in any scheme"),
        (v["duplicate_enrolment"].astype(bool), "insured more than once: see duplicate_enrolments"),
        (resident_id.isna(), "no valid ID number: check the papers"),
        (resident_id.notna() & resident_id.duplicated(keep=False),
         "ID number shared with another roster row"),
        (v["id_repaired"].astype(bool), "insurance record had another ID number: registry's used"),
        (v["needs_review"].astype(bool), "a pair with this person awaits review"),
    ]
    combination = np.zeros(len(resident_id), dtype=np.int64)
    for bit, (flag, _) in enumerate(flags):
        combination |= flag.to_numpy(dtype=bool).astype(np.int64) << bit
    codes, present = pd.factorize(combination)
    notes = np.array(["; ".join(note for bit, (_, note) in enumerate(flags) if c >> bit & 1)
                      or None for c in present], dtype=object)
    return notes[codes] if len(codes) else np.full(0, None, dtype=object)


def not_verified(view: RunView, enrol: pd.DataFrame) -> pd.DataFrame:
    """Insurance records of entities no registry person confirms (UNVERIFIED), with the reason."""
    rows = enrol[enrol["status"] == "UNVERIFIED"].copy()
    hint = rows["id_status"].map(ID_HINTS).fillna("ID number unreadable")
    reason = view.golden_column("status_reason").reindex(rows["entity_id"]).to_numpy()
    rows["reason"] = reason + "; " + hint
    rows["records_in_entity"] = view.golden_column("n_records").reindex(
        rows["entity_id"]).to_numpy()
    rows = rows.sort_values(["township", "village", "household_id", "entity_id", "record_id"],
                            na_position="last", kind="stable")
    return rows[NOT_VERIFIED_COLUMNS].reset_index(drop=True)


def conflicts(view: RunView) -> pd.DataFrame:
    """Every record of a CONFLICT entity, registry records included, with the reason."""
    conflict_ids = view.golden.loc[view.golden["status"] == "CONFLICT", "entity_id"]
    rows = entered(view, isin(view.entity_id, conflict_ids.to_numpy()))
    rows["reason"] = view.golden_column("status_reason").reindex(rows["entity_id"]).to_numpy()
    rows = rows.sort_values(["entity_id", "source", "record_id"], kind="stable")
    return rows[CONFLICT_COLUMNS].reset_index(drop=True)
