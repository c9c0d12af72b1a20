"""`linkage daily`: the day's enrolment check on a synthetic day whose errors are known.

A world of 2,000 persons is made and a day is taken out of its NCMS roster: every household
whose receipt the world wrote with an error (or that has a person keyed twice), and 30 clean
ones. The job runs on the rest; the day comes in through the CLI with a few rows a clerk could
send (an amount in words, no receipt number, an unknown subsidy category, a row with nothing
to link on). The check must list exactly the receipts the world spoiled, each with the
difference the error made, name every unreadable cell by file, row and column, and lose no row.
"""
from __future__ import annotations

import csv
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from demo_config import write_demo_config

from linkage.cli import main
from linkage.core import contributions as rules
from linkage.core.config import ConfigError, load_config
from linkage.jobs.daily import DAILY_DIR, check_batch, daily
from linkage.jobs.run import run
from linkage.outputs.daily import AGREES, DISAGREES, SHEETS, UNCHECKED
from linkage.store import Store
from linkage.synth import generate_world, write_world
from linkage.synth.day import enrolment_day
from linkage.synth.params import CONTRIBUTIONS
from linkage.synth.receipts import due as synth_due

REPO = Path(__file__).resolve().parents[2]
DAY = "2020-11-16"


def _receipt_of(world) -> dict[str, str]:
    return dict(zip(world.ncms["参合编号"], world.ncms["收据号"]))


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    world = generate_world(2000, seed=11)
    ncms, errors = world.ncms, world.errors
    receipt_of = _receipt_of(world)
    spoiled = errors[errors["field"] == "receipt"]
    seeded = {receipt_of[r]: kind for r, kind in zip(spoiled["record_id"], spoiled["error"])}
    twice = {receipt_of[r] for r in errors.loc[errors["error"] == "entered_twice", "record_id"]}
    size = ncms.groupby("收据号").size()
    clean = sorted(set(ncms["收据号"]) - set(seeded) - twice)
    rng = np.random.default_rng(4)
    singles = [r for r in clean if size[r] == 1][:3]
    others = rng.choice([r for r in clean if r not in singles], 28, replace=False).tolist()
    chosen = set(seeded) | twice | set(singles) | set(others[:-1])
    family = ncms.drop_duplicates("收据号").set_index("收据号")["家庭编号"]
    base, batch = enrolment_day(world, family[list(chosen)].unique(), day=DAY)
    base, second = enrolment_day(base, [family[others[-1]]], day="2020-11-18")

    # What a clerk might send: an amount in words, a lost receipt number, a category nobody
    # defined (each on a one-member clean receipt), and a row with nothing to link on.
    worded, blank, unknown = singles
    batch.loc[batch["收据号"] == worded, "收据金额"] = "五十"
    blank_id = batch.loc[batch["收据号"] == blank, "参合编号"].iloc[0]
    batch.loc[batch["收据号"] == blank, "收据号"] = ""
    batch.loc[batch["收据号"] == unknown, "补助类别"] = "低收"
    junk = {c: "" for c in batch.columns} | {"参合编号": "NHBAD0001", "出生日期": "19990230",
                                             "收据号": "99999999"}  # no name, no ID
    batch = pd.concat([batch, pd.DataFrame([junk])], ignore_index=True)

    root = tmp_path_factory.mktemp("daily")
    write_world(base, root / "data")
    path, second_path = root / "day_forms.csv", root / "next_day.csv"
    batch.to_csv(path, index=False, encoding="gbk")
    second.to_csv(second_path, index=False, encoding="gbk")
    config_path = write_demo_config(root / "demo.yaml", root / "out",
                                    f"sqlite:///{root / 'store.sqlite'}", data=root / "data",
                                    fast_training=True)
    config = load_config(config_path)
    run(config)
    done = daily(config, path, day=date.fromisoformat(DAY))
    tables = {stem: pd.read_csv(done.folder / f"{stem}.csv", dtype=str, keep_default_na=False)
              for stem in SHEETS if stem != "notes"}
    return {"world": world, "batch": batch, "path": path, "second": second_path,
            "folder": done.folder, "tables": tables, "result": done.result,
            "seeded": seeded, "twice": twice, "tampered": {worded, blank, unknown},
            "worded": worded, "unknown": unknown, "blank_id": blank_id, "config": config,
            "config_path": config_path}


def _receipts(day) -> pd.DataFrame:
    return day["tables"]["receipts"].set_index("receipt")


def test_exactly_the_spoiled_receipts_disagree(day):
    receipts = _receipts(day)
    spoiled = set(day["seeded"]) | day["twice"]
    assert len(day["seeded"]) >= 20 and set(day["seeded"].values()) == {
        "receipt_headcount_wrong", "receipt_amount_slip", "receipt_other_tier",
        "receipt_reduction_missed", "receipt_late_as_regular"}
    disagree = set(receipts.index[receipts["verdict"] == DISAGREES])
    assert disagree == spoiled
    rest = receipts.drop(index=list(spoiled | day["tampered"] | {"99999999"}), errors="ignore")
    assert len(rest) >= 20 and (rest["verdict"] == AGREES).all()
    assert (rest["amount_difference"].astype(float) == 0).all()


def test_each_disagreement_comes_with_the_difference_its_error_made(day):
    receipts = _receipts(day)
    batch = day["batch"]
    for receipt, kind in day["seeded"].items():
        row = receipts.loc[receipt]
        members = batch[batch["收据号"] == receipt]
        stated, due = float(row["amount_stated"]), float(row["amount_due"])
        # the check's due is the rules' own price of the members, as the world priced them
        world_due = synth_due(members["参合档次"].to_numpy(dtype=object),
                              members["补助类别"].to_numpy(dtype=object),
                              members["参合类型"].to_numpy(dtype=object)).sum()
        assert due == pytest.approx(world_due), receipt
        if kind == "receipt_headcount_wrong":
            assert row["headcount_differs"] == "是"
            assert abs(int(row["members_stated"]) - int(row["members_keyed"])) == 1
            assert "人数不符 headcount" in row["problems"]
        elif kind == "receipt_other_tier":
            assert row["tier_differs"] == "是" and row["amount_if_tier"] not in ("", row["tier"])
        elif kind == "receipt_reduction_missed":
            assert stated > due and row["amount_differs"] == "是"
        elif kind == "receipt_late_as_regular":
            late = (members["参合类型"] == "逾期").sum()
            assert stated - due == pytest.approx(-CONTRIBUTIONS["government"] * late)
        else:
            assert row["amount_differs"] == "是" and stated != due
        assert float(row["amount_difference"]) == pytest.approx(stated - due)
    for receipt in day["twice"] - set(day["seeded"]):
        row = receipts.loc[receipt]
        assert int(row["persons"]) == int(row["members_keyed"]) - 1
        assert "a person keyed twice" in row["problems"]


def test_bad_cells_are_named_by_file_row_and_column_and_no_row_is_lost(day):
    tables, batch = day["tables"], day["batch"]
    problems = tables["input_problems"]
    assert set(problems["file"]) == {str(day["path"].resolve())}
    worded = problems[problems["column"] == "收据金额"]
    assert worded["value"].tolist() == ["五十"]
    row_of = {rid: i + 2 for i, rid in enumerate(batch["参合编号"])}  # the header is row 1
    first = batch.index[batch["收据号"] == day["worded"]][0]
    assert int(worded["row"].iloc[0]) == first + 2
    lost = problems[problems["column"] == "收据号"]
    assert lost["row"].astype(int).tolist() == [row_of[day["blank_id"]]]
    receipts = _receipts(day)
    assert receipts.loc[day["worded"], "verdict"] == UNCHECKED
    assert receipts.loc[day["unknown"], "verdict"] == UNCHECKED
    assert "低收 is not in the rules" in receipts.loc[day["unknown"], "problems"]
    rejected = tables["rejected"]
    assert rejected["record_id"].tolist() == ["NHBAD0001"]
    assert int(rejected["row"].iloc[0]) == len(batch) + 1 and rejected["column"].iloc[0]
    new = tables["new_enrolments"]
    assert len(new) + len(rejected) == len(batch)
    assert set(new["record_id"]) == set(batch["参合编号"]) - {"NHBAD0001"}
    clusters = pd.read_csv(day["config"].output / "clusters.csv", dtype=str)
    assert set(new["record_id"]) <= set(clusters["record_id"])  # linked, bad cells or not


def test_duplicates_show_both_enrolments(day):
    dups = day["tables"]["duplicates"]
    golden = pd.read_csv(day["config"].output / "golden.csv", dtype=str).set_index("entity_id")
    assert (golden.loc[dups["entity_id"], "n_enrolments"].astype(int) >= 2).all()
    errors = day["world"].errors
    twice = set(errors.loc[errors["error"] == "entered_twice", "record_id"]) & set(
        day["batch"]["参合编号"])
    mine = dups[dups["other_record_id"].isin(twice)]
    assert len(mine) >= len(twice) >= 1
    assert (mine["kind"] == "同户重复录入 twice in one household").all()
    assert (mine["other_when"] == "今天 today").all()
    assert (mine["other_date"] == DAY).all() and (mine["paid_on"] == DAY).all()
    earlier = dups[dups["other_when"] == "此前 earlier"]
    assert (earlier["other_source"] != "").all()
    urban = earlier[earlier["other_scheme"] == "URBAN"]
    assert (urban["kind"] == "两个险种 both schemes").all()
    assert urban["other_date"].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    # full IDs, as the duplicate-enrolment list gives them
    assert dups["resident_id"].str.fullmatch(r"\d{17}[\dX]").all()


def test_entry_problems_are_the_quality_reports_own(day):
    """The run's record_errors.csv (quality.record_errors over the whole state) and the day's
    list agree on every batch record; the day adds only birthdates it could not read whole."""
    entry = day["tables"]["entry_problems"].set_index("record_id")
    errors = pd.read_csv(day["config"].output / "record_errors.csv", dtype=str,
                         keep_default_na=False)
    ours = errors[errors["record_id"].isin(day["tables"]["new_enrolments"]["record_id"])]
    assert len(ours) > 0
    assert set(ours["record_id"]) <= set(entry.index)
    labels = {"id_missing": "ID missing", "id_invalid": "ID invalid", "birth_differs":
              "birthdate differs", "not_in_registry": "not in the registry"}
    for rid, kinds in zip(ours["record_id"], ours["errors"]):
        for kind in kinds.split(";"):
            if kind in labels:
                assert labels[kind] in entry.loc[rid, "problems"], (rid, kind)
    extra = set(entry.index) - set(ours["record_id"])
    assert all("birthdate" in entry.loc[r, "problems"] for r in extra)
    summary = day["tables"]["summary"]
    assert summary["records"].astype(int).sum() == len(day["tables"]["new_enrolments"])
    assert summary["receipts_disagreeing"].astype(int).sum() == len(set(day["seeded"])
                                                                    | day["twice"])


def test_the_workbook_opens_with_ids_as_text_and_a_sheet_per_list(day):
    from openpyxl import load_workbook

    book = load_workbook(day["folder"] / "enrolment_check.xlsx", read_only=True)
    assert book.sheetnames == list(SHEETS.values())
    sheet = book[SHEETS["new_enrolments"]]
    rows = list(sheet.iter_rows(values_only=True))
    head = list(rows[0])
    assert "录入身份证号 id_entered" in head and "收据号 receipt" in head
    ids = [r[head.index("录入身份证号 id_entered")] for r in rows[1:]]
    assert all(v is None or isinstance(v, str) for v in ids)
    assert any(isinstance(v, str) and len(v) == 18 for v in ids)
    receipts = list(book[SHEETS["receipts"]].iter_rows(values_only=True))
    amount = receipts[0].index("收据金额 amount_stated")
    assert all(isinstance(r[amount], float) for r in receipts[1:] if r[amount] is not None)
    page = (day["folder"] / "enrolment_check.html").read_text(encoding="utf-8")
    assert "收据核对 receipts" in page and DAY in page


def test_a_config_without_contribution_rules_still_checks_what_it_can(day, tmp_path):
    result = day["result"]
    older = replace(result.config, contributions=None)
    done = check_batch(replace(result, config=older, out_dir=tmp_path), day["path"],
                       date.fromisoformat(DAY))
    receipts = done.check.tables["receipts"]
    assert len(receipts) > 0 and set(receipts["verdict"]) <= {DISAGREES, UNCHECKED}
    assert any("no rules" in n for n in done.check.notes)
    assert receipts["amount_due"].isna().all()
    twice = receipts[receipts["receipt"].isin(day["twice"])]
    assert len(twice) and (twice["verdict"] == DISAGREES).all()  # headcount: keyed twice
    assert (tmp_path / DAILY_DIR / result.run_id / "enrolment_check.xlsx").is_file()


def test_the_command_adds_and_checks_another_day(day, capsys):
    assert main(["daily", str(day["config_path"]), "--input", str(day["second"]), "--date",
                 "2020-11-17", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "enrolment check of" in out and "receipts 1: 0 disagree" in out
    config = day["config"]
    run_id = Store(config.store).last_complete_run(config.job)
    assert run_id != day["result"].run_id
    assert (config.output / DAILY_DIR / run_id / "enrolment_check.xlsx").is_file()


CASES = [  # tier, subsidy, kind, age, due
    ("一档", "", rules.REGULAR, 40, 50.0),
    ("二档", "", rules.REGULAR, 40, 120.0),
    ("一档", "五保", rules.REGULAR, 70, 0.0),
    ("二档", "五保", rules.REGULAR, 70, 60.0),
    ("一档", "低保", rules.REGULAR, 30, 10.0),
    ("二档", "城市低保", rules.REGULAR, 30, 60.0),
    ("一档", "三无", rules.REGULAR, 50, 0.0),
    ("二档", "三无", rules.REGULAR, 50, 0.0),
    ("一档", "重点优抚", rules.REGULAR, 80, 10.0),
    ("二档", "在乡老复员军人", rules.REGULAR, 80, 0.0),
    ("二档", "重度残疾", rules.REGULAR, 20, 60.0),
    ("一档", "低收入老人", rules.REGULAR, 65, 10.0),
    ("一档", "低收入老人", rules.REGULAR, 59, 50.0),
    ("一档", "低收入老人", rules.REGULAR, -1, 10.0),
    ("一档", "五保", rules.LATE, 70, 250.0),
    ("二档", "", rules.LATE, 40, 320.0),
    ("二档", "低保", rules.NEWBORN, 0, 120.0),
    ("一档", "低保+五保", rules.REGULAR, 70, 0.0),
]


def test_the_2012_rules_price_each_member():
    config = load_config(REPO / "configs" / "demo.yaml")
    year, year_rules = rules.rules_for(config.contributions, 2020)
    assert year == 2012 and rules.rules_for(config.contributions, 2011) is None
    tier, subsidy, kind, age, expected = (np.array(c, dtype=object) for c in zip(*CASES))
    priced = rules.price(year_rules, tier, subsidy, kind, age.astype(int))
    assert priced.due.tolist() == expected.astype(float).tolist()
    assert priced.problem[12] == "younger than the category's age: no reduction"
    odd = rules.price(year_rules, np.array(["三档", "一档"], dtype=object),
                      np.array(["", "低收"], dtype=object),
                      np.array([rules.REGULAR] * 2, dtype=object), np.array([40, 40]))
    assert np.isnan(odd.due).all()
    assert odd.problem.tolist() == ["tier '三档' has no contribution in the rules",
                                    "subsidy category 低收 is not in the rules"]
    words = rules.enrolment_kind(config.contributions, np.array(["逾期", "新生儿", "", None],
                                                                dtype=object))
    assert words.tolist() == [rules.LATE, rules.NEWBORN, rules.REGULAR, rules.REGULAR]


def test_contribution_rules_that_cannot_hold_are_config_errors(tmp_path):
    text = (REPO / "configs" / "demo.yaml").read_text(encoding="utf-8")
    for old, new, says in [
            ("五保: {reduction: {一档: full, 二档: 60}}", "五保: {reduction: {一档: 60}}",
             "expected at most the 一档 contribution (50) or 'full'"),
            ("五保: {reduction: {一档: full, 二档: 60}}", "五保: {reduction: {三档: 10}}",
             "expected a tier that personal prices (一档, 二档)"),
            ("五保: {reduction: {一档: full, 二档: 60}}", "五保: {reduction: {一档: lots}}",
             "expected an amount in yuan (0 or more) or 'full'"),
            ("      receipt_amount: 收据金额", "      tier: 参合档次",
             "a field mapped once: sources[].fields of 'ncms' maps 'tier'"),
            ("    ncms:\n      receipt_amount", "    ncmz:\n      receipt_amount",
             "expected a source of the job")]:
        assert old in text
        path = tmp_path / "bad.yaml"
        path.write_text(text.replace(old, new), encoding="utf-8")
        with pytest.raises(ConfigError) as caught:
            load_config(path)
        message = str(caught.value)
        assert says in message and "contributions" in message and " line " in message


def test_the_day_file_keeps_the_ncms_layout(day):
    with open(day["path"], encoding="gbk", newline="") as fh:
        header = next(csv.reader(fh))
    assert header == list(day["world"].ncms.columns)
