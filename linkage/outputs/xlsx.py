"""A streaming XLSX writer that keeps every text cell text.

Why not openpyxl's writer: without lxml it builds one XML element per cell (about 100 µs a row
here), so a prefecture's million-row roster would take minutes. Here each column of a chunk of
rows becomes XML through vectorised string operations. Every string cell is an inline string
with the Text number format ('@'), so Excel never turns a resident ID, household code or receipt
number into a number, and a value starting with '=' stays text instead of becoming a formula.
Numeric columns stay numbers (amounts can be summed). openpyxl reads the files back.
"""
from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

MAX_SHEET_ROWS = 1_048_576  # Excel's limit per sheet, the header row included
STYLE_TEXT, STYLE_HEADER, STYLE_NUMBER = 1, 2, 3
_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_NEEDS_ESCAPE = re.compile("[&<>\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
_TEXT_CELL = '<c t="inlineStr" s="1"><is><t xml:space="preserve">'
_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_STYLES = (
    f'{_HEAD}<styleSheet xmlns="{_MAIN}">'
    '<numFmts count="1"><numFmt numFmtId="164" formatCode="0.00"/></numFmts>'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="4"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="49" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="49" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1" '
    'applyNumberFormat="1"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '</cellXfs><cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/>'
    '</cellStyles></styleSheet>'
)


@dataclass
class Sheet:
    """One table for a workbook: ``headers`` label the frame's columns in row 1."""

    name: str
    frame: pd.DataFrame
    headers: list[str]


def write_xlsx(path: Path, sheets: list[Sheet], chunk_rows: int = 50_000) -> None:
    """Write the tables as one workbook; a table longer than Excel allows continues on more
    sheets."""
    parts: list[tuple[str, pd.DataFrame, list[str]]] = []
    for sheet in sheets:
        per_sheet = MAX_SHEET_ROWS - 1
        pieces = max(1, -(-len(sheet.frame) // per_sheet))
        for k in range(pieces):
            name = sheet.name if k == 0 else f"{sheet.name} ({k + 1})"
            parts.append((_sheet_name(name), sheet.frame.iloc[k * per_sheet:(k + 1) * per_sheet],
                          sheet.headers))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("[Content_Types].xml", _content_types(len(parts)))
        zf.writestr("_rels/.rels", f'{_HEAD}<Relationships xmlns="{_PKG}"><Relationship Id="rId1" '
                    f'Type="{_REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>')
        zf.writestr("xl/workbook.xml", _workbook([(name, frame) for name, frame, _ in parts]))
        zf.writestr("xl/_rels/workbook.xml.rels", _workbook_rels(len(parts)))
        zf.writestr("xl/styles.xml", _STYLES)
        for i, (_, frame, headers) in enumerate(parts, start=1):
            with zf.open(f"xl/worksheets/sheet{i}.xml", "w") as fh:
                for piece in _sheet_xml(frame, headers, chunk_rows):
                    fh.write(piece.encode("utf-8"))


def column_letters(n: int) -> list[str]:
    """'A', 'B', ..., 'Z', 'AA', ... for the first n columns."""
    out = []
    for i in range(1, n + 1):
        name = ""
        while i:
            i, r = divmod(i - 1, 26)
            name = chr(65 + r) + name
        out.append(name)
    return out


def _sheet_name(name: str) -> str:
    return re.sub(r"[\[\]:*?/\\]", "_", name)[:31]


def _is_number(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _escape(values: pd.Series) -> pd.Series:
    """XML-escaped text; the common case (nothing to escape) is one scan of the joined column."""
    if not _NEEDS_ESCAPE.search("\n".join(values.tolist())):
        return values
    text = values.str.replace("&", "&amp;", regex=False).str.replace("<", "&lt;", regex=False)
    text = text.str.replace(">", "&gt;", regex=False)
    if text.str.contains(_ILLEGAL_XML).any():
        text = text.str.replace(_ILLEGAL_XML, "", regex=True)
    return text


def _cells(series: pd.Series) -> np.ndarray:
    """The XML of one column's cells for a chunk of rows ('' where the value is blank).

    Cells carry no 'r' reference (optional in the format): each row writes all its cells in
    order, and a blank cell is written as an empty styled cell so positions stay right. The XML
    is built once per distinct value (gender, village, tier repeat thousands of times).
    """
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    if _is_number(series):
        values = np.asarray(uniques, dtype=np.float64)
        text = pd.Series(values).map(repr).to_numpy(dtype=object)
        cells = f'<c s="{STYLE_NUMBER}"><v>' + text + "</v></c>"
        cells[~np.isfinite(values)] = "<c/>"
        blank = "<c/>"
    else:
        text = pd.Series(np.asarray(uniques, dtype=object), dtype=object)
        if pd.api.types.infer_dtype(text, skipna=False) != "string":
            text = text.astype(str)
        cells = _TEXT_CELL + _escape(text).to_numpy(dtype=object) + "</t></is></c>"
        blank = f'<c s="{STYLE_TEXT}"/>'
        cells[(text == "").to_numpy()] = blank
    return np.append(cells, blank).astype(object)[codes]  # code -1 (missing) is blank


def _display_width(values: pd.Series) -> float:
    """Characters as Excel shows them: a Chinese character is about two Latin ones wide."""
    text = values.dropna().astype(str).head(2000)
    if text.empty:
        return 0.0
    wide = text.str.count(r"[\u2e80-\u9fff\uff00-\uffef]")
    return float((text.str.len() + wide).quantile(0.95))


def _col_xml(j: int, values: pd.Series, header: str) -> str:
    """Width from the header and the values; text columns default to the Text format, so an ID
    a user types into an empty cell stays text too."""
    header_width = len(header) + len(re.findall(r"[\u2e80-\u9fff\uff00-\uffef]", header))
    width = min(max(_display_width(values), header_width) + 2, 60)
    style = "" if _is_number(values) else f' style="{STYLE_TEXT}"'
    return f'<col min="{j}" max="{j}" width="{width:.1f}" customWidth="1"{style}/>'


def _sheet_xml(frame: pd.DataFrame, headers: list[str], chunk_rows: int):
    ncol = len(frame.columns)
    letters = column_letters(max(ncol, 1))
    last = f"{letters[ncol - 1] if ncol else 'A'}{len(frame) + 1}"
    cols = "".join(_col_xml(j, frame[c], str(h))
                   for j, (c, h) in enumerate(zip(frame.columns, headers), start=1))
    cols_xml = "<cols>" + cols + "</cols>" if cols else ""
    yield (f'{_HEAD}<worksheet xmlns="{_MAIN}" xmlns:r="{_REL}"><dimension ref="A1:{last}"/>'
           '<sheetViews><sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" '
           'activePane="bottomLeft" state="frozen"/><selection pane="bottomLeft"/></sheetView>'
           f'</sheetViews><sheetFormatPr defaultRowHeight="15"/>{cols_xml}'
           "<sheetData>")
    header = _escape(pd.Series([str(h) for h in headers], dtype=object))
    yield '<row r="1">' + "".join(
        f'<c r="{letters[j]}1" t="inlineStr" s="{STYLE_HEADER}"><is><t>{h}</t></is></c>'
        for j, h in enumerate(header)) + "</row>"
    for start in range(0, len(frame), chunk_rows):
        chunk = frame.iloc[start:start + chunk_rows]
        rows = np.arange(start + 2, start + 2 + len(chunk)).astype(str).astype(object)
        parts = [('<row r="' + rows + '">'), *(_cells(chunk[c]) for c in chunk.columns),
                 np.full(len(chunk), "</row>", dtype=object)]
        # row-major through the (rows x cells) table: one join per chunk, no growing strings
        yield "".join(np.column_stack(parts).ravel().tolist())
    yield f'</sheetData><autoFilter ref="A1:{last}"/></worksheet>'


def _content_types(n: int) -> str:
    sheets = "".join(
        f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>' for i in range(1, n + 1))
    return (f'{_HEAD}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
            'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
            'officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/styles.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
            f"{sheets}</Types>")


def _workbook(parts: list[tuple[str, pd.DataFrame]]) -> str:
    sheets, names = [], []
    for i, (name, frame) in enumerate(parts, start=1):
        quoted = _escape(pd.Series([name], dtype=object))[0]
        sheets.append(f'<sheet name="{quoted}" sheetId="{i}" r:id="rId{i}"/>')
        last = f"{column_letters(max(len(frame.columns), 1))[-1]}{len(frame) + 1}"
        ref = "'" + quoted.replace("'", "''") + "'"
        names.append(f'<definedName name="_xlnm._FilterDatabase" localSheetId="{i - 1}" '
                     f'hidden="1">{ref}!$A$1:${re.sub(r"[0-9]", "", last)}${len(frame) + 1}'
                     "</definedName>")
    return (f'{_HEAD}<workbook xmlns="{_MAIN}" xmlns:r="{_REL}"><bookViews><workbookView/>'
            f'</bookViews><sheets>{"".join(sheets)}</sheets>'
            f'<definedNames>{"".join(names)}</definedNames></workbook>')


def _workbook_rels(n: int) -> str:
    rels = "".join(f'<Relationship Id="rId{i}" Type="{_REL}/worksheet" '
                   f'Target="worksheets/sheet{i}.xml"/>' for i in range(1, n + 1))
    return (f'{_HEAD}<Relationships xmlns="{_PKG}">{rels}<Relationship Id="rId{n + 1}" '
            f'Type="{_REL}/styles" Target="styles.xml"/></Relationships>')
