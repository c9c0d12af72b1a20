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

from pathlib import Path

import numpy as np
import pandas as pd

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
              encoding: str = "utf-8-sig") -> Path:
    """UTF-8 with BOM (the office's files; the data team's: ``encoding="utf-8"``), no index,
    text that a spreadsheet would run as a formula neutralised."""
    neutralise_formulas(frame).to_csv(path, index=False, encoding=encoding,
                                      float_format=float_format)
    return path


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
    csv_path = write_csv(frame, out_dir / f"{stem}.csv", float_format="%.2f")
    xlsx_path = out_dir / f"{stem}.xlsx"
    write_xlsx(xlsx_path, [Sheet(sheet, frame, [header(c) for c in frame.columns])])
    return [csv_path, xlsx_path]
