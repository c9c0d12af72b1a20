"""Data-entry quality per village and per clerk: each insurance record against its golden record.

Enrolment offices are held to 100% correct entered data and hold villages accountable, so every
error is counted where it was made: the township and village the record was entered under (as
standardised, so 大林镇 and 大林 are one place) and, where the roster names them, the clerk
(录入员) or receipt book. Kinds of error (a record may have several):

- id_missing: no ID number entered.
- id_invalid: an ID number that cannot be right (check digit, date, region, Excel damage, shape).
- id_repaired: the registry person's number differs from the valid number the record carries, or
  the record carries none: the golden record supplies it (as golden.id_repaired counts it).
- name_differs / birth_differs / gender_differs: differs from the registry's (the golden record's)
  name (normalised: spaces and dot variants are not errors), birthdate or gender.
- not_in_registry: the record's entity has no registry person at all.

Comparisons need a registry person, so they are made only for records whose entity has one.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from linkage.outputs.view import RunView, birth_text, isin, sort_order

ERROR_KINDS = ["id_missing", "id_invalid", "id_repaired", "name_differs", "birth_differs",
               "gender_differs", "not_in_registry"]
VALID_ID = ("valid", "upgraded")
PLACE_KEYS = ["source", "township_key", "village_key"]
GROUP_SUFFIX = r"\s*第?[0-9０-９一二三四五六七八九十]+(?:组|社|队)$"
REPORT_COLUMNS = ["records", "records_with_error", "error_rate", *ERROR_KINDS]
RECORD_COLUMNS = [
    "source", "record_id", "entity_id", "township", "village", "clerk", "receipt", "errors",
    "name_entered", "name_registry", "id_entered", "id_registry", "birth_entered",
    "birth_registry",
]


def record_errors(view: RunView) -> pd.DataFrame:
    """One row per insurance record: where it was entered and a boolean column per error kind."""
    m = view.insurance
    records = view.records
    registry = view.in_registry[m]
    status = view.text("id_status", m)
    valid_id = np.where(isin(status, VALID_ID), view.text("id_norm", m), None)
    gold_id = view.golden_value("id_number", m)
    birth = _int_column(records, "birth_date")[m]
    gold_birth = np.append(_birth_int(view.golden["birth_date"].to_numpy(dtype=object)), 0)[
        view.golden_row[m]]  # row -1 (no golden row): 0, unknown
    gold_name = view.golden_value("name", m)

    out = pd.DataFrame(copy=False, data={
        "source": view.text("source", m),
        "record_id": view.text("record_id", m),
        "entity_id": view.entity_id[m],
        "township": view.text("township", m),
        "village": view.text("village", m),
        "township_key": view.text("township_norm", m),
        "village_key": view.text("village_norm", m),
        "clerk": view.text("clerk", m),
        "receipt": view.text("receipt", m),
        "receipt_book": view.text("receipt_book", m),
    })
    out["id_missing"] = (status == "missing") | pd.isna(status)
    out["id_invalid"] = ~out["id_missing"].to_numpy() & ~isin(status, VALID_ID)
    out["id_repaired"] = registry & pd.notna(gold_id) & (valid_id != gold_id)
    out["name_differs"] = registry & _differs(view.text("name_norm", m), gold_name)
    out["birth_differs"] = registry & (gold_birth > 0) & (birth != gold_birth)
    out["gender_differs"] = registry & _differs(view.text("gender", m),
                                                view.golden_value("gender", m))
    out["not_in_registry"] = ~registry
    out["name_entered"] = view.text("name", m)
    out["name_registry"] = np.where(registry, gold_name, None)
    out["id_entered"] = view.text("id_number", m)
    out["id_registry"] = np.where(registry, gold_id, None)
    out["birth_entered"] = birth
    out["birth_registry"] = np.where(registry, gold_birth, 0)
    return out


def _differs(entered: np.ndarray, registry: np.ndarray) -> np.ndarray:
    """The registry has a value and the record's is missing or another."""
    return pd.notna(registry) & (entered != registry)


def _int_column(records: pd.DataFrame, column: str) -> np.ndarray:
    if column not in records:
        return np.zeros(len(records), dtype=np.int64)
    return records[column].fillna(0).to_numpy(dtype=np.int64)


def _birth_int(text: np.ndarray) -> np.ndarray:
    """Golden '1965-03-12' / '1965-03' / '1965' to the standardiser's int (19650312 / 19650300 /
    19650000); 0 where unknown."""
    codes, uniques = pd.factorize(pd.Series(text, dtype=object))
    digits = pd.Series(uniques, dtype=object).astype(str).str.replace("-", "", regex=False)
    digits = digits.str.ljust(8, "0").where(digits != "", "0")
    values = pd.to_numeric(digits, errors="coerce").fillna(0).to_numpy(dtype=np.int64)
    return np.append(values, 0)[codes]  # code -1 (no golden date) picks the 0 appended


def joined_flags(frame: pd.DataFrame, kinds: list[str], sep: str = ";") -> np.ndarray:
    """Per row the kinds whose boolean column is set, ``sep``-joined in the order given ('' if
    none): each combination that occurs is joined once, not once per row."""
    combination = np.zeros(len(frame), dtype=np.int64)
    for bit, kind in enumerate(kinds):
        combination |= frame[kind].to_numpy(dtype=bool).astype(np.int64) << bit
    codes, present = pd.factorize(combination)
    labels = np.array([sep.join(k for bit, k in enumerate(kinds) if c >> bit & 1)
                       for c in present], dtype=object)
    return labels[codes] if len(codes) else np.full(0, "", dtype=object)


def quality_report(errors: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Records, records with an error, error rate and counts per kind for each group, worst
    first."""
    kinds = errors[ERROR_KINDS]
    frame = kinds.assign(records_with_error=kinds.any(axis=1), records=1)
    for k in keys:
        frame[k] = errors[k].fillna("").to_numpy()
    report = frame.groupby(keys, sort=False)[["records", "records_with_error", *ERROR_KINDS]].sum()
    report["error_rate"] = (report["records_with_error"] / report["records"]).round(4)
    report = report.reset_index()
    report = report.sort_values(["error_rate", "records_with_error", *keys],
                                ascending=[False, False, *([True] * len(keys))], kind="stable")
    return report[[*keys, *REPORT_COLUMNS]].reset_index(drop=True)


def village_report(errors: pd.DataFrame) -> pd.DataFrame:
    """Per source, township and village as entered (standardised), with the usual spelling."""
    report = quality_report(errors, PLACE_KEYS)
    spelling = _usual_spelling(errors, PLACE_KEYS, ["township", "village"])
    report = report.merge(spelling, on=PLACE_KEYS, how="left")
    columns = ["source", "township", "village", "township_key", "village_key", *REPORT_COLUMNS]
    return report[columns]


def clerk_report(errors: pd.DataFrame, column: str = "clerk") -> pd.DataFrame | None:
    """Per source and clerk (or receipt book), with the villages each keyed; None if no source
    maps that field."""
    if errors[column].isna().all():
        return None
    known = errors.loc[errors[column].notna().to_numpy(),
                       list(dict.fromkeys(["source", column, "village_key", *ERROR_KINDS]))]
    report = quality_report(known, ["source", column])
    villages = known.dropna(subset=["village_key"]).drop_duplicates(["source", column,
                                                                       "village_key"])
    villages = villages.sort_values("village_key").groupby(["source", column])["village_key"].agg(
        "、".join).rename("villages").reset_index()
    report = report.merge(villages, on=["source", column], how="left")
    return report[["source", column, "villages", *REPORT_COLUMNS]]


def _usual_spelling(errors: pd.DataFrame, keys: list[str], columns: list[str]) -> pd.DataFrame:
    """The most frequent raw spelling of each column within each group (ties: first in order),
    without the 组 (village group) clerks append: the report is per village."""
    frame = errors[keys + columns].fillna("")
    if "village" in columns:  # the 组 off each distinct spelling, not off every record
        codes, spellings = pd.factorize(frame["village"])
        bare = pd.Series(spellings, dtype=object).str.replace(GROUP_SUFFIX, "", regex=True)
        frame["village"] = np.append(bare.to_numpy(dtype=object), None)[codes]
    counts = frame.value_counts(sort=True).reset_index()
    return counts.drop_duplicates(keys)[keys + columns]


def error_records(errors: pd.DataFrame) -> pd.DataFrame:
    """Only the records with an error, what was entered beside what the registry holds."""
    bad = errors[errors[ERROR_KINDS].any(axis=1)].copy()
    bad["errors"] = joined_flags(bad, ERROR_KINDS)
    for column in ("birth_entered", "birth_registry"):
        bad[column] = birth_text(bad[column].to_numpy())
    bad = bad.iloc[sort_order(bad, ["source", "township_key", "village_key", "record_id"])]
    return bad[RECORD_COLUMNS].reset_index(drop=True)
