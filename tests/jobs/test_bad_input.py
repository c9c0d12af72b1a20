"""Bad input, one test per kind: each ends in a clear error naming file, row and column, or in a
reject holding the row with its reason, and the run's counts still add up.

Rows are numbered as a spreadsheet shows them (header = row 1); see linkage/ingest.py for the
documented choices (mixed encodings are rejected per row, never decoded into mojibake; a 10 MB
cell is cut while reading and its row rejected; merged XLSX cells fill their whole range).
"""
import json
import time
import tracemalloc
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from linkage.cli import main
from linkage.core.config import SourceConfig
from linkage.jobs.ingest import (
    MAX_CELL_CHARS,
    MAX_RECORD_LINES,
    InputError,
    detect_encoding,
    ingest,
    read_source,
)
from linkage.jobs.run import AccountingError, check_accounting, run

REPO = Path(__file__).resolve().parents[2]
HEADER = "参合编号,家庭编号,成员姓名,身份证号,出生日期\n"
GOOD = [
    "NH001,H01,张伟,150521196503120016,1965-03-12\n",
    "NH002,H01,包·巴特尔,,19700101\n",
    "NH003,H02,王丽,152301198011230029,1980-11-23\n",
]
FIELDS = {"household_id": "家庭编号", "name": "成员姓名", "id_number": "身份证号",
          "birth_date": "出生日期"}


def _source(path: Path, **kw) -> SourceConfig:
    return SourceConfig(name="ncms", role="insurance", record_id="参合编号", fields=dict(FIELDS),
                        path=path, **kw)


def _write(tmp_path: Path, text: str, encoding: str = "utf-8", name: str = "ncms.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def _read(path: Path, **kw):
    data = ingest([_source(path, **kw)])
    assert data.counts["ncms"] == len(data.records) + len(data.rejects)
    check_accounting(data.counts, data.records, data.rejects)
    return data


def _reject(data, row: int) -> dict:
    rows = data.rejects[data.rejects["row"] == row]
    assert len(rows) == 1, data.rejects.to_dict("records")
    return rows.iloc[0].to_dict()


# --------------------------------------------------------------------------- ragged rows

def test_ragged_row_with_too_few_cells_is_rejected_naming_the_first_missing_column(tmp_path):
    path = _write(tmp_path, HEADER + GOOD[0] + "NH009,H03,李娜\n" + GOOD[2])
    data = _read(path)
    assert data.records["record_id"].tolist() == ["NH001", "NH003"]
    rej = _reject(data, 3)
    assert (rej["record_id"], rej["column"], rej["file"]) == ("NH009", "身份证号", str(path))
    assert "3 cells but the header has 5" in rej["reason"]


def test_ragged_row_with_an_extra_cell_is_rejected_but_trailing_blank_cells_are_not(tmp_path):
    path = _write(tmp_path, HEADER + "NH001,H01,张,伟,150521196503120016,1965-03-12\n"
                  + "NH002,H01,包·巴特尔,,19700101,,\n")
    data = _read(path)
    rej = _reject(data, 2)
    assert rej["column"] == "(cell 6)" and "6 cells but the header has 5" in rej["reason"]
    assert data.records["name"].tolist() == ["包·巴特尔"]


# --------------------------------------------------------------------------- quotes, newlines

def test_quotes_inside_fields_are_kept(tmp_path):
    path = _write(tmp_path, HEADER + '"NH001","H01","赵""小""红","",""\n'
                  + 'NH002,H01,王"大"明,,1970-01-01\n')
    data = _read(path)
    assert data.records["name"].tolist() == ['赵"小"红', '王"大"明']
    assert data.rejects.empty


def test_newline_inside_a_quoted_field_keeps_the_record_and_later_rows_name_their_file_line(
        tmp_path):
    text = (HEADER + '"NH001","H01","张伟\n(曾用名 张卫)","150521196503120016","1965-03-12"\n'
            + GOOD[1] + "NH002,H09,重复,,1999-01-01\n")
    data = _read(_write(tmp_path, text))
    assert data.records["name"].tolist() == ["张伟\n(曾用名 张卫)", "包·巴特尔"]
    assert data.records["row"].tolist() == [2, 3]
    rej = _reject(data, 4)  # spreadsheet row 4 is line 5 of the file
    assert "duplicate record id 'NH002'" in rej["reason"] and "file line 5" in rej["reason"]


def test_unclosed_quote_rejects_its_row_and_reading_resumes_on_the_next_line(tmp_path):
    text = (HEADER + GOOD[0] + 'NH002,H01,"包巴特尔,,19700101\n' + GOOD[2]
            + "NH004,H02,王芳,,1982-02-02\n")
    data = _read(_write(tmp_path, text))
    assert data.records["record_id"].tolist() == ["NH001", "NH003", "NH004"]
    rej = _reject(data, 3)
    assert rej["record_id"] == "NH002"
    assert "quote" in rej["reason"] and "not closed" in rej["reason"]
    assert rej["column"] == "成员姓名"


def test_unclosed_quote_in_a_long_file_does_not_swallow_the_rest(tmp_path):
    rows = [f"NH{i:04d},H{i:04d},王芳{i % 7},,1982-02-02\n"
            for i in range(10, 10 + 3 * MAX_RECORD_LINES)]
    text = HEADER + GOOD[0] + 'NH002,H01,"包巴特尔,,19700101\n' + "".join(rows)
    data = _read(_write(tmp_path, text))
    assert len(data.records) == 1 + len(rows)
    assert _reject(data, 3)["record_id"] == "NH002"


# --------------------------------------------------------------------------- encodings

def test_gbk_file_declared_utf8_stops_at_the_header_naming_file_and_encoding(tmp_path):
    path = _write(tmp_path, HEADER + "".join(GOOD), encoding="gbk")
    with pytest.raises(InputError) as err:
        read_source(_source(path, encoding="utf-8"))
    message = str(err.value)
    assert str(path) in message and "row 1" in message and "not valid UTF-8" in message
    assert "GB18030" in message and "encoding" in message


def test_gbk_rows_under_an_ascii_header_declared_utf8_stop_the_run_naming_the_first_row(tmp_path):
    header = "cbbh,jtbh,xm,sfzh,csrq\n"
    path = _write(tmp_path, header + "".join(GOOD), encoding="gbk")
    source = SourceConfig(name="ncms", role="insurance", record_id="cbbh",
                          fields={"name": "xm", "id_number": "sfzh", "birth_date": "csrq"},
                          path=path, encoding="utf-8")
    with pytest.raises(InputError, match=r"3 of 3 rows cannot be read as utf-8 \(first at row 2: "
                                         r"not valid UTF-8.*GBK"):
        read_source(source)


def test_mostly_utf8_file_with_one_gbk_row_rejects_that_row_without_mojibake(tmp_path):
    body = (HEADER + GOOD[0] + GOOD[1]).encode("utf-8") + GOOD[2].encode("gbk") + (
        "NH004,H02,王芳,,1982-02-02\n" * 1).encode("utf-8")
    path = tmp_path / "ncms.csv"
    path.write_bytes(body)
    assert detect_encoding(path) == "utf-8"
    data = _read(path)
    assert data.records["name"].tolist() == ["张伟", "包·巴特尔", "王芳"]
    rej = _reject(data, 4)
    assert rej["record_id"] == "NH003" and rej["column"] == "成员姓名"
    assert "not valid UTF-8" in rej["reason"] and "mixes encodings" in rej["reason"]


def test_mostly_gbk_file_with_one_utf8_row_rejects_that_row_without_mojibake(tmp_path):
    body = (HEADER + GOOD[0] + GOOD[1]).encode("gbk") + GOOD[2].encode("utf-8") + (
        "NH004,H02,王芳,,1982-02-02\n").encode("gbk")
    path = tmp_path / "ncms.csv"
    path.write_bytes(body)
    assert detect_encoding(path) == "gb18030"
    data = _read(path)
    assert data.records["name"].tolist() == ["张伟", "包·巴特尔", "王芳"]
    rej = _reject(data, 4)
    assert rej["record_id"] == "NH003" and "UTF-8 text in a gb18030 file" in rej["reason"]


def test_bom_is_removed_from_the_first_header_cell_whatever_utf8_is_declared(tmp_path):
    path = _write(tmp_path, HEADER + GOOD[0], encoding="utf-8-sig")
    for declared in ("auto", "utf-8", "utf-8-sig"):
        data = _read(path, encoding=declared)
        assert data.records["record_id"].tolist() == ["NH001"], declared


def test_bom_with_a_gbk_declaration_is_a_clear_error(tmp_path):
    path = _write(tmp_path, HEADER + GOOD[0], encoding="utf-8-sig")
    with pytest.raises(InputError, match=r"byte-order mark but the config says encoding: gbk"):
        read_source(_source(path, encoding="gbk"))


def test_utf16_file_is_a_clear_error(tmp_path):
    path = _write(tmp_path, HEADER + GOOD[0], encoding="utf-16")
    with pytest.raises(InputError, match=r"UTF-16.*CSV UTF-8"):
        read_source(_source(path))


# --------------------------------------------------------------------------- empty, header

def test_empty_file_is_a_clear_error(tmp_path):
    path = _write(tmp_path, "")
    with pytest.raises(InputError, match=rf"file {path} is empty \(no header row\)"):
        read_source(_source(path))


@pytest.mark.parametrize("text", ["\ufeff", "\n\n  \n", ",,,\n,,\n"])
def test_file_of_blank_lines_has_no_header_row(tmp_path, text):
    with pytest.raises(InputError, match=r"has no header row"):
        read_source(_source(_write(tmp_path, text)))


def test_header_only_file_reads_no_records(tmp_path):
    data = _read(_write(tmp_path, HEADER))
    assert data.records.empty and data.rejects.empty and data.counts == {"ncms": 0}


def test_header_lacking_a_mapped_column_names_file_row_column_and_a_suggestion(tmp_path):
    path = _write(tmp_path,
                  HEADER.replace("身份证号", "身份证号码") + GOOD[0].replace(",1965", ",1965"))
    with pytest.raises(InputError) as err:
        read_source(_source(path))
    message = str(err.value)
    assert f"{path} row 1" in message
    assert "id_number -> '身份证号' (did you mean '身份证号码'?)" in message


def test_header_holding_a_mapped_column_twice_is_a_clear_error(tmp_path):
    path = _write(tmp_path, "参合编号,家庭编号,成员姓名,身份证号,出生日期,成员姓名\n")
    with pytest.raises(InputError, match=r"row 1: column '成员姓名' appears 2 times.*cells 3, 6"):
        read_source(_source(path))


def test_file_without_a_header_row_masks_the_id_numbers_it_quotes(tmp_path):
    path = _write(tmp_path, "".join(GOOD))
    with pytest.raises(InputError) as err:
        read_source(_source(path))
    message = str(err.value)
    assert "Header has: NH001, H01, 张伟, 1505**************, 1965-03-12" in message
    assert "150521196503120016" not in message


def test_title_rows_above_the_header_are_skipped_and_rows_keep_their_numbers(tmp_path):
    titles = "通辽市科尔沁区2012年新农合参合人员名单,,,,\n制表单位：大林镇,,,,\n"
    text = titles + HEADER + "".join(GOOD)
    data = _read(_write(tmp_path, text))
    assert data.records["row"].tolist() == [4, 5, 6]
    assert data.counts == {"ncms": 3}


# --------------------------------------------------------------------------- record ids

def test_duplicate_record_ids_keep_the_first_row_and_reject_later_ones_naming_it(tmp_path):
    text = HEADER + GOOD[0] + GOOD[1] + GOOD[0] + "NH002,H01,包巴特尔,,19700101\n"
    data = _read(_write(tmp_path, text))
    assert data.records["row"].tolist() == [2, 3]
    assert _reject(data, 4)["reason"] == ("duplicate record id 'NH001': an exact copy of row 2 "
                                          "(that row is kept)")
    assert _reject(data, 5)["reason"] == ("duplicate record id 'NH002': the same record id as "
                                          "row 3 (that row is kept)")
    assert _reject(data, 5)["column"] == "参合编号"


def test_blank_record_id_is_rejected(tmp_path):
    data = _read(_write(tmp_path, HEADER + GOOD[0] + " ,H01,王芳,,1982-02-02\n"))
    assert _reject(data, 3)["reason"] == "record id is blank"


# --------------------------------------------------------------------------- enormous cells

def test_enormous_cell_of_10_mb_is_rejected_quickly_with_bounded_memory(tmp_path):
    huge = "张" * 3_500_000  # 10.5 MB in UTF-8, on one line
    path = _write(tmp_path, HEADER + GOOD[0] + f"NH002,H01,{huge},,19700101\n" + GOOD[2])
    tracemalloc.start()
    start = time.perf_counter()
    try:
        data = _read(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 10
    assert peak < 40 * 2**20, f"peak {peak / 2**20:.0f} MiB"
    assert data.records["record_id"].tolist() == ["NH001", "NH003"]
    rej = _reject(data, 3)
    assert rej["column"] == "成员姓名" and "longer than 1,048,576 bytes" in rej["reason"]


def test_cell_over_the_character_limit_is_rejected_even_in_an_unmapped_column(tmp_path):
    text = (HEADER.replace("\n", ",备注\n") + GOOD[0].replace("\n", ",无\n")
            + "NH002,H01,王芳,,1982-02-02," + "备" * (MAX_CELL_CHARS + 1) + "\n")
    data = _read(_write(tmp_path, text))
    rej = _reject(data, 3)
    assert rej["column"] == "备注"
    assert rej["reason"] == (f"cell of {MAX_CELL_CHARS + 1:,} characters, "
                             f"longer than the limit of {MAX_CELL_CHARS:,}")


# --------------------------------------------------------------------------- XLSX

def _workbook(path: Path, sheets: dict[str, list[list]], merges: dict[str, list[str]] = ()) -> Path:
    from openpyxl import Workbook

    wb = Workbook()
    wb.remove(wb.active)
    for title, rows in sheets.items():
        ws = wb.create_sheet(title)
        for row in rows:
            ws.append(row)
        for rng in dict(merges).get(title, []):
            ws.merge_cells(rng)
    wb.save(path)
    return path


XLSX_HEADER = ["参合编号", "家庭编号", "成员姓名", "身份证号", "出生日期"]
XLSX_ROWS = [["NH001", "H01", "张伟", "150521196503120016", "1965-03-12"],
             ["NH002", None, "包·巴特尔", None, "19700101"],
             ["NH003", None, "包·其其格", None, "19720304"],
             ["NH004", "H02", "王丽", "152301198011230029", "1980-11-23"]]


def test_xlsx_merged_cells_fill_their_range_and_a_merged_title_row_is_skipped(tmp_path):
    title = [["通辽市新农合参合名单", None, None, None, None]]
    path = _workbook(tmp_path / "ncms.xlsx", {"名单": title + [XLSX_HEADER] + XLSX_ROWS},
                     {"名单": ["A1:E1", "B3:B5"]})
    data = _read(path)
    assert data.records["household_id"].tolist() == ["H01", "H01", "H01", "H02"]
    assert data.records["row"].tolist() == [3, 4, 5, 6]
    assert data.rejects.empty


def test_xlsx_with_several_sheets_holding_data_needs_the_sheet_key(tmp_path):
    summary = [["乡镇", "人数"], ["大林镇", 4]]
    path = _workbook(tmp_path / "ncms.xlsx", {"汇总": summary, "名单": [XLSX_HEADER] + XLSX_ROWS})
    with pytest.raises(InputError, match=r"2 sheets holding data \(汇总, 名单\); set 'sheet'"):
        read_source(_source(path))
    records = _read(path, sheet="名单").records
    assert records["record_id"].tolist() == ["NH001", "NH002", "NH003", "NH004"]
    with pytest.raises(InputError,
                       match=r"sheet '花名册' not found; the workbook's sheets are: 汇总, 名单"):
        read_source(_source(path, sheet="花名册"))


def test_xlsx_with_one_sheet_holding_data_and_empty_ones_reads_that_sheet(tmp_path):
    path = _workbook(tmp_path / "ncms.xlsx", {"Sheet1": [], "名单": [XLSX_HEADER] + XLSX_ROWS,
                                              "Sheet3": []})
    assert len(_read(path).records) == 4


def test_file_named_xlsx_that_is_not_a_workbook_is_a_clear_error(tmp_path):
    path = _write(tmp_path, HEADER + GOOD[0], name="ncms.xlsx")
    with pytest.raises(InputError, match=r"ncms.xlsx is not a readable .xlsx workbook"):
        read_source(_source(path))


# --------------------------------------------------------------------------- SQL sources

def test_sql_table_name_with_quotes_and_semicolons_is_not_run_as_sql(tmp_path):
    url = f"sqlite:///{tmp_path}/src.sqlite"
    engine = sa.create_engine(url)
    pd.DataFrame({"参合编号": ["NH001"], "成员姓名": ["张伟"]}).to_sql("ncms", engine, index=False)
    source = SourceConfig(name="ncms", role="insurance", record_id="参合编号",
                          fields={"name": "成员姓名"}, url=url, table='ncms"; DROP TABLE ncms; --')
    with pytest.raises(InputError, match=r"table 'ncms\"; DROP TABLE ncms; --' not found"):
        read_source(source)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM ncms")).scalar() == 1
    engine.dispose()


def test_sql_columns_named_with_quotes_read_intact(tmp_path):
    url = f"sqlite:///{tmp_path}/src.sqlite"
    engine = sa.create_engine(url)
    pd.DataFrame({"id'; --": ["NH001", "NH002"], 'name"x': ["张伟", "O'Brien 王"]}).to_sql(
        "t", engine, index=False)
    engine.dispose()
    source = SourceConfig(name="ncms", role="insurance", record_id="id'; --",
                          fields={"name": 'name"x'}, url=url, table="t")
    frame, rejects, _ = read_source(source)
    assert frame["name"].tolist() == ["张伟", "O'Brien 王"] and rejects.empty


def test_sql_source_errors_hide_the_password(tmp_path):
    source = SourceConfig(name="ncms", role="insurance", record_id="参合编号", fields={},
                          url="postgresql+psycopg://clerk:s3cret@127.0.0.1:1/nodb",
                          query="SELECT 1")
    with pytest.raises(InputError) as err:
        read_source(source)
    assert "s3cret" not in str(err.value) and "***" in str(err.value)


# --------------------------------------------------------------------------- accounting

def test_accounting_check_passes_when_every_record_is_linked_or_rejected(tmp_path):
    data = _read(_write(tmp_path, HEADER + GOOD[0] + GOOD[0]))
    check_accounting(data.counts, data.records, data.rejects)


@pytest.mark.parametrize("corrupt, message", [
    (lambda c, k, r: ({"ncms": c["ncms"] + 1}, k, r),
     r"'ncms': records read 3 != linked 1 \+ rejected 1"),
    (lambda c, k, r: (c, k.iloc[0:0], r), r"records read 2 != linked 0 \+ rejected 1"),
    (lambda c, k, r: (c, pd.concat([k, k]), r.iloc[0:0]), r"ncms:NH001 is linked more than once"),
    (lambda c, k, r: (c, k.assign(entity_id=[None]), r), r"1 linked record\(s\) have no entity"),
    (lambda c, k, r: (c, k.assign(source="urban"), r), r"'urban': records read 0 != linked 1"),
])
def test_accounting_check_fails_loudly_on_corrupted_counts(tmp_path, corrupt, message):
    data = _read(_write(tmp_path, HEADER + GOOD[0] + GOOD[0]))
    linked = data.records.assign(entity_id="E1")
    with pytest.raises(AccountingError, match=message):
        check_accounting(*corrupt(data.counts, linked, data.rejects))


# --------------------------------------------------------------------------- whole runs

@pytest.fixture(scope="module")
def bad_world(tmp_path_factory) -> Path:
    """A small synthetic prefecture (400 persons) with the demo job's files."""
    from linkage.synth import generate_world, write_world

    root = tmp_path_factory.mktemp("bad_world")
    write_world(generate_world(400, seed=3), root / "data")
    return root / "data"


def _job(bad_world: Path, tmp_path: Path, **changes) -> Path:
    raw = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text(encoding="utf-8"))
    for source in raw["sources"]:
        source["path"] = str(bad_world / Path(source["path"]).name)
    raw.update(output=str(tmp_path / "out"), store=f"sqlite:///{tmp_path}/store.sqlite",
               training={"u_sample_pairs": 20_000})
    for source_name, update in changes.items():
        next(s for s in raw["sources"] if s["name"] == source_name).update(update)
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def test_whole_run_rejects_each_bad_row_with_its_reason_and_the_counts_add_up(bad_world, tmp_path,
                                                                              capsys):
    urban = (bad_world / "urban.csv").read_bytes()
    lines = urban.splitlines(keepends=True)
    header = lines[0].decode("utf-8-sig").strip().split(",")
    good = lines[1:]
    bad = [
        "CZ9000000001,刘芳,,2\n".encode(),  # ragged
        # quotes: fine
        'CZ9000000002,"王""小""明",,1,19800101,保康镇,永清社区,2019-09-27,1\n'.encode(),
        # newline: fine
        'CZ9000000003,"李\n娜",,2,19810101,保康镇,永清社区,2019-09-27,1\n'.encode(),
        "CZ9000000004,张桂英,,2,19500101,保康镇,永清社区,2019-09-27,1\n".encode("gbk"),  # GBK row
        good[0],  # duplicate record id (an exact copy)
        ("CZ9000000005," + "长" * 4_000_000
         + ",,2,19500101,保康镇,永清社区,2019-09-27,1\n").encode(),
    ]
    path = bad_world.parent / "urban_bad.csv"
    path.write_bytes(b"".join([lines[0], *good[:10], *bad, *good[10:]]))
    config = _job(bad_world, tmp_path, urban={"path": str(path)})

    assert main(["run", str(config), "--quiet"]) == 0
    out = tmp_path / "out"
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    per = summary["records"]["per_source"]["urban"]
    assert per["read"] == len(good) + len(bad) == per["linked"] + per["rejected"]
    assert per["rejected"] == 4
    rejects = pd.read_csv(out / "rejects.csv", dtype=str, keep_default_na=False)
    reasons = dict(zip(rejects["record_id"],
                       zip(rejects["row"], rejects["column"], rejects["reason"])))
    assert reasons["CZ9000000001"][:2] == ("12", header[4])
    assert "cells" in reasons["CZ9000000001"][2]
    assert reasons["CZ9000000004"][:2] == ("15", "xm") and "UTF-8" in reasons["CZ9000000004"][2]
    assert "exact copy of row 2" in reasons[good[0].decode().split(",")[0]][2]
    assert reasons["CZ9000000005"][1] == "xm" and "longer than" in reasons["CZ9000000005"][2]
    clusters = pd.read_csv(out / "clusters.csv", dtype=str)
    assert {"CZ9000000002", "CZ9000000003"} <= set(clusters["record_id"])
    assert summary["records"]["read"] == len(clusters) + len(rejects)


def test_whole_run_stops_on_a_gbk_file_declared_utf8(bad_world, tmp_path, capsys):
    config = _job(bad_world, tmp_path, ncms={"encoding": "utf-8"})
    assert main(["run", str(config), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"{bad_world / 'ncms.csv'} row 1 (the header) is unreadable: not valid UTF-8" in err


def test_whole_run_stops_on_a_source_path_that_does_not_exist(bad_world, tmp_path, capsys):
    config = _job(bad_world, tmp_path, police={"path": str(tmp_path / "polise.csv")})
    assert main(["run", str(config), "--quiet"]) == 2
    err = capsys.readouterr().err
    missing = tmp_path / "polise.csv"
    assert f"source 'police': file {missing} does not exist (config key 'path'" in err


def test_whole_run_refuses_to_finish_when_a_record_goes_missing(bad_world, tmp_path, monkeypatch):
    """Fault injection: a stage that loses one record must stop the run, not write outputs."""
    import linkage.jobs.run as pipeline
    from linkage.core.config import load_config
    from linkage.store import Store

    real_ingest = pipeline.standardised_job

    def losing_one(*args, **kwargs):
        data, state = real_ingest(*args, **kwargs)
        data.records = data.records.iloc[1:].reset_index(drop=True)
        return data, state

    monkeypatch.setattr(pipeline, "standardised_job", losing_one)
    config = load_config(_job(bad_world, tmp_path))
    with pytest.raises(AccountingError,
                       match=r"'police': records read 400 != linked 399 \+ rejected 0"):
        run(config)
    assert not (tmp_path / "out" / "clusters.csv").exists()
    assert Store(config.store).last_complete_run(config.job) is None


def test_cell_holding_a_nul_character_is_rejected(tmp_path):
    text = HEADER + GOOD[0] + "NH002,H01,包巴特尔\x00\x00,,19700101\n" + GOOD[2]
    data = _read(_write(tmp_path, text))
    rej = _reject(data, 3)
    assert (rej["column"], rej["reason"]) == ("成员姓名", "a cell holds a NUL character")
    assert data.records["record_id"].tolist() == ["NH001", "NH003"]
