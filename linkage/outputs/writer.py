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
from linkage.outputs.report import environment, render_report
from linkage.outputs.roster import conflicts, not_verified, roster
from linkage.outputs.tables import write_csv, write_table
from linkage.outputs.view import RunView

SHEETS = {"roster": "名册 roster", "not_verified": "未核实 not verified",
          "conflicts": "冲突 conflicts", "duplicate_enrolments": "重复参保 duplicates"}


def write_office_outputs(result: RunResult, out_dir: Path) -> dict[str, dict]:
    """From a pipeline RunResult: the files written, as {name: {"files": [...], "rows": n}}."""
    return write_outputs(RunView.from_result(result), Path(out_dir))


def write_outputs(view: RunView, out_dir: Path) -> dict[str, dict]:
    """Roster, lists, quality reports, report.html and README_outputs.txt into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    enrol = enrolments(view)
    tables = {
        "roster": roster(view, enrol),
        "not_verified": not_verified(view, enrol),
        "conflicts": conflicts(view),
        "duplicate_enrolments": duplicate_enrolments(view, enrol),
    }
    manifest: dict[str, dict] = {}
    for stem, frame in tables.items():
        paths = write_table(frame, out_dir, stem, SHEETS[stem])
        manifest[stem] = {"files": [p.name for p in paths], "rows": len(frame)}
    clusters = pd.DataFrame({"source": view.records["source"],
                             "record_id": view.records["record_id"], "entity_id": view.entity_id})
    households = household_links(view.records, clusters,
                                 {s.name: s.role for s in view.config.sources})
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
        tables = {**tables, "household_links": households}
    columns = {**{k: list(v.columns) for k, v in tables.items()},
               **{k: list(v.columns) for k, v in reports.items() if v is not None}}
    _write_readme(view, out_dir / "README_outputs.txt", manifest, columns)
    manifest["report"] = {"files": ["report.html"], "rows": None}
    manifest["readme"] = {"files": ["README_outputs.txt"], "rows": None}
    return manifest


def _write_readme(view: RunView, path: Path, manifest: dict, columns: dict[str, list]) -> None:
    text = environment().get_template("README_outputs.txt").render(
        run_id=view.run_id, job=view.config.job, manifest=manifest, columns=columns,
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    path.write_text(text, encoding="utf-8-sig")

