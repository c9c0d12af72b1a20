"""The source records the review pages show, read through the job config and kept in memory.

The store holds only pair keys (source, record id), and the pipeline is not asked to copy whole
records into it: the app reads the sources the way a run does (ingest + standardise), and keeps
the raw values as typed plus the few standardised columns a page compares.

At a prefecture's scale reading every source takes minutes and gigabytes, and a reviewer's
pages show only a few records: those of the pairs waiting for review, their households and the
records they were paired with. :class:`BackgroundRecords` reads just those, for the latest
run, in a separate process (the serving process keeps answering, and its interpreter lock is
never held by the reading), while the queue pages answer from the store; a pair page opened
before the records arrive waits a few seconds for them, then says they are still loading.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from linkage.core.config import STANDARD_FIELDS, JobConfig

# Standardised columns kept beside the raw ones (the rest of standardise's output is dropped).
_KEPT = {"birth_date": "birth_std", "id_norm": "id_norm", "id_status": "id_status",
         "gender": "gender_std"}


@dataclass(frozen=True)
class Record:
    source: str
    record_id: str
    fields: dict[str, str]  # mapped field -> raw value, as typed (standard fields first)
    columns: dict[str, str]  # mapped field -> the source's column name
    extras: dict[str, str]  # the source's unmapped columns -> raw value
    id_norm: str | None
    id_status: str | None
    birth: str  # standardised: yyyy-mm-dd, yyyy-mm, yyyy or ''
    gender: str  # M, F or ''

    @property
    def key(self) -> tuple[str, str]:
        return self.source, self.record_id

    @property
    def name(self) -> str:
        return self.fields.get("name", "")


class RecordBook:
    """Records by (source, record_id), and the members of each record's household."""

    def __init__(self, frame: pd.DataFrame | None = None,
                 columns: dict[str, dict[str, str]] | None = None):
        self._frame = frame if frame is not None else pd.DataFrame(
            columns=["source", "record_id"])
        self._columns = columns or {}
        keys = pd.MultiIndex.from_arrays([self._frame["source"].astype(str),
                                          self._frame["record_id"].astype(str)])
        self._position = pd.Series(np.arange(len(self._frame)), index=keys)
        self._position = self._position[~self._position.index.duplicated()]
        extra = [c for c in self._frame.columns if c.startswith("x_")]
        self._extras = {src: [c for c in extra if part[c].notna().any()]
                        for src, part in self._frame.groupby("source", sort=False)}
        if "household_id" in self._frame:
            has = self._frame["household_id"].notna() & self._frame["household_id"].ne("")
            groups = self._frame[has].groupby(["source", "household_id"], sort=False).indices
            self._households = {k: v for k, v in groups.items()}
        else:
            self._households = {}

    @classmethod
    def from_config(cls, config: JobConfig) -> RecordBook:
        """Read every source of the job as a run does; rejected rows are not records."""
        from linkage.core.standardise import standardise_records
        from linkage.jobs.inputs import ingest_job

        raw = ingest_job(config).records.reset_index(drop=True)  # sources and `add` batches
        fields = {f for s in config.sources for f in s.fields}
        std = standardise_records(raw[["source", "record_id", *sorted(fields)]], fields)
        frame = raw.copy()
        for col, kept in _KEPT.items():
            if col in std:
                frame[kept] = std[col].to_numpy()
        columns = {s.name: dict(s.fields) for s in config.sources}
        return cls(frame, columns)

    @property
    def loaded(self) -> bool:
        return len(self._frame) > 0

    loading = False  # a book read at once is never still loading

    def follow(self, run_id: str | None) -> None:
        """A book read once stays as read (BackgroundRecords follows newer runs)."""

    def wait(self, seconds: float) -> bool:
        return self.loaded

    def __len__(self) -> int:
        return len(self._frame)

    def get(self, source: str, record_id: str) -> Record | None:
        pos = self._position.get((source, record_id))
        return None if pos is None else self._record(int(pos))

    def household(self, source: str, record_id: str, limit: int = 40) -> list[Record]:
        """Records of the same source sharing the record's household id (itself included)."""
        pos = self._position.get((source, record_id))
        if pos is None or "household_id" not in self._frame:
            return []
        hid = self._frame.at[int(pos), "household_id"]
        members = self._households.get((source, hid), [])
        return [self._record(int(p)) for p in list(members)[:limit]]

    def household_members(self, source: str, household_id: str, limit: int = 40
                          ) -> list[Record]:
        """The records of one source's household, by its household id (a correspondence's)."""
        members = self._households.get((source, household_id), [])
        return [self._record(int(p)) for p in list(members)[:limit]]

    def _record(self, pos: int) -> Record:
        row = self._frame.iloc[pos]
        source = str(row["source"])
        mapped = self._columns.get(source, {})
        order = [f for f in STANDARD_FIELDS if f in mapped] + [
            f for f in mapped if f not in STANDARD_FIELDS]
        fields = {f: _text(row.get(f)) for f in order}
        extras = {c[2:]: _text(row[c]) for c in self._extras.get(source, [])}
        return Record(
            source=source, record_id=str(row["record_id"]), fields=fields, columns=dict(mapped),
            extras=extras, id_norm=_text(row.get("id_norm")) or None,
            id_status=_text(row.get("id_status")) or None,
            birth=_birth_text(row.get("birth_std")), gender=_text(row.get("gender_std")),
        )


def _text(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value)


def _birth_text(value) -> str:
    """yyyymmdd with zeros for unknown parts (as matchers.birthdate keeps it) to display text."""
    try:
        n = int(value)
    except (TypeError, ValueError):
        return ""
    if n <= 0:
        return ""
    y, m, d = n // 10000, n // 100 % 100, n % 100
    if m == 0:
        return f"{y:04d}"
    if d == 0:
        return f"{y:04d}-{m:02d}"
    return f"{y:04d}-{m:02d}-{d:02d}"


log = logging.getLogger(__name__)
RETRY_S = 60.0  # after a failed read of the records, before the next try


def review_records(config: JobConfig, store_url: str, run_id: str
                   ) -> tuple[pd.DataFrame, dict[str, dict[str, str]]]:
    """The frame and column maps of a RecordBook holding only what the run's review pages
    show: both records of every pair for review, the records any of them was paired with,
    the members of their households, and the members of the households of every
    correspondence that needs a look (not a 1:1 whose every member agrees). Read source file
    by source file, each file cut to those rows before anything is standardised."""
    from linkage.core.standardise import standardise_records
    from linkage.jobs.inputs import job_files
    from linkage.store import Store
    from linkage.store.correspondences import households_to_show
    from linkage.store.review import run_pair_keys

    store = Store(store_url)
    try:
        pairs = pd.DataFrame(run_pair_keys(store.engine, run_id),
                             columns=["sl", "rl", "sr", "rr", "review"])
        review = pairs["review"].astype(bool)
        left, right = pairs["sl"] + "\x1f" + pairs["rl"], pairs["sr"] + "\x1f" + pairs["rr"]
        shown = set(left[review]) | set(right[review])
        touches = left.isin(shown) | right.isin(shown)
        wanted = shown | set(left[touches]) | set(right[touches])
        del pairs, left, right, touches
        corresponding = households_to_show(store.engine, run_id)
        parts = []
        for part in job_files(config, store):
            raw = part.records
            key = raw["source"].astype(str) + "\x1f" + raw["record_id"].astype(str)
            keep = key.isin(wanted)
            if "household_id" in raw:
                hh = raw["household_id"]
                usable = hh.notna() & hh.astype(str).ne("")
                keep |= usable & hh.isin(set(hh[key.isin(shown) & usable]))
                label = raw["source"].astype(str) + ":" + hh.astype(str)
                keep |= usable & label.isin(corresponding)
            parts.append(raw[keep.to_numpy()])
            del raw, key
    finally:
        store.close()
    fields = {f for s in config.sources for f in s.fields}
    frame = (pd.concat(parts, ignore_index=True, sort=False) if parts
             else pd.DataFrame(columns=["source", "record_id"]))
    for col in frame.columns:
        if col != "row":
            frame[col] = frame[col].astype(object).where(frame[col].notna(), None)
    for f in fields - set(frame.columns):
        frame[f] = None
    if len(frame):
        std = standardise_records(frame[["source", "record_id", *sorted(fields)]], fields)
        for col, kept in _KEPT.items():
            if col in std:
                frame[kept] = std[col].to_numpy()
    return frame, {s.name: dict(s.fields) for s in config.sources}


class BackgroundRecords:
    """The records of the latest run's review pages, read in a child process and swapped in
    when ready (the previous run's book answers meanwhile); empty until the first read ends.

    RecordBook's interface (get, household, loaded), plus ``loading``, ``wait(seconds)`` and
    ``follow(run_id)``, which starts reading the records of a newer run.
    """

    def __init__(self, config: JobConfig, store_url: str):
        self.config = config
        self.store_url = store_url
        self._book = RecordBook()
        self._run: str | None = None  # the run whose records are read, or being read
        self._reading = False
        self._arrival = threading.Event()
        self._lock = threading.Lock()
        self._failed_at: float | None = None
        self.seconds: float | None = None  # how long the last read took
        self.error: str | None = None

    @property
    def loaded(self) -> bool:
        return self._book.loaded

    @property
    def loading(self) -> bool:
        return self._reading

    def __len__(self) -> int:
        return len(self._book)

    def get(self, source: str, record_id: str) -> Record | None:
        return self._book.get(source, record_id)

    def household(self, source: str, record_id: str, limit: int = 40) -> list[Record]:
        return self._book.household(source, record_id, limit)

    def household_members(self, source: str, household_id: str, limit: int = 40
                          ) -> list[Record]:
        return self._book.household_members(source, household_id, limit)

    def wait(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for a read under way; True once records are loaded."""
        if self.loading:
            self._arrival.wait(seconds)
        return self.loaded

    def follow(self, run_id: str | None) -> None:
        """Start reading the records of ``run_id`` unless they are read or being read (after a
        failed read, again after RETRY_S)."""
        if run_id is None or run_id == self._run:
            return
        with self._lock:
            if run_id == self._run or self.loading:
                return
            if self._failed_at is not None and time.monotonic() - self._failed_at < RETRY_S:
                return
            self._run, self._reading = run_id, True
            self._arrival = threading.Event()
            # spawn: a fork of a threaded server could inherit a held lock. A daemon process:
            # it ends with the server (and watches for a server killed outright).
            ctx = multiprocessing.get_context("spawn")
            receive, send = ctx.Pipe(duplex=False)
            child = ctx.Process(target=_read_in_child, name="review-records", daemon=True,
                                args=(send, os.getpid(), self.config, self.store_url, run_id))
            child.start()
            send.close()
            threading.Thread(target=self._receive, args=(receive, child, run_id),
                             name="review-records", daemon=True).start()

    def _receive(self, receive, child, run_id: str) -> None:
        started = time.monotonic()
        try:
            try:
                status, payload = receive.recv()
            except EOFError:
                status, payload = "error", f"the reader ended with exit code {child.exitcode}"
            finally:
                receive.close()
                child.join(30)
            if status != "ok":
                raise RuntimeError(payload)
            frame, columns = payload
            self._book = RecordBook(frame, columns)
            self.seconds, self.error = round(time.monotonic() - started, 1), None
            log.info("review app: %s records of run %s read in %s s", f"{len(frame):,}",
                     run_id, self.seconds)
        except Exception as exc:  # noqa: BLE001 - the pages keep the book they have
            self.error = str(exc)
            log.error("review app: reading the records of run %s failed: %s", run_id,
                      self.error)
            with self._lock:
                self._run, self._failed_at = None, time.monotonic()
        finally:
            self._reading = False
            self._arrival.set()


def _read_in_child(send, parent: int, config: JobConfig, store_url: str, run_id: str) -> None:
    """The reader process: review_records, sent back through the pipe (or why it failed)."""
    def orphaned() -> None:  # the server is gone (killed): nobody will take the records
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=orphaned, daemon=True).start()
    try:
        result = ("ok", review_records(config, store_url, run_id))
    except Exception as exc:  # noqa: BLE001 - told to the server, which logs it
        result = ("error", f"{type(exc).__name__}: {exc}")
    send.send(result)
    send.close()
