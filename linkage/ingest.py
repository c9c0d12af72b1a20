"""Read sources into one frame of mapped records; every unusable row goes to rejects with a reason.

CSV is read with the csv module rather than pandas' C parser so that each row keeps its line
number and a ragged row becomes a reject naming file, row and column instead of silently
shifting columns.
"""
from __future__ import annotations

import csv
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pandas as pd

from linkage.config import SourceConfig

csv.field_size_limit(sys.maxsize)

MAX_CELL_CHARS = 10_000
REJECT_COLUMNS = ["source", "record_id", "file", "row", "column", "reason"]


class InputError(ValueError):
    """A source that cannot be read at all (missing file, missing mapped column, empty file)."""


@dataclass
class Ingested:
    records: pd.DataFrame  # source, record_id, row, the standard fields, x_* extras
    rejects: pd.DataFrame  # REJECT_COLUMNS
    counts: dict[str, int]  # per source: rows read
    encodings: dict[str, str]


def detect_encoding(path: Path, sample_bytes: int = 1 << 20) -> str:
    """Pick among UTF-8 (with or without BOM) and GB18030, the encodings registry exports use."""
    with open(path, "rb") as fh:
        head = fh.read(sample_bytes)
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if len(head) == sample_bytes and b"\n" in head:
        head = head[: head.rindex(b"\n") + 1]  # never judge a character cut in half
    try:
        head.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        head.decode("gb18030")
        return "gb18030"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(head).best()
    return best.encoding if best else "utf-8"


def _csv_rows(path: Path, encoding: str) -> Iterator[tuple[int, list[str]]]:
    with open(path, "r", encoding=encoding, newline="") as fh:
        reader = csv.reader(fh)
        for row in reader:
            yield reader.line_num, row


def _xlsx_rows(path: Path, sheet: str | None) -> Iterator[tuple[int, list[str]]]:
    from openpyxl import load_workbook

    wb = load_workbook(path, read_only=True, data_only=True)
    try:
        if sheet is not None and sheet not in wb.sheetnames:
            raise InputError(f"{path}: sheet {sheet!r} not found; sheets: {wb.sheetnames}")
        ws = wb[sheet] if sheet else wb.worksheets[0]
        for i, row in enumerate(ws.iter_rows(values_only=True), start=1):
            yield i, ["" if v is None else _cell_text(v) for v in row]
    finally:
        wb.close()


def _cell_text(value: object) -> str:
    # Excel stores long digit strings as floats; keep integers integral so IDs are not 1.5e17.
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def _sql_rows(source: SourceConfig) -> Iterator[tuple[int, list[str]]]:
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
            yield 1, list(result.keys())
            for i, row in enumerate(result, start=2):
                yield i, ["" if v is None else str(v) for v in row]
    finally:
        engine.dispose()


def read_source(source: SourceConfig, progress: bool = False) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """One source to (records, rejects, encoding); raises InputError when nothing can be read."""
    where = source.location
    encoding = ""
    if source.path is not None:
        if not source.path.is_file():
            raise InputError(f"source '{source.name}': file {where} does not exist")
        if source.path.stat().st_size == 0:
            raise InputError(f"source '{source.name}': file {where} is empty (no header row)")
        if source.path.suffix.lower() in {".xlsx", ".xlsm"}:
            rows = _xlsx_rows(source.path, source.sheet)
            encoding = "xlsx"
        else:
            encoding = detect_encoding(source.path) if source.encoding == "auto" else source.encoding
            rows = _csv_rows(source.path, encoding)
    else:
        rows = _sql_rows(source)
        encoding = "sql"

    try:
        header_line, header = next(rows)
    except StopIteration:
        raise InputError(f"source '{source.name}': {where} has no header row") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"source '{source.name}': {where} header is not valid {encoding}: "
                         f"{exc.reason}; set 'encoding' for this source") from exc
    header = [h.strip().lstrip("\ufeff") for h in header]
    wanted = {"record_id": source.record_id, **source.fields}
    missing = [f"{std} -> '{col}'" for std, col in wanted.items() if col not in header]
    if missing:
        raise InputError(
            f"source '{source.name}': {where} row {header_line}: mapped column(s) not in the header: "
            f"{'; '.join(missing)}. Header has: {', '.join(header)}"
        )
    position = {std: header.index(col) for std, col in wanted.items()}
    extras = [h for h in header if h and h not in wanted.values()]
    extra_pos = {h: header.index(h) for h in extras}

    out: dict[str, list] = {k: [] for k in ["row", *position, *(f"x_{h}" for h in extras)]}
    rejects: list[dict] = []
    seen: set[str] = set()
    width = len(header)
    bar = _progress(source.name, progress)
    try:
        for line, row in rows:
            bar.update(1)
            if not any(cell.strip() for cell in row):
                continue  # blank line: no record
            record_id = row[position["record_id"]].strip() if position["record_id"] < len(row) else ""
            reason, column = _row_problem(row, width, position, record_id, seen, source)
            if reason:
                rejects.append({"source": source.name, "record_id": record_id, "file": where,
                                "row": line, "column": column, "reason": reason})
                continue
            seen.add(record_id)
            out["row"].append(line)
            for std, pos in position.items():
                out[std].append(row[pos].strip() if std == "record_id" else row[pos])
            for h, pos in extra_pos.items():
                out[f"x_{h}"].append(row[pos] if pos < len(row) else "")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"source '{source.name}': {where} is not valid {encoding} after row {bar.n}: {exc.reason}; "
            "set 'encoding' for this source or fix the file"
        ) from exc
    finally:
        bar.close()
    frame = pd.DataFrame(out)
    frame.insert(0, "source", source.name)
    return frame, pd.DataFrame(rejects, columns=REJECT_COLUMNS), encoding


def _row_problem(row, width, position, record_id, seen, source) -> tuple[str, str]:
    if len(row) != width:
        return f"row has {len(row)} cells but the header has {width}", ""
    if not record_id:
        return "record id is blank", source.record_id
    if record_id in seen:
        return f"duplicate record id {record_id!r} (first occurrence kept)", source.record_id
    for std, pos in position.items():
        if len(row[pos]) > MAX_CELL_CHARS:
            return f"cell longer than {MAX_CELL_CHARS} characters", source.fields.get(std, std)
    identifying = [position[f] for f in ("name", "id_number") if f in position]
    if identifying and not any(row[p].strip() for p in identifying):
        return "no name and no ID number: nothing to link on", source.fields.get("name", "")
    return "", ""


def _progress(name: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(desc=f"read {name}", unit=" rows", disable=not enabled, file=sys.stderr,
                mininterval=1.0)


def ingest(sources, progress: bool = False) -> Ingested:
    """All sources into one frame; every row read is either a record or a reject."""
    frames, rejects, counts, encodings = [], [], {}, {}
    for source in sources:
        frame, rej, enc = read_source(source, progress)
        frames.append(frame)
        rejects.append(rej)
        counts[source.name] = len(frame) + len(rej)
        encodings[source.name] = enc
    records = pd.concat(frames, ignore_index=True, sort=False)
    for col in records.columns:
        if col != "row":
            records[col] = records[col].astype(object).where(records[col].notna(), None)
    return Ingested(records, pd.concat(rejects, ignore_index=True), counts, encodings)
