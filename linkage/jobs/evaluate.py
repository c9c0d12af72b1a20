"""Accuracy against a truth file: pairwise, B-cubed, duplicate enrolment, blocking recall.

All counts come from the (entity, person) contingency table, never from listing pairs, so a
million records evaluate in a second.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def _pairs(n: pd.Series | np.ndarray) -> float:
    n = np.asarray(n, dtype=np.float64)
    return float((n * (n - 1) / 2).sum())


def _safe(a: float, b: float) -> float:
    return a / b if b else 1.0


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def join_truth(clusters: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Records present in both, with entity_id and person_id."""
    c = clusters.astype({"source": str, "record_id": str})
    t = truth.astype({"source": str, "record_id": str, "person_id": str})
    return c.merge(t[["source", "record_id", "person_id"]], on=["source", "record_id"], how="inner")


def pairwise(joined: pd.DataFrame) -> dict[str, float]:
    both = joined.groupby(["entity_id", "person_id"]).size()
    tp = _pairs(both)
    predicted = _pairs(joined.groupby("entity_id").size())
    actual = _pairs(joined.groupby("person_id").size())
    p, r = _safe(tp, predicted), _safe(tp, actual)
    return {"precision": p, "recall": r, "f1": _f1(p, r), "true_pairs": actual,
            "predicted_pairs": predicted, "correct_pairs": tp}


def bcubed(joined: pd.DataFrame) -> dict[str, float]:
    both = joined.groupby(["entity_id", "person_id"]).size().rename("n").reset_index()
    e = joined.groupby("entity_id").size().rename("ne")
    p = joined.groupby("person_id").size().rename("np")
    both = both.join(e, on="entity_id").join(p, on="person_id")
    total = len(joined)
    precision = float((both["n"] ** 2 / both["ne"]).sum() / total) if total else 1.0
    recall = float((both["n"] ** 2 / both["np"]).sum() / total) if total else 1.0
    return {"precision": precision, "recall": recall, "f1": _f1(precision, recall)}


def duplicate_enrolment(joined: pd.DataFrame, insurance_sources: set[str]) -> dict[str, float]:
    """A flag is right when two or more enrolments of one insured person sit in one entity."""
    ins = joined[joined["source"].isin(insurance_sources)]
    true_people = ins.groupby("person_id").size()
    true_people = set(true_people[true_people >= 2].index)
    flagged = ins.groupby("entity_id").size()
    flagged = set(flagged[flagged >= 2].index)
    cell = ins.groupby(["entity_id", "person_id"]).size()
    cell = cell[cell >= 2].reset_index()
    correct_entities = set(cell.loc[cell["person_id"].isin(true_people), "entity_id"])
    found_people = set(cell["person_id"]) & true_people
    p = _safe(len(flagged & correct_entities), len(flagged))
    r = _safe(len(found_people), len(true_people))
    return {"precision": p, "recall": r, "f1": _f1(p, r), "true": len(true_people),
            "flagged": len(flagged)}


def blocking_recall(records: pd.DataFrame, left: np.ndarray, right: np.ndarray,
                    truth: pd.DataFrame, link_type: str = "link_and_dedupe") -> dict[str, float]:
    """Share of true pairs that blocking kept as candidates."""
    key = records[["source", "record_id"]].astype(str)
    t = truth.astype({"source": str, "record_id": str, "person_id": str})
    person = key.merge(t, on=["source", "record_id"], how="left")["person_id"].to_numpy()
    has = pd.notna(person)
    if link_type == "link_only":
        sizes = t.groupby(["person_id", "source"]).size().unstack(fill_value=0)
        per_person = sizes.prod(axis=1) if sizes.shape[1] == 2 else _pairs(sizes.sum(axis=1))
        actual = float(per_person.sum())
    else:
        actual = _pairs(pd.Series(person[has]).value_counts())
    kept = int((has[left] & has[right] & (person[left] == person[right])).sum())
    return {"true_pairs": actual, "kept": kept, "recall": _safe(kept, actual)}


def evaluate(clusters: pd.DataFrame, truth: pd.DataFrame, insurance_sources: set[str]) -> dict:
    joined = join_truth(clusters, truth)
    return {
        "records_evaluated": int(len(joined)),
        "pairwise": pairwise(joined),
        "bcubed": bcubed(joined),
        "duplicate_enrolment": duplicate_enrolment(joined, insurance_sources),
    }
