"""`linkage daily`: link the day's enrolment forms (`linkage add`), then check them as the office
does.

The batch is linked by ``linkage.jobs.add.add`` (its public entry point: the same rejects, the
same entities, the run recorded like any other), then read once more, with the columns only
the check reads (``contributions.columns``), so the check sees each linked row as the clerk
keyed it, by file row. The tables are made by ``linkage.outputs.daily`` and written to
``<output>/daily/<run_id>/``: enrolment_check.xlsx for the office (one sheet per list, IDs as
text), a CSV per list, enrolment_check.html and check.json.

A column the config names for the check but the file lacks is not an error: the check says what
it could not check. A cell it cannot read (an amount of "五十") is listed by file, row and
column, and the record is linked all the same: nothing handed in is lost.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import pandas as pd

from linkage.core.config import CHECK_FIELDS, JobConfig
from linkage.jobs.add import add, read_header
from linkage.jobs.bookkeeping import RunResult
from linkage.jobs.ingest import InputError, read_source
from linkage.jobs.inputs import as_file_source

DAILY_DIR = "daily"


@dataclass
class Daily:
    """The `add` run and the day's check of its batch."""

    result: RunResult
    check: object  # linkage.outputs.daily.DayCheck
    folder: Path
    manifest: dict[str, dict]


def daily(config: JobConfig, path: Path, source: str | None = None,
          out_dir: Path | None = None, day: date | None = None, year: int | None = None,
          progress: bool = False, truth_path: Path | None = None) -> Daily:
    """Add the day's file to the job, then check it; ``day`` defaults to today and ``year``
    (the contribution year whose rules apply) to the day's year."""
    result = add(config, Path(path), source, out_dir, progress=progress, truth_path=truth_path)
    return check_batch(result, Path(path), day, year)


def check_batch(result: RunResult, path: Path, day: date | None = None,
                year: int | None = None) -> Daily:
    """The day's check of the batch the `add` run ``result`` linked from ``path``."""
    from linkage.outputs.daily import day_check, write_day_check

    day = day or date.today()
    batch = read_batch(result, Path(path), day, year or day.year)
    check = day_check(result, batch)
    folder = Path(result.out_dir) / DAILY_DIR / result.run_id
    manifest = write_day_check(check, folder)
    return Daily(result, check, folder, manifest)


def read_batch(result: RunResult, path: Path, day: date, year: int):
    """The batch's linked rows as its file gives them, with the check's own columns."""
    from linkage.outputs.daily import Batch

    config = result.config
    added = result.summary.get("added") or {}
    src = config.source(added["source"])
    wanted = {**{f: c for f, c in src.fields.items() if f in CHECK_FIELDS},
              **(config.contributions.columns.get(src.name, {}) if config.contributions else {})}
    header = set(read_header(path, src.encoding, src.sheet))
    present = {f: c for f, c in wanted.items() if c in header}
    missing = {f: c for f, c in wanted.items() if c not in header}
    extra = {f: c for f, c in present.items() if f not in src.fields}
    frame, _, _ = read_source(as_file_source(replace(src, fields={**src.fields, **extra}), path))
    rejected_rows = set(pd.to_numeric(result.rejects["row"], errors="coerce").dropna().astype(int))
    frame = frame[~frame["row"].isin(rejected_rows)].reset_index(drop=True)
    records = result.records
    key = pd.MultiIndex.from_arrays([records["source"].astype(str),
                                     records["record_id"].astype(str)])
    positions = key.get_indexer(pd.MultiIndex.from_arrays(
        [frame["source"].astype(str), frame["record_id"].astype(str)]))
    if (positions < 0).any():
        lost = frame.loc[positions < 0, "row"].tolist()[:5]
        raise InputError(f"{path}: rows {lost} were neither linked nor rejected by run "
                         f"{result.run_id}: was the file changed while it was added?")
    read = int(result.summary["records"]["read"])
    return Batch(source=src, file=str(added.get("original") or path), frame=frame,
                 positions=positions, columns=present, missing=missing,
                 rejects=result.rejects, read=read, day=day.isoformat(), year=year)
