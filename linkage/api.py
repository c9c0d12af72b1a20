"""The Python API: a linkage job, its runs and their results, for notebooks and scripts.

The command line is a thin layer over this module, so `linkage run job.yaml --truth t.csv` and
``Job.from_yaml("job.yaml").run(truth="t.csv")`` run the same code and store the same run::

    from linkage import Job, synth_world

    paths = synth_world(2_000, seed=7, out="data")
    job = Job.from_yaml("configs/demo.yaml", output="out", store="sqlite:///out/linkage.sqlite")
    result = job.run(truth=paths["truth"])
    result.golden, result.review, result.summary["accuracy"]
    print(result.explain("ncms:NH1000000002", ("police", "GA100000003")))
    job.decide("ncms:NH1000000002", "police:GA100000003", "non_match", reviewer="wang")
    job.run()  # applies the decision

A record is named as a ``("source", "record_id")`` tuple or a ``"source:record_id"`` string.
Heavy modules are imported by the calls that need them, so ``import linkage`` stays cheap for
the code (Spark executors, the web app) that imports a part of the package.
"""
from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from linkage.core.config import JobConfig
    from linkage.core.model import FSModel
    from linkage.jobs.bookkeeping import RunResult
    from linkage.online.explain import PairExplanation

REPO = Path(__file__).resolve().parent.parent
Record = tuple[str, str] | str
StrPath = str | os.PathLike[str]


class RunReplaced(RuntimeError):
    """A result asked for something only its run's latest state holds, after a later run took
    its place: its output folder now holds another run's files, or the store's latest complete
    run (the one `explain` works on) is another run."""


def record_key(record: Record) -> tuple[str, str]:
    """``(source, record_id)`` from either way of naming a record."""
    if isinstance(record, str):
        if ":" not in record:
            raise ValueError(f"{record!r} should be SOURCE:RECORD_ID")
        source, record_id = record.split(":", 1)
        return source, record_id
    if isinstance(record, (tuple, list)) and len(record) == 2:
        return str(record[0]), str(record[1])
    raise TypeError("a record is named ('source', 'record_id') or 'source:record_id', "
                    f"not {record!r}")


class Job:
    """A linkage job: a validated config, and what a data team does with it."""

    def __init__(self, config: JobConfig):
        self._config = config

    @classmethod
    def from_yaml(cls, path: StrPath, *, output: StrPath | None = None, store: str | None = None,
                  engine: str | None = None, overrides: dict[str, Any] | None = None) -> Job:
        """Read and validate a job config; an error names the key and the line of the file.

        ``output``, ``store`` (an SQLAlchemy URL) and ``engine`` replace the config's keys, so
        a notebook can point a shipped config at its own folder; ``overrides`` replaces any
        top-level keys (``{"thresholds": {"match": 0.99, "review": 0.4}}``). Relative paths
        given here are taken from the current folder, as the command line takes ``--out``;
        the config's own paths from the config's folder.
        """
        from linkage.core.config import load_config

        given = dict(overrides or {})
        if output is not None:
            given["output"] = str(Path(output).absolute())
        if store is not None:
            given["store"] = _sqlite_from_here(store)
        if engine is not None:
            given["engine"] = engine
        return cls(load_config(Path(path), given or None))

    @classmethod
    def from_config(cls, config: JobConfig) -> Job:
        """A job from a config already loaded (``linkage.core.config.load_config``)."""
        return cls(config)

    @property
    def config(self) -> JobConfig:
        """The validated config: sources, blocking rules, comparisons, thresholds, paths."""
        return self._config

    @property
    def name(self) -> str:
        return self._config.job

    def __repr__(self) -> str:
        sources = ", ".join(s.name for s in self._config.sources)
        return f"<Job {self.name!r}: sources {sources}; output {self._config.output}>"

    def run(self, truth: StrPath | None = None, model: StrPath | None = None,
            progress: bool = False, *, out: StrPath | None = None) -> Result:
        """Link every record of the job (`linkage run`), store the run and write its files.

        ``truth`` (a CSV of source, record_id, person_id) scores the run against it;
        ``model`` (a model.json) scores with that model instead of training one; ``out``
        writes the files elsewhere than the config's output (the store stays the config's).
        Reviewers' decisions in the store override the model, as on every run.
        """
        from linkage.jobs.run import run

        return Result(self, run(self._config, _path(out), progress=progress,
                                truth_path=_path(truth), model_path=_path(model)))

    def add(self, path: StrPath, source: str | None = None, *, truth: StrPath | None = None,
            progress: bool = False, out: StrPath | None = None) -> Result:
        """Link a file of new records against the latest complete run (`linkage add`), without
        a full re-run: existing entity ids never change, and later runs read the file too.

        ``source`` names the configured source whose columns the file has (by default the one
        source its header fits).
        """
        from linkage.jobs.add import add

        return Result(self, add(self._config, Path(path), source, _path(out), progress=progress,
                                truth_path=_path(truth)))

    def explain(self, a: Record, b: Record, *, model: StrPath | None = None) -> PairExplanation:
        """Why a pair gets its match weight, exactly as the store's latest complete run gives
        it (`linkage explain`; ``print()`` shows what the command prints).

        The weight the run stored for a pair it kept, else the run's own scoring of the pair
        (its model, term frequencies, household context); ``model`` scores with a model.json.
        """
        from linkage.online.explain import explain_pair

        return explain_pair(self._config, record_key(a), record_key(b), model_path=_path(model))

    def decide(self, a: Record, b: Record, decision: str, reviewer: str,
               note: str | None = None) -> int:
        """Record a reviewer's decision on a pair (`linkage decide`): ``match``, ``non_match``
        or ``unsure``. Every later run applies it over the model; returns the decision's id."""
        from linkage.store import Store

        store = Store(self._config.store)
        try:
            return store.add_decision(record_key(a), record_key(b), decision, reviewer,
                                      note=note)
        finally:
            store.close()

    def evaluate(self, truth: StrPath | pd.DataFrame,
                 clusters: StrPath | pd.DataFrame | None = None,
                 insurance: Iterable[str] | None = None, *,
                 authority: Iterable[str] | None = None,
                 review: StrPath | pd.DataFrame | None = None,
                 hard_negatives: StrPath | pd.DataFrame | None = None) -> dict:
        """Every accuracy measure of a run against a truth file (`linkage evaluate --config`),
        e.g. after reviewers' decisions changed the entities: pairwise, B-cubed, duplicate
        enrolment (also strict, per person), wrong-person links, insurance→registry recall,
        hard negatives merged and review load.

        ``clusters`` defaults to the config's output clusters.csv, ``insurance`` to the
        sources whose role is insurance, ``authority`` to those whose role is authority,
        ``review`` to review_pairs.csv beside the clusters, ``hard_negatives`` to
        hard_negatives.csv beside the truth file (each measure is None when its file is not
        there).
        """
        config = self._config
        insurance = set(insurance or ()) or {s.name for s in config.sources
                                             if s.role == "insurance"}
        authority = set(authority or ()) or set(config.authority_sources)
        return evaluate(config.output / "clusters.csv" if clusters is None else clusters, truth,
                        insurance, authority=authority, review=review,
                        hard_negatives=hard_negatives)

    def export(self, out: StrPath | None = None) -> Exported:
        """Write the office files and the run report again from the store's latest complete
        run (`linkage export`), into ``out`` or the config's output."""
        from linkage.outputs import export_latest

        view, manifest = export_latest(self._config, _path(out))
        return Exported(view.run_id, Path(out or self._config.output), manifest, view.notes)


class Result:
    """One run of a job (a full run or an `add`), as a notebook reads it.

    The clusters, golden records, review pairs, rejects, summary and model are the run's own
    objects: the very ones it wrote to its files. The office lists (roster, duplicate
    enrolments, quality reports) are read from the output folder when first asked for, every
    column as text, as the office gets them.
    """

    def __init__(self, job: Job, run: RunResult):
        self._job = job
        self._run = run
        self._tables: dict[str, pd.DataFrame] = {}

    @property
    def job(self) -> Job:
        return self._job

    @property
    def run_id(self) -> str:
        return self._run.run_id

    @property
    def out_dir(self) -> Path:
        return Path(self._run.out_dir)

    @property
    def report_path(self) -> Path:
        """The self-contained HTML run report (opens offline)."""
        return self.out_dir / "report.html"

    @property
    def summary(self) -> dict:
        """The run in numbers, as in summary.json (records, blocking, bands, entities, ...),
        with the store stage's time too, which is taken after the file is written."""
        return self._run.summary

    @property
    def model(self) -> FSModel:
        """The Fellegi-Sunter model the run scored with (``.to_dict()``: m, u and weights)."""
        return self._run.model

    @property
    def clusters(self) -> pd.DataFrame:
        """One row per linked record: source, record_id, entity_id (clusters.csv)."""
        return self._run.clusters

    @property
    def golden(self) -> pd.DataFrame:
        """One golden record per entity, with status, flags and lineage (golden.csv)."""
        return self._run.golden

    @property
    def review(self) -> pd.DataFrame:
        """The pairs for a reviewer, closest to the threshold first (review_pairs.csv)."""
        return self._run.review

    @property
    def rejects(self) -> pd.DataFrame:
        """Input rows the run could not use: file, row, column, reason (rejects.csv)."""
        return self._run.rejects

    @property
    def records(self) -> pd.DataFrame:
        """The standardised records the run linked, in the order of ``clusters``."""
        return self._run.records

    @property
    def weights(self) -> np.ndarray:
        """The match weight (bits) of every candidate pair, kept or not: for histograms."""
        return self._run.weights

    @property
    def outputs(self) -> dict[str, dict]:
        """The office files the run wrote: {list name: {"files": [...], "rows": n}}."""
        return self.summary.get("outputs") or {}

    @property
    def roster(self) -> pd.DataFrame:
        """The card-issuance roster (制卡名册): one row per person a card can be issued to
        (roster.csv, as text); the others wait in ``table("roster_deferred")`` (暂缓制卡)."""
        return self.table("roster")

    @property
    def duplicate_enrolments(self) -> pd.DataFrame:
        """Every enrolment of each person insured more than once (duplicate_enrolments.csv)."""
        return self.table("duplicate_enrolments")

    def table(self, name: str) -> pd.DataFrame:
        """An office list or quality report of the run by name (``outputs`` lists them:
        not_verified, conflicts, village_quality, record_errors, ...), read from its CSV with
        every column as text, so IDs stay exactly as written."""
        if name not in self._tables:
            import pandas as pd

            files = [f for f in (self.outputs.get(name) or {}).get("files", ())
                     if f.endswith(".csv")]
            if not files:
                tables = [n for n, e in self.outputs.items()
                          if any(f.endswith(".csv") for f in e["files"])]
                raise KeyError(f"run {self.run_id} wrote no table {name!r}; its tables are: "
                               f"{', '.join(tables)}")
            self._check_files_are_this_runs()
            self._tables[name] = pd.read_csv(self.out_dir / files[0], dtype=str,
                                             encoding="utf-8-sig")
        return self._tables[name]

    def explain(self, a: Record, b: Record, *, model: StrPath | None = None) -> PairExplanation:
        """Why the run gives a pair its weight, as `linkage explain` prints it (``print()`` it).

        `explain` works on the store's latest complete run, so this refuses once a later run
        of the job has completed; ``job.explain`` explains with that later run.
        """
        from linkage.online.explain import explain_pair
        from linkage.store import Store

        config = self._job.config
        store = Store(config.store)
        try:
            latest = store.last_complete_run(config.job)
            if latest != self.run_id:
                raise RunReplaced(f"run {latest} of job '{config.job}' completed after run "
                                  f"{self.run_id}: explain the pair with job.explain (the "
                                  "latest run), or with the result of that run")
            return explain_pair(config, record_key(a), record_key(b), store,
                                model_path=_path(model))
        finally:
            store.close()

    def __repr__(self) -> str:
        entities = self.summary.get("entities", {}).get("total", 0)
        return (f"<Result run {self.run_id} of job {self._job.name!r}: {entities:,} entities, "
                f"{self.summary.get('review_pairs', 0):,} pairs for review; files in "
                f"{self.out_dir}>")

    def _check_files_are_this_runs(self) -> None:
        path = self.out_dir / "summary.json"
        current = (json.loads(path.read_text(encoding="utf-8")).get("run_id")
                   if path.is_file() else None)
        if current != self.run_id:
            now = f"the files of run {current}" if current else "no run's files"
            raise RunReplaced(f"{self.out_dir} now holds {now}, not those of run {self.run_id}: "
                              "read a run's lists before the next run into the same folder, or "
                              "give runs folders of their own (run(out=...))")


@dataclass
class Exported:
    """What `export` wrote: the run it exported, where, the files per list, and notes."""

    run_id: str
    out_dir: Path
    outputs: dict[str, dict]
    notes: list[str] = field(default_factory=list)


def evaluate(clusters: StrPath | pd.DataFrame, truth: StrPath | pd.DataFrame,
             insurance: Iterable[str], *, authority: Iterable[str] | None = None,
             review: StrPath | pd.DataFrame | None = None,
             hard_negatives: StrPath | pd.DataFrame | None = None) -> dict:
    """Accuracy of any clusters (a frame or a clusters.csv) against a truth file, with
    ``insurance`` the insurance sources' names and ``authority`` the registry's.

    Without ``authority`` the measures that need the registry (wrong-person links,
    insurance→registry recall, registry pairs apart in the review load) are None.
    ``review`` (the run's review table) defaults to review_pairs.csv beside a clusters file,
    ``hard_negatives`` to hard_negatives.csv beside a truth file; absent, their measures are
    None.
    """
    from linkage.jobs.evaluate import evaluate as score
    from linkage.jobs.evaluate import load_hard_negatives, read_hard_negatives

    if review is None and not _is_frame(clusters):
        review = Path(clusters).with_name("review_pairs.csv")
        review = review if review.is_file() else None
    if review is not None and not _is_frame(review):
        review = _read_review(review)
    if hard_negatives is None:
        hard_negatives = None if _is_frame(truth) else read_hard_negatives(truth)
    elif not _is_frame(hard_negatives):
        hard_negatives = load_hard_negatives(hard_negatives)
    return score(_frame(clusters), _frame(truth), set(insurance),
                 authority_sources=None if authority is None else set(authority),
                 review=review, hard_negatives=hard_negatives)


def _is_frame(value: object) -> bool:
    import pandas as pd

    return isinstance(value, pd.DataFrame)


def _read_review(path: StrPath) -> pd.DataFrame:
    """The columns of a review_pairs.csv the review load needs."""
    import pandas as pd

    wanted = {"source_l", "record_l", "source_r", "record_r"}
    return pd.read_csv(path, dtype=str, usecols=lambda c: c in wanted, keep_default_na=False)


def synth_world(persons: int, seed: int, out: StrPath, *,
                progress: bool = False) -> dict[str, Path]:
    """Write a synthetic prefecture (`linkage synth`): police.csv, ncms.csv (GBK), urban.csv,
    truth.csv, the error log and world.json; the same seed gives the same files.

    Named apart from the ``linkage.synth`` package, which holds the generator itself.
    """
    if progress:
        from linkage.synth import synth_main

        return synth_main(persons, seed, Path(out))
    from linkage.synth import generate_world, write_world

    return write_world(generate_world(persons, seed), Path(out))


def febrl(out: StrPath) -> dict[str, Path]:
    """Write the FEBRL 3 and 4 benchmark sets and their truth files (`linkage febrl`)."""
    from linkage.synth.febrl import write_febrl

    return write_febrl(Path(out))


def demo(config: StrPath | None = None, persons: int = 5_000, seed: int = 7, *,
         progress: bool = False) -> Result:
    """The demo job (`linkage demo`) on its synthetic world, generated first if missing, and
    scored against the world's truth."""
    job = Job.from_yaml(config or REPO / "configs" / "demo.yaml")
    data_dir = Path(job.config.sources[0].path).parent
    if not (data_dir / "truth.csv").exists():
        if progress:
            print(f"generating a synthetic world of {persons:,} persons in {data_dir}",
                  file=sys.stderr)
        synth_world(persons, seed, data_dir, progress=progress)
    return job.run(truth=data_dir / "truth.csv", progress=progress)


def _path(value: StrPath | None) -> Path | None:
    return None if value is None else Path(value)


def _frame(value: StrPath | pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    return value if isinstance(value, pd.DataFrame) else pd.read_csv(value, dtype=str)


def _sqlite_from_here(url: str) -> str:
    """A SQLite URL's relative file path taken from the current folder, like ``output``."""
    prefix = "sqlite:///"
    rest = url[len(prefix):] if url.startswith(prefix) else ""
    if not rest or rest.startswith("/") or rest.startswith(":memory:"):
        return url
    return prefix + str(Path(rest).absolute())
