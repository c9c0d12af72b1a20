"""Where records brought in by `linkage add` live, so that every later run reads them too.

`add` copies the file it links into ``<output>/added/`` and names the copy in its run's summary
(``summary["added"]``). A later full run, `export` and the review app read the configured sources
and then every file an `add` run of the job kept, oldest first; a record whose id its source's
own file now holds is read from that file and the kept copy of it is rejected as a duplicate,
so an office that later merges the additions into the source file loses nothing and counts
nothing twice. Keeping the list in the runs table needs no schema of its own, and a complete
run is the only kind whose additions count.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import replace
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from linkage.config import JobConfig, SourceConfig
from linkage.ingest import REJECT_COLUMNS, Ingested, InputError, ingest, read_source
from linkage.store import Store, runs

ADDED_DIR = "added"


def as_file_source(source: SourceConfig, path: Path) -> SourceConfig:
    """The source's column mapping, read from another file (a batch that follows its layout)."""
    return replace(source, path=Path(path), url=None, table=None, query=None)


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
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(runs.c.run_id, runs.c.summary)
            .where(runs.c.job == config.job, runs.c.status == "complete")
            .order_by(runs.c.finished_at, runs.c.run_id)).all()
    out = []
    for run_id, summary in rows:
        added = json.loads(summary).get("added") if summary else None
        if added and added.get("file"):
            out.append({**added, "run_id": run_id})
    return out


def ingest_job(config: JobConfig, store: Store | None = None, progress: bool = False,
               only: set[str] | None = None) -> Ingested:
    """The configured sources plus every kept addition: all the records the job now has
    (of the sources named in ``only``, when given)."""
    data = ingest([s for s in config.sources if only is None or s.name in only], progress)
    if store is None:
        own = Store(config.store)
        try:
            extra = added_files(config, own)
        finally:
            own.engine.dispose()
    else:
        extra = added_files(config, store)
    if not extra:
        return data
    names = {s.name for s in config.sources}
    frames, rejects, counts = [data.records], [data.rejects], dict(data.counts)
    seen = {name: set(data.records.loc[data.records["source"] == name, "record_id"])
            for name in names}
    for info in extra:
        if info["source"] not in names:
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
        frame, rej, _ = read_source(as_file_source(source, path), progress)
        dup = frame["record_id"].isin(seen[source.name]).to_numpy()
        if dup.any():
            rej = pd.concat([rej, pd.DataFrame({
                "source": source.name, "record_id": frame.loc[dup, "record_id"].to_numpy(),
                "file": str(path), "row": frame.loc[dup, "row"].to_numpy(),
                "column": source.record_id,
                "reason": f"record id already in {source.location} or an earlier batch; the "
                          f"copy added by run {info['run_id']} is not read",
            })[REJECT_COLUMNS]], ignore_index=True)
        frames.append(frame[~dup])
        rejects.append(rej)
        seen[source.name].update(frame.loc[~dup, "record_id"])
        counts[source.name] += len(frame) + len(rej) - int(dup.sum())
    records = pd.concat(frames, ignore_index=True, sort=False)
    for col in records.columns:
        if col != "row":
            records[col] = records[col].astype(object).where(records[col].notna(), None)
    return Ingested(records, pd.concat(rejects, ignore_index=True), counts, data.encodings)
