"""Write an output table as CSV (for systems) and XLSX (for the office), IDs kept as text.

The CSV is UTF-8 with a byte-order mark so Excel shows the Chinese, and every value is plain text
exactly as a system should read it (``pandas.read_csv(path, dtype=str)`` gets the IDs back
intact). Opening a CSV by double-click in Excel still turns an 18-digit ID into 1.50502E+17,
and no plain-CSV trick prevents that without changing the value another program reads (``="…"``
is a formula to pandas, a leading tab or apostrophe is part of the value). So the office gets an
XLSX beside each CSV, where every ID cell is a text cell, and README_outputs.txt says so.
The one change to a value: a text cell a spreadsheet would run as a formula (``=…``, ``+…``,
``-…``, ``@…``) gets a leading apostrophe in the CSV, and a CR inside a cell becomes a line
feed (:func:`neutralise_formulas`); the XLSX keeps the value as it came, as a text cell.
"""
from __future__ import annotations

import csv
import io
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from linkage.outputs import rows
from linkage.outputs.xlsx import Sheet, write_xlsx

LABELS = {
    "entity_id": "人员实体编号", "resident_id": "公民身份号码(社会保障号码)", "name": "姓名",
    "gender": "性别", "ethnicity": "民族", "birth_date": "出生日期", "township": "乡镇苏木",
    "village": "村嘎查", "address": "户籍地址", "household_id": "户号", "schemes": "参保险种",
    "n_enrolments": "参保次数", "tier": "参保档次", "subsidy": "补助类别",
    "insurance_household_ids": "参保家庭编号", "record_ids": "来源记录", "remarks": "备注",
    "reason": "原因", "scheme": "险种", "source": "来源", "record_id": "记录编号",
    "name_entered": "录入姓名", "id_entered": "录入身份证号", "id_status": "身份证号状态",
    "birth_date_entered": "录入出生日期", "gender_entered": "录入性别", "clerk": "录入员",
    "receipt": "收据号", "records_in_entity": "同一人记录数", "status": "核实状态",
    "enrolment_no": "参保序号", "amount": "缴费金额", "enrolled_on": "参保日期",
    "reason_codes": "原因代码", "evidence": "比对结果", "probability": "匹配概率",
    "waiting_for": "待办事项", "record": "户籍记录", "relation": "与户主关系",
    "registry_status": "人员状态",
}
# What makes a spreadsheet read a cell as a formula (OWASP's list for CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_RISKY_FIRST = frozenset(FORMULA_START)


def header(column: str) -> str:
    """'公民身份号码(社会保障号码) resident_id': the office reads the Chinese, the data team
    finds the CSV column name."""
    label = LABELS.get(column)
    return f"{label} {column}" if label else column


def write_csv(frame: pd.DataFrame, path: Path, float_format: str | None = None,
              encoding: str = "utf-8-sig", neutralise: bool = True) -> Path:
    """UTF-8 with BOM (the office's files; the data team's: ``encoding="utf-8"``), no index,
    text that a spreadsheet would run as a formula neutralised (unless not ``neutralise``:
    the data team's files, read by programs, hold the values as they are).

    The bytes are those of ``neutralise_formulas(frame).to_csv(path, index=False, ...)``
    (``frame.to_csv(...)`` without ``neutralise``), made
    a column at a time (:func:`_csv_fields`) and joined into rows by Arrow: pandas' writer
    formats, quotes and encodes every cell in Python. A table the fast path does not cover
    (one column, dates, categories, another encoding) goes through pandas itself.
    """
    if not _fast_csv(frame, encoding):
        (neutralise_formulas(frame) if neutralise else frame).to_csv(
            path, index=False, encoding=encoding, float_format=float_format)
        return path
    with open(path, "wb") as fh:
        write_rows = _csv_writer(fh, frame, float_format, encoding, neutralise)
        for start in range(0, len(frame), CSV_CHUNK_ROWS):
            write_rows(frame.iloc[start:start + CSV_CHUNK_ROWS])
    return path


def _csv_writer(fh, frame: pd.DataFrame, float_format: str | None, encoding: str,
                neutralise: bool = True):
    """Write the header to ``fh``; return what writes a chunk of rows (with its columns as
    Arrow text when made already)."""
    header = io.StringIO()
    csv.writer(header, lineterminator=os.linesep).writerow(list(frame.columns))
    fh.write(header.getvalue().encode(encoding))  # utf-8-sig: the BOM, once

    def write_rows(chunk: pd.DataFrame, texts: list | None = None) -> None:
        fh.write(rows.join_rows([_csv_fields(chunk.iloc[:, j], float_format,
                                             rows.UNSET if texts is None else texts[j],
                                             neutralise)
                                 for j in range(chunk.shape[1])], b",", os.linesep.encode()))
    return write_rows


@contextmanager
def csv_beside(frame: pd.DataFrame, path: Path, float_format: str | None = None,
               encoding: str = "utf-8-sig"):
    """The CSV of :func:`write_csv` written beside an XLSX sheet of the same frame: yields
    the sheet's ``also`` (each chunk's columns made Arrow text once, for both files: that
    conversion was the writers' largest cost), or None when the CSV was written on its own
    (a table the fast path does not cover)."""
    if not _fast_csv(frame, encoding):
        write_csv(frame, path, float_format, encoding)
        yield None
        return
    with open(path, "wb") as fh:
        yield _csv_writer(fh, frame, float_format, encoding)


CSV_CHUNK_ROWS = 100_000


def _quoted_by_csv() -> frozenset[str]:
    """The characters that make Python's csv writer quote a field, found by asking it: no
    other character is (tests/outputs/test_fast_paths.py checks all of Unicode)."""
    quoted = set()
    for c in map(chr, range(128)):
        out = io.StringIO()
        csv.writer(out, lineterminator=os.linesep).writerow(["a" + c + "b", "x"])
        if out.getvalue() != f"a{c}b,x{os.linesep}":
            quoted.add(c)
    return frozenset(quoted)


_QUOTED = _quoted_by_csv()


# A field that needs more than its text: quoting, or neutralising (a formula start, a CR).
_CARE_ANYWHERE = rows.byte_set(_QUOTED | {"\r"})
_CARE_FIRST = rows.byte_set(FORMULA_START)
_QUOTED_BYTES = rows.byte_set(_QUOTED)  # what makes a field need more than its text, as is


def _fast_csv(frame: pd.DataFrame, encoding: str) -> bool:
    """Tables :func:`_csv_fields` writes exactly as pandas would: two or more columns (a lone
    blank field is written '""'), of text, integers, booleans or floats."""
    if encoding.lower().replace("_", "-") not in ("utf-8-sig", "utf-8", "utf8"):
        return False
    return len(frame.columns) >= 2 and all(
        isinstance(d, np.dtype) and d.kind in "biufO" for d in frame.dtypes)


def _csv_fields(values: pd.Series, float_format: str | None, text=rows.UNSET,
                neutralise: bool = True) -> pa.Array:
    """Each cell of a column as its CSV field (neutralised unless not ``neutralise``,
    quoted), in UTF-8.

    Text that needs no quoting and holds no formula (nearly every column) is written as it is;
    text that does is fixed once per distinct value. Integers are written as str() writes them,
    as pandas does; floats, booleans and mixed objects are formatted by pandas itself (the
    same writer on the column alone), so they match exactly.
    """
    if values.dtype.kind in "iu":
        return pc.cast(pa.array(values.to_numpy()), pa.large_string()).cast(rows.BYTES)
    text = rows.text_array(values) if text is rows.UNSET else text
    care = _CARE_ANYWHERE if neutralise else _QUOTED_BYTES
    if text is not None and not (rows.holds_any(text, care)
                                 or (neutralise and rows.starts_with_any(text, _CARE_FIRST))):
        return text.cast(rows.BYTES).fill_null(rows.EMPTY)
    if text is not None:
        codes, uniques = pd.factorize(values.to_numpy(dtype=object), use_na_sentinel=True)
        fields = [_csv_quote(_neutral(v) if neutralise and (v[:1] in _RISKY_FIRST or "\r" in v)
                             else v) for v in uniques]
        fields = rows.as_bytes(rows.encode_all([*fields, ""]))
        return fields.take(pa.array(np.where(codes < 0, len(fields) - 1, codes)))
    return rows.as_bytes(rows.encode_all(_pandas_fields(values, float_format, neutralise)))


def _csv_quote(text: str) -> str:
    if any(c in _QUOTED for c in text):
        return '"' + text.replace('"', '""') + '"'
    return text


def _pandas_fields(values: pd.Series, float_format: str | None,
                   neutralise: bool = True) -> list[str]:
    """The column's fields as pandas writes them: the column beside a sentinel column, split
    at the sentinels (the fields then never hold one: checked, else one by one)."""
    column = values.reset_index(drop=True).to_frame("v")
    column = neutralise_formulas(column) if neutralise else column
    text = column.assign(s="\x01").to_csv(index=False, header=False, float_format=float_format,
                                           lineterminator="\n")
    fields = text.split(",\x01\n")
    if text.count("\x01") == len(values) and len(fields) == len(values) + 1:
        return fields[:-1]
    return [column.iloc[i:i + 1].assign(s="").to_csv(
        index=False, header=False, float_format=float_format, lineterminator="\n")[:-2]
        for i in range(len(values))]


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with every text cell that starts like a formula prefixed with ``'``.

    Excel and WPS run a cell that starts with = + - @ (or a tab or CR before one) as a formula,
    so a village or clerk named ``=HYPERLINK(...)`` in a source file would act on the office's
    machine (OWASP, CSV injection). The quote makes it text; Excel hides it. A CR inside a cell
    becomes a line feed: the CSV writer quotes a cell holding a line feed but not one holding
    a bare CR, which every reader takes for the end of the row, so ``a\\r=1`` would start a row
    with a formula. Only text is touched, by each value's type: numbers (a weight of -3.2,
    counts, rates) stay numbers. A copy is made only when some cell needs it (one pass over
    the column in Python: 0.24 s for a 100,000-row roster).
    """
    out = frame
    for column in frame.columns:
        values = frame[column]
        if values.dtype.kind in "biufcmM":
            continue
        cells = values.to_numpy(dtype=object)
        hit = np.fromiter((isinstance(v, str) and (v[:1] in _RISKY_FIRST or "\r" in v)
                           for v in cells), dtype=bool, count=len(cells))
        if hit.any():
            fixed = cells.copy()
            fixed[hit] = [_neutral(value) for value in fixed[hit]]
            if out is frame:
                out = frame.copy(deep=False)
            out[column] = fixed
    return out


def _neutral(text: str) -> str:
    text = "'" + text if text[:1] in _RISKY_FIRST else text
    return text.replace("\r\n", "\n").replace("\r", "\n")


def write_table(frame: pd.DataFrame, out_dir: Path, stem: str, sheet: str) -> list[Path]:
    """``stem``.csv and ``stem``.xlsx; amounts with two decimals in the CSV, numbers in the XLSX."""
    csv_path, xlsx_path = out_dir / f"{stem}.csv", out_dir / f"{stem}.xlsx"
    with csv_beside(frame, csv_path, float_format="%.2f") as also:
        write_xlsx(xlsx_path, [Sheet(sheet, frame, [header(c) for c in frame.columns],
                                     also=also)])
    return [csv_path, xlsx_path]
