"""Where records brought in by `linkage add` live, so that every later run reads them too.

`add` copies the file it links into ``<output>/added/`` and names the copy in its run's summary
(``summary["added"]``). Every reader of the job's records (a later full run, `add`, `export`,
the review app, `explain` and the check API's master) reads them through ``job_files`` here:
the configured sources and then every file an `add` run of the job kept, oldest first. A record
whose id its source's own file now holds is read from that file and the kept copy of it is
rejected as a duplicate, so an office that later merges the additions into the source file
loses nothing and counts nothing twice. Keeping the list in the runs table needs no schema of
its own, and a complete run is the only kind whose additions count.
"""
from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from linkage.core.config import JobConfig, SourceConfig
from linkage.jobs.ingest import REJECT_COLUMNS, Ingested, InputError, read_source
from linkage.store import Store

ADDED_DIR = "added"


def as_file_source(source: SourceConfig, path: Path) -> SourceConfig:
    """The source's column mapping, read from another file (a batch that follows its layout)."""
    return replace(source, path=Path(path), url=None, table=None, query=None,
                   change_column=None)


def keep_copy(config: JobConfig, source: SourceConfig, path: Path, run_id: str,
              out_dir: Path | None = None) -> dict:
    """Copy an added file beside the job's outputs; what the run's summary records about it."""
    folder = Path(out_dir or config.output) / ADDED_DIR
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / f"{run_id}-{source.name}{Path(path).suffix.lower()}"
    shutil.copyfile(path, copy)
    return {"source": source.name, "file": str(copy.resolve()),
            "original": str(Path(path).resolve()),
            "sha256": hashlib.sha256(copy.read_bytes()).hexdigest()}


def added_files(config: JobConfig, store: Store) -> list[dict]:
    """The files complete `add` runs of this job kept, oldest first (each with its run_id)."""
    out = []
    for run_id, summary in store.complete_run_summaries(config.job):
        added = summary.get("added")
        if added and added.get("file"):
            out.append({**added, "run_id": run_id})
    return out


@dataclass
class JobFile:
    """The records one file gives the job: a configured source, or a batch an `add` kept."""

    source: str  # the configured source whose mapping the file follows
    records: pd.DataFrame  # as ``read_source`` gives them (a kept batch: without duplicates)
    rejects: pd.DataFrame  # REJECT_COLUMNS
    read: int  # records read, counted apart from records and rejects
    encoding: str | None  # a configured source's encoding (None for a kept batch)


def job_files(config: JobConfig, store: Store | None = None, progress: bool = False,
              only: set[str] | None = None, read=read_source) -> Iterator[JobFile]:
    """The job's records file by file: the configured sources in config order, then every
    kept addition, oldest first (of the sources named in ``only``, when given).

    The one reader of a job's records: ``ingest_job`` joins the files into one frame, and
    the check API's master standardises them one file at a time to hold less. ``read`` reads
    one file as ``read_source`` does; the kept state (linkage.jobs.state) passes its own, which
    gives the records standardised.
    """
    seen: dict[str, set] = {s.name: set() for s in config.sources}
    for source in config.sources:
        if only is not None and source.name not in only:
            continue
        frame, rej, enc = read(source, progress)
        seen[source.name].update(frame["record_id"])
        yield JobFile(source.name, frame, rej,
                      int(frame.attrs.get("rows_read", len(frame) + len(rej))), enc)
    if store is None:
        own = Store(config.store)
        try:
            extra = added_files(config, own)
        finally:
            own.close()
    else:
        extra = added_files(config, store)
    for info in extra:
        if info["source"] not in seen:
            raise InputError(f"run {info['run_id']} added records to source '{info['source']}', "
                             f"which the config no longer has; restore the source in the config")
        path = Path(info["file"])
        moved = config.output / ADDED_DIR / path.name
        if not path.is_file() and moved.is_file():
            path = moved  # the output folder was moved: look beside this config's outputs
        if not path.is_file():
            raise InputError(f"run {info['run_id']} added records from {info['original']}, kept "
                             f"in {path}, which is missing: restore that file (or start a new "
                             "store) so every linked record is read again")
        if only is not None and info["source"] not in only:
            continue
        source = config.source(info["source"])
        frame, rej, _ = read(as_file_source(source, path), progress)
        dup = frame["record_id"].isin(seen[source.name]).to_numpy()
        if dup.any():
            rej = pd.concat([rej, pd.DataFrame({
                "source": source.name, "record_id": frame.loc[dup, "record_id"].to_numpy(),
                "file": str(path), "row": frame.loc[dup, "row"].to_numpy(),
                "column": source.record_id,
                "reason": f"record id already in {source.location} or an earlier batch; the "
                          f"copy added by run {info['run_id']} is not read",
            })[REJECT_COLUMNS]], ignore_index=True)
        seen[source.name].update(frame.loc[~dup, "record_id"])
        yield JobFile(source.name, frame[~dup].reset_index(drop=True), rej,
                      len(frame) + len(rej) - int(dup.sum()), None)


def ingest_job(config: JobConfig, store: Store | None = None, progress: bool = False,
               only: set[str] | None = None) -> Ingested:
    """The configured sources plus every kept addition: all the records the job now has
    (of the sources named in ``only``, when given), as one frame."""
    frames, rejects, counts, encodings = [], [], {}, {}
    for part in job_files(config, store, progress, only):
        frames.append(part.records)
        rejects.append(part.rejects)
        counts[part.source] = counts.get(part.source, 0) + part.read
        if part.encoding is not None:
            encodings[part.source] = part.encoding
    records = pd.concat(frames, ignore_index=True, sort=False)
    for col in records.columns:
        if col != "row":
            records[col] = records[col].astype(object).where(records[col].notna(), None)
    return Ingested(records, pd.concat(rejects, ignore_index=True), counts, encodings)
