"""Reading sources: encodings, XLSX, SQL, and rejects that name file, row and column."""
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from linkage.core.config import SourceConfig
from linkage.jobs.ingest import InputError, detect_encoding, ingest, read_source

HEADER = "参合编号,成员姓名,身份证号,出生日期\n"
ROWS = [
    "NH001,张伟,150521196503120016,1965-03-12\n",
    "NH002,包·巴特尔,,19700101\n",
]


def _source(path: Path, **kw) -> SourceConfig:
    return SourceConfig(name="ncms", role="insurance", record_id="参合编号",
                        fields={"name": "成员姓名", "id_number": "身份证号",
                                "birth_date": "出生日期"},
                        path=path, **kw)


@pytest.mark.parametrize("encoding, expected", [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"),
                                                ("gbk", "gb18030"), ("gb18030", "gb18030")])
def test_encodings_are_detected(tmp_path, encoding, expected):
    path = tmp_path / "ncms.csv"
    path.write_bytes((HEADER + "".join(ROWS)).encode(encoding))
    assert detect_encoding(path) == expected
    frame, rejects, used = read_source(_source(path))
    assert frame["name"].tolist() == ["张伟", "包·巴特尔"]
    assert rejects.empty


def test_unusable_rows_become_rejects_with_row_and_column(tmp_path):
    path = tmp_path / "ncms.csv"
    path.write_text(
        HEADER
        + ROWS[0]
        + "NH003,李娜,extra,cell,here\n"  # ragged (line 3)
        + ",王芳,,1980-01-02\n"  # blank record id (line 4)
        + "NH001,张伟,150521196503120016,1965-03-12\n"  # duplicate id (line 5)
        + "NH004,,,1990-01-01\n"  # nothing to link on (line 6)
        + '"NH005","赵""小""红","",""\n',  # quotes inside a field: fine
        encoding="utf-8",
    )
    data = ingest([_source(path)])
    assert data.records["record_id"].tolist() == ["NH001", "NH005"]
    assert data.records["name"].tolist() == ["张伟", '赵"小"红']
    rej = data.rejects.set_index("row")
    assert set(rej.index) == {3, 4, 5, 6}
    assert "cells" in rej.loc[3, "reason"]
    assert rej.loc[4, "column"] == "参合编号"
    assert "duplicate" in rej.loc[5, "reason"]
    assert rej.loc[6, "column"] == "成员姓名"
    assert (rej["file"] == str(path)).all()
    assert data.counts["ncms"] == len(data.records) + len(data.rejects)


def test_missing_mapped_column_names_the_file_and_column(tmp_path):
    path = tmp_path / "ncms.csv"
    path.write_text("参合编号,姓名\nNH1,张伟\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"成员姓名.*Header has"):
        read_source(_source(path))


def test_empty_file_is_a_clear_error(tmp_path):
    path = tmp_path / "ncms.csv"
    path.write_text("", encoding="utf-8")
    with pytest.raises(InputError, match="empty"):
        read_source(_source(path))


def test_xlsx_keeps_ids_as_text(tmp_path):
    path = tmp_path / "ncms.xlsx"
    pd.DataFrame({"参合编号": ["NH001"], "成员姓名": ["张伟"], "身份证号": ["15052119650312001X"],
                  "出生日期": ["1965-03-12"]}).to_excel(path, index=False)
    frame, rejects, encoding = read_source(_source(path))
    assert encoding == "xlsx"
    assert frame["id_number"].tolist() == ["15052119650312001X"]


def test_sql_table_source(tmp_path):
    url = f"sqlite:///{tmp_path}/src.sqlite"
    engine = sa.create_engine(url)
    pd.DataFrame({"参合编号": ["NH001", "NH002"], "成员姓名": ["张伟", "李娜"],
                  "身份证号": ["150521196503120016", None],
                  "出生日期": ["1965-03-12", "1980-05-06"]}
                 ).to_sql("ncms", engine, index=False)
    source = SourceConfig(name="ncms", role="insurance", record_id="参合编号",
                          fields={"name": "成员姓名", "id_number": "身份证号",
                                  "birth_date": "出生日期"},
                          url=url, table="ncms")
    frame, rejects, encoding = read_source(source)
    assert frame["record_id"].tolist() == ["NH001", "NH002"]
    assert frame["id_number"].tolist() == ["150521196503120016", ""]


def test_gbk_detected_when_the_sample_ends_inside_a_character(tmp_path):
    path = tmp_path / "ncms.csv"
    body = HEADER + "".join(f"NH{i:06d},王芳芳,,1980-01-02\n" for i in range(60_000))
    path.write_bytes(body.encode("gbk"))
    for size in (1 << 12, (1 << 12) + 1):  # cut after and inside a two-byte character
        assert detect_encoding(path, sample_bytes=size) == "gb18030"
