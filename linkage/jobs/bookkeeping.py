"""What every run of a job keeps beside its results, whether a full run or `linkage add`.

Both kinds of run time their stages, turn reviewers' decisions into record positions, prove
that every record read is linked or rejected, summarise themselves the same way and return a
``RunResult``. The office outputs read a RunResult too, so it lives here rather than in the
pipeline: nothing here imports the pipeline, the outputs or the engines.
"""
from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from linkage.core import model
from linkage.core.config import JobConfig
from linkage.store import Store


class AccountingError(RuntimeError):
    """Records in != records linked + records rejected: the run refuses to finish."""


def check_accounting(counts: dict[str, int], linked: pd.DataFrame, rejects: pd.DataFrame) -> None:
    """Raise AccountingError unless, per source, records read = records linked + rejected, and
    every linked record is one row with an entity (when `linked` carries entity ids).

    `counts` are counted while reading, apart from the records kept and the rejects, so a stage
    that drops or duplicates a record cannot go unnoticed.
    """
    problems = []
    keys = linked[["source", "record_id"]].astype(str)
    if keys.duplicated().any():
        dup = keys[keys.duplicated()].iloc[0]
        problems.append(f"record {dup['source']}:{dup['record_id']} is linked more than once")
    if "entity_id" in linked and linked["entity_id"].isna().any():
        problems.append(f"{int(linked['entity_id'].isna().sum())} linked record(s) have no entity")
    sources = set(counts) | set(linked["source"].astype(str)) | set(rejects["source"].astype(str))
    for source in sorted(sources):
        read = counts.get(source, 0)
        kept = int((linked["source"] == source).sum())
        rejected = int((rejects["source"] == source).sum())
        if read != kept + rejected:
            problems.append(f"source {source!r}: records read {read} != linked {kept} + "
                            f"rejected {rejected}")
    if problems:
        raise AccountingError("records not accounted for: " + "; ".join(problems))


@dataclass
class RunResult:
    run_id: str
    out_dir: Path
    summary: dict
    records: pd.DataFrame = field(repr=False)
    clusters: pd.DataFrame = field(repr=False)
    golden: pd.DataFrame = field(repr=False)
    review: pd.DataFrame = field(repr=False)
    model: model.FSModel = field(repr=False)
    config: JobConfig = field(repr=False)
    rejects: pd.DataFrame = field(repr=False)
    weights: np.ndarray = field(repr=False)  # match weight (bits) of every candidate pair
    # entity_changes.csv: the previous run's ids whose records moved (core.changes); empty on
    # a job's first run
    successors: pd.DataFrame | None = field(default=None, repr=False)


class StageTimer:
    """Seconds and peak resident memory per named stage; with ``progress``, each stage announced
    on stderr as it starts.

    The peak is sampled (every 20 ms by a daemon thread reading /proc/self/statm) because the
    kernel keeps only the process's lifetime peak: a stage that frees what it allocated would
    otherwise hide behind the stage before it. Where /proc is missing the peaks stay empty.
    """

    def __init__(self, progress: bool):
        self.timings: dict[str, float] = {}
        self.peaks_mb: dict[str, float] = {}
        self.progress = progress

    @contextmanager
    def stage(self, name: str):
        start = time.perf_counter()
        if self.progress:
            print(f"[{time.strftime('%H:%M:%S')}] {name} ...", file=sys.stderr, flush=True)
        with _PeakSampler() as sampler:
            yield
        self.timings[name] = round(time.perf_counter() - start, 3)
        if sampler.peak:
            self.peaks_mb[name] = round(sampler.peak / 2**20, 1)

    def split(self, name: str, part: str, seconds: float) -> None:
        """Count ``seconds`` of stage ``name`` as a stage ``part`` of their own (work done
        inside it, file by file, such as standardising between reads); both share the peak."""
        seconds = min(round(seconds, 3), self.timings[name])
        self.timings[name] = round(self.timings[name] - seconds, 3)
        self.timings[part] = seconds
        if name in self.peaks_mb:
            self.peaks_mb[part] = self.peaks_mb[name]

class _PeakSampler:
    """The largest resident set size seen while the block runs (bytes; 0 without /proc)."""

    PERIOD = 0.02

    def __init__(self):
        import threading

        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True, name="rss-sampler")

    def __enter__(self):
        self.peak = _rss()
        if self.peak:
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join()
        self.peak = max(self.peak, _rss())
        return False

    def _watch(self):
        while not self._stop.wait(self.PERIOD):
            self.peak = max(self.peak, _rss())


_PAGE = None


def _rss() -> int:
    """Resident set size of this process in bytes, 0 where /proc/self/statm is missing."""
    global _PAGE
    try:
        with open("/proc/self/statm", "rb") as f:
            resident = int(f.read().split()[1])
    except (OSError, IndexError, ValueError):
        return 0
    if _PAGE is None:
        import os

        _PAGE = os.sysconf("SC_PAGE_SIZE")
    return resident * _PAGE


def decisions_for(store: Store, position: pd.Series) -> pd.DataFrame:
    """Active reviewer decisions on records of this run, as record positions."""
    d = store.active_decisions()
    d = d[d["decision"].isin(["match", "non_match"])]
    if d.empty:
        return pd.DataFrame({"l": [], "r": [], "decision": []}).astype({"l": int, "r": int})
    li = pd.MultiIndex.from_arrays([d["source_l"].astype(str), d["record_l"].astype(str)])
    ri = pd.MultiIndex.from_arrays([d["source_r"].astype(str), d["record_r"].astype(str)])
    lpos = position.reindex(li).to_numpy()
    rpos = position.reindex(ri).to_numpy()
    ok = ~(pd.isna(lpos) | pd.isna(rpos))
    return pd.DataFrame({"l": lpos[ok].astype(np.int64), "r": rpos[ok].astype(np.int64),
                         "decision": d["decision"].to_numpy()[ok]})


def household_summary(config, scored) -> dict:
    """What the household step did: correspondences by kind, the learned household prior,
    hard negatives kept apart, and the milk names whose name evidence was neutral."""
    corr = scored.households
    kinds = ({str(k): int(v) for k, v in corr["kind"].value_counts().sort_index().items()}
             if corr is not None and "kind" in corr else {})
    return {
        "enabled": bool(config.household.enabled),
        "correspondences": kinds,
        "prior": scored.model.household_prior,
        "hard_negatives": int(scored.cannot.sum()) if scored.cannot is not None else 0,
        "milk_names": list(scored.milk_names),
    }


def run_summary(config, data, records, scored, band, gold, clustering, review, timer,
                run_id) -> dict:
    """The run's summary.json (and the runs row's summary): counts, bands, entities, timings."""
    read = sum(data.counts.values())
    rejected = len(data.rejects)
    linked = len(records)
    check_accounting(data.counts, records, data.rejects)
    per_source = {}
    for s in config.sources:
        per_source[s.name] = {
            "read": data.counts[s.name],
            "linked": int((records["source"] == s.name).sum()),
            "rejected": int((data.rejects["source"] == s.name).sum()),
            "encoding": data.encodings[s.name],
        }
    bands = {name: int((band == i).sum()) for i, name in enumerate(model.BANDS)}
    if scored.dropped:  # candidates the engine streamed away are all non-matches
        bands = {**bands, "non_match": bands["non_match"] + int(scored.dropped)}
    fs = scored.model
    return {
        "run_id": run_id,
        "job": config.job,
        "records": {"read": read, "linked": linked, "rejected": rejected, "per_source": per_source},
        "engine": config.engine,
        "blocking": {"candidate_pairs": int(scored.candidates),
                     "rules": [r.__dict__ for r in scored.rules]},
        "comparison_levels": scored.level_counts,
        "model": {"prior": fs.prior, "em_iterations": fs.em_iterations, "m_source": fs.m_source},
        "bands": bands,
        "entities": {
            "total": len(gold),
            "by_status": {k: int(v) for k, v in gold["status"].value_counts().items()},
            "duplicate_enrolment": int(gold["duplicate_enrolment"].sum()),
            "id_repaired": int(gold["id_repaired"].sum()),
            "deceased": int(gold["deceased"].sum()),
            "refused_merges": len(clustering.refused),
        },
        "review_pairs": len(review),
        "households": household_summary(config, scored),
        "thresholds": {"match": config.match_threshold, "review": config.review_threshold},
        "timings": timer.timings,
    }
