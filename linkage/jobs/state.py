"""Kept standardised state: each input file read and standardised once, kept as Parquet.

Reading a roster and standardising its records is most of what a run repeats when nothing
changed. Each file the job reads (a configured source, or a batch `linkage add` kept) is kept
in the job's state folder (``<state_dir>/<job>``, state_dir by default ``<output>/state``) as
one Parquet file holding the standardised records, with the file's rejects and counts in its
metadata, so the accounting (records read = linked + rejected) comes out of the state as
exactly as out of the file.

A kept file is used only when its key matches, the SHA-256 of:

- the file's bytes;
- how the source reads it: its name, location (rejects name it), record-id column, column
  mapping, encoding and sheet;
- the fields standardised (every source's mapped fields: a record gets the columns of fields
  its own source does not map, empty);
- the code that reads and standardises: the source text of this module, ``ingest`` and
  ``standardise``, every file of the ``matchers`` package (parsers and their tables), and the
  versions of Python and of the libraries they use (pandas, pypinyin, OpenCC ...).

Hashing the code rather than keeping a version number someone must remember to bump means
that any edit to a parser invalidates the state, at the cost of rebuilding it after edits that
change nothing (a comment): one cold run, the price of a run without state.

A database source has no file to hash: it is read and standardised every run, unless its
``change_column`` names a column every insert and update sets; then its row count and that
column's largest value stand for the file's SHA-256.

A state file is written under a temporary name and moved into place with ``os.replace``, so a
killed run leaves either the old file or the whole new one; the SHA-256 of its bytes is kept
beside it (``.sha256``, moved into place after it). Reading verifies that SHA-256, the key, the
row count and every column's dtype; a file that fails any check is ignored with a warning and
rebuilt. A run prunes the state files it did not use.
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from linkage.core import standardise
from linkage.core.config import JobConfig, SourceConfig
from linkage.jobs.ingest import Ingested, read_source, sql_version
from linkage.jobs.inputs import job_files

log = logging.getLogger("linkage")

STATE_DIR = "state"  # under the output folder, unless the config names `state_dir`
STATE_FORMAT = 1  # the layout of a state file (its metadata), apart from the code's content
META_KEY = b"linkage_state"
SUFFIX = ".parquet"
WRITE_ROWS = 100_000  # records per Parquet row group
# The libraries ingest and the standardisers import: a new version may parse differently.
LIBRARIES = ("numpy", "pandas", "pyarrow", "pypinyin", "opencc", "rapidfuzz", "jellyfish",
             "lunar_python", "four_corner_method", "stdnum", "charset_normalizer", "openpyxl")

Standardiser = Callable[[pd.DataFrame, set], pd.DataFrame]


ROOT = Path(__file__).resolve().parent.parent.parent


def code_files() -> list[Path]:
    """The files whose text decides what reading and standardising give."""
    files = [ROOT / "linkage" / "core" / "standardise.py", ROOT / "linkage" / "jobs" / "ingest.py",
             Path(__file__).resolve()]
    return files + sorted(p for p in (ROOT / "matchers").rglob("*")
                          if p.is_file() and "__pycache__" not in p.parts)


@functools.cache
def code_fingerprint() -> str:
    """SHA-256 of the code that reads and standardises records, and of its libraries' versions."""
    from importlib import metadata

    digest = hashlib.sha256(f"format {STATE_FORMAT}; python {sys.version_info[:2]}".encode())
    for path in code_files():
        digest.update(str(path.relative_to(ROOT)).encode("utf-8") + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    distributions = metadata.packages_distributions()
    for module in LIBRARIES:
        for dist in sorted(distributions.get(module, [module])):
            try:
                version = metadata.version(dist)
            except metadata.PackageNotFoundError:
                version = "absent"
            digest.update(f"{module}={dist}=={version};".encode())
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def content_version(source: SourceConfig) -> str | None:
    """What identifies the source's content: a file's SHA-256; for a database source with a
    ``change_column``, its row count and the column's largest value (an insert or update moves
    the largest value, a delete the count); None for a database source without one."""
    if source.path is not None:
        return file_sha256(source.path)
    if source.change_column is None:
        return None
    return sql_version(source)


def state_key(source: SourceConfig, fields: set[str], content: str) -> str:
    """The key a state file of this source's file must carry (see the module's docstring)."""
    reads = {"name": source.name, "location": source.location, "record_id": source.record_id,
             "table": source.table, "query": source.query, "change_column": source.change_column,
             "fields": sorted(source.fields.items()), "encoding": source.encoding,
             "sheet": source.sheet}
    text = json.dumps({"code": code_fingerprint(), "content": content, "source": reads,
                       "standardised": sorted(fields)}, ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def state_path(folder: Path, source: SourceConfig, key: str) -> Path:
    """``<source>-<key>.parquet``: the source in the name for people, the key for the run."""
    name = re.sub(r"[^\w.-]+", "_", source.name, flags=re.ASCII)[:40] or "source"
    return Path(folder) / f"{name}-{key[:32]}{SUFFIX}"


def standardise_part(frame: pd.DataFrame, fields: set[str],
                     standardiser: Standardiser = standardise.standardise_records) -> pd.DataFrame:
    """One file's records standardised as they would be among the whole job's: the fields
    other sources map added empty, every raw cell text or None (as ingest_job gives them)."""
    part = frame.copy(deep=False)
    for name in sorted(set(fields) - set(part.columns)):
        part[name] = None
    for col in part.columns:
        if col != "row":
            part[col] = part[col].astype(object).where(part[col].notna(), None)
    out = standardiser(part, set(fields)).reset_index(drop=True)
    out.attrs = {}
    return out


def assemble(parts: list[pd.DataFrame], raw_columns: list[list[str]]) -> pd.DataFrame:
    """The parts as one frame with the columns (order and dtypes) standardising the whole
    job's records at once gives: raw columns in the order the files bring them, then the
    standardised ones; a raw column a file lacks is None there.

    Column by column: a column that is text (object) in every part is joined with numpy.
    ``pd.concat`` gives the same there, but first checks each value of a part's all-None
    column one by one in Python (about 10 s of a 1M-person `linkage add`). Other dtypes go
    through ``pd.concat``, which decides their common dtype.
    """
    union = list(dict.fromkeys(c for columns in raw_columns for c in columns))
    derived = [c for c in parts[0].columns if c not in set(union)] if parts else []
    if not parts:
        return pd.DataFrame()
    columns = {}
    for name in union + derived:
        present = [part[name] for part in parts if name in part.columns]
        if all(col.dtype == object for col in present):
            columns[name] = np.concatenate([
                part[name].to_numpy() if name in part.columns
                else np.full(len(part), None, dtype=object) for part in parts])
        else:  # frames, empty ones too: they shape the dtype as ingest_job's concat does
            columns[name] = pd.concat(
                [part[[name]] if name in part.columns
                 else pd.DataFrame({name: [None] * len(part)}, dtype=object) for part in parts],
                ignore_index=True)[name]
    out = pd.DataFrame(columns, copy=False)
    out.attrs = {}
    return out


# --------------------------------------------------------------------------- state files

def save(path: Path, key: str, records: pd.DataFrame, rejects: pd.DataFrame, read: int,
         encoding: str, raw_columns: list[str]) -> None:
    """Write a state file atomically: a temporary name in the same folder, then os.replace."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.Schema.from_pandas(records, preserve_index=False)
    meta = {"format": STATE_FORMAT, "key": key, "rows": len(records), "read": int(read),
            "encoding": encoding, "raw_columns": raw_columns,
            "dtypes": [[c, str(t)] for c, t in records.dtypes.items()],
            "rejects": {"columns": list(rejects.columns),
                        "rows": [[_plain(v) for v in row] for row in
                                 rejects.astype(object).itertuples(index=False, name=None)]}}
    schema = schema.with_metadata({**(schema.metadata or {}),
                                   META_KEY: json.dumps(meta, ensure_ascii=False)})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    check = checksum_path(path)
    check_tmp = check.with_name(f".{check.name}.{os.getpid()}.tmp")
    try:
        # In slices, so that the Arrow copy of a million records never exists whole.
        with pq.ParquetWriter(tmp, schema, write_page_checksum=True) as writer:
            for start in range(0, max(len(records), 1), WRITE_ROWS):
                writer.write_table(pa.Table.from_pandas(
                    records.iloc[start:start + WRITE_ROWS], schema=schema, preserve_index=False))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        check_tmp.write_text(file_sha256(tmp), encoding="ascii")
        # The data first, its checksum last: a kill between the two leaves a file whose
        # checksum is missing or another's, which load() refuses.
        os.replace(tmp, path)
        os.replace(check_tmp, check)
    finally:
        tmp.unlink(missing_ok=True)
        check_tmp.unlink(missing_ok=True)


def checksum_path(path: Path) -> Path:
    """The file beside a state file holding the SHA-256 of its bytes."""
    return path.with_name(path.name + ".sha256")


def _plain(value):
    """A reject cell as JSON holds it (row numbers come as numpy integers)."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, float) and value != value:
        return None
    return int(value) if hasattr(value, "__index__") else value


class StateUnreadable(ValueError):
    """A state file that fails a check: truncated, corrupt, or not what its key promises."""


def load(path: Path, key: str) -> tuple[pd.DataFrame, pd.DataFrame, int, str, list[str]]:
    """A state file's (records, rejects, records read, encoding, raw columns), checked."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        data = path.read_bytes()
        expected = checksum_path(path).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise StateUnreadable(f"or its checksum cannot be read ({exc})") from None
    if hashlib.sha256(data).hexdigest() != expected:
        raise StateUnreadable("does not match its SHA-256 (truncated or damaged)")
    try:
        table = pq.read_table(pa.BufferReader(data), page_checksum_verification=True)
        meta = json.loads(table.schema.metadata[META_KEY])
        if meta.get("format") != STATE_FORMAT or meta.get("key") != key:
            raise StateUnreadable("its key does not match the file it is named for")
        del data
        records = table.to_pandas()  # equal strings of a column share one object, as ingest's
    except StateUnreadable:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure to read means "rebuild it"
        raise StateUnreadable(f"cannot be read ({type(exc).__name__}: {exc})") from None
    if len(records) != meta["rows"]:
        raise StateUnreadable(f"holds {len(records)} rows, its metadata {meta['rows']}")
    dtypes = [[c, str(t)] for c, t in records.dtypes.items()]
    if dtypes != meta["dtypes"]:
        raise StateUnreadable("its columns do not come back with the types they were written "
                              "with")
    rejects = pd.DataFrame(meta["rejects"]["rows"], columns=meta["rejects"]["columns"])
    return records, rejects, int(meta["read"]), meta["encoding"], list(meta["raw_columns"])


# --------------------------------------------------------------------------- reading a job

@dataclass
class KeptState:
    """Reads the job's files through the state folder and notes what each file took."""

    folder: Path
    fields: set[str]
    standardiser: Standardiser = standardise.standardise_records
    report: list[dict] = field(default_factory=list)  # one entry per file, in reading order
    raw_columns: list[list[str]] = field(default_factory=list)
    standardise_seconds: float = 0.0
    used: set[Path] = field(default_factory=set)
    contents: list[list] = field(default_factory=list)  # [source, content version] per file

    def read(self, source: SourceConfig,
             progress: bool = False) -> tuple[pd.DataFrame, pd.DataFrame, str]:
        """``read_source``'s (records, rejects, encoding), the records standardised: from the
        state when a file there matches, else read, standardised and kept."""
        entry = {"source": source.name, "file": source.location}
        if source.path is not None and not source.path.is_file():
            read_source(source, progress)  # raises InputError naming the source and key
            raise AssertionError(f"read_source read a missing file {source.path}")
        content = content_version(source)
        self.contents.append([source.name, content])
        if content is None:  # a database without a change column: nothing to key a state by
            records, rejects, read, encoding, raw = self._standardised(source, progress)
            entry["state"] = "standardised"
            entry["note"] = "a database source without change_column is read every run"
        else:
            key = state_key(source, self.fields, content)
            path = state_path(self.folder, source, key)
            got, problem = None, ""
            if path.is_file():
                try:
                    got = load(path, key)
                except StateUnreadable as exc:
                    problem = f"state file {path} {exc}: ignored and rebuilt"
                    log.warning("kept state: %s", problem)
            if got is not None:
                records, rejects, read, encoding, raw = got
                entry["state"] = "kept"
                self.used.add(path)
            else:
                records, rejects, read, encoding, raw = self._standardised(source, progress)
                entry["state"] = "standardised"
                if problem:
                    entry["warning"] = problem
                if content_version(source) == content:  # never keep what changed mid-read
                    try:
                        save(path, key, records, rejects, read, encoding, raw)
                        self.used.add(path)
                    except Exception as exc:  # noqa: BLE001 - a state not kept never fails a run
                        entry["warning"] = f"state not kept ({type(exc).__name__}: {exc})"
                        log.warning("kept state: cannot write %s: %s", path, exc)
        entry["records"] = len(records)
        self.report.append(entry)
        self.raw_columns.append(raw)
        records.attrs["rows_read"] = read
        return records, rejects, encoding

    def _standardised(self, source, progress):
        records, rejects, encoding = read_source(source, progress)
        read = int(records.attrs.get("rows_read", len(records) + len(rejects)))
        raw = list(records.columns)
        start = time.perf_counter()
        std = standardise_part(records, self.fields, self.standardiser)
        self.standardise_seconds += time.perf_counter() - start
        return std, rejects, read, encoding, raw

    def inputs(self) -> list[list[str]] | None:
        """Each file read, as [source, content version]: what the records came from; None
        when a file has no content version (a database source without change_column)."""
        if any(content is None for _, content in self.contents):
            return None
        return [list(pair) for pair in self.contents]

    def summary(self) -> dict:
        """summary.json's ``state``: the folder, and per file what it took."""
        kept = [e for e in self.report if e["state"] == "kept"]
        return {"folder": str(self.folder), "files": self.report,
                "records_from_state": sum(e["records"] for e in kept),
                "files_kept": len(kept), "files_standardised": len(self.report) - len(kept)}

    def prune(self) -> list[Path]:
        """Remove the state files (and temporary files of killed runs) this job no longer
        reads; call only after reading every file of the job."""
        removed = []
        for path in Path(self.folder).glob("*"):
            stale_tmp = path.name.startswith(".") and path.name.endswith(".tmp")
            data = path.with_name(path.name.removesuffix(".sha256"))
            if (data.suffix == SUFFIX and data not in self.used) or (
                    stale_tmp and not _writer_alive(path)):
                path.unlink(missing_ok=True)
                removed.append(path)
        return removed


def _writer_alive(tmp: Path) -> bool:
    from linkage.jobs.staging import pid_alive

    pid = tmp.name.rsplit(".", 2)[-2]
    return pid.isdigit() and pid_alive(int(pid))


def state_folder(config: JobConfig, out_dir: Path | None = None) -> Path:
    """The job's folder in the config's ``state_dir``, else in ``state`` of the folder the run
    writes to: a run prunes the files it does not read, so jobs sharing a state_dir must not
    share a folder (a job name holds no slash)."""
    return Path(config.state_dir or Path(out_dir or config.output) / STATE_DIR) / config.job


def standardised_job(config: JobConfig, store=None, progress: bool = False,
                     state_dir: Path | None = None,
                     standardiser: Standardiser = standardise.standardise_records,
                     ) -> tuple[Ingested, KeptState]:
    """Every record the job has (sources and kept `add` batches), standardised, as
    ``standardise_records(ingest_job(...).records, fields).reset_index(drop=True)`` gives
    them, with the rejects and counts; unchanged files come from the kept state
    (``state_dir``, else the config's: :func:`state_folder`)."""
    fields = {f for s in config.sources for f in s.fields}
    state = KeptState(Path(state_dir or state_folder(config)), fields, standardiser)
    parts, rejects, counts, encodings = [], [], {}, {}
    for part in job_files(config, store, progress, read=state.read):
        parts.append(part.records)
        rejects.append(part.rejects)
        counts[part.source] = counts.get(part.source, 0) + part.read
        if part.encoding is not None:
            encodings[part.source] = part.encoding
    records = assemble(parts, state.raw_columns)
    return Ingested(records, pd.concat(rejects, ignore_index=True), counts, encodings), state
