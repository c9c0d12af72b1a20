"""Enrolments: every insurance record beside its entity, and the duplicate-enrolment list.

A person insured more than once (重复参保) costs the fund one subsidy per extra enrolment. The
fund recovers them enrolment by enrolment, so the list shows each one with the scheme, household,
village, tier, the amount paid and the receipt, under the person the golden record names.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from linkage.outputs.view import RunView, birth_text, sort_order

ENTERED_COLUMNS = [
    "entity_id", "status", "scheme", "source", "record_id", "name_entered", "id_entered",
    "id_status", "birth_date_entered", "gender_entered", "household_id", "township", "village",
]
ENROLMENT_COLUMNS = ENTERED_COLUMNS + [
    "tier", "subsidy", "amount", "receipt", "clerk", "enrolled_on",
]
DUPLICATE_COLUMNS = [
    "entity_id", "resident_id", "name", "birth_date", "status", "n_enrolments", "enrolment_no",
    "scheme", "source", "record_id", "name_entered", "id_entered", "household_id", "township",
    "village", "tier", "subsidy", "amount", "receipt", "clerk", "enrolled_on",
]
GENDER_WORDS = {"M": "男", "F": "女"}


def entered(view: RunView, mask: np.ndarray) -> pd.DataFrame:
    """The records under ``mask`` as the clerks entered them, beside their entity and its status.

    Names, IDs and places are the raw text; birthdate and gender are the standardised values
    (the raw ones are replaced by standardising), written as 1965-03-12 and 男 / 女.
    """
    columns = _entered(view, mask)
    return pd.DataFrame({c: columns[c] for c in ENTERED_COLUMNS}, copy=False)


def _entered(view: RunView, mask: np.ndarray) -> dict[str, np.ndarray]:
    """The columns of :func:`entered` (a frame is made once, from all of a table's columns)."""
    records = view.records
    birth = (records["birth_date"].fillna(0).to_numpy(dtype=np.int64)[mask]
             if "birth_date" in records else np.zeros(int(np.sum(mask)), dtype=np.int64))
    gender = pd.Series(view.text("gender", mask), dtype=object).map(GENDER_WORDS)
    return {
        "entity_id": view.entity_id[mask],
        "status": view.golden_value("status", mask),
        "scheme": view.scheme[mask],
        "source": view.text("source", mask),
        "record_id": view.text("record_id", mask),
        "name_entered": view.text("name", mask),
        "id_entered": view.text("id_number", mask),
        "id_status": view.text("id_status", mask),
        "birth_date_entered": birth_text(birth),
        "gender_entered": gender.to_numpy(dtype=object),
        "household_id": view.text("household_id", mask),
        "township": view.text("township", mask),
        "village": view.text("village", mask),
    }


def enrolments(view: RunView) -> pd.DataFrame:
    """One row per insurance record (ENROLMENT_COLUMNS); blank where a source lacks a field."""
    m = view.insurance
    frame = _entered(view, m)
    frame["tier"] = view.tier(m)
    frame["subsidy"] = view.text("subsidy", m)
    frame["amount"] = pd.to_numeric(pd.Series(view.text("amount", m), dtype=object),
                                    errors="coerce")
    for column in ("receipt", "clerk", "enrolled_on"):
        frame[column] = view.text(column, m)
    return pd.DataFrame({c: frame[c] for c in ENROLMENT_COLUMNS}, copy=False)


def duplicate_enrolments(view: RunView, enrol: pd.DataFrame) -> pd.DataFrame:
    """Each enrolment of every entity the golden records flag as insured more than once."""
    gold = view.golden
    flagged = gold.loc[gold["duplicate_enrolment"].astype(bool),
                       ["entity_id", "id_number", "name", "birth_date", "n_enrolments"]]
    flagged = flagged.rename(columns={"id_number": "resident_id"})
    rows = enrol.merge(flagged, on="entity_id", how="inner")
    rows = rows.iloc[sort_order(rows, ["resident_id", "entity_id", "scheme", "source",
                                       "record_id"])].reset_index(drop=True)
    rows["enrolment_no"] = rows.groupby("entity_id", sort=False).cumcount() + 1
    return rows[DUPLICATE_COLUMNS]
