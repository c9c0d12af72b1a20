"""The streaming XLSX writer: text stays text, numbers stay numbers, long tables split."""
import numpy as np
import pandas as pd
from openpyxl import load_workbook

from linkage.outputs import xlsx
from linkage.outputs.xlsx import Sheet, column_letters, write_xlsx

AWKWARD = ["000123", "15052319770101001X", "150521196503120018", "=SUM(A1:A3)", "a&b<c>'\"",
           " leading space", "张·巴特尔", "1.50521E+17", "bad\x01char"]


def test_text_cells_keep_every_value_as_text(tmp_path):
    frame = pd.DataFrame({"id": AWKWARD, "amount": [250.0, np.nan, 0.0, 125.5, 1, 2, 3, 4, 5],
                          "count": range(9)})
    path = tmp_path / "t.xlsx"
    write_xlsx(path, [Sheet("名册 roster", frame, ["公民身份号码 id", "缴费金额 amount", "count"])])
    ws = load_workbook(path).worksheets[0]
    assert ws.title == "名册 roster"
    assert [c.value for c in ws[1]] == ["公民身份号码 id", "缴费金额 amount", "count"]
    got = [ws.cell(row=i + 2, column=1) for i in range(len(AWKWARD))]
    expected = AWKWARD[:-1] + ["badchar"]  # a control character XML cannot hold is dropped
    assert [c.value for c in got] == expected
    assert all(c.data_type == "s" and c.number_format == "@" for c in got)
    assert ws.cell(row=2, column=2).value == 250.0
    assert ws.cell(row=2, column=2).data_type == "n"
    assert ws.cell(row=3, column=2).value is None
    assert ws.cell(row=5, column=2).value == 125.5
    assert ws.cell(row=10, column=3).value == 8
    assert ws.freeze_panes == "A2"


def test_blank_text_cells_are_empty_and_keep_positions(tmp_path):
    frame = pd.DataFrame({"a": ["x", None, ""], "b": ["1", "2", "3"]})
    path = tmp_path / "t.xlsx"
    write_xlsx(path, [Sheet("s", frame, ["a", "b"])])
    ws = load_workbook(path).worksheets[0]
    assert [[c.value for c in row] for row in ws.iter_rows(min_row=2)] == [
        ["x", "1"], [None, "2"], [None, "3"]]


def test_a_table_longer_than_a_sheet_continues_on_the_next(tmp_path, monkeypatch):
    monkeypatch.setattr(xlsx, "MAX_SHEET_ROWS", 4)  # header + 3 rows per sheet
    frame = pd.DataFrame({"id": [f"{i:018d}" for i in range(7)]})
    path = tmp_path / "t.xlsx"
    write_xlsx(path, [Sheet("roster", frame, ["id"]), Sheet("empty", frame.iloc[:0], ["id"])])
    wb = load_workbook(path)
    assert wb.sheetnames == ["roster", "roster (2)", "roster (3)", "empty"]
    values = [c.value for ws in wb.worksheets[:3] for c in ws["A"][1:]]
    assert values == list(frame["id"])
    assert wb["empty"].max_row == 1


def test_column_letters():
    letters = column_letters(53)
    assert letters[:3] == ["A", "B", "C"]
    assert letters[25:28] == ["Z", "AA", "AB"]
    assert letters[-1] == "BA"
