"""Rows with nothing to link on are rejected, in `linkage run` and `linkage add` alike, counted
in every run (read = linked + rejected), and a row an earlier run rejected is marked so.

The rule (linkage.core.standardise.linkable): a usable name, or a usable ID number, or a
birthdate placed by a household number (or, when whole, by a village). The test at the end
measures why: kept with the rule off, rows of the kinds it rejects never link to anyone.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linkage.cli import main
from linkage.core import standardise
from linkage.core.config import SourceConfig
from linkage.jobs.bookkeeping import check_accounting
from linkage.jobs.ingest import ingest

REPO = Path(__file__).resolve().parents[2]
HEADER = ["参合编号", "家庭编号", "成员姓名", "身份证号", "出生日期", "村"]
FIELDS = {"household_id": "家庭编号", "name": "成员姓名", "id_number": "身份证号",
          "birth_date": "出生日期", "village": "村"}
ISSUE_ROW = ["NH9000000001", "", "", "abc", "19990230", ""]  # issue 18: became an empty entity


def _source(path: Path, fields: dict | None = None) -> SourceConfig:
    return SourceConfig(name="ncms", role="insurance", record_id="参合编号",
                        fields=dict(fields or FIELDS), path=path)


def _write(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    pd.DataFrame(rows, columns=header).to_csv(path, index=False, encoding="utf-8")
    return path


def _ingest(path: Path, fields: dict | None = None):
    data = ingest([_source(path, fields)])
    check_accounting(data.counts, data.records, data.rejects)
    return data


# --------------------------------------------------------------------------- the rule

def test_the_issue_row_is_rejected_naming_file_row_columns_and_what_is_wrong(tmp_path):
    path = _write(tmp_path / "ncms.csv", [
        ["NH001", "H01", "张伟", "150521196503120016", "1965-03-12", "呼和嘎查"], ISSUE_ROW])
    data = _ingest(path)
    assert data.records["record_id"].tolist() == ["NH001"]
    rej = data.rejects.iloc[0]
    assert (rej["record_id"], rej["file"], rej["row"]) == ("NH9000000001", str(path), 3)
    assert rej["column"] == "成员姓名, 身份证号, 出生日期"
    assert rej["reason"].startswith("nothing to link on: 成员姓名 is blank; 身份证号 'abc' is "
                                    "not an ID number")
    assert "出生日期 '19990230' is not a real date" in rej["reason"]
    assert rej["reason"].endswith("A row needs a name, an ID number, a 出生日期 together with a "
                                  "家庭编号 or a whole 出生日期 (year, month and day) together "
                                  "with a 村 to be linked")


@pytest.mark.parametrize("row, kept", [
    (["NH1", "", "", "152301198011230029", "", ""], True),  # only a valid ID
    (["NH2", "", "", "152301198011230028", "", ""], True),  # wrong check character: repaired
    (["NH3", "", "", "1.52301198011E+17", "", ""], True),  # Excel kept 12 digits
    (["NH4", "", "王丽", "", "1980", ""], True),  # a name and a birth year
    (["NH5", "H07", "", "abc", "1980", ""], True),  # the year, placed in its household
    (["NH6", "", "", "abc", "1980-11-23", "呼和嘎查"], True),  # a whole date in its village
    (["NH7", "", "", "abc", "1980-11", "呼和嘎查"], False),  # year and month: too little
    (["NH8", "", "", "abc", "1980-11-23", ""], False),  # a date placed nowhere
    (["NH9", "", "不详", "无", "", "呼和嘎查"], False),  # placeholders only
    (["NH10", "", "？？", "1.5E+17", "1980", "呼和嘎查"], False),  # no letter; Excel left 2 digits
    (["NH11", "", "", "111111111111111111", "", ""], False),  # a placeholder number
], ids=lambda v: v[0] if isinstance(v, list) else str(v))
def test_what_a_row_needs_to_be_kept(tmp_path, row, kept):
    data = _ingest(_write(tmp_path / "ncms.csv", [row]))
    assert (len(data.records), len(data.rejects)) == ((1, 0) if kept else (0, 1))
    if not kept:
        assert data.rejects.iloc[0]["reason"].startswith("nothing to link on")


def test_a_source_without_household_or_village_needs_a_name_or_an_id(tmp_path):
    fields = {"name": "成员姓名", "id_number": "身份证号", "birth_date": "出生日期"}
    data = _ingest(_write(tmp_path / "ncms.csv", [["NH1", "H07", "", "abc", "1980-11-23", "村"]]),
                   fields)
    assert data.records.empty
    assert data.rejects.iloc[0]["reason"].endswith("A row needs a name or an ID number to be "
                                                   "linked")


def test_a_rejected_id_is_masked_in_the_reason(tmp_path):
    junk = "15052119650312001"  # 17 digits: no ID, but one digit short of one
    data = _ingest(_write(tmp_path / "ncms.csv", [["NH1", "", "", junk, "", ""]]))
    assert junk not in data.rejects.iloc[0]["reason"]
    assert "'1505*************' is not an ID number" in data.rejects.iloc[0]["reason"]


_ids = st.one_of(st.text("0123456789X", min_size=14, max_size=19),
                 st.sampled_from(["", "abc", "无", "1.50521E+17", "150521650312001",
                                  "000000000000000000", "15052119650312001X"]))
_names = st.one_of(st.sampled_from(["", "张伟", "不详", "无名", "？？", "包·巴特尔", "x", "之子",
                                    " 李 娜 ", "Zhang Wei", "0"]), st.text(max_size=4))
_dates = st.sampled_from(["", "19990230", "1999", "1999-02", "1999-02-28", "19990101", "不详",
                          "2099-01-01", "abc"])
_rows = st.lists(st.tuples(_names, _ids, _dates, st.sampled_from(["", "H01"]),
                           st.sampled_from(["", "呼和嘎查"])), min_size=1, max_size=8)


@settings(max_examples=200, deadline=None)
@given(st.text("0123456789Xx", min_size=15, max_size=18))
def test_the_quick_id_check_agrees_with_the_id_parser(value):
    parsed = standardise.VALUE_PARSERS["id_number"](value)
    slow = parsed["id_norm"] is not None or len(parsed["id_partial"] or "") >= 6
    assert standardise.usable_id(value) == slow


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # one file, rewritten
@given(_rows)
def test_every_row_is_either_a_record_or_a_reject_and_records_are_linkable(tmp_path, rows):
    rows = [[f"NH{i}", hh, name.replace("\x00", ""), id_, date, village]
            for i, (name, id_, date, hh, village) in enumerate(rows)]
    data = _ingest(_write(tmp_path / "ncms.csv", rows))
    kept, rejected = set(data.records["record_id"]), set(data.rejects["record_id"])
    assert kept.isdisjoint(rejected) and kept | rejected == {r[0] for r in rows}
    # After standardising (the vectorised standardisers), every kept record has a usable name
    # key, an ID the comparison can use, or a birthdate with its household or village.
    std = standardise.standardise_records(data.records, set(FIELDS))
    for rec in std.to_dict("records"):
        key = rec["name_key"]
        name = bool(key) and key.lower() not in standardise.NAME_PLACEHOLDERS and any(
            c.isalpha() for c in key)
        id_ok = rec["id_norm"] is not None or len(rec["id_partial"] or "") >= 6
        placed = rec["birth_date"] > 0 and (bool(str(rec["household_id"] or "").strip()) or (
            rec["birth_quality"] in standardise.WHOLE_DATES and bool(rec["village_norm"])))
        assert name or id_ok or placed, rec


# --------------------------------------------------------------------------- whole runs

@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """A small synthetic prefecture (400 persons) with the demo job's files."""
    from linkage.synth import generate_world, write_world

    root = tmp_path_factory.mktemp("unusable_world")
    write_world(generate_world(400, seed=3), root / "data")
    return root / "data"


def _job(world: Path, folder: Path, ncms: Path) -> Path:
    raw = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text(encoding="utf-8"))
    for source in raw["sources"]:
        source["path"] = str(world / Path(source["path"]).name)
    next(s for s in raw["sources"] if s["name"] == "ncms")["path"] = str(ncms)
    raw.update(output=str(folder / "out"), store=f"sqlite:///{folder}/store.sqlite",
               training={"u_sample_pairs": 20_000})
    path = folder / "job.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def _frames(world: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    read = {"dtype": str, "keep_default_na": False}
    return (pd.read_csv(world / "ncms.csv", encoding="gbk", **read),
            pd.read_csv(world / "police.csv", **read), pd.read_csv(world / "truth.csv", **read))


def _row(ncms: pd.DataFrame, **cells) -> dict:
    return {c: "" for c in ncms.columns} | cells


def _outputs(out: Path) -> dict:
    return {"summary": json.loads((out / "summary.json").read_text(encoding="utf-8")),
            "rejects": pd.read_csv(out / "rejects.csv", dtype=str, keep_default_na=False),
            "clusters": pd.read_csv(out / "clusters.csv", dtype=str)}


@pytest.fixture(scope="module")
def runs(world, tmp_path_factory) -> dict:
    """A full run, a second one with the bad row moved and a new bad row, an `add` batch
    holding the first bad row again, a new bad one and a good one, then a third full run."""
    folder = tmp_path_factory.mktemp("unusable_runs")
    ncms, police, truth = _frames(world)
    bad = _row(ncms, 参合编号="NH9000000001", 出生日期="19990230")
    bad["身份证号"] = "abc"
    police_only = set(truth.loc[truth["source"] == "police", "person_id"]) - set(
        truth.loc[truth["source"] != "police", "person_id"])
    person = police[police["人员编号"].isin(truth.loc[truth["person_id"].isin(police_only),
                                                     "record_id"])].iloc[:2]
    id_only = _row(ncms, 参合编号="NH9000000002", 身份证号=person.iloc[0]["公民身份号码"])
    path = folder / "ncms.csv"
    config = _job(world, folder, path)
    out, got = folder / "out", {"id_only": id_only, "id_only_police": person.iloc[0]["人员编号"]}

    def step(name: str, argv: list[str]) -> None:
        assert main(argv) == 0
        got[name] = _outputs(out)
        shutil.copytree(out, folder / name)  # what the office was handed at this step

    pd.DataFrame([*ncms.to_dict("records"), bad, id_only]).to_csv(path, index=False,
                                                                   encoding="gbk")
    step("first", ["run", str(config), "--quiet"])
    second_bad = _row(ncms, 参合编号="NH9000000003", 成员姓名="不详", 身份证号="无",
                      出生日期="1999", 村="呼和嘎查")
    pd.DataFrame([bad, *ncms.to_dict("records"), id_only, second_bad]).to_csv(
        path, index=False, encoding="gbk")
    step("second", ["run", str(config), "--quiet"])
    p = person.iloc[1]
    good = _row(ncms, 参合编号="NH9000000004", 成员姓名=p["姓名"], 身份证号=p["公民身份号码"],
                性别=p["性别"], 出生日期=p["出生日期"], 乡镇=p["苏木乡镇"], 村=p["嘎查村"])
    third_bad = dict(bad, 参合编号="NH9000000005")
    batch = folder / "batch.csv"
    pd.DataFrame([bad, good, third_bad]).to_csv(batch, index=False, encoding="utf-8")
    step("add", ["add", str(config), "--input", str(batch), "--quiet"])
    step("third", ["run", str(config), "--quiet"])
    return got


def _first(rejects: pd.DataFrame) -> dict:
    return dict(zip(rejects["record_id"] + "@" + rejects["file"].map(lambda f: Path(f).name),
                    rejects["first_rejected_run"]))


def test_a_full_run_rejects_the_issue_row_keeps_an_id_only_row_and_counts_add_up(runs):
    first = runs["first"]
    summary, rejects, clusters = first["summary"], first["rejects"], first["clusters"]
    records = summary["records"]
    assert records["read"] == records["linked"] + records["rejected"] == (
        len(clusters) + len(rejects))
    ncms = records["per_source"]["ncms"]
    assert ncms["read"] == ncms["linked"] + ncms["rejected"] and ncms["rejected"] == 1
    rej = rejects.iloc[0]
    assert (rej["record_id"], rej["column"]) == ("NH9000000001", "成员姓名, 身份证号, 出生日期")
    assert "'19990230' is not a real date" in rej["reason"]
    assert rej["first_rejected_run"] == summary["run_id"] and records["rejected_earlier"] == 0
    assert "NH9000000001" not in set(clusters["record_id"])
    entity = clusters.set_index("record_id")["entity_id"]
    assert entity["NH9000000002"] == entity[runs["id_only_police"]]  # the ID alone links it


def test_a_later_run_marks_the_reject_reported_before_though_its_row_moved(runs):
    first, second = runs["first"], runs["second"]
    rejects = second["rejects"].set_index("record_id")
    run1, run2 = first["summary"]["run_id"], second["summary"]["run_id"]
    assert first["rejects"].set_index("record_id").loc["NH9000000001", "row"] != rejects.loc[
        "NH9000000001", "row"] == "2"
    assert rejects.loc["NH9000000001", "first_rejected_run"] == run1
    assert rejects.loc["NH9000000003", "first_rejected_run"] == run2  # new: 不详 / 无 / 1999
    assert "'不详' is not a name" in rejects.loc["NH9000000003", "reason"]
    assert second["summary"]["records"]["rejected_earlier"] == 1


def test_add_rejects_the_issue_row_and_every_run_after_knows_where_it_was_first_seen(runs):
    add, third = runs["add"], runs["third"]
    run1, add_run = runs["first"]["summary"]["run_id"], add["summary"]["run_id"]
    records = add["summary"]["records"]
    assert records["read"] == 3 == records["linked"] + records["rejected"]
    assert records["rejected"] == 2 and records["rejected_earlier"] == 1
    assert _first(add["rejects"]) == {"NH9000000001@batch.csv": run1,
                                      "NH9000000005@batch.csv": add_run}
    assert "NH9000000004" in set(add["clusters"]["record_id"])
    # The next full run reads the batch `add` kept: its rejects count there again, known.
    marked = _first(third["rejects"])
    kept_copy = Path(add["summary"]["added"]["file"]).name
    assert marked["NH9000000005@" + kept_copy] == add_run
    assert marked["NH9000000001@ncms.csv"] == marked["NH9000000001@" + kept_copy] == run1
    assert third["summary"]["records"]["rejected_earlier"] == len(third["rejects"])
    summary = third["summary"]["records"]
    assert summary["read"] == summary["linked"] + summary["rejected"] == (
        len(third["clusters"]) + len(third["rejects"]))


def test_rows_of_the_kinds_rejected_never_link_when_kept(world, tmp_path, monkeypatch):
    """The rule's measure: with it off, 20 NCMS rows keeping a whole birthdate and household
    but neither name nor ID mostly link to their own person; 20 urban rows keeping only a birth
    year (no household on that roster) link to nobody. Both kinds are classed by the rule."""
    import linkage.jobs.ingest as ingest_module

    ncms, _, truth = _frames(world)
    urban = pd.read_csv(world / "urban.csv", dtype=str, keep_default_na=False,
                        encoding="utf-8-sig")
    whole = ncms[ncms["出生日期"].str.len() == 10].sample(20, random_state=1).index
    ncms.loc[whole, ["成员姓名", "身份证号"]] = ["", "abc"]
    year = urban[urban["csrq"].str.len() == 8].sample(20, random_state=1).index
    urban.loc[year, ["xm", "sfzh"]] = ["", "abc"]
    urban.loc[year, "csrq"] = urban.loc[year, "csrq"].str[:4]
    ncms.to_csv(tmp_path / "ncms.csv", index=False, encoding="gbk")
    urban.to_csv(tmp_path / "urban.csv", index=False, encoding="utf-8")
    raw = yaml.safe_load(_job(world, tmp_path, tmp_path / "ncms.csv").read_text(encoding="utf-8"))
    next(s for s in raw["sources"] if s["name"] == "urban")["path"] = str(tmp_path / "urban.csv")
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")

    def cells(frame, index, columns):
        return {f: frame.loc[index, c] for f, c in columns.items()}

    ncms_cols = {"name": "成员姓名", "id_number": "身份证号", "birth_date": "出生日期",
                 "household_id": "家庭编号", "village": "村"}
    urban_cols = {"name": "xm", "id_number": "sfzh", "birth_date": "csrq", "village": "sqmc"}
    assert all(standardise.linkable(cells(ncms, i, ncms_cols)) for i in whole)
    assert not any(standardise.linkable(cells(urban, i, urban_cols)) for i in year)

    monkeypatch.setattr(ingest_module, "linkable", lambda values: True)
    assert main(["run", str(tmp_path / "job.yaml"), "--quiet"]) == 0
    clusters = pd.read_csv(tmp_path / "out" / "clusters.csv", dtype=str).merge(
        truth, on=["source", "record_id"])
    person_of = clusters.groupby("entity_id")["person_id"].agg(set)
    size = clusters.groupby("entity_id").size()

    def outcome(record_ids):
        rows = clusters[clusters["record_id"].isin(record_ids)]
        alone = int((size[rows["entity_id"]] == 1).sum())
        wrong = int((person_of[rows["entity_id"]].map(len) > 1).sum())
        return alone, len(rows) - alone - wrong, wrong

    alone, right, wrong = outcome(set(urban.loc[year, "ryid"]))
    assert (alone, right, wrong) == (20, 0, 0)
    alone, right, wrong = outcome(set(ncms.loc[whole, "参合编号"]))
    assert right >= 15 and wrong == 0, (alone, right, wrong)


# --------------------------------------------------------------------------- the store

def test_a_store_at_0004_gets_the_rejects_table_and_runs_find_what_earlier_ones_rejected(
        backend_url):
    from linkage.jobs.run import mark_first_rejected
    from linkage.store import Store, migrate
    from linkage.store.tables import run_rejects

    old = sa.create_engine(backend_url)
    migrate.upgrade(old, "0004")
    assert not sa.inspect(old).has_table("run_rejects")
    old.dispose()
    store = Store(backend_url)
    assert migrate.current(store.engine) == migrate.head()
    rejects = pd.DataFrame({"source": ["ncms"], "record_id": ["NH9000000001"],
                            "file": ["ncms.csv"], "row": [3], "column": ["成员姓名, 身份证号"],
                            "reason": ["nothing to link on"], "row_sha256": ["ab" * 32]})
    nothing = pd.DataFrame(columns=["source", "record_id", "entity_id"])

    def finished_run(job: str = "demo") -> tuple[str, list]:
        run_id = store.begin_run(job)
        marked = mark_first_rejected(store, job, run_id, rejects)
        store.finish_run(run_id, {}, {}, nothing, pd.DataFrame(), pd.DataFrame(),
                         rejects=marked)
        return run_id, marked["first_rejected_run"].tolist()

    failed = store.begin_run("demo")  # a run that failed told the office nothing
    assert mark_first_rejected(store, "demo", failed, rejects)["first_rejected_run"].tolist() \
        == [failed]
    store.fail_run(failed, "killed")
    run1, first1 = finished_run()
    run2, first2 = finished_run()
    other, first_other = finished_run("another job")
    assert (first1, first2, first_other) == ([run1], [run1], [other])
    moved = mark_first_rejected(store, "demo", "R9", rejects.assign(row=40))
    changed = mark_first_rejected(store, "demo", "R9", rejects.assign(row_sha256="cd" * 32))
    assert (moved["first_rejected_run"].tolist(), changed["first_rejected_run"].tolist()) == (
        [run1], ["R9"])
    with store.engine.connect() as conn:
        stored = conn.execute(sa.select(run_rejects.c.run_id, run_rejects.c.row_number,
                                        run_rejects.c.column_name)).all()
    where = (3, "成员姓名, 身份证号")
    assert sorted(stored) == sorted([(run1, *where), (run2, *where), (other, *where)])
    store.engine.dispose()
