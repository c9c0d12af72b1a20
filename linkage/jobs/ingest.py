"""Read sources into one frame of mapped records; every unusable row goes to rejects with a reason.

What a run does with bad input (tests/jobs/test_bad_input.py holds one test per case):

- Rows are numbered as a spreadsheet shows them: the header is row 1 (title rows above it keep
  their numbers). A CSV record whose cell holds a line break spans several lines of the file;
  a reject after such a record also names the file line an editor shows.
- CSV is read with the csv module, one decoded line at a time, rather than pandas' C parser: each
  row keeps its number, a ragged row becomes a reject naming its column instead of silently
  shifting cells, and a row in another encoding is rejected on its own (never decoded into
  mojibake). A file mostly in UTF-8 with a few GBK rows is read as UTF-8 and those rows are
  rejected ("the file mixes encodings"), and the reverse for a GBK file with UTF-8 rows. When
  more than half of the rows cannot be decoded the file's encoding is wrong and the run stops.
- A quote opened and not closed would swallow the following rows into one cell: a record that
  spans several lines and has the wrong number of cells, or runs past MAX_RECORD_LINES lines or
  MAX_RECORD_BYTES, is taken as such; its first row is rejected and reading resumes on the next
  line.
- A cell longer than MAX_CELL_CHARS rejects its row; a line longer than MAX_LINE_BYTES is cut
  while reading (streamed, never held whole), so a 10 MB cell costs 1 MB of memory at most.
- The header is the first of the first TITLE_ROWS rows holding every mapped column (else the
  record-id column): title rows above it are skipped. A mapped column missing from the header,
  or present twice, stops the run with the file, row and a "did you mean" suggestion.
- XLSX: merged cells take the value of their top-left cell in every cell they cover (a household
  number merged down the rows of its members belongs to each member). A workbook with several
  sheets holding data needs the source's `sheet`; with only one sheet holding data, that one.
- Duplicate record ids: the first row is kept, later ones are rejected naming the first row.
- A row with nothing to link on is rejected: no name and no ID number the comparisons can
  use, and no birthdate with a household number or village to place it (the rule and why:
  linkage.core.standardise.linkable). Blank name and ID cells say so in a few words; cells
  that hold something unusable (the ID 'abc', the name 不详, the date 19990230) are each named
  with what is wrong, so the clerk can mend the row in one go.
- Each reject carries a SHA-256 of the row's content (ROW_HASH, its mapped and extra cells by
  column name, blanks left out): with the source and record id it recognises a row an earlier
  run rejected already (linkage.jobs.run.mark_first_rejected), whichever reader rejected it.
- A cell holding a NUL character rejects its row (binary junk; pandas' hash tables cut strings
  at NUL, so 'a\\x00b' would standardise as 'a'); counted with undecodable rows.
- Records read (non-blank rows below the header) are counted as they are read, apart from the
  records kept and rejected, so that the run's accounting check (records read = linked +
  rejected) compares two independent counts.
"""
from __future__ import annotations

import csv
import difflib
import hashlib
import json
import re
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd

from linkage.core.config import SourceConfig
from linkage.core.standardise import LINK_FIELDS, linkable, usable_id

csv.field_size_limit(sys.maxsize)  # lines are bounded by MAX_LINE_BYTES before csv sees them

MAX_CELL_CHARS = 10_000
MAX_LINE_BYTES = 1 << 20
MAX_RECORD_LINES = 100
MAX_RECORD_BYTES = 4 << 20
TITLE_ROWS = 10
REJECT_COLUMNS = ["source", "record_id", "file", "row", "column", "reason"]
ROW_HASH = "row_sha256"  # beside REJECT_COLUMNS in a rejects frame; kept in the store only
UTF8_BOM = b"\xef\xbb\xbf"


class InputError(ValueError):
    """A source that cannot be read at all (missing file, missing mapped column, empty file)."""


@dataclass
class Ingested:
    records: pd.DataFrame  # source, record_id, row, the standard fields, x_* extras
    rejects: pd.DataFrame  # REJECT_COLUMNS
    counts: dict[str, int]  # per source: records read (counted apart from records and rejects)
    encodings: dict[str, str]


@dataclass
class _Row:
    """One row as read: its spreadsheet row number, cells, and a problem found while reading."""

    row: int
    cells: list[str]
    problem: str = ""
    column: int | None = None  # index of the cell the problem is in
    lines: tuple[int, int] | None = None  # file lines (CSV), when they differ from `row`
    undecodable: bool = False  # the problem is the row's encoding


def mask_ids(text: str) -> str:
    """Hide ID-number-like digit runs in a message that may reach a log or a terminal.

    Every form an ID cell is read in counts (matchers.resident_id.normalise_id): digits with
    spaces, dashes or invisible characters between them, full-width digits, and all of these
    percent-encoded, as a URL path in an access log holds them (``1505%202519...``). The first
    four digits stay; the other digits and the check character become ``*``.
    """
    if sum(c.isdigit() or c == "%" or not c.isascii() for c in text) < 15:
        return text  # too few digits, even encoded: the common case, decided at once
    units = list(_id_units(text))
    shadow = "".join(kind for _, _, kind in units)
    if not _ID_SHADOW.search(shadow):
        return text
    out, last = [], 0
    for m in _ID_SHADOW.finditer(shadow):
        digits = 0
        for start, end, kind in units[m.start():m.end()]:
            out.append(text[last:start])
            digits += kind in "0123456789X"
            out.append("*" if kind in "0123456789X" and digits > 4 else text[start:end])
            last = end
    out.append(text[last:])
    return "".join(out)


# One character per unit of the text: a digit as itself, X as X, a filler (a space, a dash, an
# invisible character) as ~, a letter as a, anything else as #. Separators may repeat: the
# reader drops them all.
_ID_SHADOW = re.compile(r"(?<![0-9])(?:[0-9]~*){14,17}[0-9X](?![0-9aX])")
_PERCENT_RUN = re.compile(r"(?:%[0-9A-Fa-f]{2})+")


def _id_units(text: str) -> Iterator[tuple[int, int, str]]:
    """(start, end, kind) of each character of ``text``, a percent-encoded UTF-8 character
    counting as one unit spanning its escapes."""
    kind = _id_kind()
    pos = 0
    for m in _PERCENT_RUN.finditer(text):
        for i in range(pos, m.start()):
            yield i, i + 1, kind(text[i])
        raw = bytes.fromhex(m[0].replace("%", ""))
        i = 0
        while i < len(raw):
            size = 1 if raw[i] < 0xC0 else 2 if raw[i] < 0xE0 else 3 if raw[i] < 0xF0 else 4
            try:
                char = raw[i:i + size].decode("utf-8")
            except UnicodeDecodeError:
                char, size = "#", 1
            yield m.start() + 3 * i, m.start() + 3 * (i + size), kind(char)
            i += size
        pos = m.end()
    for i in range(pos, len(text)):
        yield i, i + 1, kind(text[i])


def _id_kind():
    """The shadow character of one character (built on first use: it needs the ID reader's
    list of fillers)."""
    global _ID_KIND
    if _ID_KIND is None:
        import unicodedata
        from functools import lru_cache

        from matchers.resident_id import ID_FILLER

        filler = re.compile(f"[{ID_FILLER}]")

        @lru_cache(maxsize=4096)
        def kind(char: str) -> str:
            norm = unicodedata.normalize("NFKC", char)
            if len(norm) == 1 and norm in "0123456789":
                return norm
            if norm in ("X", "x"):
                return "X"
            if filler.fullmatch(char) or filler.fullmatch(norm):
                return "~"
            return "a" if norm.isascii() and norm.isalnum() else "#"

        _ID_KIND = kind
    return _ID_KIND


_ID_KIND = None


# --------------------------------------------------------------------------- encodings

def detect_encoding(path: Path, sample_bytes: int = 1 << 20) -> str:
    """Pick among UTF-8 (with or without BOM) and GB18030, the encodings registry exports use.

    A sample that is mostly UTF-8 with a few undecodable lines is UTF-8 (those lines become
    rejects): GB18030 would accept nearly any bytes and turn the UTF-8 rows into mojibake.
    """
    with open(path, "rb") as fh:
        head = fh.read(sample_bytes)
    if head.startswith(UTF8_BOM):
        return "utf-8-sig"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    if len(head) == sample_bytes and b"\n" in head:
        head = head[: head.rindex(b"\n") + 1]  # never judge a character cut in half
    try:
        head.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    utf8 = other = 0
    for line in head.splitlines():
        if not line.isascii():
            if _decodes(line, "utf-8"):
                utf8 += 1
            else:
                other += 1
    if utf8 > other:
        return "utf-8"
    if _decodes(head, "gb18030"):
        return "gb18030"
    from charset_normalizer import from_bytes

    best = from_bytes(head).best()
    return best.encoding if best else "utf-8"


def _decodes(raw: bytes, encoding: str) -> bool:
    try:
        raw.decode(encoding)
        return True
    except UnicodeDecodeError:
        return False


def _looks_utf8(raw: bytes) -> bool:
    """True for a line that is UTF-8 Chinese text: valid UTF-8 whose non-ASCII characters are
    Chinese (GBK bytes that happen to be valid UTF-8 decode to Latin, Greek or Cyrillic letters)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    wide = [c for c in text if ord(c) > 127]
    return (any("\u4e00" <= c <= "\u9fff" for c in wide)
            and all(ord(c) >= 0x3000 or c in "·•" for c in wide))


def _decode(raw: bytes, encoding: str) -> tuple[str, str]:
    """A line's text and the decoding problem ('' when none).

    With a problem the text only serves to find the cell boundaries (delimiters and quotes are
    ASCII in every encoding read here); the row is rejected, its text never used.
    """
    if encoding in ("utf-8", "utf-8-sig"):
        try:
            return raw.decode("utf-8"), ""
        except UnicodeDecodeError as exc:
            hint = ("; the row reads as GBK/GB18030: the file mixes encodings, re-save it in one"
                    if _decodes(raw, "gb18030") else "")
            return (raw.decode("utf-8", "replace"),
                    f"not valid UTF-8 (byte 0x{raw[exc.start]:02x}){hint}")
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        return (raw.decode(encoding, "replace"),
                f"not valid {encoding} (byte 0x{raw[exc.start]:02x})")
    if encoding in ("gbk", "gb18030", "gb2312") and not raw.isascii() and _looks_utf8(raw):
        return text, (f"the row is UTF-8 text in a {encoding} file: the file mixes encodings, "
                      "re-save it in one")
    return text, ""


# --------------------------------------------------------------------------- CSV

@dataclass
class _Line:
    number: int  # 1-based line of the file
    text: str
    problem: str = ""
    cut: bool = False  # longer than MAX_LINE_BYTES: the problem is its length, not its bytes


class _Runaway(Exception):
    """A record ran past MAX_RECORD_LINES or MAX_RECORD_BYTES: a quote that is never closed."""


class _Lines:
    """The file's lines, decoded one at a time, for csv.reader.

    Keeps the lines of the record being parsed (to number it and to re-read them after a
    runaway quote) and cuts over-long lines while streaming them.
    """

    def __init__(self, fh: BinaryIO, encoding: str):
        self.fh = fh
        self.encoding = "utf-8" if encoding == "utf-8-sig" else encoding
        self.number = 0
        self.pending: list[_Line] = []  # pushed back, last first
        self.taken: list[_Line] = []
        self.size = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if len(self.taken) >= MAX_RECORD_LINES or self.size > MAX_RECORD_BYTES:
            raise _Runaway()
        line = self.pending.pop() if self.pending else self._read()
        self.taken.append(line)
        self.size += len(line.text)
        return line.text

    def record(self) -> list[_Line]:
        """The lines of the record just parsed; the next record starts empty."""
        taken, self.taken, self.size = self.taken, [], 0
        return taken

    def push_back(self, lines: list[_Line]) -> None:
        self.pending.extend(reversed(lines))

    def _read(self) -> _Line:
        raw = self.fh.readline(MAX_LINE_BYTES)
        if not raw:
            raise StopIteration
        self.number += 1
        if self.number == 1 and raw.startswith(UTF8_BOM):
            raw = raw[len(UTF8_BOM):]
        cut = False
        if len(raw) == MAX_LINE_BYTES and not raw.endswith(b"\n"):
            # Stream the rest of the line without keeping it; keep the quote parity so the
            # parser's state at the end of the line is what the whole line would give.
            quotes = 0
            while True:
                chunk = self.fh.readline(MAX_LINE_BYTES)
                quotes += chunk.count(b'"')
                if not chunk or chunk.endswith(b"\n"):
                    break
            raw = raw + (b'"' if quotes % 2 else b"") + b"\n"
            cut = True
        text, problem = _decode(raw, self.encoding)
        if cut:
            problem = (f"a line longer than {MAX_LINE_BYTES:,} bytes (cut while reading): a cell "
                       "this long is no value "
                       f"(cells are limited to {MAX_CELL_CHARS:,} characters)")
        return _Line(self.number, text, problem, cut)


class _CsvRows:
    """Rows of a CSV file; `width` (the header's cell count, set by the caller once it found
    the header) lets a multi-line record with the wrong cell count be seen as a runaway quote."""

    def __init__(self, path: Path, encoding: str):
        self.path = path
        self.encoding = encoding
        self.width: int | None = None

    def __iter__(self) -> Iterator[_Row]:
        with open(self.path, "rb") as fh:
            lines = _Lines(fh, self.encoding)
            reader = csv.reader(lines)
            row = 0
            while True:
                try:
                    cells = next(reader)
                except StopIteration:
                    return
                except (_Runaway, csv.Error) as exc:
                    taken = lines.record()
                    if not taken:
                        return
                    row += 1
                    reason = (f"a quote opened in this row is not closed within {MAX_RECORD_LINES} "
                              "lines" if isinstance(exc, _Runaway)
                              else f"cannot be read as CSV ({exc})")
                    yield self._first_line_only(lines, taken, row, reason)
                    reader = csv.reader(lines)
                    continue
                taken = lines.record()
                row += 1
                if len(taken) > 1 and self.width is not None and len(cells) != self.width:
                    yield self._first_line_only(
                        lines, taken, row,
                        f"a quote opened in this row is not closed (it ran over {len(taken)} "
                        "lines); reading resumes on the next line")
                    reader = csv.reader(lines)
                    continue
                yield self._row(row, cells, taken)

    @staticmethod
    def _first_line_only(lines: _Lines, taken: list[_Line], row: int, reason: str) -> _Row:
        """Reject the record's first line and read the lines it swallowed again."""
        lines.push_back(taken[1:])
        first = taken[0]
        try:
            cells = next(csv.reader([first.text]), [])
        except csv.Error:
            cells = first.text.rstrip("\r\n").split(",")
        return _Row(row, cells, first.problem or reason, max(len(cells) - 1, 0),
                    (first.number, first.number), undecodable=bool(first.problem) and not first.cut)

    @staticmethod
    def _row(row: int, cells: list[str], taken: list[_Line]) -> _Row:
        span = (taken[0].number, taken[-1].number) if taken else (row, row)
        bad = next((line for line in taken if line.problem), None)
        if bad is None:
            return _Row(row, cells, lines=None if span == (row, row) else span)
        longest = max(range(len(cells)), key=lambda i: len(cells[i]), default=0)
        if bad.cut:
            column = longest
        else:
            column = next((i for i, c in enumerate(cells) if "\ufffd" in c),
                          next((i for i, c in enumerate(cells) if not c.isascii()), longest))
        return _Row(row, cells, bad.problem, column, None if span == (row, row) else span,
                    undecodable=not bad.cut)


# --------------------------------------------------------------------------- XLSX

def _xlsx_rows(path: Path, sheet: str | None, where: str) -> Iterator[_Row]:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError) as exc:
        raise InputError(f"{where} is not a readable .xlsx workbook ({exc}); save it again from "
                         "Excel as .xlsx, or as CSV") from None
    try:
        ws = _pick_sheet(wb, sheet, where)
        merged = _merged_ranges(path, ws)
        active: list[list] = []  # [min_row, min_col, max_row, max_col, value]
        starts: dict[int, list[tuple[int, int, int, int]]] = {}
        for rng in merged:
            starts.setdefault(rng[0], []).append(rng)
        for i, values in enumerate(ws.iter_rows(values_only=True), start=1):
            cells = ["" if v is None else _cell_text(v) for v in values]
            active = [a for a in active if a[2] >= i]
            for r0, c0, r1, c1 in starts.get(i, ()):
                active.append([r0, c0, r1, c1, cells[c0 - 1] if c0 <= len(cells) else ""])
            for _, c0, _, c1, value in active:
                if len(cells) < c1:
                    cells.extend([""] * (c1 - len(cells)))
                for c in range(c0, c1 + 1):
                    cells[c - 1] = value
            yield _Row(i, cells)
    finally:
        wb.close()


def _pick_sheet(wb, sheet: str | None, where: str):
    if sheet is not None:
        if sheet not in wb.sheetnames:
            raise InputError(f"{where}: sheet {sheet!r} not found; the workbook's sheets are: "
                             f"{', '.join(wb.sheetnames)} (config key 'sheet')")
        return wb[sheet]
    used = [ws for ws in wb.worksheets
            if any(v is not None and str(v).strip() for row in ws.iter_rows(max_row=TITLE_ROWS,
                                                                             values_only=True)
                   for v in row)]
    if len(used) > 1:
        raise InputError(f"{where} has {len(used)} sheets holding data "
                         f"({', '.join(ws.title for ws in used)}); set 'sheet' for this source "
                         "to the one with the records")
    return used[0] if used else wb.worksheets[0]


def _merged_ranges(path: Path, ws) -> list[tuple[int, int, int, int]]:
    """Merged ranges of a read-only sheet (openpyxl's read-only mode does not give them), read
    by streaming the sheet's XML: mergeCells sit after the rows."""
    from xml.etree.ElementTree import iterparse

    from openpyxl.utils.cell import range_boundaries

    inner = getattr(ws, "_worksheet_path", None)
    if not inner:
        return []
    out = []
    with zipfile.ZipFile(path) as zf, zf.open(inner) as fh:
        for _, elem in iterparse(fh):
            tag = elem.tag.rsplit("}", 1)[-1]
            if tag == "mergeCell" and elem.get("ref"):
                c0, r0, c1, r1 = range_boundaries(elem.get("ref"))
                out.append((r0, c0, r1, c1))
            elif tag == "row":
                elem.clear()
    return sorted(out)


def _cell_text(value: object) -> str:
    # Excel stores long digit strings as floats; keep integers integral so IDs are not 1.5e17.
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


# --------------------------------------------------------------------------- SQL

def _sql_rows(source: SourceConfig) -> Iterator[_Row]:
    import sqlalchemy as sa

    engine = sa.create_engine(source.url)
    try:
        with engine.connect() as conn:
            if source.table:
                table = sa.Table(source.table, sa.MetaData(), autoload_with=conn)
                statement = sa.select(table)
            else:
                statement = sa.text(source.query)
            result = conn.execution_options(stream_results=True).execute(statement)
            yield _Row(1, [str(k) for k in result.keys()])
            for i, row in enumerate(result, start=2):
                yield _Row(i, ["" if v is None else str(v) for v in row])
    except sa.exc.NoSuchTableError:
        raise InputError(f"source '{source.name}': table {source.table!r} not found in "
                         f"{source.location} (config key 'table')") from None
    except sa.exc.SQLAlchemyError as exc:
        detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise InputError(
            f"source '{source.name}': cannot read {source.location}: {detail}") from None
    finally:
        engine.dispose()


def sql_version(source: SourceConfig) -> str:
    """What stands for a database source's content when its ``change_column`` is set (the
    kept state's key, linkage.jobs.state): the row count and the column's largest value. An
    insert or update sets the column to a larger value, a delete lowers the count."""
    import sqlalchemy as sa

    column = sa.column(source.change_column)
    rows = (sa.table(source.table, column) if source.table
            else sa.text(source.query).columns(column).subquery("t"))
    statement = sa.select(sa.func.count(), sa.func.max(rows.c[source.change_column]))
    engine = sa.create_engine(source.url)
    try:
        with engine.connect() as conn:
            count, largest = conn.execute(statement.select_from(rows)).one()
    except sa.exc.SQLAlchemyError as exc:
        detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise InputError(f"source '{source.name}': cannot read change_column "
                         f"{source.change_column!r} of {source.location}: {detail}") from None
    finally:
        engine.dispose()
    return f"database rows {count}, largest {source.change_column} {largest!r}"


# --------------------------------------------------------------------------- reading

def _open_rows(source: SourceConfig) -> tuple[Iterator[_Row] | _CsvRows, str]:
    where = source.location
    if source.path is None:
        return _sql_rows(source), "sql"
    if not source.path.is_file():
        raise InputError(f"source '{source.name}': file {where} does not exist (config key "
                         f"'path'; relative paths start from the config's folder)")
    size = source.path.stat().st_size
    if size == 0:
        raise InputError(f"source '{source.name}': file {where} is empty (no header row)")
    if source.path.suffix.lower() in {".xlsx", ".xlsm"}:
        return _xlsx_rows(source.path, source.sheet, where), "xlsx"
    encoding = detect_encoding(source.path) if source.encoding == "auto" else source.encoding
    with open(source.path, "rb") as fh:
        head = fh.read(4)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or encoding.lower().startswith("utf-16"):
        raise InputError(f"source '{source.name}': file {where} is UTF-16 (Excel's 'Unicode "
                         "text'); save it as 'CSV UTF-8' instead")
    if head.startswith(UTF8_BOM) and encoding not in ("utf-8", "utf-8-sig"):
        raise InputError(f"source '{source.name}': file {where} starts with a UTF-8 byte-order "
                         f"mark but the config says encoding: {encoding}; set encoding: utf-8-sig "
                         "or auto")
    return _CsvRows(source.path, encoding), encoding


def _find_header(rows: Iterator[_Row], source: SourceConfig) -> tuple[_Row, list[str]]:
    """The header row: the first of the first TITLE_ROWS non-blank rows holding every mapped
    column, else the first holding the record-id column, else the first non-blank row."""
    wanted = {source.record_id, *source.fields.values()}
    seen: list[tuple[_Row, list[str]]] = []
    for r in rows:
        cells = [c.strip().lstrip("\ufeff").strip() for c in r.cells]
        if not any(cells):
            continue
        while cells and not cells[-1]:
            cells.pop()  # unused columns right of the header
        if r.problem and not seen:
            raise InputError(f"source '{source.name}': {source.location} row {r.row} (the header) "
                             f"is unreadable: {r.problem}; set 'encoding' for this source")
        seen.append((r, cells))
        if wanted <= set(cells) or len(seen) >= TITLE_ROWS:
            break
    if not seen:
        raise InputError(f"source '{source.name}': {source.location} has no header row (the file "
                         "holds only blank lines)")
    for r, cells in seen:
        if wanted <= set(cells):
            return r, cells
    for r, cells in seen:
        if source.record_id in cells:
            return r, cells
    return seen[0]


def _check_header(header: list[str], header_row: int, source: SourceConfig) -> None:
    where = f"source '{source.name}': {source.location} row {header_row}"
    wanted = {"record_id": source.record_id, **source.fields}
    missing = []
    for std, col in wanted.items():
        if col not in header:
            close = difflib.get_close_matches(col, [h for h in header if h], n=1, cutoff=0.5)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            missing.append(f"{std} -> '{col}'{hint}")
    if missing:
        raise InputError(mask_ids(
            f"{where}: mapped column(s) not in the header: {'; '.join(missing)}. "
            f"Header has: {', '.join(header)}"))
    for col in dict.fromkeys(wanted.values()):
        places = [i + 1 for i, h in enumerate(header) if h == col]
        if len(places) > 1:
            raise InputError(f"{where}: column '{col}' appears {len(places)} times in the header "
                             f"(cells {', '.join(map(str, places))}); rename all but one")


def read_source(source: SourceConfig,
                progress: bool = False) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """One source to (records, rejects, encoding); raises InputError when nothing can be read.

    `records.attrs["rows_read"]` holds the records read, counted apart from records and rejects.
    """
    where = source.location
    rows, encoding = _open_rows(source)
    stream = iter(rows)
    header_row, header = _find_header(stream, source)
    _check_header(header, header_row.row, source)
    width = len(header)
    if isinstance(rows, _CsvRows):
        rows.width = width
    wanted = {"record_id": source.record_id, **source.fields}
    position = {std: header.index(col) for std, col in wanted.items()}
    extras = [h for h in dict.fromkeys(header) if h and h not in wanted.values()]
    extra_pos = {h: header.index(h) for h in extras}
    column_name = {pos: h for pos, h in enumerate(header)}

    out: dict[str, list] = {k: [] for k in ["row", *position, *(f"x_{h}" for h in extras)]}
    # Each cell column's append and its memo of the texts seen (see _object_array).
    mapped = [(out[std].append, {}.setdefault, pos) for std, pos in position.items()
              if std != "record_id"]
    extra = [(out[f"x_{h}"].append, {}.setdefault, pos) for h, pos in extra_pos.items()]
    rejects: list[dict] = []
    seen: dict[str, tuple[int, int]] = {}
    read = undecodable = 0
    first_undecodable = ""
    bar = _progress(source.name, progress)
    try:
        for r in stream:
            bar.update(1)
            cells = r.cells
            if encoding == "xlsx":
                cells = _fit(cells, width)
            if not any(cell.strip() for cell in cells):
                continue  # blank line: no record
            read += 1
            rid_pos = position["record_id"]
            record_id = cells[rid_pos].strip() if rid_pos < len(cells) else ""
            nul = next((i for i, cell in enumerate(cells) if "\x00" in cell), None)
            if nul is not None and not r.problem:
                # Binary junk (or UTF-16 read as bytes); pandas would also cut the text there.
                r.problem, r.column, r.undecodable = "a cell holds a NUL character", nul, True
            if r.problem:
                reason = r.problem
                column = column_name.get(r.column, "") if r.column is not None else ""
                if r.undecodable:
                    undecodable += 1
                    first_undecodable = first_undecodable or f"row {r.row}: {reason}"
            else:
                reason, column = _row_problem(cells, header, position, record_id, seen, source)
            if reason:
                if r.lines and r.lines != (r.row, r.row):
                    a, b = r.lines
                    reason += f" (file line {a})" if a == b else f" (file lines {a}-{b})"
                rejects.append({"source": source.name, "record_id": record_id, "file": where,
                                "row": r.row, "column": column, "reason": reason,
                                ROW_HASH: content_hash(_content(cells, wanted, position,
                                                                extra_pos))})
                continue
            seen[record_id] = (r.row, hash(tuple(cells)))
            out["row"].append(r.row)
            out["record_id"].append(record_id)
            for append, same, pos in mapped:
                cell = cells[pos]
                append(same(cell, cell))
            for append, same, pos in extra:
                cell = cells[pos] if pos < len(cells) else ""
                append(same(cell, cell))
    finally:
        bar.close()
    if undecodable * 2 > read:
        raise InputError(
            f"source '{source.name}': {where}: {undecodable} of {read} rows cannot be read as "
            f"{encoding} (first at {first_undecodable}); the file's encoding is not {encoding}: "
            "set 'encoding' for this source (auto, utf-8, gbk, gb18030)")
    frame = pd.DataFrame({k: v if k in ("row", "record_id") else _object_array(v)
                          for k, v in out.items()})
    frame.insert(0, "source", source.name)
    frame.attrs["rows_read"] = read
    return frame, pd.DataFrame(rejects, columns=[*REJECT_COLUMNS, ROW_HASH]), encoding


def _object_array(cells: list[str]) -> np.ndarray:
    """A cell column as an object array.

    Equal cells of a column are one string object, shared as the row is read (each column's
    memo in read_source): rosters repeat villages, townships, genders, relations and dates
    endlessly, and the reader makes a new string per cell, which at a million persons held
    gigabytes while a source was read (the copies were shared only once the file was read).
    """
    out = np.empty(len(cells), dtype=object)
    out[:] = cells
    return out


def _fit(cells: list[str], width: int) -> list[str]:
    """An XLSX row to the header's width: Excel has no ragged rows, only unused cells."""
    if len(cells) > width and not any(c.strip() for c in cells[width:]):
        return cells[:width]
    return cells + [""] * (width - len(cells))


def _row_problem(cells, header, position, record_id, seen, source) -> tuple[str, str]:
    width = len(header)
    if len(cells) < width:
        return (f"row has {len(cells)} cells but the header has {width}: cells from column "
                f"'{header[len(cells)]}' on are missing (a delimiter lost or a row cut)",
                header[len(cells)])
    if len(cells) > width:
        extra = next((i for i in range(width, len(cells)) if cells[i].strip()), None)
        if extra is not None:
            return (f"row has {len(cells)} cells but the header has {width}: cell {extra + 1} "
                    f"lies beyond the last column '{header[-1]}' (a delimiter inside a value?)",
                    f"(cell {extra + 1})")
    for i, cell in enumerate(cells):
        if len(cell) > MAX_CELL_CHARS:
            return (f"cell of {len(cell):,} characters, longer than the limit of "
                    f"{MAX_CELL_CHARS:,}", header[i] if i < width else f"(cell {i + 1})")
    if not record_id:
        return "record id is blank", source.record_id
    if record_id in seen:
        first_row, first_hash = seen[record_id]
        what = ("an exact copy of row" if first_hash == hash(tuple(cells))
                else "the same record id as row")
        return (f"duplicate record id {record_id!r}: {what} {first_row} (that row is kept)",
                source.record_id)
    if "id_number" in position and usable_id(cells[position["id_number"]]):
        return "", ""  # the common case, decided on the ID cell alone
    identifying = [position[f] for f in ("name", "id_number") if f in position]
    if identifying and not linkable({f: cells[position[f]] for f in LINK_FIELDS
                                     if f in position}):
        if not any(cells[p].strip() for p in identifying):
            return "no name and no ID number: nothing to link on", source.fields.get("name", "")
        return _nothing_to_link_on(cells, position, source)
    return "", ""


def _nothing_to_link_on(cells, position, source) -> tuple[str, str]:
    """Reason and columns for a row whose name and ID cells hold nothing usable, naming each
    cell and what is wrong with it (the birthdate too: alone it cannot tell who this is)."""
    from matchers.birthdate import parse_birthdate
    from matchers.resident_id import normalise_id

    said, columns = [], []
    for field, what in (("name", _name_words), ("id_number", _id_words),
                        ("birth_date", _birth_words)):
        if field not in position:
            continue
        column, value = source.fields[field], cells[position[field]].strip()
        words, at_fault = what(value, parse_birthdate, normalise_id)
        said.append(f"{column} {words}")
        if at_fault:
            columns.append(column)
    needs = ["a name", "an ID number"]
    if "birth_date" in position:
        date = source.fields["birth_date"]
        if "household_id" in position:
            needs.append(f"a {date} together with a {source.fields['household_id']}")
        if "village" in position:
            needs.append(f"a whole {date} (year, month and day) together with a "
                         f"{source.fields['village']}")
    reason = ("nothing to link on: " + "; ".join(said) + ". A row needs "
              + ", ".join(needs[:-1]) + " or " + needs[-1] + " to be linked")
    return mask_ids(reason), ", ".join(columns)


def _shown(value: str) -> str:
    return repr(value if len(value) <= 24 else value[:24] + "…")


def _name_words(value, *_) -> tuple[str, bool]:
    return ("is blank" if not value else f"{_shown(value)} is not a name"), True


def _id_words(value, _, normalise_id) -> tuple[str, bool]:
    if not value:
        return "is blank", True
    norm = normalise_id(value)
    if norm is None:
        return f"{_shown(value)} holds no ID number", True
    if _EXCEL_NUMBER.fullmatch(norm):  # Excel's scientific notation, too few digits kept
        return (f"{_shown(value)} lost its digits in Excel (format the column as text and "
                "enter the number again)"), True
    return (f"{_shown(value)} is not an ID number (an ID number has 18 characters, or 15 "
            "digits)"), True


_EXCEL_NUMBER = re.compile(r"[0-9](?:[.,][0-9]*)?E\+?[0-9]{1,3}")


def _birth_words(value, parse_birthdate, _) -> tuple[str, bool]:
    if not value:
        return "is blank", False
    quality = parse_birthdate(value)[1]
    if quality == "unparseable":
        return f"{_shown(value)} is not a real date", True
    if quality == "missing":
        return f"{_shown(value)} gives no date", False
    if quality == "year":
        return f"{_shown(value)} gives only the year", False
    if quality == "year_month":
        return f"{_shown(value)} gives only the year and month", False
    return f"{_shown(value)} alone cannot tell who this is", False


def _content(cells: list[str], wanted: dict[str, str], position: dict[str, int],
             extra_pos: dict[str, int]) -> dict[str, str]:
    """A row's cells by column name, as its record would hold them (see record_hashes); a
    ragged row, which never becomes a record, by cell number."""
    if max([*position.values(), *extra_pos.values()]) >= len(cells):
        return {f"({i + 1})": cell for i, cell in enumerate(cells)}
    out = {column: cells[position[std]] for std, column in wanted.items()}
    out.update((h, cells[pos]) for h, pos in extra_pos.items())
    return out


def content_hash(content: dict[str, str]) -> str:
    """SHA-256 of a row's non-blank cells by column name, whitespace around values dropped:
    the same row read again (re-exported, moved to another row, cells reordered) hashes the same."""
    items = sorted((str(k), v.strip()) for k, v in content.items()
                   if isinstance(v, str) and v.strip())
    return hashlib.sha256(json.dumps(items, ensure_ascii=False).encode("utf-8")).hexdigest()


def record_hashes(frame: pd.DataFrame, source: SourceConfig) -> list[str]:
    """content_hash of records read by read_source, for rejects made after reading (a record
    id already linked, a kept batch's duplicate): equal to what read_source gives the row."""
    wanted = {"record_id": source.record_id, **source.fields}
    extras = [c[2:] for c in frame.columns if c.startswith("x_")]
    out = []
    for row in frame.to_dict("records"):
        content = {column: row.get(std) for std, column in wanted.items()}
        # Extras of other sources (None in this source's rows) never hide a mapped cell.
        content.update((h, v) for h in extras if isinstance(v := row.get(f"x_{h}"), str))
        out.append(content_hash(content))
    return out


def _progress(name: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(desc=f"read {name}", unit=" rows", disable=not enabled, file=sys.stderr,
                mininterval=1.0)


def ingest(sources, progress: bool = False) -> Ingested:
    """All sources into one frame; every row read is either a record or a reject."""
    frames, rejects, counts, encodings = [], [], {}, {}
    for source in sources:
        frame, rej, enc = read_source(source, progress)
        counts[source.name] = int(frame.attrs.get("rows_read", len(frame) + len(rej)))
        frames.append(frame)
        rejects.append(rej)
        encodings[source.name] = enc
    records = pd.concat(frames, ignore_index=True, sort=False)
    for col in records.columns:
        if col != "row":
            records[col] = records[col].astype(object).where(records[col].notna(), None)
    return Ingested(records, pd.concat(rejects, ignore_index=True), counts, encodings)
