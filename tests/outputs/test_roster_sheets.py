"""The roster's two sheets (制卡名册, 暂缓制卡) and the registry's double registrations
(疑似重复户籍), on the small world's demo run: who may get a card, why the others wait."""
import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook

from linkage.core.config import ConfigError, load_config
from linkage.jobs.run import run
from linkage.outputs.registry_duplicates import evidence
from linkage.outputs.roster import DEFER_REASONS, DEFERRED_COLUMNS, ROSTER_COLUMNS
from linkage.outputs.xlsx import Properties, Sheet, write_xlsx
from linkage.store import Store

ID_COLUMNS = ["entity_id", "resident_id", "household_id", "insurance_household_ids",
              "record_ids"]


def _csv(out, stem: str) -> pd.DataFrame:
    return pd.read_csv(out / f"{stem}.csv", dtype=str, keep_default_na=False)


def _sheet(ws) -> tuple[list[str], list[tuple]]:
    rows = list(ws.iter_rows())
    return [str(c.value).rsplit(" ", 1)[-1] for c in rows[0]], rows[1:]


@pytest.fixture(scope="module")
def book(office_run):
    return load_workbook(office_run.out_dir / "roster.xlsx")


def _registry_pairs(office_run) -> pd.DataFrame:
    review = office_run.review
    return review[(review["source_l"] == "police") & (review["source_r"] == "police")]


def test_the_roster_has_the_card_sheet_then_the_deferred_sheet(book, office_run):
    assert book.sheetnames == ["制卡名册", "暂缓制卡"]
    names, _ = _sheet(book["制卡名册"])
    assert names == ROSTER_COLUMNS
    names, _ = _sheet(book["暂缓制卡"])
    assert names == DEFERRED_COLUMNS
    assert [c.value for c in next(book["暂缓制卡"].iter_rows())][1] == "原因 reason"


def test_each_sheet_is_headed_by_the_run_and_its_date(book, office_run):
    run_id = office_run.run_id
    day = f"{run_id[:4]}-{run_id[4:6]}-{run_id[6:8]}"
    for ws in book.worksheets:
        header = ws.oddHeader.left.text
        assert run_id in header and day in header and "demo" in header
    assert book.properties.title == "社保卡制卡名册"
    assert run_id in book.properties.description
    assert book.properties.created.strftime("%Y-%m-%d") == day


@pytest.mark.parametrize("sheet, stem", [("制卡名册", "roster"), ("暂缓制卡", "roster_deferred")])
def test_each_sheet_equals_its_csv_with_ids_as_text_and_counts_as_integers(book, office_run,
                                                                           sheet, stem):
    names, rows = _sheet(book[sheet])
    csv = _csv(office_run.out_dir, stem)
    assert names == list(csv.columns) and len(rows) == len(csv) > 0
    cells = pd.DataFrame([["" if c.value is None else str(c.value) for c in row] for row in rows],
                         columns=names)
    pd.testing.assert_frame_equal(cells, csv, check_dtype=False)
    for column in ID_COLUMNS:
        for row in rows:
            cell = row[names.index(column)]
            if cell.value is not None:
                assert cell.data_type == "s" and cell.number_format == "@", (column, cell.value)
    counts = [row[names.index("n_enrolments")] for row in rows]
    assert all(type(c.value) is int and c.number_format == "0" for c in counts)


def test_schemes_show_as_the_office_names_them(office_run):
    roster = _csv(office_run.out_dir, "roster")
    shown = set(roster["schemes"].str.split("+").explode()) - {""}
    assert shown == {"新农合", "城镇居民"}
    assert roster["schemes"].eq("新农合+城镇居民").any()
    assert not roster["tier"].str.contains("NCMS|URBAN").any()
    assert roster["tier"].str.contains("新农合:").any()  # a person whose tiers disagree
    # the codes stay what the API and the data team's files use
    assert set(office_run.golden["schemes"].str.split("+").explode()) - {""} == {"NCMS", "URBAN"}


def test_the_deferred_sheet_says_why_each_card_waits(office_run):
    deferred = _csv(office_run.out_dir, "roster_deferred")
    golden = office_run.golden.set_index("entity_id").loc[deferred["entity_id"]]
    codes = deferred["reason_codes"].str.split(";")
    assert codes.map(len).gt(0).all() and deferred["reason"].ne("").all()
    words = deferred["reason"].str.replace(r"[a-z]+:[A-Za-z0-9]+", "", regex=True)
    assert not words.str.contains("[A-Za-z]").any()  # Chinese, record keys aside
    for code, word in DEFER_REASONS.items():
        has = codes.map(lambda c, code=code: code in c).to_numpy()
        if code != "registry_duplicate":  # that one names the other record (below)
            assert deferred.loc[has, "reason"].str.contains(word).all(), code
    dead = codes.map(lambda c: "deceased" in c).to_numpy()
    assert (dead == golden["deceased"].to_numpy()).all() and dead.sum() > 0
    no_id = codes.map(lambda c: "no_valid_id" in c).to_numpy()
    assert (no_id == (deferred["resident_id"] == "").to_numpy()).all() and no_id.any()
    shared = codes.map(lambda c: "shared_id" in c).to_numpy()
    counted = deferred["resident_id"].map(deferred["resident_id"].value_counts())
    assert (shared == ((deferred["resident_id"] != "") & (counted > 1)).to_numpy()).all()
    assert shared.any()
    # what stays on the card roster has none of these
    roster = _csv(office_run.out_dir, "roster")
    assert roster["resident_id"].ne("").all() and roster["resident_id"].is_unique


def test_registry_double_registrations_are_listed_and_neither_gets_a_card(office_run):
    out = office_run.out_dir
    pairs = _registry_pairs(office_run)
    listed = _csv(out, "registry_duplicates")
    assert len(pairs) > 0 and len(listed) == len(pairs)
    key = lambda a, b: frozenset((a, b))  # noqa: E731
    assert {key("police:" + a, "police:" + b) for a, b in zip(pairs["record_l"],
                                                            pairs["record_r"])} == {
        key(a, b) for a, b in zip(listed["record_1"], listed["record_2"])}
    deferred = _csv(out, "roster_deferred").set_index("entity_id")
    roster = _csv(out, "roster")
    for row in listed.itertuples():
        for mine, other in ((row.entity_id_1, row.record_2), (row.entity_id_2, row.record_1)):
            assert mine not in set(roster["entity_id"])
            assert "registry_duplicate" in deferred.at[mine, "reason_codes"]
            assert f"疑似重复户籍（与 {other} 可能为同一人）" in deferred.at[mine, "reason"]
    police = pd.read_csv(office_run.config.source("police").path, dtype=str)
    by_id = police.set_index("人员编号")
    for side in ("1", "2"):
        records = listed[f"record_{side}"].str.removeprefix("police:")
        assert (listed[f"resident_id_{side}"].to_numpy()
                == by_id.loc[records, "公民身份号码"].str.strip().to_numpy()).all()
        assert (listed[f"name_{side}"].to_numpy() == by_id.loc[records, "姓名"].to_numpy()).all()
    assert listed["evidence"].str.contains("身份证号").all()
    assert listed["waiting_for"].ne("").all()
    book = load_workbook(out / "registry_duplicates.xlsx")
    assert book.sheetnames == ["疑似重复户籍"]
    assert office_run.run_id in book.worksheets[0].oddHeader.left.text


def test_the_evidence_says_what_agrees_and_what_differs():
    def side(name, rid, birth, gender, household, village, status="正常"):
        return {k: np.array([v], dtype=object) for k, v in dict(
            name=name, resident_id=rid, birth_date=birth, gender=gender,
            household_id=household, village=village, registry_status=status).items()}

    got = evidence(side("冯向成", "15052319671221603X", "1967-12-21", "男", "100001963", "新民村"),
                   side("冯向铖", "150523196712216031", "1967-12-21", "男", "100002012",
                        "新民村", "死亡"))
    assert got[0] == ("姓名不同；身份证号仅校验位不同；出生日期相同；性别相同；不同户；同村；"
                      "一条登记为死亡")
    got = evidence(
        side("高兰霞", "15052619560908108X", "1951-09-08", "女", "100002957", "五家子村"),
        side("高兰霞", "15052619510908108X", None, "女", "100002957", "五家子村"))
    assert got[0] == "姓名相同；身份证号仅一位不同；一条无出生日期；性别相同；同一户；同村"


def test_an_unresolved_conflict_waits_on_the_deferred_sheet(demo_job):
    config = load_config(demo_job)
    first = run(config)
    police = first.clusters[first.clusters["source"] == "police"]
    a, b = police["record_id"].iloc[0], police["record_id"].iloc[1]
    Store(config.store).add_decision(("police", a), ("police", b), "match", "supervisor")
    second = run(config)
    conflict = set(second.golden.loc[second.golden["status"] == "CONFLICT", "entity_id"])
    deferred = _csv(second.out_dir, "roster_deferred").set_index("entity_id")
    assert conflict and conflict <= set(deferred.index)
    assert not conflict & set(_csv(second.out_dir, "roster")["entity_id"])
    rows = deferred.loc[sorted(conflict)]
    assert (rows["status"] == "CONFLICT").all()
    assert rows["reason_codes"].str.contains("conflict").all()
    assert rows["reason"].str.contains("冲突未解决：复核员将身份证号不同的户籍记录判为同一人").all()


def test_integer_columns_show_as_whole_numbers_and_amounts_with_two_decimals(tmp_path):
    frame = pd.DataFrame({"n_enrolments": [1, 2], "amount": [50.0, 120.5],
                          "enrolment_no": pd.array([1, None], dtype="Int64")})
    path = tmp_path / "t.xlsx"
    write_xlsx(path, [Sheet("名册", frame, list(frame.columns), note="运行 R1 & 审核")],
               properties=Properties("社保卡制卡名册", "运行 R1", "2024-05-01T08:30:00Z"))
    ws = load_workbook(path).worksheets[0]
    rows = list(ws.iter_rows(min_row=2))
    assert [(c.value, c.number_format) for c in rows[0]] == [(1, "0"), (50.0, "0.00"), (1, "0")]
    assert rows[1][2].value is None and type(rows[1][0].value) is int
    assert ws.oddHeader.left.text == "运行 R1 && 审核"  # '&' printed as itself


def _config(tmp_path, small_world, sources_extra: dict[str, str]) -> str:
    text = (small_world / "configs" / "demo.yaml").read_text(encoding="utf-8")
    for old, new in sources_extra.items():
        assert old in text
        text = text.replace(old, new)
    path = small_world / "configs" / f"demo-schemes-{tmp_path.name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_scheme_names_come_from_the_config_and_default_to_the_code(tmp_path, small_world):
    assert load_config(small_world / "configs" / "demo.yaml").scheme_names == {
        "NCMS": "新农合", "URBAN": "城镇居民"}
    plain = _config(tmp_path, small_world, {"    scheme_name: 城镇居民\n": ""})
    assert load_config(plain).scheme_names == {"NCMS": "新农合", "URBAN": "URBAN"}


@pytest.mark.parametrize("change, message", [
    ({"    scheme: URBAN\n    scheme_name: 城镇居民\n":
      "    scheme: NCMS\n    scheme_name: 城镇居民\n"},
     r"sources\[2\] \(urban\)\.scheme_name': got '城镇居民'; expected '新农合', the name "
     r"sources\[1\] gives the scheme 'NCMS'"),
    ({"    scheme_name: 城镇居民\n": "    scheme_name: 新农合\n"},
     r"scheme_name': got '新农合'; expected a name of its own: scheme 'NCMS' is already called"),
    ({"    role: authority            # the registry decides who exists\n":
      "    role: authority\n    scheme_name: 户籍\n"},
     r"sources\[0\] \(police\)\.scheme_name': got '户籍'; expected no 'scheme_name' on a "
     r"source of role 'authority'"),
])
def test_a_scheme_name_that_would_mislead_the_office_is_refused(tmp_path, small_world, change,
                                                                message):
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(_config(tmp_path, small_world, change))
    assert " line " in str(caught.value)  # said with the YAML line
