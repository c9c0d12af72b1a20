"""The outputs' fast paths give exactly what the general path gives.

The CSV writer builds rows in Arrow and the XLSX writer wraps text columns in their markup in
Arrow; text is stripped value by value; per-entity joins run on integer codes. Each is held here
to the plain pandas or Python way of computing the same thing, byte for byte, on awkward values:
formulas, quotes, line breaks, NULs, non-characters, 1 beside 1.0, blanks of every kind.
"""
from __future__ import annotations

import csv
import io
import os
import zipfile

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from linkage.outputs import rows, tables, view, xlsx
from linkage.outputs.tables import neutralise_formulas, write_csv
from linkage.outputs.xlsx import Sheet, write_xlsx

AWKWARD = ["", " ", "a", "a,b", 'say "hi"', "line\nbreak", "cr\rhere", "crlf\r\n=1", "=SUM(A1)",
           "+1", "-2", "@x", "\t=1", "\r=1", "-", "张·巴特尔", "孙家窝堡村3组", " 王五 ",
           "nul\x00inside", "tail\x00", "\x01ctrl", "a&b<c>", "\ufffe", "\uffff", "\U0001F600",
           "\u3000全角\u3000", "\x1cfs", "1.50521E+17", "000123"]
MISSING = [None, np.nan, pd.NA, pd.NaT]


def _column(rng, n, pool):
    return pd.Series([pool[i] for i in rng.integers(0, len(pool), n)], dtype=object)


def _frames():
    rng = np.random.default_rng(7)
    n = 300
    yield pd.DataFrame({"text": _column(rng, n, AWKWARD + MISSING),
                        "plain": _column(rng, n, ["一档", "二档", "NCMS", "150521196503120018"]),
                        "count": rng.integers(-5, 10**12, n),
                        "amount": np.where(rng.random(n) < 0.2, np.nan, rng.normal(0, 300, n)),
                        "flag": rng.random(n) < 0.5,
                        "mixed": _column(rng, n, [1, 1.0, True, "1", "=a", None, -0.0, 2.5])})
    yield pd.DataFrame({"a": _column(rng, n, ["x", "y", None]),
                        "b": _column(rng, n, ["p", "", np.nan])})  # nothing to quote
    yield pd.DataFrame({"a": pd.Series([], dtype=object), "b": pd.Series([], dtype=np.int64)})
    yield pd.DataFrame({"only": _column(rng, 20, ["", "x", None])})  # one column: pandas writes
    yield pd.DataFrame({"when": pd.date_range("2024-01-01", periods=5), "x": list("abcde")})
    yield pd.DataFrame({"cat": pd.Series(list("abcab"), dtype="category"), "x": list("abcde")})
    yield pd.DataFrame({"u": np.array([0, 2**64 - 1], dtype=np.uint64), "i8": np.int8([-1, 1])})


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-8"])
@pytest.mark.parametrize("float_format", [None, "%.2f"])
@pytest.mark.parametrize("neutralise", [True, False])
def test_write_csv_writes_the_bytes_pandas_writes(tmp_path, monkeypatch, encoding, float_format,
                                                  neutralise):
    monkeypatch.setattr(tables, "CSV_CHUNK_ROWS", 64)  # several chunks, a short last one
    for k, frame in enumerate(_frames()):
        ours = write_csv(frame, tmp_path / f"{k}.csv", float_format, encoding, neutralise)
        theirs = tmp_path / f"{k}-pandas.csv"
        (neutralise_formulas(frame) if neutralise else frame).to_csv(
            theirs, index=False, encoding=encoding, float_format=float_format)
        assert ours.read_bytes() == theirs.read_bytes(), frame.dtypes.to_dict()


def test_the_characters_that_make_csv_quote_are_only_those_the_writer_knows():
    quoted = []
    for code in range(0x110000):
        if 0xD800 <= code < 0xE000:
            continue
        out = io.StringIO()
        csv.writer(out, lineterminator=os.linesep).writerow(["a" + chr(code) + "b", "x"])
        if out.getvalue() != f"a{chr(code)}b,x{os.linesep}":
            quoted.append(chr(code))
    assert set(quoted) == tables._QUOTED


def _sheet_parts(path):
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def test_xlsx_text_columns_made_in_arrow_equal_the_per_value_path(tmp_path, monkeypatch):
    for k, frame in enumerate(_frames()):
        fast = tmp_path / f"{k}-fast.xlsx"
        write_xlsx(fast, [Sheet("s", frame, list(frame.columns))], chunk_rows=64)
        with monkeypatch.context() as m:
            m.setattr(rows, "text_array", lambda values: None)  # every column value by value
            slow = tmp_path / f"{k}-slow.xlsx"
            write_xlsx(slow, [Sheet("s", frame, list(frame.columns))], chunk_rows=64)
        assert _sheet_parts(fast) == _sheet_parts(slow)


def test_byte_scans_find_what_the_regular_expressions_find():
    import re

    rng = np.random.default_rng(3)
    alphabet = [chr(c) for c in range(0x30)] + list("&<>=a张") + ["\ufffe", "\uffff", "\ufffd",
                                                                 "\uefbf", "\U0001F600"]
    for _ in range(3000):
        values = ["".join(alphabet[i] for i in rng.integers(0, len(alphabet), rng.integers(0, 4)))
                  for _ in range(3)]
        text = pa.array([*values, None], pa.large_string()).slice(1)
        kept = values[1:]
        escape = any(xlsx._NEEDS_ESCAPE.search(v) for v in kept)
        assert escape == (rows.holds_any(text, xlsx._NEEDS_ESCAPE_BYTES)
                          or rows.holds_noncharacter(text))
        care = any(re.search("[\n\r,\"]|^[=+\\-@\t\r]", v) for v in kept)
        assert care == (rows.holds_any(text, tables._CARE_ANYWHERE)
                        or rows.starts_with_any(text, tables._CARE_FIRST))
        assert rows.has_blank(text)  # the null
        assert rows.has_blank(text.slice(0, 2)) == ("" in kept)


def _stripped_reference(values: pd.Series) -> list:
    codes, uniques = pd.factorize(values.astype(object))
    text = pd.Series(uniques, dtype=object).astype(str).str.strip()
    return list(np.append(text.where(text != "", None).to_numpy(dtype=object), None)[codes])


@pytest.mark.parametrize("pool", [AWKWARD + MISSING, [1, 1.0, " a", None, True, 2.5, "1"]])
def test_stripped_text_equals_stripping_each_distinct_value(pool):
    column = _column(np.random.default_rng(1), 500, pool)
    assert list(view.stripped_text(column)) == _stripped_reference(column)
    if all(isinstance(v, str) or v is None for v in pool):
        assert list(view.stripped_text(column.astype("category"))) == _stripped_reference(column)


def _join_reference(keys, values, sep):
    frame = pd.DataFrame({"key": keys, "value": values}).dropna()
    frame = frame[frame["value"].astype(str) != ""].drop_duplicates()
    multi = frame["key"].duplicated(keep=False).to_numpy()
    single = frame[~multi].set_index("key")["value"].astype(str)
    joined = frame[multi].groupby("key", sort=False)["value"].agg(lambda s: sep.join(map(str, s)))
    return pd.concat([single, joined])


def test_join_distinct_on_codes_equals_the_grouped_join():
    rng = np.random.default_rng(5)
    for _ in range(200):
        n = int(rng.integers(0, 40))
        keys = rng.choice(np.array(["a", "b", "c", None, "d"], dtype=object), n)
        values = rng.choice(np.array(["x", "", None, "z", 1, 1.0, "w", "x"], dtype=object), n)
        for sep in (";", "+"):
            got, want = view.join_distinct(keys, values, sep), _join_reference(keys, values, sep)
            assert list(got.items()) == list(want.items())
        codes = rng.integers(-1, 4, n)  # integer keys, as the roster passes golden rows
        got, want = view.join_distinct(codes, values), _join_reference(codes, values, ";")
        assert got.to_dict() == want.to_dict()


def test_joined_flags_equal_joining_row_by_row():
    from linkage.outputs.quality import joined_flags

    rng = np.random.default_rng(9)
    frame = pd.DataFrame({k: rng.random(200) < 0.3 for k in "abcd"})
    want = [";".join(k for k in "abcd" if row[k]) for _, row in frame.iterrows()]
    assert list(joined_flags(frame, list("abcd"))) == want
    assert list(joined_flags(frame.iloc[:0], list("abcd"))) == []


def test_text_of_some_records_equals_those_records_of_the_whole_column():
    rng = np.random.default_rng(11)
    records = pd.DataFrame({"name": _column(rng, 400, AWKWARD + MISSING),
                            "mixed": _column(rng, 400, [1, 1.0, " a", None, "1"]),
                            "cat": _column(rng, 400, [" x", "y", None]).astype("category")})
    mask = rng.random(400) < 0.4
    parts = view.RunView("r", {}, records, np.arange(400).astype(object), pd.DataFrame(), None,
                         {}, None)
    whole = view.RunView("r", {}, records, np.arange(400).astype(object), pd.DataFrame(), None,
                         {}, None)
    for column in ("name", "mixed", "cat", "absent"):
        first = parts.text(column, mask)
        assert list(first) == list(whole.text(column)[mask])
        first[:] = "changed"  # the caller's copy: the kept text stays as it was
        assert list(parts.text(column, mask)) == list(whole.text(column)[mask])


def test_household_joins_equal_joining_fixed_width_text():
    from linkage.outputs import households

    rng = np.random.default_rng(13)
    for pool in (["王五", "李四\x00", "x", None, "tail\x00\x00"], ["a", "b", None]):
        keys = rng.integers(0, 30, 200)
        values = _column(rng, 200, pool).to_numpy()
        got = households._join(keys, values, 30, "、")
        keep = pd.notna(values)
        k, v = keys[keep], values[keep]
        order = np.argsort(k, kind="stable")
        k, v = k[order], v[order].astype(str).astype(object)  # the fixed-width round trip
        want = np.full(30, None, dtype=object)
        for key in np.unique(k):
            want[key] = "、".join(v[k == key])
        assert list(got) == list(want)


@pytest.mark.parametrize("dtype", ["string[python]", "string[pyarrow]", pd.ArrowDtype(pa.string())])
def test_pandas_text_columns_are_written_as_the_same_text_in_objects(tmp_path, dtype):
    values = ["a", None, "=x", "张·巴特尔", "", "tail\x00", "a&b", "q\"uote"]
    as_objects = pd.DataFrame({"t": pd.Series(values, dtype=object), "n": range(len(values))})
    typed = as_objects.assign(t=as_objects["t"].astype(dtype))
    for name, frame in (("objects", as_objects), ("typed", typed)):
        write_xlsx(tmp_path / f"{name}.xlsx", [Sheet("s", frame, ["t", "n"])])
        write_csv(frame, tmp_path / f"{name}.csv")
    assert _sheet_parts(tmp_path / "objects.xlsx") == _sheet_parts(tmp_path / "typed.xlsx")
    assert (tmp_path / "objects.csv").read_bytes() == (tmp_path / "typed.csv").read_bytes()
    records = pd.DataFrame({"t": typed["t"]})
    mask = np.array([True, True, False, True, True, True, False, True])
    text = view.RunView("r", {}, records, np.arange(8).astype(object), pd.DataFrame(), None,
                        {}, None)
    assert list(text.text("t", mask)) == _stripped_reference(as_objects["t"][mask])
