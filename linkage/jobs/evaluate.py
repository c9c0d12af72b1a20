"""Accuracy against a truth file: pairwise, B-cubed, duplicate enrolment, blocking recall, and
the measures of issue 16: strict duplicate enrolment, wrong-person links, insurance→registry
recall, hard negatives merged and review load.

All counts come from contingency tables ((entity, person) cells, integer-coded), never from
listing pairs, so a million records evaluate in seconds.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

HARD_NEGATIVES_FILE = "hard_negatives.csv"  # written by the synthetic world beside truth.csv
HARD_NEGATIVE_KINDS = ("twins", "father_son_same_name", "child_with_parent_id",
                       "same_name_same_birthdate", "milk_name_namesakes")
HARD_NEGATIVE_COLUMNS = ["kind", "source_l", "record_l", "source_r", "record_r"]


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


class _Coded:
    """The joined records as integer codes: entity e, person p, and their cell e * P + p."""

    def __init__(self, joined: pd.DataFrame):
        self.source = joined["source"].to_numpy()
        self.entity = pd.factorize(joined["entity_id"])[0].astype(np.int64)
        self.person = pd.factorize(joined["person_id"])[0].astype(np.int64)
        self.n_entities = int(self.entity.max()) + 1 if len(joined) else 0
        self.n_persons = int(self.person.max()) + 1 if len(joined) else 0
        self.cell = self.entity * max(self.n_persons, 1) + self.person

    def where(self, sources: Iterable[str]) -> np.ndarray:
        return pd.Series(self.source, dtype=object).isin(set(sources)).to_numpy()

    def cells(self, mask: np.ndarray | None = None):
        """The contingency table's non-empty cells: (entity, person, records) per cell."""
        cell = self.cell if mask is None else self.cell[mask]
        cells, counts = np.unique(cell, return_counts=True)
        width = max(self.n_persons, 1)
        return cells // width, cells % width, counts

    def per_entity(self, mask: np.ndarray | None = None) -> np.ndarray:
        e = self.entity if mask is None else self.entity[mask]
        return np.bincount(e, minlength=self.n_entities)

    def per_person(self, mask: np.ndarray | None = None) -> np.ndarray:
        p = self.person if mask is None else self.person[mask]
        return np.bincount(p, minlength=self.n_persons)


def pairwise(joined: pd.DataFrame, coded: _Coded | None = None) -> dict[str, float]:
    coded = coded or _Coded(joined)
    tp = _pairs(coded.cells()[2])
    predicted = _pairs(coded.per_entity())
    actual = _pairs(coded.per_person())
    p, r = _safe(tp, predicted), _safe(tp, actual)
    return {"precision": p, "recall": r, "f1": _f1(p, r), "true_pairs": actual,
            "predicted_pairs": predicted, "correct_pairs": tp}


def bcubed(joined: pd.DataFrame, coded: _Coded | None = None) -> dict[str, float]:
    coded = coded or _Coded(joined)
    e, p, n = coded.cells()
    n = n.astype(np.float64)
    total = len(joined)
    precision = float((n ** 2 / coded.per_entity()[e]).sum() / total) if total else 1.0
    recall = float((n ** 2 / coded.per_person()[p]).sum() / total) if total else 1.0
    return {"precision": precision, "recall": recall, "f1": _f1(precision, recall)}


def duplicate_enrolment(joined: pd.DataFrame, insurance_sources: set[str],
                        coded: _Coded | None = None) -> dict[str, float]:
    """A flag is right when two or more enrolments of one insured person sit in one entity
    (scored per entity; strict_duplicate_enrolment scores per person)."""
    coded = coded or _Coded(joined)
    ins = coded.where(insurance_sources)
    n_true = int((coded.per_person(ins) >= 2).sum())
    n_flagged = int((coded.per_entity(ins) >= 2).sum())
    e, p, n = coded.cells(ins)
    together = n >= 2  # such a cell's entity is flagged and its person a true duplicate
    prec = _safe(len(np.unique(e[together])), n_flagged)
    rec = _safe(len(np.unique(p[together])), n_true)
    return {"precision": prec, "recall": rec, "f1": _f1(prec, rec), "true": n_true,
            "flagged": n_flagged}


def _count_in(keys: np.ndarray, among: np.ndarray) -> np.ndarray:
    """For each of keys, how many times it occurs in among (a sorted-unique lookup)."""
    values, counts = np.unique(among, return_counts=True)
    if not len(values):
        return np.zeros(len(keys), dtype=np.int64)
    at = np.minimum(np.searchsorted(values, keys), len(values) - 1)
    return np.where(values[at] == keys, counts[at], 0)


def strict_duplicate_enrolment(joined: pd.DataFrame, insurance_sources: set[str],
                               coded: _Coded | None = None) -> dict[str, float]:
    """Duplicate enrolment scored per person, as the office acts on the list.

    A person is a true duplicate when they hold two or more insurance records. An entity is
    flagged when it holds two or more insurance records, and a person is flagged when any of
    their insurance records lies in a flagged entity. A flagged person is correct only when
    at least two of their own insurance records share one entity (which makes them a true
    duplicate and that entity flagged). Precision = correct / flagged persons, recall =
    correct / true duplicates.
    """
    coded = coded or _Coded(joined)
    ins = coded.where(insurance_sources)
    true_dup = coded.per_person(ins) >= 2
    flagged = np.zeros(coded.n_persons, dtype=bool)
    e, p = coded.entity[ins], coded.person[ins]
    flagged[p[coded.per_entity(ins)[e] >= 2]] = True
    _, cell_person, n = coded.cells(ins)
    correct = np.zeros(coded.n_persons, dtype=bool)
    correct[cell_person[n >= 2]] = True
    n_true, n_flagged, n_correct = int(true_dup.sum()), int(flagged.sum()), int(correct.sum())
    prec, rec = _safe(n_correct, n_flagged), _safe(n_correct, n_true)
    return {
        "precision": prec, "recall": rec, "f1": _f1(prec, rec),
        "true": n_true, "flagged": n_flagged, "correct": n_correct,
        # the two ways a flag is wrong: the person is insured once (merged with someone
        # else's enrolment), or insured twice but their enrolments sit in different entities
        "flagged_not_duplicate": int((flagged & ~true_dup).sum()),
        "flagged_split": int((flagged & true_dup & ~correct).sum()),
    }


def _authority_counts(coded: _Coded, authority_sources: set[str]):
    """Per insurance-side record: registry records in its entity, of its own person in its
    entity, and of its own person anywhere."""
    auth = coded.where(authority_sources)
    in_entity = coded.per_entity(auth)[coded.entity]
    own_in_entity = _count_in(coded.cell, coded.cell[auth])
    own_anywhere = coded.per_person(auth)[coded.person]
    return in_entity, own_in_entity, own_anywhere


def wrong_person_links(joined: pd.DataFrame, insurance_sources: set[str],
                       authority_sources: set[str], coded: _Coded | None = None) -> dict:
    """Insurance records whose entity holds a registry (authority) record of another person:
    each one is a card, a subsidy or a duplicate flag issued against the wrong registry person.
    """
    coded = coded or _Coded(joined)
    ins = coded.where(insurance_sources)
    in_entity, own_in_entity, _ = _authority_counts(coded, authority_sources)
    wrong = ins & (in_entity - own_in_entity > 0)
    n_ins = int(ins.sum())
    by_source = pd.Series(coded.source[wrong]).value_counts()
    return {
        "records": int(wrong.sum()), "insurance_records": n_ins,
        "per_10k": float(wrong.sum() * 10_000 / n_ins) if n_ins else 0.0,
        "by_source": {str(s): int(by_source.get(s, 0)) for s in sorted(insurance_sources)},
    }


def authority_recall(joined: pd.DataFrame, insurance_sources: set[str],
                     authority_sources: set[str], coded: _Coded | None = None) -> dict:
    """Per insurance source, e.g. NCMS→registry recall: of its records whose true person has a
    registry record, the share whose entity holds that person's registry record."""
    coded = coded or _Coded(joined)
    _, own_in_entity, own_anywhere = _authority_counts(coded, authority_sources)
    out = {}
    for source in sorted(insurance_sources):
        mine = coded.source == source
        linkable = mine & (own_anywhere > 0)
        linked = linkable & (own_in_entity > 0)
        n, k = int(linkable.sum()), int(linked.sum())
        out[str(source)] = {"records": int(mine.sum()), "registered": n, "linked": k,
                            "recall": _safe(k, n)}
    return out


def _lookup(records: pd.DataFrame, column: str,
            pairs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """records[column] of each pair's two records (source_l/record_l, source_r/record_r), NaN
    for a record not in records: one hash join for both sides."""
    n = len(pairs)
    want = pd.DataFrame({
        "source": np.concatenate([pairs["source_l"].astype(str).to_numpy(),
                                  pairs["source_r"].astype(str).to_numpy()]),
        "record_id": np.concatenate([pairs["record_l"].astype(str).to_numpy(),
                                     pairs["record_r"].astype(str).to_numpy()])})
    have = pd.DataFrame({"source": records["source"].astype(str).to_numpy(),
                         "record_id": records["record_id"].astype(str).to_numpy(),
                         "_value": records[column].to_numpy()})
    have = have.drop_duplicates(["source", "record_id"])
    value = want.merge(have, on=["source", "record_id"], how="left")["_value"].to_numpy()
    return value[:n], value[n:]


def read_hard_negatives(truth_path: str | Path | None) -> pd.DataFrame | None:
    """The world's hard-negative pairs (hard_negatives.csv beside the truth file), or None."""
    if truth_path is None:
        return None
    path = Path(truth_path).with_name(HARD_NEGATIVES_FILE)
    return load_hard_negatives(path) if path.is_file() else None


def load_hard_negatives(path: str | Path) -> pd.DataFrame:
    """A hard-negative pairs file: kind, source_l, record_l, source_r, record_r (UTF-8)."""
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")


def hard_negatives_merged(clusters: pd.DataFrame, hard_negatives: pd.DataFrame) -> dict:
    """Per kind (twins, father and son of one name, ...), how many of the world's pairs of two
    different people share an entity. A record that is in no entity (rejected, not in the run)
    cannot be merged; such pairs are counted in ``unlinked``."""
    missing = [c for c in HARD_NEGATIVE_COLUMNS if c not in hard_negatives.columns]
    if missing:
        raise ValueError(f"{HARD_NEGATIVES_FILE}: missing column(s) {missing}; expected "
                         f"{','.join(HARD_NEGATIVE_COLUMNS)}")
    entity = clusters.assign(entity=pd.factorize(clusters["entity_id"])[0].astype(np.float64))
    el, er = _lookup(entity, "entity", hard_negatives)  # NaN: in no entity
    frame = pd.DataFrame({"kind": hard_negatives["kind"].astype(str).to_numpy(),
                          "merged": el == er, "unlinked": np.isnan(el) | np.isnan(er)})
    per_kind = frame.groupby("kind").agg(pairs=("merged", "size"), merged=("merged", "sum"),
                                         unlinked=("unlinked", "sum"))
    kinds = list(HARD_NEGATIVE_KINDS) + sorted(set(per_kind.index) - set(HARD_NEGATIVE_KINDS))
    by_kind = {k: {c: int(per_kind.at[k, c]) if k in per_kind.index else 0
                   for c in ("pairs", "merged", "unlinked")} for k in kinds}
    return {"pairs": int(len(frame)), "merged": int(frame["merged"].sum()),
            "unlinked": int(frame["unlinked"].sum()), "by_kind": by_kind}


def review_load(review: pd.DataFrame, authority_sources: set[str] | None, persons: int,
                truth: pd.DataFrame | None = None) -> dict:
    """Pairs a reviewer must decide per 1,000 persons, the registry's own double registrations
    (both records from an authority source) counted apart: they go to the registry office.

    With the truth, ``registry_same_person`` says how many of those registry pairs really are
    one person registered twice.
    """
    n = int(len(review))
    if authority_sources is None:
        registry, same = None, None
    else:
        both = (review["source_l"].astype(str).isin(authority_sources)
                & review["source_r"].astype(str).isin(authority_sources)).to_numpy()
        registry = int(both.sum())
        same = None
        if truth is not None and {"record_l", "record_r"} <= set(review.columns):
            reg = review[both]
            pl, pr = _lookup(truth, "person_id", reg)
            same = int((pd.notna(pl) & (pl == pr)).sum())
    others = n - (registry or 0)

    def per_1000(k: int | None) -> float | None:
        return None if k is None else (float(k * 1000 / persons) if persons else 0.0)

    return {"persons": int(persons), "pairs": n, "registry_pairs": registry,
            "other_pairs": others, "per_1000": per_1000(others),
            "registry_per_1000": per_1000(registry), "total_per_1000": per_1000(n),
            "registry_same_person": same}


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


def evaluate(clusters: pd.DataFrame, truth: pd.DataFrame, insurance_sources: set[str],
             authority_sources: Iterable[str] | None = None,
             review: pd.DataFrame | None = None,
             hard_negatives: pd.DataFrame | None = None) -> dict:
    """Every accuracy measure of clusters against the truth.

    ``authority_sources`` (the registry) is needed by the wrong-person links, the
    insurance→registry recall and the registry pairs of the review load; without it they are
    None. ``review`` (the run's review table, source_l/record_l/source_r/record_r) gives the
    review load, ``hard_negatives`` (the world's hard_negatives.csv, see read_hard_negatives)
    the hard negatives merged; each is None when not given.
    """
    insurance_sources = set(insurance_sources)
    authority = None if authority_sources is None else {str(s) for s in authority_sources}
    joined = join_truth(clusters, truth)
    coded = _Coded(joined)
    out = {
        "records_evaluated": int(len(joined)),
        "pairwise": pairwise(joined, coded),
        "bcubed": bcubed(joined, coded),
        "duplicate_enrolment": duplicate_enrolment(joined, insurance_sources, coded),
        "strict_duplicate_enrolment": strict_duplicate_enrolment(joined, insurance_sources,
                                                                 coded),
        "wrong_person_links": None,
        "authority_recall": None,
        "hard_negatives": None,
        "review_load": None,
    }
    if authority is not None:
        out["wrong_person_links"] = wrong_person_links(joined, insurance_sources, authority,
                                                       coded)
        out["authority_recall"] = authority_recall(joined, insurance_sources, authority, coded)
    if hard_negatives is not None:
        out["hard_negatives"] = hard_negatives_merged(clusters, hard_negatives)
    if review is not None:
        persons = int(truth["person_id"].astype(str).nunique())
        out["review_load"] = review_load(review, authority, persons, truth)
    return out
