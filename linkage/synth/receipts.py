"""What each NCMS household paid: the receipt's kind of enrolment, headcount, amount and date.

Why a stage of its own, with a generator of its own: the receipts are drawn after everything
else from ``receipt_rng(seed)``, so adding them left every other column of a world (and every
output of a job over it) as it was. A receipt lists the household's members once each: a person
keyed twice into the household is on the roster twice but was paid for once, so the roster and
its receipt disagree the way they do at an enrolment office. Amounts follow the town's 2012
rules (params.CONTRIBUTIONS); the errors a clerk writes a receipt with (params.RECEIPTS) are
logged per record under the field ``receipt``, one kind per receipt.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from linkage.synth.params import CONTRIBUTIONS, RECEIPTS, REF_YEAR
from linkage.synth.records import ErrorLog

RECEIPT_COLUMNS = ["参合类型", "收据人数", "收据金额", "缴费日期"]
KINDS = {"regular": "正常", "late": "逾期", "newborn": "新生儿"}
ERRORS = ("receipt_headcount_wrong", "receipt_amount_slip", "receipt_other_tier",
          "receipt_reduction_missed", "receipt_late_as_regular")
SLIPS = np.array([-50.0, -20.0, -10.0, 10.0, 20.0, 50.0, 100.0])
_STREAM = 2012  # the receipts' own stream of random numbers


def receipt_rng(seed: int) -> np.random.Generator:
    """The receipts' generator: seeded from the world's seed, apart from its main generator."""
    return np.random.default_rng([seed, _STREAM])


def due(tier: np.ndarray, subsidy: np.ndarray, kind: np.ndarray,
        tier_of_amount: np.ndarray | None = None, reduce: np.ndarray | None = None) -> np.ndarray:
    """Yuan due per member by the 2012 rules; ``tier_of_amount`` prices another tier, and
    ``reduce`` False charges a member's category in full (both: how a receipt goes wrong)."""
    priced = tier if tier_of_amount is None else tier_of_amount
    personal = pd.Series(priced).map(CONTRIBUTIONS["personal"]).to_numpy(dtype=float)
    off = np.zeros(len(tier))
    for category, per_tier in CONTRIBUTIONS["reduction"].items():
        for t, amount in per_tier.items():
            hit = (subsidy == category) & (priced == t)
            off[hit] = CONTRIBUTIONS["personal"][t] if amount == "full" else amount
    if reduce is not None:
        off = np.where(reduce, off, 0.0)
    regular = personal - off
    late = personal + CONTRIBUTIONS["government"]
    return np.select([kind == KINDS["late"], kind == KINDS["newborn"]], [late, personal], regular)


def add_receipts(rng: np.random.Generator, ncms: pd.DataFrame, birth: np.ndarray,
                 keyed_twice: np.ndarray, log: ErrorLog) -> pd.DataFrame:
    """The roster with RECEIPT_COLUMNS appended (one value per receipt, on each member's row).

    ``birth`` holds each record's person's true birthdate as yyyymmdd (a newborn's date paid
    follows it); ``keyed_twice`` marks the second row of a person keyed twice into a household.
    """
    n = len(ncms)
    receipt, receipts = pd.factorize(ncms["收据号"].to_numpy())
    k = len(receipts)
    tier = ncms["参合档次"].to_numpy(dtype=object)
    subsidy = ncms["补助类别"].to_numpy(dtype=object)
    clerks, clerk = np.unique(ncms["录入员"].to_numpy(dtype=str), return_inverse=True)
    care = np.clip(rng.lognormal(0.0, 0.5, len(clerks)), 0.25, 3.5)
    receipt_care = np.zeros(k)
    receipt_care[receipt] = (care / care.mean())[clerk]

    late_receipt = rng.random(k) < RECEIPTS["late_household"]
    newborn = (birth // 10000) == REF_YEAR
    kind = np.where(late_receipt[receipt], KINDS["late"],
                    np.where(newborn, KINDS["newborn"], KINDS["regular"])).astype(object)
    paid = ~keyed_twice  # the rows the receipt is for: each member once
    members = np.bincount(receipt, weights=paid, minlength=k).astype(np.int64)
    amount = np.bincount(receipt, weights=np.where(paid, due(tier, subsidy, kind), 0), minlength=k)

    # At most one kind of error per receipt, each drawn among the receipts still without one.
    error = np.full(k, "", dtype=object)
    draw = rng.random((k, len(ERRORS)))
    subsidised = np.bincount(receipt, weights=paid & (due(tier, subsidy, kind, reduce=np.zeros(
        n, bool)) > due(tier, subsidy, kind)), minlength=k) > 0
    eligible = {"receipt_headcount_wrong": np.ones(k, bool),
                "receipt_amount_slip": np.ones(k, bool), "receipt_other_tier": np.ones(k, bool),
                "receipt_reduction_missed": subsidised & ~late_receipt,
                "receipt_late_as_regular": late_receipt}
    for j, name in enumerate(ERRORS):
        hit = (error == "") & eligible[name] & (draw[:, j] < RECEIPTS[name] * receipt_care)
        error[hit] = name
    row_error = error[receipt]
    weighted = np.where(paid, 1.0, 0.0)
    other = np.where(tier == "一档", "二档", "一档").astype(object)
    for name, per_row in (
            ("receipt_other_tier", due(tier, subsidy, kind, tier_of_amount=other)),
            ("receipt_reduction_missed", due(tier, subsidy, kind, reduce=np.zeros(n, bool))),
            ("receipt_late_as_regular", due(tier, subsidy, np.where(
                kind == KINDS["late"], KINDS["regular"], kind)))):
        sums = np.bincount(receipt, weights=weighted * per_row, minlength=k)
        amount = np.where(error == name, sums, amount)
    slip = SLIPS[rng.integers(0, len(SLIPS), k)]
    amount = np.where(error == "receipt_amount_slip", np.maximum(amount + slip, 0.0), amount)
    off_by = np.where(rng.random(k) < 0.5, -1, 1)
    off_by = np.where(members + off_by < 1, 1, off_by)
    members = np.where(error == "receipt_headcount_wrong", members + off_by, members)
    log.add("ncms", ncms["参合编号"].to_numpy(), "receipt", row_error)

    # Paid in the autumn's enrolment period; late households in the year itself; a household
    # with a newborn once the child is born.
    days = np.where(late_receipt, rng.integers(60, 300, k), rng.integers(0, 122, k))
    start = np.where(late_receipt, np.datetime64(f"{REF_YEAR}-01-01"),
                     np.datetime64(f"{REF_YEAR - 1}-09-01"))
    when = start + days.astype("timedelta64[D]")
    born = pd.to_datetime(pd.Series(np.where(newborn, birth, 0)).astype(str), format="%Y%m%d",
                          errors="coerce").to_numpy(dtype="datetime64[D]")
    after_birth = born + rng.integers(7, 60, n).astype("timedelta64[D]")
    latest = pd.Series(after_birth).groupby(receipt).max().reindex(range(k)).to_numpy(
        dtype="datetime64[D]")
    when = np.where(pd.notna(latest) & (latest > when), latest, when)
    when = np.minimum(when, np.datetime64(f"{REF_YEAR}-12-31"))

    out = ncms.copy()
    out["参合类型"] = kind
    out["收据人数"] = members.astype(str).astype(object)[receipt]
    out["收据金额"] = np.char.mod("%.2f", amount).astype(object)[receipt]
    out["缴费日期"] = np.datetime_as_string(when, unit="D").astype(object)[receipt]
    return out
