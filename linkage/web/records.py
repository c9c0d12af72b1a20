"""The source records the review pages show, read once through the job config and kept in memory.

The store holds only pair keys (source, record id), and the pipeline is not asked to copy whole
records into it: the app reads the sources the way a run does (ingest + standardise) when it
starts, and keeps the raw values as typed plus the few standardised columns a page compares.
"""
from __future__ import annotations

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
