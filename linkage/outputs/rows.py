"""A table's rows as bytes, made column by column in Arrow: what the CSV and XLSX writers share.

A writer turns each column of a chunk of rows into an Arrow array of encoded cells (a CSV
field, an XLSX ``<c>`` element) and Arrow joins them row by row in C++, so no Python code runs
per cell: joining a million rows' cells as Python objects cost about 100 ns a cell, more than
everything else the writers did. Values that need more than their text (quoting, escaping) are
found by scanning the column's UTF-8 bytes and handled once per distinct value, as before.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

BYTES = pa.large_binary()  # 64-bit offsets: a chunk of long cells cannot overflow


def scalar(data: bytes) -> pa.Scalar:
    return pa.scalar(data, BYTES)


EMPTY = scalar(b"")
UNSET = object()  # a column's text_array not made yet (None: made, and not text)


def text_array(values: pd.Series) -> pa.Array | None:
    """The column as an Arrow string array (null where missing) when every value is text;
    None for any other column (numbers, booleans, mixed objects, categories), which the
    writers handle value by value as before."""
    if is_text_dtype(values.dtype):  # pandas' own text columns are Arrow (or convert) as they are
        text = pa.array(values)
        text = text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text
        return text.cast(pa.large_string())
    if values.dtype != np.dtype(object):
        return None
    cells = values.to_numpy()
    if pd.api.types.infer_dtype(cells, skipna=True) not in ("string", "empty"):
        return None
    try:  # None, NaN, NA and NaT become nulls
        return pa.array(cells, type=pa.large_string(), from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError):  # another missing value: as pandas sees it
        missing = pd.isna(cells)
        cells = cells.copy()
        cells[missing] = None
        return pa.array(cells, type=pa.large_string())


def encode_all(texts: list[str]) -> np.ndarray:
    """The UTF-8 of each text as an object array: one encode of the texts joined by NUL
    (split again after), else one at a time where a text holds a NUL itself."""
    out = np.empty(len(texts), dtype=object)
    if not texts:
        return out
    parts = "\x00".join(texts).encode("utf-8").split(b"\x00")
    out[:] = parts if len(parts) == len(texts) else [t.encode("utf-8") for t in texts]
    return out


def is_text_dtype(dtype) -> bool:
    """pandas' string dtype, or an Arrow string type: text or missing, nothing else."""
    if isinstance(dtype, pd.ArrowDtype):
        return pa.types.is_string(dtype.pyarrow_dtype) or pa.types.is_large_string(
            dtype.pyarrow_dtype)
    return isinstance(dtype, pd.StringDtype)


def as_bytes(values: list[bytes] | np.ndarray) -> pa.Array:
    """Encoded cells (Python bytes, one per row or per distinct value) as an Arrow array."""
    return pa.array(list(values) if isinstance(values, np.ndarray) else values, type=BYTES)


def byte_set(chars) -> np.ndarray:
    """A lookup table of ASCII characters for :func:`holds_any` and :func:`starts_with_any`."""
    table = np.zeros(256, dtype=bool)
    table[[ord(c) for c in chars]] = True
    return table


def _utf8(text: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The values' UTF-8 bytes, one after the other, and where each value starts and ends."""
    _, offsets, data = text.buffers()
    bounds = np.frombuffer(offsets, dtype=np.int64)[text.offset:text.offset + len(text) + 1]
    if data is None or not len(bounds):
        return np.zeros(0, dtype=np.uint8), np.zeros(1, dtype=np.int64)
    return np.frombuffer(data, dtype=np.uint8), bounds


def holds_any(text: pa.Array, table: np.ndarray) -> bool:
    """Whether any value holds one of the ASCII characters of ``table``: a byte below 0x80 in
    UTF-8 is always that character itself, so the bytes are scanned, not the values."""
    data, bounds = _utf8(text)
    return bool(table[data[bounds[0]:bounds[-1]]].any())


def starts_with_any(text: pa.Array, table: np.ndarray) -> bool:
    """Whether any value starts with one of the ASCII characters of ``table``."""
    data, bounds = _utf8(text)
    starts = bounds[:-1][bounds[1:] > bounds[:-1]]
    return bool(table[data[starts]].any())


def has_blank(text: pa.Array) -> bool:
    """Whether any value is missing or empty."""
    _, bounds = _utf8(text)
    return bool(text.null_count) or bool((bounds[1:] == bounds[:-1]).any())


def holds_noncharacter(text: pa.Array) -> bool:
    """Whether any value holds U+FFFE or U+FFFF (UTF-8 EF BF BE / EF BF BF)."""
    data, bounds = _utf8(text)
    d = data[bounds[0]:bounds[-1]]
    return bool(((d[:-2] == 0xEF) & (d[1:-1] == 0xBF) & ((d[2:] | 1) == 0xBF)).any())


def join_rows(columns: list[pa.Array | pa.Scalar], sep: bytes = b"",
              end: bytes = b"") -> pa.Buffer:
    """The rows' bytes: per row its cells joined by ``sep``, then ``end``; rows one after the
    other (zero-copy: the data buffer of the joined array).

    Constant pieces side by side (a cell's closing tag, the next cell's opening tag) are
    joined into one first: Arrow's join costs about the same per piece, constant or not."""
    rows = pc.binary_join_element_wise(*_coalesce(columns, sep), scalar(sep))
    if end:
        rows = pc.binary_join_element_wise(rows, scalar(end), EMPTY)
    if rows.null_count:
        raise ValueError("a cell of the table was left null")
    _, offsets, data = rows.buffers()
    bounds = np.frombuffer(offsets, dtype=np.int64)[rows.offset:rows.offset + len(rows) + 1]
    return data[int(bounds[0]):int(bounds[-1])] if len(rows) else pa.py_buffer(b"")


def _coalesce(columns: list[pa.Array | pa.Scalar], sep: bytes) -> list[pa.Array | pa.Scalar]:
    """The pieces with each run of adjacent scalars made one scalar (``sep`` kept between)."""
    out: list[pa.Array | pa.Scalar] = []
    for piece in columns:
        if isinstance(piece, pa.Scalar) and out and isinstance(out[-1], pa.Scalar) \
                and piece.is_valid and out[-1].is_valid:
            out[-1] = scalar(out[-1].as_py() + sep + piece.as_py())
        else:
            out.append(piece)
    return out
