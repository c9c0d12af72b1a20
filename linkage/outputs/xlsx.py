"""A streaming XLSX writer that keeps every text cell text.

Why not openpyxl's writer: without lxml it builds one XML element per cell (about 100 µs a row
here), so a prefecture's million-row roster would take minutes. Here each column of a chunk of
rows becomes XML in Arrow (linkage/outputs/rows.py), text columns without a Python step per
cell, and a second thread deflates one chunk while the next is made. Every string cell is an
inline string with the Text number format ('@'), so Excel never turns a resident ID, household
code or receipt number into a number, and a value starting with '=' stays text instead of
becoming a formula.
Numeric columns stay numbers (amounts can be summed): integer columns (counts) show as 1, other
numbers with two decimals. A sheet may carry a note (the run it comes from) in its page header,
printed on every page and shown in Excel's Page Layout view, and the workbook a title and
description (File > Info): kept out of the cells, so a table read back is the table written.
openpyxl reads the files back.
"""
from __future__ import annotations

import re
import zipfile
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from linkage.outputs import rows

MAX_SHEET_ROWS = 1_048_576  # Excel's limit per sheet, the header row included
STYLE_TEXT, STYLE_HEADER, STYLE_NUMBER, STYLE_INTEGER = 1, 2, 3, 4
_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_NEEDS_ESCAPE = re.compile("[&<>\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
_CORE = "http://schemas.openxmlformats.org/package/2006/metadata/core-properties"
_TEXT_CELL = '<c t="inlineStr" s="1"><is><t xml:space="preserve">'
_CELL_START, _CELL_END = rows.scalar(_TEXT_CELL.encode()), rows.scalar(b"</t></is></c>")
_BLANK_TEXT = rows.scalar(f'<c s="{STYLE_TEXT}"/>'.encode())
_ROW_START, _ROW_MID, _ROW_END = (rows.scalar(b) for b in (b'<row r="', b'">', b"</row>"))
_NEEDS_ESCAPE_BYTES = rows.byte_set("&<>" + "".join(  # _NEEDS_ESCAPE but U+FFFE, U+FFFF
    chr(c) for c in [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20)]))
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
    '<cellXfs count="5"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="49" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="49" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1" '
    'applyNumberFormat="1"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="1" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '</cellXfs><cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/>'
    '</cellStyles></styleSheet>'
)


@dataclass
class Sheet:
    """One table for a workbook: ``headers`` label the frame's columns in row 1."""

    name: str
    frame: pd.DataFrame
    headers: list[str]
    note: str | None = None  # page header: printed on every page, seen in Page Layout view
    # called with each chunk of rows and its columns as Arrow text (None: not text), in order:
    # the CSV beside the sheet is written from the same conversion (tables.csv_beside)
    also: Callable[[pd.DataFrame, list], None] | None = None


@dataclass(frozen=True)
class Properties:
    """What File > Info shows of a workbook: its title, and a description (the run)."""

    title: str
    description: str = ""
    created: str | None = None  # W3C date-time, e.g. 2024-05-01T08:30:00Z


def write_xlsx(path: Path, sheets: list[Sheet], chunk_rows: int = 50_000,
               properties: Properties | None = None) -> None:
    """Write the tables as one workbook; a table longer than Excel allows continues on more
    sheets."""
    parts: list[tuple[str, pd.DataFrame, list[str], str | None, Callable | None]] = []
    for sheet in sheets:
        per_sheet = MAX_SHEET_ROWS - 1
        pieces = max(1, -(-len(sheet.frame) // per_sheet))
        for k in range(pieces):
            name = sheet.name if k == 0 else f"{sheet.name} ({k + 1})"
            parts.append((_sheet_name(name), sheet.frame.iloc[k * per_sheet:(k + 1) * per_sheet],
                          sheet.headers, sheet.note, sheet.also))
    core = (f'<Relationship Id="rId2" Type="{_PKG}/metadata/core-properties" '
            'Target="docProps/core.xml"/>' if properties else "")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf, \
            ThreadPoolExecutor(1, thread_name_prefix="xlsx-deflate") as deflate:
        zf.writestr("[Content_Types].xml", _content_types(len(parts), properties is not None))
        zf.writestr("_rels/.rels", f'{_HEAD}<Relationships xmlns="{_PKG}"><Relationship Id="rId1" '
                    f'Type="{_REL}/officeDocument" Target="xl/workbook.xml"/>{core}'
                    '</Relationships>')
        if properties:
            zf.writestr("docProps/core.xml", _core_xml(properties))
        zf.writestr("xl/workbook.xml", _workbook([(name, frame) for name, frame, *_ in parts]))
        zf.writestr("xl/_rels/workbook.xml.rels", _workbook_rels(len(parts)))
        zf.writestr("xl/styles.xml", _STYLES)
        for i, (_, frame, headers, note, also) in enumerate(parts, start=1):
            with zf.open(f"xl/worksheets/sheet{i}.xml", "w") as fh:
                _write_behind(fh, _sheet_xml(frame, headers, chunk_rows, note, also), deflate)


def _write_behind(fh, pieces, thread: ThreadPoolExecutor) -> None:
    """Write the pieces in order from the other thread: deflate and the CRC release the GIL,
    so one chunk is compressed while the next one's XML is built (two chunks in flight at
    most; every write has finished when this returns, also when building a piece failed)."""
    pending: deque = deque()
    try:
        for piece in pieces:
            pending.append(thread.submit(fh.write, piece))
            if len(pending) > 2:
                pending.popleft().result()
    finally:
        wait(pending)
    for done in pending:
        done.result()


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


def _is_integer(series: pd.Series) -> bool:
    """Counts (int64, or pandas' nullable Int64): written and shown as whole numbers."""
    return pd.api.types.is_integer_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _escape(values: pd.Series) -> pd.Series:
    """XML-escaped text; the common case (nothing to escape) is one scan of the joined column."""
    if not _NEEDS_ESCAPE.search("\n".join(values.tolist())):
        return values
    text = values.str.replace("&", "&amp;", regex=False).str.replace("<", "&lt;", regex=False)
    text = text.str.replace(">", "&gt;", regex=False)
    if text.str.contains(_ILLEGAL_XML).any():
        text = text.str.replace(_ILLEGAL_XML, "", regex=True)
    return text


def _cells(series: pd.Series, text=rows.UNSET) -> list[pa.Array | pa.Scalar]:
    """The XML of one column's cells for a chunk of rows, as UTF-8 (in pieces the row joins:
    a column of text with no blank is its values between two constants).

    Cells carry no 'r' reference (optional in the format): each row writes all its cells in
    order, and a blank cell is written as an empty styled cell so positions stay right. A
    column of text with nothing to escape (nearly every one) is wrapped in its markup by
    Arrow; any other column's XML is built once per distinct value (gender, village, tier
    repeat thousands of times). ``text``: the column as :func:`rows.text_array` makes it,
    when made already.
    """
    text = rows.text_array(series) if text is rows.UNSET else text
    if text is not None and not (rows.holds_any(text, _NEEDS_ESCAPE_BYTES)
                                 or rows.holds_noncharacter(text)):
        if not rows.has_blank(text):
            return [_CELL_START, text.cast(rows.BYTES), _CELL_END]
        cells = pc.binary_join_element_wise(_CELL_START, text.cast(rows.BYTES), _CELL_END,
                                            rows.EMPTY)
        return [pc.if_else(pc.equal(text, ""), _BLANK_TEXT, cells).fill_null(_BLANK_TEXT)]
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    if _is_integer(series):
        text = np.array([str(int(v)) for v in uniques], dtype=object)
        cells = f'<c s="{STYLE_INTEGER}"><v>' + text + "</v></c>"
        blank = "<c/>"
    elif _is_number(series):
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
    cells = rows.as_bytes(rows.encode_all(np.append(cells, blank).astype(object).tolist()))
    return [cells.take(pa.array(np.where(codes < 0, len(cells) - 1, codes)))]  # -1: blank


def _display_width(values: pd.Series) -> float:
    """Characters as Excel shows them: a Chinese character is about two Latin ones wide."""
    text = _first_known(values, 2000).astype(str)
    if text.empty:
        return 0.0
    wide = text.str.count(r"[\u2e80-\u9fff\uff00-\uffef]")
    return float((text.str.len() + wide).quantile(0.95))


def _first_known(values: pd.Series, n: int) -> pd.Series:
    """The first ``n`` non-blank values (a column's head is looked at, not all of it)."""
    size = 2 * n
    while True:
        head = values.iloc[:size]
        known = head[head.notna().to_numpy()]
        if len(known) >= n or size >= len(values):
            return known.iloc[:n]
        size *= 4


def _col_xml(j: int, values: pd.Series, header: str) -> str:
    """Width from the header and the values; text columns default to the Text format, so an ID
    a user types into an empty cell stays text too."""
    header_width = len(header) + len(re.findall(r"[\u2e80-\u9fff\uff00-\uffef]", header))
    width = min(max(_display_width(values), header_width) + 2, 60)
    style = "" if _is_number(values) else f' style="{STYLE_TEXT}"'
    return f'<col min="{j}" max="{j}" width="{width:.1f}" customWidth="1"{style}/>'


def _header_footer(note: str | None) -> str:
    """The note at the page header's left, the page number at its right ('&' is the header's
    code character: doubled to print as itself; Excel keeps 255 characters)."""
    if not note:
        return ""
    text = _escape(pd.Series([note.replace("&", "&&")[:200]], dtype=object))[0]
    return ('<pageMargins left="0.4" right="0.4" top="0.75" bottom="0.5" header="0.3" '
            'footer="0.3"/><pageSetup paperSize="9" orientation="landscape"/>'
            f'<headerFooter><oddHeader>&amp;L{text}&amp;R第 &amp;P 页，共 &amp;N 页</oddHeader>'
            '</headerFooter>')


def _sheet_xml(frame: pd.DataFrame, headers: list[str], chunk_rows: int,
               note: str | None = None, also: Callable | None = None):
    ncol = len(frame.columns)
    letters = column_letters(max(ncol, 1))
    last = f"{letters[ncol - 1] if ncol else 'A'}{len(frame) + 1}"
    cols = "".join(_col_xml(j, frame[c], str(h))
                   for j, (c, h) in enumerate(zip(frame.columns, headers), start=1))
    cols_xml = "<cols>" + cols + "</cols>" if cols else ""
    header = _escape(pd.Series([str(h) for h in headers], dtype=object))
    yield (f'{_HEAD}<worksheet xmlns="{_MAIN}" xmlns:r="{_REL}"><dimension ref="A1:{last}"/>'
           '<sheetViews><sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" '
           'activePane="bottomLeft" state="frozen"/><selection pane="bottomLeft"/></sheetView>'
           f'</sheetViews><sheetFormatPr defaultRowHeight="15"/>{cols_xml}'
           '<sheetData><row r="1">' + "".join(
               f'<c r="{letters[j]}1" t="inlineStr" s="{STYLE_HEADER}"><is><t>{h}</t></is></c>'
               for j, h in enumerate(header)) + "</row>").encode("utf-8")
    for start in range(0, len(frame), chunk_rows):
        chunk = frame.iloc[start:start + chunk_rows]
        numbers = pc.cast(pa.array(np.arange(start + 2, start + 2 + len(chunk))),
                          pa.large_string()).cast(rows.BYTES)
        # each column made Arrow text once, for the sheet and the CSV beside it
        texts = [rows.text_array(chunk.iloc[:, j]) for j in range(ncol)]
        cells = [piece for j in range(ncol) for piece in _cells(chunk.iloc[:, j], texts[j])]
        if also is not None:
            also(chunk, texts)
        yield rows.join_rows([_ROW_START, numbers, _ROW_MID, *cells, _ROW_END])
    yield (f'</sheetData><autoFilter ref="A1:{last}"/>{_header_footer(note)}'
           '</worksheet>').encode()


def _core_xml(p: Properties) -> str:
    text = _escape(pd.Series([p.title, p.description], dtype=object))
    created = (f'<dcterms:created xsi:type="dcterms:W3CDTF">{p.created}</dcterms:created>'
               if p.created else "")
    return (f'{_HEAD}<cp:coreProperties xmlns:cp="{_CORE}" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/"'
            ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            f'<dc:title>{text[0]}</dc:title><dc:description>{text[1]}</dc:description>'
            f'{created}</cp:coreProperties>')


def _content_types(n: int, core: bool = False) -> str:
    sheets = "".join(
        f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>' for i in range(1, n + 1))
    return (f'{_HEAD}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
            'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
            'officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/styles.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
            + ('<Override PartName="/docProps/core.xml" ContentType="application/vnd.'
               'openxmlformats-package.core-properties+xml"/>' if core else "")
            + f"{sheets}</Types>")


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
