"""The last run's membership and golden records kept beside the standardised state.

Every run reads the previous run's membership (stable entity ids, the changes it reports) and
`linkage add` its golden records too. From the store that is a query over every record's
version (about 15 s at a million persons on SQLite); from a Parquet file beside the kept state,
a second. The store stays the record: a file is read only for the run it is named for, which
wrote it just before it stored the same rows, and a file that is missing or cannot be read back
whole means reading the store.

Golden records are made per entity, each from its own records only
(``linkage.core.golden.golden_records``), so a batch that touches a thousand entities changes
at most those rows. `linkage add` takes the previous run's rows from here and runs
survivorship only for the entities it touched; every other row, and the digest the store keeps
of it (``linkage.store.versions.digest``), is the previous run's. That reuse needs more than
the right run: the same inputs as the records `add` now reads (each input file's content
version, as the kept state reads it; an `add` counts its batch among its inputs), the same
survivorship settings (precedence, source roles and schemes) and the same code (the text of
``golden.py``, the pandas and pyarrow versions). Anything else means survivorship for every
entity, as before: a kept file can only save time, never change a result.

The counts behind the term frequencies and the name model (linkage.engines.local.FieldStats)
are kept the same way, so that `add` adds its batch's counts to them instead of counting every
record again: used only for the same inputs, the same source roles and the same counting code.

Files per run in ``<state folder>/runs/``: ``<run_id>-members.parquet``,
``<run_id>-golden.parquet`` and ``<run_id>-stats.parquet`` (a folder of their own: the kept
state prunes the Parquet files it does not read), each written under a temporary name and
moved into place. A run removes the
files of the runs before the previous one (it may yet fail, and the previous stays the base).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from linkage.core import golden
from linkage.jobs.staging import pid_alive

log = logging.getLogger("linkage")

FOLDER = "runs"
META_KEY = b"linkage_run"
FORMAT = 1
DIGEST = "__digest"  # the store's digest of each golden row, kept beside the row
MEMBER_COLUMNS = ["source", "record_id", "entity_id"]


def settings_key(precedence, roles: dict[str, str], schemes: dict[str, str]) -> str:
    """What survivorship depends on besides the records: the settings and the code."""
    import pyarrow

    code = Path(golden.__file__).read_bytes()
    text = json.dumps({"precedence": list(precedence), "roles": sorted(roles.items()),
                       "schemes": sorted(schemes.items()), "format": FORMAT,
                       "code": hashlib.sha256(code).hexdigest(), "pandas": pd.__version__,
                       "pyarrow": pyarrow.__version__}, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def job_settings(config) -> str:
    """:func:`settings_key` of a job config, as its run gives survivorship the settings."""
    return settings_key(config.precedence, {s.name: s.role for s in config.sources},
                        {s.name: s.scheme for s in config.sources if s.scheme})


def stats_settings(config) -> str:
    """What the counts behind term frequencies and the name model depend on besides the
    records: the source roles (registry infants count apart) and the code that counts."""
    import pyarrow

    from linkage.core import model, name_evidence
    from linkage.engines import local

    code = [hashlib.sha256(Path(m.__file__).read_bytes()).hexdigest()
            for m in (name_evidence, model, local)]
    text = json.dumps({"roles": sorted((s.name, s.role) for s in config.sources),
                       "format": FORMAT, "code": code, "pandas": pd.__version__,
                       "pyarrow": pyarrow.__version__}, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class Keeping:
    """Where a run keeps its rows and what its golden rows were made from; ``known``: the
    digests of golden rows taken unchanged from the previous run (`add`); ``stats``: the
    counts its weights read of every record (linkage.engines.local.FieldStats), kept with
    ``stats_key`` (:func:`stats_settings`) for the next `add`."""

    folder: Path
    inputs: list[list[str]] | None
    settings: str
    known: pd.Series | None = None
    stats: object | None = None
    stats_key: str | None = None


def _path(folder: Path, run_id: str, kind: str) -> Path:
    return Path(folder) / FOLDER / f"{run_id}-{kind}.parquet"


def _write(path: Path, frame: pd.DataFrame, meta: dict) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    meta = {**meta, "format": FORMAT, "rows": len(frame),
            "dtypes": [[c, str(t)] for c, t in frame.dtypes.items()]}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                           META_KEY: json.dumps(meta).encode("utf-8")})
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def _read(path: Path, run_id: str) -> tuple[pd.DataFrame, dict] | None:
    """A kept frame and its metadata, if the file is the run's and reads back whole."""
    if not path.is_file():
        return None
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
        meta = json.loads(table.schema.metadata[META_KEY])
        frame = table.to_pandas()
    except Exception as exc:  # noqa: BLE001 - unreadable: the caller reads the store
        log.warning("kept run: %s cannot be read (%s): not used", path, exc)
        return None
    if meta.get("format") != FORMAT or meta.get("run_id") != run_id or len(frame) != meta["rows"]:
        return None
    for column in frame.columns:  # object columns come back with None, as the run made them
        if frame[column].dtype == object:
            frame[column] = frame[column].where(frame[column].notna(), None)
    return frame, meta


def keep(folder: Path, run_id: str, members: pd.DataFrame, rows: pd.DataFrame,
         digests: np.ndarray, inputs: list[list[str]] | None, settings: str,
         previous_run: str | None, stats=None, stats_key: str | None = None) -> None:
    """Write the run's membership, golden rows and digests (and the counts of ``stats``)
    before the run is stored; a failure to write is a warning (the next run reads the store,
    the next `add` counts every record)."""
    out = Path(folder) / FOLDER
    try:
        out.mkdir(parents=True, exist_ok=True)
        _write(_path(folder, run_id, "members"), members[MEMBER_COLUMNS].reset_index(drop=True),
               {"run_id": run_id})
        _write(_path(folder, run_id, "golden"), rows.assign(**{DIGEST: digests}),
               {"run_id": run_id, "inputs": None if inputs is None else sorted(inputs),
                "settings": settings})
    except Exception as exc:  # noqa: BLE001 - rows not kept never fail a run
        log.warning("kept run: cannot write the rows of run %s in %s: %s", run_id, out, exc)
        return
    if stats is not None and inputs is not None:
        try:
            _write(_path(folder, run_id, "stats"), _stats_frame(stats),
                   {"run_id": run_id, "inputs": sorted(inputs), "settings": stats_key,
                    "latest_year": stats.counts.latest_year, "tf_column": stats.tf_column,
                    "tf_columns": sorted(stats.tf_counts), "records": stats.records})
        except Exception as exc:  # noqa: BLE001 - counts not kept: the next add counts all
            log.warning("kept run: cannot write the counts of run %s in %s: %s", run_id, out,
                        exc)
    spare = {run_id, previous_run}
    for other in out.glob("*.parquet"):
        if other.name.rsplit("-", 1)[0] not in spare:
            other.unlink(missing_ok=True)
    for other in out.glob(".*.tmp"):  # left by a run killed while writing
        pid = other.name.rsplit(".", 2)[-2]
        if not (pid.isdigit() and pid_alive(int(pid))):
            other.unlink(missing_ok=True)


def members(folder: Path, run_id: str, store) -> pd.DataFrame:
    """The run's membership (source, record_id, entity_id): kept, else from the store."""
    got = _read(_path(folder, run_id, "members"), run_id)
    if got is not None and list(got[0].columns) == MEMBER_COLUMNS:
        return got[0]
    return store.members(run_id)


def golden_rows(folder: Path, run_id: str, inputs: list[list[str]] | None = None,
                settings: str | None = None) -> tuple[pd.DataFrame, np.ndarray] | None:
    """The run's golden rows and their digests, if kept; with ``inputs`` and ``settings``,
    only if made from those (what reusing them for another state needs)."""
    got = _read(_path(folder, run_id, "golden"), run_id)
    if got is None:
        return None
    frame, meta = got
    if settings is not None and (meta.get("settings") != settings or inputs is None
                                 or meta.get("inputs") != sorted(inputs)):
        return None
    digests = frame.pop(DIGEST).to_numpy(dtype=np.int64)
    if list(frame.columns) != golden.GOLDEN_COLUMNS or [
            [c, str(t)] for c, t in frame.dtypes.items()] != meta["dtypes"][:-1]:
        return None
    return frame, digests


def golden_digests(folder: Path, run_id: str) -> pd.DataFrame | None:
    """The run's entity ids, golden digests and statuses, if kept: what the store's open golden
    versions hold after it (the next run's diff) and its VERIFIED ids (the changes it
    reports), read without the rest of the rows."""
    path = _path(folder, run_id, "golden")
    if not path.is_file():
        return None
    import pyarrow.parquet as pq

    try:
        meta = json.loads(pq.read_schema(path).metadata[META_KEY])
        frame = pq.read_table(path, columns=["entity_id", DIGEST, "status"]).to_pandas()
    except Exception as exc:  # noqa: BLE001 - unreadable: the caller reads the store
        log.warning("kept run: %s cannot be read (%s): not used", path, exc)
        return None
    if meta.get("format") != FORMAT or meta.get("run_id") != run_id or len(frame) != meta["rows"]:
        return None
    return frame.rename(columns={DIGEST: "digest"})


def updated(previous: pd.DataFrame, previous_digests: np.ndarray, fresh: pd.DataFrame,
            entity_ids: np.ndarray | None) -> tuple[pd.DataFrame, pd.Series]:
    """The golden rows of a state whose entities are ``entity_ids`` (None: every previous
    entity and those of ``fresh``): ``fresh`` rows for the
    entities survivorship was run on again, the previous run's for the others; in entity-id
    order, as ``golden_records`` gives them (the previous rows are in that order already, so
    the fresh ones are placed among them by binary search rather than sorting a million ids).
    Also the known digests (entity_id -> digest) of the rows taken from the previous run."""
    ids = previous["entity_id"]
    kept = ~ids.isin(fresh["entity_id"]).to_numpy()
    if entity_ids is not None:
        kept &= ids.isin(pd.unique(entity_ids)).to_numpy()
    kept_rows = previous[kept]
    kept_ids = kept_rows["entity_id"].to_numpy(dtype=object)
    fresh = fresh.iloc[np.argsort(fresh["entity_id"].to_numpy(dtype=object), kind="stable")]
    before = np.searchsorted(kept_ids, fresh["entity_id"].to_numpy(dtype=object))
    # final position of each row: a kept row moves down by the fresh rows placed before it
    fresh_at = before + np.arange(len(fresh))
    kept_at = np.arange(len(kept_rows)) + np.searchsorted(before, np.arange(len(kept_rows)),
                                                          side="right")
    order = np.empty(len(kept_rows) + len(fresh), dtype=np.int64)
    order[kept_at] = np.arange(len(kept_rows))
    order[fresh_at] = len(kept_rows) + np.arange(len(fresh))
    rows = pd.concat([kept_rows, fresh], ignore_index=True).take(order).reset_index(drop=True)
    differ = {c: t for c, t in previous.dtypes.items() if rows[c].dtype != t}
    if differ:  # a handful of fresh rows can come out of survivorship with looser dtypes
        rows = rows.astype(differ)
    known = pd.Series(previous_digests[kept], index=kept_ids)
    return rows, known


# ----------------------------------------------------------------------------- field stats
STATS_COLUMNS = ["table", "value", "household", "year", "count"]
COUNTED = ("infants", "adults", "registered", "named")  # NameCounts' per-value counts


def _stats_frame(stats) -> pd.DataFrame:
    """A FieldStats' counts as one long table: (table, value, household, year, count)."""
    counts = stats.counts
    parts = [_counts_part(f"tf:{column}", c) for column, c in stats.tf_counts.items()]
    parts += [_counts_part(name, getattr(counts, name)) for name in COUNTED]
    pairs = counts.infant_households
    parts.append(pd.DataFrame({"table": "infant_households",
                               "value": pairs["key"].to_numpy(dtype=object),
                               "household": pairs["household"].to_numpy(dtype=object),
                               "year": np.int64(0), "count": np.int64(1)}))
    dated = counts.dated
    parts.append(pd.DataFrame({
        "table": "dated", "value": dated.index.get_level_values(0).to_numpy(dtype=object),
        "household": None, "year": dated.index.get_level_values(1).to_numpy(dtype=np.int64),
        "count": dated.to_numpy(dtype=np.int64)}))
    frame = pd.concat(parts, ignore_index=True)[STATS_COLUMNS]
    return frame.astype({"year": np.int64, "count": np.int64})


def _counts_part(table: str, counts: pd.Series) -> pd.DataFrame:
    return pd.DataFrame({"table": table, "value": counts.index.to_numpy(dtype=object),
                         "household": None, "year": np.int64(0),
                         "count": counts.to_numpy(dtype=np.int64)})


def field_stats(folder: Path, run_id: str, inputs: list[list[str]] | None, stats_key: str,
                config, tf_columns: list[str], tf_column: str | None, records: int):
    """The run's kept FieldStats, if kept for these inputs, settings, columns and number of
    records; else None (count every record)."""
    from linkage.core.name_evidence import NameCounts
    from linkage.engines.local import FieldStats

    if inputs is None:
        return None
    got = _read(_path(folder, run_id, "stats"), run_id)
    if got is None:
        return None
    frame, meta = got
    if (meta.get("settings") != stats_key or meta.get("inputs") != sorted(inputs)
            or meta.get("tf_columns") != sorted(tf_columns) or meta.get("tf_column") != tf_column
            or meta.get("records") != records or list(frame.columns) != STATS_COLUMNS):
        return None
    tables = dict(tuple(frame.groupby("table", sort=False)))

    def counted(name: str) -> pd.Series:
        part = tables.get(name)
        if part is None:
            return pd.Series(np.zeros(0, dtype=np.int64), index=pd.Index([], dtype=object))
        return pd.Series(part["count"].to_numpy(dtype=np.int64),
                         index=pd.Index(part["value"].to_numpy(dtype=object)))

    pairs = tables.get("infant_households", frame.iloc[:0])
    dated = tables.get("dated", frame.iloc[:0])
    counts = NameCounts(
        int(meta["latest_year"]),
        pd.DataFrame({"key": pairs["value"].to_numpy(dtype=object),
                      "household": pairs["household"].to_numpy(dtype=object)}),
        *(counted(name) for name in COUNTED),
        pd.Series(dated["count"].to_numpy(dtype=np.int64), index=pd.MultiIndex.from_arrays(
            [dated["value"].to_numpy(dtype=object), dated["year"].to_numpy(dtype=np.int64)],
            names=["value", "year"])))
    tf_counts = {column: counted(f"tf:{column}") for column in tf_columns}
    return FieldStats.of_counts(tf_counts, counts, tf_column, records, config)
