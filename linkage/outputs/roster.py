"""The card roster and the two lists the office chases: not verified, and conflicts.

The office issues one social-security card per real person, and a card application needs the
resident ID (which is the social-security number), name, gender, ethnicity, birthdate and the
registered address. The roster's first sheet holds only the persons a card can be issued to:
VERIFIED by the police registry, alive, with a valid ID number of their own and no registry
double registration waiting. Everyone else the registry knows goes on the second sheet,
暂缓制卡, with the reason in Chinese, so a card cannot be printed for them by mistake (a remark
in a column is easily missed at the printer). Insurance records nobody in the registry
confirms, and entities the linkage could not settle, go on lists with the reason, so the
office knows whom to ask for papers.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from linkage.outputs.enrolments import GENDER_WORDS, entered
from linkage.outputs.registry_duplicates import partners
from linkage.outputs.view import RunView, isin, join_distinct, sort_order

ROSTER_COLUMNS = [
    "entity_id", "resident_id", "name", "gender", "ethnicity", "birth_date", "township",
    "village", "address", "household_id", "schemes", "n_enrolments", "tier", "subsidy",
    "insurance_household_ids", "record_ids", "remarks",
]
DEFERRED_COLUMNS = ["entity_id", "reason", "status", *ROSTER_COLUMNS[1:], "reason_codes"]
# Why a card waits (暂缓制卡), by the code the CSV's reason_codes column gives.
DEFER_REASONS = {
    "deceased": "户籍登记为死亡，不予制卡",
    "no_valid_id": "无有效身份证号，核对证件后再制卡",
    "shared_id": "身份证号与他人相同，待户籍部门核实",
    "registry_duplicate": "疑似重复户籍，见疑似重复户籍名单，核实前两条均不制卡",
    "conflict": "冲突未解决，待复核",
}
# A CONFLICT entity's golden status_reason, in the office's words.
CONFLICT_REASONS = {
    "registry records with different ID numbers merged by a reviewer":
        "冲突未解决：复核员将身份证号不同的户籍记录判为同一人，待户籍部门核实",
    "could belong to more than one registry person: needs review":
        "冲突未解决：可能属于多个户籍人员，待复核",
}
# What the office should know before printing a card that can be issued.
REMARKS = {
    "not_insured": "未参加任何险种",
    "insured_twice": "重复参保，见重复参保名单",
    "id_repaired": "参保记录的身份证号与户籍不符，已采用户籍号码",
    "awaits_review": "有一对记录待复核",
}
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


def card_roster(view: RunView, enrol: pd.DataFrame,
                registry_pairs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The roster's two sheets: the persons a card can be issued to (ROSTER_COLUMNS) and the
    others the registry knows, 暂缓制卡 (DEFERRED_COLUMNS: the reason first); both ordered by
    township, village, household.

    Sheet 1: VERIFIED, not deceased, a valid ID number no other listed person carries, and
    in no registry double registration awaiting review (``registry_pairs``, from
    :func:`linkage.outputs.registry_duplicates.registry_pairs`). Sheet 2: every other
    VERIFIED person, and every CONFLICT entity. Built as columns and put in order once
    (pandas would copy every column at each step of a frame built up column by column).
    """
    gold = view.golden
    status = gold["status"].to_numpy()
    listed = np.flatnonzero((status == "VERIFIED") | (status == "CONFLICT"))
    # put in order first, so each column is gathered once, in roster order (golden rows come
    # sorted by entity id: the tie-break)
    keys = ["township", "village", "household_id", "birth_date"]
    positions = listed[sort_order(pd.DataFrame({k: gold[k].to_numpy()[listed] for k in keys},
                                               copy=False), keys)]
    index = pd.Index(gold["entity_id"].to_numpy()[positions])
    v = {c: pd.Series(gold[c].to_numpy()[positions], index=index) for c in gold.columns}
    out = {"entity_id": index.to_numpy(), "resident_id": v["id_number"], "name": v["name"],
           "gender": v["gender"].map(GENDER_WORDS)}
    for column in ("ethnicity", "birth_date", "township", "village"):
        out[column] = v[column]
    out["address"] = _registry_address(view)[positions]
    out["household_id"] = v["household_id"]
    names = view.config.scheme_names
    out["schemes"] = _scheme_words(v["schemes"].replace("", None), names)
    out["n_enrolments"] = v["n_enrolments"].astype(np.int64)
    # enrolments keyed by their entity's golden row: integers to group by, not ids to hash
    rows = view.golden_index.get_indexer(enrol["entity_id"])
    out["tier"] = _tiers(enrol, rows, names).reindex(positions)
    out["subsidy"] = join_distinct(rows, enrol["subsidy"].to_numpy(), "+").reindex(positions)
    out["insurance_household_ids"] = join_distinct(
        rows, enrol["household_id"].to_numpy()).reindex(positions)
    out["record_ids"] = v["lineage"]
    shared = out["resident_id"].notna() & out["resident_id"].duplicated(keep=False)
    twice = partners(view, registry_pairs).reindex(positions).to_numpy(dtype=object)
    out["remarks"] = _remarks(v, out["n_enrolments"], pd.notna(twice))
    reason, codes = _defer_reasons(v, out["resident_id"].isna(), shared, twice)
    out["reason"], out["reason_codes"], out["status"] = reason, codes, v["status"]
    out = {c: np.asarray(values) for c, values in out.items()}
    deferred = out["reason_codes"] != ""
    issuable = pd.DataFrame({c: out[c][~deferred] for c in ROSTER_COLUMNS}, copy=False)
    return issuable, pd.DataFrame({c: out[c][deferred] for c in DEFERRED_COLUMNS},
                                  copy=False)


def _scheme_words(schemes: pd.Series, names: dict[str, str]) -> np.ndarray:
    """'NCMS+URBAN' as the office reads it, '新农合+城镇居民' (once per distinct value)."""
    codes, uniques = pd.factorize(schemes.to_numpy(dtype=object))
    words = np.array(["+".join(names.get(s, s) for s in u.split("+")) for u in uniques] + [None],
                     dtype=object)
    return words[codes]  # code -1 (not insured) picks the None appended


def _defer_reasons(v: dict[str, pd.Series], no_id: pd.Series, shared: pd.Series,
                   twice: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row why its card waits, in Chinese ('；'-joined) and as codes (';'-joined); both
    '' for a card that can be issued. A registry double registration names the other record."""
    conflict = (v["status"] == "CONFLICT").to_numpy()
    flags = {"deceased": v["deceased"].to_numpy(dtype=bool), "no_valid_id": no_id.to_numpy(),
             "shared_id": shared.to_numpy(), "registry_duplicate": pd.notna(twice),
             "conflict": conflict}
    reason = np.full(len(conflict), "", dtype=object)
    codes = np.full(len(conflict), "", dtype=object)
    for code, flag in flags.items():
        at = np.flatnonzero(flag)  # texts made for the rows flagged only
        if not len(at):
            continue
        if code == "conflict":
            said = v["status_reason"].iloc[at].map(CONFLICT_REASONS).to_numpy(dtype=object)
            text = np.where(pd.notna(said), said, DEFER_REASONS[code]).astype(object)
        elif code == "registry_duplicate":
            text = np.array([f"疑似重复户籍（与 {other} 可能为同一人），见疑似重复户籍名单，"
                             "核实前两条均不制卡" for other in twice[at]], dtype=object)
        else:
            text = np.full(len(at), DEFER_REASONS[code], dtype=object)
        before = reason[at]
        reason[at] = np.where(before == "", text, before + "；" + text)
        before = codes[at]
        codes[at] = np.where(before == "", code, before + ";" + code)
    return reason, codes


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


def _tiers(enrol: pd.DataFrame, entity: np.ndarray, names: dict[str, str]) -> pd.Series:
    """The tier per entity (``entity``: a code per enrolment); '新农合:一档;城镇居民:二档' when
    its enrolments disagree (each scheme by its ``names``)."""
    scheme = enrol["scheme"].map(names).fillna(enrol["scheme"]).to_numpy()
    t = pd.DataFrame({"entity": entity, "scheme": scheme,
                      "tier": enrol["tier"].to_numpy()}, copy=False).dropna(subset=["tier"])
    distinct = t.drop_duplicates(["entity", "tier"])
    mixed = t["entity"].isin(distinct.loc[distinct["entity"].duplicated(), "entity"]).to_numpy()
    labelled = t[mixed].sort_values(["entity", "scheme"], kind="stable")
    labels = np.concatenate([t.loc[~mixed, "tier"].to_numpy(dtype=object),
                             (labelled["scheme"].astype(str) + ":" + labelled["tier"]).to_numpy(
                                 dtype=object)])
    keys = np.concatenate([t.loc[~mixed, "entity"].to_numpy(), labelled["entity"].to_numpy()])
    return join_distinct(keys, labels)


def _remarks(v: dict[str, pd.Series], n_enrolments: pd.Series,
             registry_twice: np.ndarray) -> np.ndarray:
    """What the office should know before printing the card, as '；'-joined notes in Chinese
    (why a card waits is the deferred sheet's reason, not a remark).

    The notes of a row follow from which flags it has: each combination that occurs is
    joined once (a handful), not once per person.
    """
    flags = [
        (n_enrolments.to_numpy() == 0, REMARKS["not_insured"]),
        (v["duplicate_enrolment"].to_numpy(dtype=bool), REMARKS["insured_twice"]),
        (v["id_repaired"].to_numpy(dtype=bool), REMARKS["id_repaired"]),
        # a registry double registration is the reason the card waits, said there
        (v["needs_review"].to_numpy(dtype=bool) & ~registry_twice, REMARKS["awaits_review"]),
    ]
    combination = np.zeros(len(n_enrolments), dtype=np.int64)
    for bit, (flag, _) in enumerate(flags):
        combination |= flag.astype(np.int64) << bit
    codes, present = pd.factorize(combination)
    notes = np.array(["；".join(note for bit, (_, note) in enumerate(flags) if c >> bit & 1)
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
    rows = rows.iloc[sort_order(rows, ["township", "village", "household_id", "entity_id",
                                       "record_id"])]
    return rows[NOT_VERIFIED_COLUMNS].reset_index(drop=True)


def conflicts(view: RunView) -> pd.DataFrame:
    """Every record of a CONFLICT entity, registry records included, with the reason."""
    conflict_ids = view.golden.loc[view.golden["status"] == "CONFLICT", "entity_id"]
    rows = entered(view, isin(view.entity_id, conflict_ids.to_numpy()))
    rows["reason"] = view.golden_column("status_reason").reindex(rows["entity_id"]).to_numpy()
    rows = rows.iloc[sort_order(rows, ["entity_id", "source", "record_id"])]
    return rows[CONFLICT_COLUMNS].reset_index(drop=True)
