"""Write every office and data-team output of one run into its output folder.

The pipeline calls ``write_office_outputs`` at the end of each run, and ``linkage export``
calls ``write_outputs`` with a view rebuilt from the store, so both write the same files.
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from linkage.jobs.bookkeeping import RunResult
from linkage.outputs import quality
from linkage.outputs.enrolments import duplicate_enrolments, enrolments
from linkage.outputs.households import household_links, write_household_links
from linkage.outputs.registry_duplicates import headers as duplicate_headers
from linkage.outputs.registry_duplicates import registry_duplicates, registry_pairs
from linkage.outputs.report import environment, render_report
from linkage.outputs.roster import card_roster, conflicts, not_verified
from linkage.outputs.tables import csv_beside, header, write_csv, write_table
from linkage.outputs.view import RunView
from linkage.outputs.xlsx import Properties, Sheet, write_xlsx

SHEETS = {"roster": "制卡名册", "roster_deferred": "暂缓制卡",
          "not_verified": "未核实 not verified", "conflicts": "冲突 conflicts",
          "duplicate_enrolments": "重复参保 duplicates", "registry_duplicates": "疑似重复户籍",
          "entity_changes": "实体变更"}


def write_office_outputs(result: RunResult, out_dir: Path) -> dict[str, dict]:
    """From a pipeline RunResult: the files written, as {name: {"files": [...], "rows": n}}."""
    return write_outputs(RunView.from_result(result), Path(out_dir))


def write_outputs(view: RunView, out_dir: Path) -> dict[str, dict]:
    """Roster, lists, quality reports, report.html and README_outputs.txt into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    # Each table is let go once written (the README needs only its columns): at a million
    # persons the roster and the enrolments are hundreds of MB the later steps need not hold.
    enrol = enrolments(view)
    pairs = registry_pairs(view)
    issuable, deferred = card_roster(view, enrol, pairs)
    tables = {
        "not_verified": not_verified(view, enrol),
        "conflicts": conflicts(view),
        "duplicate_enrolments": duplicate_enrolments(view, enrol),
    }
    del enrol
    manifest: dict[str, dict] = {}
    columns: dict[str, list] = {"roster": list(issuable.columns)}
    note, properties = _run_note(view)
    manifest["roster"] = {"files": [p.name for p in _write_roster(
        issuable, deferred, out_dir, note, properties)], "rows": len(issuable)}
    del issuable
    for stem, frame in tables.items():
        paths = write_table(frame, out_dir, stem, SHEETS[stem])
        manifest[stem] = {"files": [p.name for p in paths], "rows": len(frame)}
        columns[stem] = list(frame.columns)
    del tables
    # after the four lists: their order is the one the API names them in
    manifest["roster_deferred"] = {"files": ["roster_deferred.csv"], "rows": len(deferred)}
    columns["roster_deferred"] = list(deferred.columns)
    del deferred
    duplicates = registry_duplicates(view, pairs)
    write_csv(duplicates, out_dir / "registry_duplicates.csv", float_format="%.4f")
    write_xlsx(out_dir / "registry_duplicates.xlsx", [Sheet(
        SHEETS["registry_duplicates"], duplicates, duplicate_headers(list(duplicates.columns)),
        note=note)], properties=Properties("疑似重复户籍", properties.description,
                                           properties.created))
    manifest["registry_duplicates"] = {
        "files": ["registry_duplicates.csv", "registry_duplicates.xlsx"], "rows": len(duplicates)}
    columns["registry_duplicates"] = list(duplicates.columns)
    del duplicates
    if view.successors is not None:  # which ids moved since the previous run, and where
        paths = write_table(view.successors, out_dir, "entity_changes", SHEETS["entity_changes"])
        manifest["entity_changes"] = {"files": [p.name for p in paths],
                                      "rows": len(view.successors)}
        columns["entity_changes"] = list(view.successors.columns)
    clusters = pd.DataFrame({"source": view.records["source"],
                             "record_id": view.records["record_id"], "entity_id": view.entity_id})
    households = household_links(view.records, clusters,
                                 {s.name: s.role for s in view.config.sources})
    del clusters
    if len(households):  # only when an insurance source lists households (NCMS)
        paths = write_household_links(households, out_dir)
        manifest["household_links"] = {"files": [p.name for p in paths], "rows": len(households)}

    errors = quality.record_errors(view)
    villages = quality.village_report(errors)
    reports = {"village_quality": villages,
               "clerk_quality": quality.clerk_report(errors, "clerk"),
               "receipt_book_quality": quality.clerk_report(errors, "receipt_book"),
               "record_errors": quality.error_records(errors)}
    for stem, frame in reports.items():
        if frame is not None:
            write_csv(frame, out_dir / f"{stem}.csv")
            manifest[stem] = {"files": [f"{stem}.csv"], "rows": len(frame)}

    render_report(view, out_dir / "report.html", manifest, villages, reports["clerk_quality"],
                  errors, households=households)
    if len(households):
        columns["household_links"] = list(households.columns)
    columns.update({k: list(v.columns) for k, v in reports.items() if v is not None})
    _write_readme(view, out_dir / "README_outputs.txt", manifest, columns)
    manifest["report"] = {"files": ["report.html"], "rows": None}
    manifest["readme"] = {"files": ["README_outputs.txt"], "rows": None}
    return manifest


def _run_note(view: RunView) -> tuple[str, Properties]:
    """'demo 运行 20240501T083000-1a2b3c4d（2024-05-01 08:30 UTC）': which run a printed office
    list comes from, for its page header and File > Info (the run id starts with its time)."""
    try:
        when = datetime.strptime(view.run_id[:15], "%Y%m%dT%H%M%S").replace(tzinfo=timezone.utc)
    except ValueError:  # a run id of another form: the time of writing
        when = datetime.now(timezone.utc)
    note = f"{view.config.job} 运行 {view.run_id}（{when:%Y-%m-%d %H:%M} UTC）"
    return note, Properties("社保卡制卡名册", note, when.strftime("%Y-%m-%dT%H:%M:%SZ"))


def _write_roster(issuable: pd.DataFrame, deferred: pd.DataFrame, out_dir: Path, note: str,
                  properties: Properties) -> list[Path]:
    """roster.xlsx with its two sheets (制卡名册, 暂缓制卡), roster.csv (the first sheet) and
    roster_deferred.csv (the second), each sheet headed by the run it comes from."""
    csv_path, xlsx_path = out_dir / "roster.csv", out_dir / "roster.xlsx"
    with csv_beside(issuable, csv_path) as first, \
            csv_beside(deferred, out_dir / "roster_deferred.csv") as second:
        write_xlsx(xlsx_path, [Sheet(SHEETS[stem], frame, [header(c) for c in frame.columns],
                                     note, also=also)
                               for stem, frame, also in (("roster", issuable, first),
                                                         ("roster_deferred", deferred, second))],
                   properties=properties)
    return [csv_path, xlsx_path]


def _write_readme(view: RunView, path: Path, manifest: dict, columns: dict[str, list]) -> None:
    text = environment().get_template("README_outputs.txt").render(
        run_id=view.run_id, job=view.config.job, manifest=manifest, columns=columns,
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    path.write_text(text, encoding="utf-8-sig")

