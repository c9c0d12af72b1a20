"""The NCMS receipts: amounts by the 2012 rules, known errors, nothing else of the world moved."""
from __future__ import annotations

import pandas as pd
import pytest

from linkage.synth import NCMS_COLUMNS, REF_YEAR, generate_world
from linkage.synth import world as world_module
from linkage.synth.receipts import ERRORS, RECEIPT_COLUMNS, due


@pytest.fixture(scope="module")
def world():
    return generate_world(3000, seed=5)


def test_receipts_leave_every_other_column_of_the_world_as_it_was(monkeypatch):
    """Drawn last from their own generator: outputs pinned on a world stay as they were."""
    with_receipts = generate_world(600, seed=3)
    monkeypatch.setattr(world_module, "add_receipts", lambda rng, ncms, *_: ncms)
    without = generate_world(600, seed=3)
    pd.testing.assert_frame_equal(with_receipts.ncms.drop(columns=RECEIPT_COLUMNS), without.ncms)
    for name in ("police", "urban", "truth", "hard_negatives"):
        pd.testing.assert_frame_equal(getattr(with_receipts, name), getattr(without, name))
    errors = with_receipts.errors
    pd.testing.assert_frame_equal(errors[errors["field"] != "receipt"].reset_index(drop=True),
                                  without.errors)
    assert list(with_receipts.ncms.columns) == NCMS_COLUMNS


def test_a_clean_receipt_is_the_sum_of_its_members_by_the_rules(world):
    n, e = world.ncms, world.errors
    spoiled = set(n.loc[n["参合编号"].isin(e.loc[e["field"] == "receipt", "record_id"]), "收据号"])
    twice = set(n.loc[n["参合编号"].isin(e.loc[e["error"] == "entered_twice", "record_id"]),
                      "收据号"])
    clean = n[~n["收据号"].isin(spoiled | twice)]
    owed = clean.assign(owed=due(clean["参合档次"].to_numpy(dtype=object),
                                 clean["补助类别"].to_numpy(dtype=object),
                                 clean["参合类型"].to_numpy(dtype=object)))
    per = owed.groupby("收据号").agg(owed=("owed", "sum"), rows=("owed", "size"),
                                   amount=("收据金额", "first"), members=("收据人数", "first"))
    assert (per["amount"].astype(float) == per["owed"]).all()
    assert (per["members"].astype(int) == per["rows"]).all()
    assert (n.groupby("收据号")[RECEIPT_COLUMNS[1:]].nunique() == 1).all().all()
    assert set(per["amount"].astype(float)) >= {0.0, 10.0, 50.0, 120.0}


def test_kinds_of_enrolment_and_dates(world):
    n = world.ncms
    assert set(n["参合类型"]) == {"正常", "逾期", "新生儿"}
    assert (n.groupby("家庭编号")["参合类型"].agg(lambda k: "逾期" not in set(k) or set(k) ==
                                                {"逾期"})).all()
    paid = pd.to_datetime(n["缴费日期"])
    assert paid.min() >= pd.Timestamp(f"{REF_YEAR - 1}-09-01")
    assert paid.max() <= pd.Timestamp(f"{REF_YEAR}-12-31")
    assert (paid[n["参合类型"] == "逾期"].dt.year == REF_YEAR).all()


def test_every_kind_of_receipt_error_is_seeded_once_per_receipt(world):
    n, e = world.ncms, world.errors
    logged = e[e["field"] == "receipt"].merge(n[["参合编号", "收据号"]], left_on="record_id",
                                             right_on="参合编号")
    assert set(logged["error"]) == set(ERRORS)
    assert (logged.groupby("收据号")["error"].nunique() == 1).all()
    members = n.groupby("收据号").size()
    per_receipt = logged.groupby("收据号").size()
    assert (per_receipt == members.reindex(per_receipt.index)).all()  # on every member's row
