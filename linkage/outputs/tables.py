"""Write an output table as CSV (for systems) and XLSX (for the office), IDs kept as text.

The CSV is UTF-8 with a byte-order mark so Excel shows the Chinese, and every value is plain text
exactly as a system should read it (``pandas.read_csv(path, dtype=str)`` gets the IDs back
intact). Opening a CSV by double-click in Excel still turns an 18-digit ID into 1.50502E+17,
and no plain-CSV trick prevents that without changing the value another program reads (``="…"``
is a formula to pandas, a leading tab or apostrophe is part of the value). So the office gets an
XLSX beside each CSV, where every ID cell is a text cell, and README_outputs.txt says so.
"""
from __future__ import annotations

from pathlib import Path

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


def header(column: str) -> str:
    """'公民身份号码(社会保障号码) resident_id': the office reads the Chinese, the data team
    finds the CSV column name."""
    label = LABELS.get(column)
    return f"{label} {column}" if label else column


def write_csv(frame: pd.DataFrame, path: Path, float_format: str | None = None) -> Path:
    """UTF-8 with BOM, plain values, no index."""
    frame.to_csv(path, index=False, encoding="utf-8-sig", float_format=float_format)
    return path


def write_table(frame: pd.DataFrame, out_dir: Path, stem: str, sheet: str) -> list[Path]:
    """``stem``.csv and ``stem``.xlsx; amounts with two decimals in the CSV, numbers in the XLSX."""
    csv_path = write_csv(frame, out_dir / f"{stem}.csv", float_format="%.2f")
    xlsx_path = out_dir / f"{stem}.xlsx"
    write_xlsx(xlsx_path, [Sheet(sheet, frame, [header(c) for c in frame.columns])])
    return [csv_path, xlsx_path]
