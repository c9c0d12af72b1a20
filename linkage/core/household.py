"""Household context: members of one household are found together, or the pair is suspect.

People are enrolled by household, so when several members of an NCMS household match members of
one police household, each of those matches is more believable (``bonus`` bits). Three signals
weaken a pair (``penalty`` bits each, at most one of each):

* it is not the mutual best pair inside its household pair: twin A's NCMS record matches
  twin A's police record better than twin B's, so A-B is weakened rather than helped;
* the record's household is strongly tied (two or more strong pairs) to another household of
  the other source, and this pair's households share no other strong pair;
* symmetric for the other side.

Households are keyed by (source, household_id); pairs with a blank household on either side are
left as they are.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def household_codes(records: pd.DataFrame) -> np.ndarray:
    """Household code per record, keyed by (source, household_id); -1 where none is known."""
    if "household_id" not in records:
        return np.full(len(records), -1, dtype=np.int64)
    key = records["source"].astype(str) + "\x1f" + records["household_id"].astype(str)
    codes, _ = pd.factorize(key.where(records["household_id"].notna(), None))
    return codes.astype(np.int64)


def household_adjustment(
    records: pd.DataFrame,
    left: np.ndarray,
    right: np.ndarray,
    weight: np.ndarray,
    strong_weight: float,
    bonus: float = 2.0,
    penalty: float = 2.0,
    floor: float = -np.inf,
) -> np.ndarray:
    """Bits to add to each pair's match weight (0 where no household is known).

    Pairs below ``floor`` are left at 0: a pair that cannot reach the review band even with the
    bonus changes no band, and being weaker than ``strong_weight`` it is neither counted as
    support nor the best pair of any record, so the others' adjustments do not depend on it.

    Each pair's bits depend only on the other pairs of its two households that reach
    ``floor``, and not on the order of the pairs (ties between equally strong partner
    households cannot change a result, see :func:`_tied_elsewhere`). So an engine may hand
    over just the pairs at or above ``floor`` between two known households, in any order, and
    get every pair's bits exactly as from all pairs (the Spark engine does).
    """
    if "household_id" not in records or len(left) == 0:
        return np.zeros(len(left))
    hh_code = household_codes(records)
    src_code, _ = pd.factorize(records["source"])
    ha, hb = hh_code[left], hh_code[right]
    known = (ha >= 0) & (hb >= 0) & (ha != hb) & (weight >= floor)
    adjust = np.zeros(len(left))
    if not known.any():
        return adjust
    idx = np.flatnonzero(known)
    f = pd.DataFrame({
        "a": left[idx], "b": right[idx], "ha": ha[idx], "hb": hb[idx],
        "sa": src_code[left[idx]], "sb": src_code[right[idx]], "w": weight[idx],
    })
    f["strong"] = (f["w"] >= strong_weight).astype(np.int32)

    support = f.groupby(["ha", "hb"])["strong"].transform("sum") - f["strong"]
    best_a = f.groupby(["a", "hb"])["w"].transform("max")
    best_b = f.groupby(["b", "ha"])["w"].transform("max")
    mutual = (f["w"] >= best_a) & (f["w"] >= best_b)

    out = np.where(mutual & (support >= 1), bonus, 0.0)
    out -= np.where(~mutual, penalty, 0.0)
    out -= penalty * _tied_elsewhere(f, "ha", "hb", "sb", support)
    out -= penalty * _tied_elsewhere(f, "hb", "ha", "sa", support)
    adjust[idx] = out
    return adjust


def _tied_elsewhere(f: pd.DataFrame, own: str, other: str, other_source: str,
                    support: pd.Series) -> np.ndarray:
    """True where ``own`` household's best partner (2+ strong pairs) is another household.

    Which of two equally strong partners counts as the best cannot matter: a pair is only tied
    elsewhere when its own household pair has no other strong pair (``support`` 0, so at most
    one strong pair), never the best of 2+. The sort is stable all the same.
    """
    strength = f.groupby([own, other])["strong"].sum().rename("n").reset_index()
    strength = strength.merge(f[[other, other_source]].drop_duplicates(other), on=other)
    best = (strength.sort_values("n", ascending=False, kind="stable")
            .drop_duplicates([own, other_source])
            .rename(columns={other: "best", "n": "best_n"}))
    joined = f[[own, other, other_source]].merge(best, on=[own, other_source], how="left")
    tied = ((joined["best_n"].to_numpy() >= 2)
            & (joined["best"].to_numpy() != joined[other].to_numpy()))
    return tied & (support.to_numpy() == 0)
