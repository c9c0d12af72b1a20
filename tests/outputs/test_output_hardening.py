"""Hostile values in the sources cannot break a run or reach the office as live content.

A village named ``$x^{$`` would abort the whole run if matplotlib read it as mathtext in a chart
label; a clerk named ``=HYPERLINK(...)`` in the CSVs the office opens would run in Excel as a
formula. Here a tiny world full of such names goes through a real run, and the report is fuzzed
with hostile labels.
"""
from __future__ import annotations

import csv
import dataclasses
import html
import re
import shutil
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from demo_config import write_demo_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markupsafe import escape

from linkage.core.config import load_config
from linkage.jobs.run import run
from linkage.outputs import charts
from linkage.outputs.quality import clerk_report, record_errors, village_report
from linkage.outputs.report import render_report
from linkage.outputs.tables import neutralise_formulas, write_csv
from linkage.outputs.view import RunView

# Prefixed to every village of both sources (the same prefix for the same village, so the
# linkage still finds its pairs), and six of the clerks renamed outright.
VILLAGE_PREFIXES = [r"$\frac{1}{0}$", "$x^{$", '=HYPERLINK("http://evil.example/","x")',
                    "+1+1", "-2+3", "@SUM(A1)", "$"]
CLERKS = ['=HYPERLINK("http://evil.example/","click")', "+1+1", "-2+3", "@SUM(A1)", "\t=1",
          "\r=1"]
REJECTED_ID = '=HYPERLINK("http://evil.example/","reject")'
OFFICE_CSVS = ["village_quality", "clerk_quality", "receipt_book_quality", "record_errors",
               "duplicate_enrolments", "roster", "not_verified", "conflicts", "rejects"]


def _prefix(village: str) -> str:
    """One hostile prefix per village, the same in every source (by its first two characters)."""
    return VILLAGE_PREFIXES[zlib.crc32(village[:2].encode("utf-8")) % len(VILLAGE_PREFIXES)]


@pytest.fixture(scope="module")
def hostile_run(small_world, tmp_path_factory):
    """The demo job over a copy of the small world whose villages, clerks, some names and
    receipts, and one rejected row's id are formulas and mathtext."""
    root = tmp_path_factory.mktemp("hostile")
    data = root / "data"
    shutil.copytree(small_world / "data" / "demo", data)

    police = pd.read_csv(data / "police.csv", dtype=str, keep_default_na=False)
    police["嘎查村"] = [_prefix(v) + v for v in police["嘎查村"]]
    police.to_csv(data / "police.csv", index=False, encoding="utf-8")

    ncms = pd.read_csv(data / "ncms.csv", dtype=str, keep_default_na=False, encoding="gb18030")
    ncms["村"] = [_prefix(v) + v for v in ncms["村"]]
    renamed = dict(zip(ncms["录入员"].drop_duplicates().head(len(CLERKS)), CLERKS))
    ncms["录入员"] = ncms["录入员"].map(lambda c: renamed.get(c, c))
    ncms.loc[ncms.index[:4], "成员姓名"] = ["=1+1", "+SUM(A1)", "-1", "@x"]
    ncms.loc[ncms.index[:8], "收据号"] = "-2+3"  # rows 0-3 (odd names) reach record_errors
    reject = {c: "" for c in ncms.columns} | {"参合编号": REJECTED_ID, "村": "=1+1村"}
    ncms = pd.concat([ncms, pd.DataFrame([reject])], ignore_index=True)
    # Quoted throughout: pandas leaves a bare CR unquoted, and the reader would split the row.
    ncms.to_csv(data / "ncms.csv", index=False, encoding="utf-8-sig", quoting=csv.QUOTE_ALL)

    config = write_demo_config(root / "hostile.yaml", root / "out",
                               f"sqlite:///{root / 'store.sqlite'}", data=data,
                               fast_training=True)
    return run(load_config(config))


def _cells(path: Path) -> pd.DataFrame:
    encoding = "utf-8-sig" if path.name != "rejects.csv" else "utf-8"
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# --- mathtext in chart labels -----------------------------------------------------------------

def test_a_run_over_villages_named_with_dollars_writes_its_report(hostile_run):
    page = (hostile_run.out_dir / "report.html").read_text(encoding="utf-8")
    assert page.count("<svg") == page.count("</svg>") >= 6
    villages = _cells(hostile_run.out_dir / "village_quality.csv")["village"]
    assert any(v.startswith("$x^{$") for v in villages)  # the label that aborted the run
    assert "$x^{$" in page  # drawn as typed, in the table and in the village chart


@pytest.mark.parametrize("label", [r"$\frac{1}{0}$村", "$x^{$", "$", "$$", "a$b$c", r"a\$b",
                                   "^_%{}", "\\", "<script>alert(1)</script>", "x" * 5000,
                                   "\u202e村\u200f", "\x00\n\r"])
def test_each_chart_draws_a_hostile_label_as_typed(label):
    villages = pd.DataFrame({"source": ["ncms"], "township": [label], "village": [label],
                             "records": [12], "error_rate": [0.5]})
    svgs = [charts.village_errors(villages), charts.funnel([(label, 10, "bad")]),
            charts.blocking([{"name": label, "pairs": 5, "new_pairs": 3}]),
            charts.model_weights([{"name": label, "levels": [{"label": label, "weight": -3.2}]}]),
            charts.timings({label: 1.0})]
    for svg in svgs:
        assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
        assert "<script" not in svg  # the SVG writer escapes <, > and &
    drawn = [html.unescape(t)
             for t in re.findall(r"<text\b[^>]*>(.*?)</text>", svgs[0], re.DOTALL)]
    shown = charts._text(label, 30).replace(r"\$", "$")  # as typed; at most 30 characters
    assert any(shown in text for text in drawn), (shown, drawn)


LABEL_PARTS = ["$", "$$", "$x^{$", r"$\frac{1}{0}$", "\\", "{", "}", "^", "_", "%", "%s",
               "<script>alert(1)</script>", "</svg>", "&amp;", "\u202e", "\u200f", "\u2066",
               "=1+1", "\x00", "\n", "'", '"', "村", "镇", "a", " "]
LABELS = st.one_of(
    st.lists(st.sampled_from(LABEL_PARTS), min_size=1, max_size=12).map("".join),
    st.text(min_size=1, max_size=30),
    st.builds(lambda s, n: s * n, st.text(min_size=1, max_size=4), st.integers(100, 1500)),
)


@pytest.fixture(scope="module")
def office_view(office_run):
    view = RunView.from_result(office_run)
    errors = record_errors(view)
    return view, errors, village_report(errors), clerk_report(errors, "clerk")


@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(labels=st.lists(LABELS, min_size=6, max_size=6))
def test_the_report_renders_and_escapes_any_village_township_clerk_or_rule_name(office_view,
                                                                               labels):
    view, errors, villages, clerks = office_view
    village, township, clerk, rule, level, stage = labels
    villages = villages.assign(village=village, township=township)
    clerks = clerks.assign(clerk=clerk)
    summary = {**view.summary,
               "blocking": {**view.summary["blocking"],
                            "rules": [{**r, "name": rule} for r in
                                      view.summary["blocking"]["rules"]]},
               "timings": {stage: 1.0, **view.summary.get("timings", {})}}
    model = {**view.model, "comparisons": [
        {**c, "levels": [{**lv, "label": f"{level}{i}"} for i, lv in enumerate(c["levels"])]}
        for c in view.model["comparisons"]]}
    hostile = dataclasses.replace(view, summary=summary, model=model, notes=[village])
    with tempfile.TemporaryDirectory() as tmp:
        path = render_report(hostile, Path(tmp) / "report.html", {}, villages, clerks, errors)
        page = path.read_bytes().decode("utf-8")  # as written: a CR in a name stays a CR
    assert page.count("<svg") == page.count("</svg>") == 6  # every chart drawn, none broken out of
    assert "<script" not in page.lower()
    for text in (village, township, clerk, rule, f"{level}0", stage):
        assert str(escape(text)) in page  # in its table, escaped


# --- formulas in the office's CSVs ------------------------------------------------------------

def test_no_cell_of_an_office_csv_starts_a_formula(hostile_run):
    out = hostile_run.out_dir
    written = [name for name in OFFICE_CSVS if (out / f"{name}.csv").exists()]
    assert {"village_quality", "clerk_quality", "record_errors", "duplicate_enrolments",
            "roster", "not_verified", "rejects"} <= set(written)
    for name in written:
        frame = _cells(out / f"{name}.csv")
        for column in frame.columns:
            for cell in frame[column]:
                assert cell[:1] not in ("=", "+", "@", "\t", "\r"), (name, column, cell)
                assert not cell.startswith("-") or _is_number(cell), (name, column, cell)


def test_hostile_values_reach_the_csvs_as_text_behind_an_apostrophe(hostile_run):
    out = hostile_run.out_dir
    clerks = set(_cells(out / "clerk_quality.csv")["clerk"])
    assert {"'" + c for c in CLERKS[:4]} <= clerks
    assert clerks & {"'\t=1", "'=1"} and clerks & {"'\n=1", "'=1"}  # as the reader kept them
    assert any(v.startswith("'=HYPERLINK(") for v in _cells(out / "village_quality.csv")["village"])
    assert any(v.startswith("'+1+1") for v in _cells(out / "roster.csv")["village"])
    errors = _cells(out / "record_errors.csv")
    assert {"'=1+1", "'+SUM(A1)", "'-1", "'@x"} <= set(errors["name_entered"])
    assert "'-2+3" in set(errors["receipt"]) | set(_cells(out / "not_verified.csv")["receipt"])
    assert "'" + REJECTED_ID in set(_cells(out / "rejects.csv")["record_id"])
    assert set(_cells(out / "duplicate_enrolments.csv")["clerk"]) & {"'" + c for c in CLERKS}


def test_numbers_stay_numbers_in_the_office_csvs(hostile_run):
    out = hostile_run.out_dir
    quality = pd.read_csv(out / "village_quality.csv", encoding="utf-8-sig")
    for column in ("records", "records_with_error", "error_rate", "id_missing"):
        assert pd.api.types.is_numeric_dtype(quality[column]), column
    enrolments = pd.read_csv(out / "duplicate_enrolments.csv", encoding="utf-8-sig")
    assert pd.api.types.is_numeric_dtype(enrolments["amount"])


def test_the_xlsx_keeps_the_value_as_it_came_in_a_text_cell(hostile_run):
    from openpyxl import load_workbook

    book = load_workbook(hostile_run.out_dir / "duplicate_enrolments.xlsx")
    cells = [c for row in book.active.iter_rows() for c in row
             if isinstance(c.value, str) and c.value.startswith("=HYPERLINK(")]
    assert cells and all(c.data_type == "s" for c in cells)  # text, not a formula


def test_write_csv_quotes_text_by_type_and_leaves_numbers(tmp_path):
    frame = pd.DataFrame({
        "clerk": ['=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1",
                  "-3.2", "李四\r=2+5", "王五\r\n=1"],
        "weight": [-3.2, -1.0, 0.0, 2.5, -0.25, 1.0, 3.0, -7.75, 0.5],
        "count": np.array([-1, 0, 1, 2, 3, 4, 5, 6, 7]),
        "mixed": pd.Series([-3.2, "-x", None, True, 1, "ok", "=a", "b", 2.0], dtype=object),
        "village": pd.Series(["=1村"] * 9, dtype="category"),
    })
    path = write_csv(frame, tmp_path / "t.csv")
    back = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert len(back) == len(frame)  # a CR inside a cell does not end the row there
    assert back["clerk"].tolist() == ['\'=HYPERLINK("http://x","y")', "'+1+1", "'-2+3",
                                      "'@SUM(A1)", "'\t=1", "'\n=1", "'-3.2", "李四\n=2+5",
                                      "王五\n=1"]
    assert back["weight"].tolist() == ["-3.2", "-1.0", "0.0", "2.5", "-0.25", "1.0", "3.0",
                                       "-7.75", "0.5"]
    assert back["count"].tolist() == ["-1", "0", "1", "2", "3", "4", "5", "6", "7"]
    assert back["mixed"].tolist() == ["-3.2", "'-x", "", "True", "1", "ok", "'=a", "b", "2.0"]
    assert set(back["village"]) == {"'=1村"}
    assert frame["clerk"][0].startswith("=")  # the caller's frame is left as it was


def test_a_frame_without_formulas_is_written_unchanged():
    frame = pd.DataFrame({"village": ["孙家窝堡村", "1965-03-12", "a=b"], "n": [1, -2, 3]})
    assert neutralise_formulas(frame) is frame
