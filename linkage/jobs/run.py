"""The batch job: ingest, standardise, block, compare, score, review, cluster, golden, outputs.

Each stage is a function of its own module; this one only wires them, times them and keeps the
counts that prove every input record is accounted for.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from linkage.core import blocking_plan, changes, cluster, golden, model, standardise
from linkage.core.compare import build_comparisons
from linkage.core.config import ConfigError, JobConfig
from linkage.engines import local as scoring
from linkage.jobs import evaluate, kept_run
from linkage.jobs.bookkeeping import (
    AccountingError,  # noqa: F401 - what run() raises, importable from here
    RunResult,
    StageTimer,
    check_accounting,
    decisions_for,
    run_summary,
)
from linkage.jobs.ingest import ROW_HASH, content_hash
from linkage.jobs.staging import staged
from linkage.jobs.state import standardised_job, state_folder
from linkage.store import Store

log = logging.getLogger("linkage")

def plan(config: JobConfig) -> list:
    """Check before any work that every blocking key and compared column will exist."""
    fields = {f for s in config.sources for f in s.fields}
    empty = pd.DataFrame({f: pd.Series([], dtype=object) for f in fields | {"source", "record_id"}})
    available = set(standardise.standardise_records(empty, fields).columns)
    for rule in config.blocking:
        missing = [k for k in rule.keys if k not in available]
        if missing:
            raise ConfigError(
                f"config key 'blocking' rule '{rule.name}': key(s) {missing} are not available; "
                f"with the mapped fields the columns are: {', '.join(sorted(available))}"
            )
    comparisons = build_comparisons(config.comparisons)
    for comp in comparisons:
        missing = [c for c in comp.columns if c not in available]
        if missing:
            raise ConfigError(
                f"config key 'comparisons' ({comp.name}): needs column(s) {missing}, which no "
                "mapped field provides; map the field in 'sources[].fields'"
            )
    return comparisons


def run(
    config: JobConfig,
    out_dir: Path | None = None,
    progress: bool = False,
    truth_path: Path | None = None,
    model_path: Path | None = None,
) -> RunResult:
    comparisons = plan(config)
    out_dir = Path(out_dir or config.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    store = Store(config.store)
    run_id = store.begin_run(config.job)
    try:
        # Files are written to a staging folder and published only after the run is stored:
        # a run killed at any point leaves the previous run's files whole (linkage/staging.py).
        with staged(out_dir) as staging:
            result = _run(config, comparisons, staging, store, run_id, progress, truth_path,
                          model_path, state_folder(config, out_dir))
        result.out_dir = out_dir
    except BaseException as exc:
        store.fail_run(run_id, f"{type(exc).__name__}: {exc}")
        raise
    finally:
        store.close()
    return result


def _run(config, comparisons, out_dir, store, run_id, progress, truth_path, model_path,
         state_dir):
    timer = StageTimer(progress)
    roles = {s.name: s.role for s in config.sources}

    # Sources and `add` batches, standardised: files unchanged since a run kept them come
    # from the state folder; the others are read, standardised and kept.
    with timer.stage("ingest"):
        data, state = standardised_job(config, store, progress, state_dir=state_dir,
                                       standardiser=standardiser(config, progress))
        if config.engine != "spark":  # Spark takes the records' columns as they are
            data.records = standardise.compact_records(data.records)
        records = data.records
        state.prune()
    timer.split("ingest", "standardise", state.standardise_seconds)
    with timer.stage("block_plan"):  # a job over the machine's budget stops before pairing
        blocking_plan.check_budget(records, config)
    n = len(records)
    authority = records["source"].map(roles).eq("authority").to_numpy()
    position = pd.Series(np.arange(n), index=pd.MultiIndex.from_arrays(
        [records["source"].astype(str), records["record_id"].astype(str)]))

    decided = decisions_for(store, position)
    households_decided = store.correspondence_decisions()  # 同一户 / 不是同一户, for the step

    if config.engine == "spark":
        from linkage.engines.spark.engine import score_candidates_spark

        scored = score_candidates_spark(records, config, comparisons, decided, model_path,
                                        timer.stage, progress, households_decided)
    else:
        scored = scoring.score_candidates(records, config, comparisons, decided, model_path,
                                          timer.stage, progress, households_decided)
    left, right = scored.left, scored.right
    weight, decision, fs = scored.weight, scored.decision, scored.model
    prob, band = classify(weight, decision, config)

    with timer.stage("cluster"):
        match = np.flatnonzero(band == 0)
        must = decision[match] == "match"
        clustering = clusterer(config)(
            n, left[match[~must]], right[match[~must]], weight[match[~must]], authority,
            must_link=(left[match[must]], right[match[must]]),
            cannot_link=cannot_links(decided, scored),
        )
        previous_run = store.last_complete_run(config.job)
        previous = kept_run.members(state_dir, previous_run, store) if previous_run else None
        entity_ids = cluster.stable_entity_ids(records, clustering.labels, authority, previous)
        refused = match[~must][clustering.refused]
        contested = np.zeros(n, dtype=bool)
        contested[left[refused]] = True
        contested[right[refused]] = True

    with timer.stage("golden"):
        schemes = {s.name: s.scheme for s in config.sources if s.scheme}
        gold = golden.golden_records(records, entity_ids, config.precedence, roles, schemes,
                                     contested)

    clusters = pd.DataFrame({"source": records["source"], "record_id": records["record_id"],
                             "entity_id": entity_ids})
    check_accounting(data.counts, clusters, data.rejects)
    with timer.stage("pairs"):
        reasons = cluster.refusal_reasons(clustering.labels, left[refused], right[refused],
                                          authority, RecordKeys(records),
                                          cannot_links(decided, scored),
                                          cannot_link_kinds(decided, scored))
        stored_pairs, review = pair_tables(records, scored, prob, band, refused, reasons)

    summary = run_summary(config, data, records, scored, band, gold, clustering, review, timer,
                          run_id)
    summary["kept_state"] = state.summary()
    write_correspondences(scored, out_dir)
    if truth_path is not None:
        with timer.stage("evaluate"):
            truth = pd.read_csv(truth_path, dtype=str)
            if scored.candidate_pairs is not None:
                summary["blocking_recall"] = evaluate.blocking_recall(
                    records, *scored.candidate_pairs, truth, config.link_type)
            insurance = {s.name for s in config.sources if s.role == "insurance"}
            summary["accuracy"] = evaluate.evaluate(
                clusters, truth, insurance, authority_sources=config.authority_sources,
                review=review, hard_negatives=evaluate.read_hard_negatives(truth_path))

    result = RunResult(run_id, out_dir, summary, records, clusters, gold, review, fs, config,
                       data.rejects, scored.weights)
    keeping = kept_run.Keeping(state_dir, state.inputs(), kept_run.job_settings(config),
                               stats=scored.field_stats,
                               stats_key=kept_run.stats_settings(config))
    return finish(result, store, stored_pairs, timer,
                  previous=(previous_run, previous) if previous_run else None, keeping=keeping,
                  correspondences=scored.households)


def standardiser(config: JobConfig, progress: bool = False):
    """``standardise_records``, or for engine spark the same columns computed on the executors."""
    if config.engine != "spark":
        return standardise.standardise_records
    from linkage.engines.spark.engine import standardise_spark

    return lambda records, fields: standardise_spark(records, fields, config, progress)


def clusterer(config: JobConfig):
    """:func:`linkage.core.cluster.cluster`, or for engine spark the same clustering in Spark."""
    if config.engine == "spark":
        from functools import partial

        from linkage.engines.spark.engine import cluster_spark

        return partial(cluster_spark, config)
    return cluster.cluster




def write_correspondences(scored: scoring.ScoredPairs, out_dir: Path) -> None:
    """household_correspondences.csv: each insurance household's registry household(s) as the
    household step decided them (kept or dropped), so a correspondence can be checked."""
    from linkage.core.household import CORRESPONDENCE_COLUMNS
    from linkage.outputs.tables import write_csv

    if scored.households is not None and "kind" in scored.households:
        write_csv(scored.households[CORRESPONDENCE_COLUMNS],
                  out_dir / "household_correspondences.csv", encoding="utf-8")


def cannot_links(decided: pd.DataFrame, scored: scoring.ScoredPairs
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Pairs no entity may hold both of: reviewers' non-matches and the household step's hard
    negatives (two members of one household, a parent's ID on a child)."""
    no = decided[decided["decision"] == "non_match"]
    hard = np.flatnonzero(scored.cannot) if scored.cannot is not None else np.empty(0, int)
    return (np.concatenate([no["l"].to_numpy(), scored.left[hard]]).astype(np.int64),
            np.concatenate([no["r"].to_numpy(), scored.right[hard]]).astype(np.int64))


def cannot_link_kinds(decided: pd.DataFrame, scored: scoring.ScoredPairs) -> np.ndarray:
    """What keeps each of :func:`cannot_links`' pairs apart, in its order."""
    n_no = int((decided["decision"] == "non_match").sum())
    hard = np.flatnonzero(scored.cannot) if scored.cannot is not None else np.empty(0, int)
    notes = (scored.note[hard] if scored.note is not None else np.full(hard.size, ""))
    household = ["the household rule" + (f" ({n})" if n else "") for n in notes]
    return np.array(["a reviewer's non-match"] * n_no + household, dtype=object)


STORED_PAIR_COLUMNS = ["source_l", "record_l", "source_r", "record_r", "weight", "probability",
                       "band", "reason", "explanation"]


class RecordKeys:
    """``source:record_id`` of a record by position, made when asked: refusal reasons name a
    few records, and the text of every record of a million-record run cost a few hundred MB."""

    def __init__(self, records: pd.DataFrame):
        self._source, self._record = records["source"], records["record_id"]

    def __getitem__(self, i: int) -> str:
        return f"{self._source.iat[i]}:{self._record.iat[i]}"


def classify(weight: np.ndarray, decision: np.ndarray, config: JobConfig):
    """Probability and band (0 match, 1 review, 2 non-match) per pair; reviewers overrule."""
    prob = model.probability(weight)
    return prob, model.bands(prob, config.match_threshold, config.review_threshold, decision)


def pair_tables(records: pd.DataFrame, scored: scoring.ScoredPairs, prob: np.ndarray,
                band: np.ndarray, refused: np.ndarray,
                refused_reason) -> tuple[StoredPairs, pd.DataFrame]:
    """The pairs the store keeps (match and review bands, refused merges) and the review list.

    ``refused_reason`` is one text, or one per refused pair, saying why clustering refused it.
    """
    left, decision = scored.left, scored.decision
    review_idx = np.union1d(np.flatnonzero((band == 1) & (decision == "")), refused)
    reasons = np.full(len(left), "", dtype=object)
    reasons[band == 1] = "score in the review band"
    reasons[refused] = refused_reason
    stored_idx = np.union1d(np.flatnonzero(band <= 1), refused)

    def explain(idx: np.ndarray) -> np.ndarray:
        return explanations(scored.gamma[idx], scored.parts[idx], scored.household[idx],
                            scored.model, None if scored.note is None else scored.note[idx])

    stored = _pairs_frame(records, left, scored.right, scored.weight, prob, band, reasons,
                          stored_idx)
    review = _pairs_frame(records, left, scored.right, scored.weight, prob, band, reasons,
                          review_idx)
    review["explanation"] = explain(review_idx)
    for k, c in enumerate(scored.model.comparisons):
        review[f"w_{c.name}"] = np.round(scored.parts[review_idx, k], 2)
    review = review.drop(columns="pair_index")
    review = review.sort_values("probability", key=lambda p: (p - 0.5).abs()).reset_index(drop=True)
    return StoredPairs(stored, explain), review


@dataclass
class StoredPairs:
    """The pairs a run stores, their explanation text made a chunk at a time as the store
    writes them: the text of every stored pair at once was a run's peak memory (+1.9 GB for
    1.3M pairs at a million persons)."""

    frame: pd.DataFrame  # STORED_PAIR_COLUMNS but the explanation, plus pair_index
    explain: Callable[[np.ndarray], np.ndarray]  # explanation text of the given pair indices

    def rows(self, part: pd.DataFrame) -> pd.DataFrame:
        """A chunk of :attr:`frame` as the store's columns (STORED_PAIR_COLUMNS)."""
        text = self.explain(part["pair_index"].to_numpy())
        return part.assign(explanation=text)[STORED_PAIR_COLUMNS]


def finish(result: RunResult, store: Store, pairs: StoredPairs, timer: StageTimer,
           carry_pairs_from: str | None = None,
           previous: tuple[str, pd.DataFrame] | None = None,
           keeping: kept_run.Keeping | None = None,
           correspondences: pd.DataFrame | None = None) -> RunResult:
    """Write a run's files into ``result.out_dir``, then store it: complete only once stored.

    ``carry_pairs_from`` names a run whose stored pairs this one keeps too (`linkage add`);
    ``previous`` is the previous complete run and its membership, which the summary's
    ``changes`` compare against; ``keeping``: where the membership and golden rows are kept
    for the next run (linkage.jobs.kept_run); ``correspondences``: the household step's,
    stored with the run for the review app.
    """
    out_dir, summary, fs = result.out_dir, result.summary, result.model
    rejects = mark_first_rejected(store, result.config.job, result.run_id, result.rejects)
    result.rejects = rejects.drop(columns=ROW_HASH)  # the hash stays in the store
    summary["records"]["rejected_earlier"] = int(
        (rejects["first_rejected_run"] != result.run_id).sum())
    # entity_changes.csv is written by every run, empty on a job's first (no stale copy stays)
    result.successors = pd.DataFrame(columns=changes.SUCCESSOR_COLUMNS)
    prior = None  # the previous run's golden digests and statuses, if kept
    if previous is not None and keeping is not None:
        prior = kept_run.golden_digests(keeping.folder, previous[0])
    if previous is not None:
        with timer.stage("changes"):
            verified = result.golden.loc[result.golden["status"] == "VERIFIED", "entity_id"]
            found, result.successors = changes.between(
                previous[0], previous[1], result.clusters,
                store.verified_entities(previous[0]) if prior is None
                else prior.loc[prior["status"] == "VERIFIED", "entity_id"].to_numpy(),
                verified.to_numpy())
            summary["changes"] = found.to_dict()
    with timer.stage("versions"):  # what the store will write: only what changed
        planned = store.plan_versions(result.config.job, result.clusters, result.golden,
                                      base=previous,
                                      known_digests=keeping.known if keeping else None,
                                      open_golden=None if prior is None
                                      else prior[["entity_id", "digest"]])
    summary["store_rows"] = planned.counts
    if keeping is not None:
        with timer.stage("keep"):
            kept_run.keep(keeping.folder, result.run_id, result.clusters, result.golden,
                          planned.digests, keeping.inputs, keeping.settings,
                          previous[0] if previous is not None else None, keeping.stats,
                          keeping.stats_key)
    with timer.stage("write"):
        _write_outputs(out_dir, result.clusters, result.golden, result.review, result.rejects, fs,
                       summary)
    summary["timings"] = timer.timings
    summary["memory"] = {"stage_peak_mb": timer.peaks_mb}  # filled on as the stages run
    # The office outputs (roster, lists, quality reports, report.html) load matplotlib and
    # jinja2: imported only by a run that gets this far.
    from linkage.outputs import write_office_outputs

    with timer.stage("outputs"):
        summary["outputs"] = write_office_outputs(result, out_dir)
    _write_summary(out_dir, summary)
    # Last: the run counts as complete only once every result is stored in one transaction.
    with timer.stage("store"):
        store.finish_run(result.run_id, summary, fs.to_dict(), result.clusters, result.golden,
                         pairs.frame, carry_pairs_from=carry_pairs_from, rejects=rejects,
                         planned=planned, keep_runs=result.config.spec.keep_runs,
                         pair_rows=pairs.rows, correspondences=correspondences)
    _write_summary(out_dir, summary)  # again, with the store's time and peak (not in the store)
    return result


def _write_summary(out_dir: Path, summary: dict) -> None:
    (out_dir / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2,
                                                     default=_json_default), encoding="utf-8")


def mark_first_rejected(store: Store, job: str, run_id: str,
                        rejects: pd.DataFrame) -> pd.DataFrame:
    """The run's rejects with ``first_rejected_run``: the earliest complete run of the job that
    rejected the same row (same source, record id and row content), else this run.

    Matching on the row's content rather than its number: a row that moves down the file when
    rows are added above it is still the row the office was told about, and a row the clerk
    changed but that is still unusable is news. A reject made without a row hash (outside
    ingest's readers) is known by its source, record id, column and reason instead.
    """
    rejects = rejects.reset_index(drop=True)
    if ROW_HASH not in rejects:
        rejects[ROW_HASH] = None
    missing = rejects[ROW_HASH].isna().to_numpy()
    if missing.any():
        rejects.loc[missing, ROW_HASH] = [
            content_hash({k: str(r[k]) for k in ("source", "record_id", "column", "reason")})
            for r in rejects.loc[missing].to_dict("records")]
    first = store.first_rejections(job, rejects)
    return rejects.assign(first_rejected_run=first.where(first.notna(), run_id))


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    return str(value)


def _pairs_frame(records, left, right, weight, prob, band, reasons, idx) -> pd.DataFrame:
    """Pairs ``idx``, each with its records in (source, record_id) order, without the
    explanation; source and record id texts are made only for the records these pairs name."""
    a, b = left[idx], right[idx]
    src_a, src_b = _text_at(records["source"], a), _text_at(records["source"], b)
    rid_a, rid_b = _text_at(records["record_id"], a), _text_at(records["record_id"], b)
    swap = (src_a > src_b) | ((src_a == src_b) & (rid_a > rid_b))
    return pd.DataFrame({
        "pair_index": idx,
        "source_l": np.where(swap, src_b, src_a), "record_l": np.where(swap, rid_b, rid_a),
        "source_r": np.where(swap, src_a, src_b), "record_r": np.where(swap, rid_a, rid_b),
        "weight": np.round(weight[idx], 3), "probability": np.round(prob[idx], 6),
        "band": np.asarray(model.BANDS, dtype=object)[band[idx]], "reason": reasons[idx],
    })


def _text_at(column: pd.Series, rows: np.ndarray) -> np.ndarray:
    """``column.astype(str)`` at ``rows``, as an object array."""
    return column.iloc[rows].astype(str).to_numpy(dtype=object)


def explanations(gamma: np.ndarray, parts: np.ndarray, household: np.ndarray,
                 fs: model.FSModel, note: np.ndarray | None = None) -> np.ndarray:
    """Each pair's explanation as JSON text: per comparison its level and weight, then the
    household term (with ``household_note`` where the household step says why) and the
    prior, weights rounded to 0.01 as Python's round() does.

    Built a column at a time (a json.dumps per pair took a minute at a million persons);
    the text equals json.dumps of the dict, which tests/jobs/test_pipeline.py pins.
    """
    out = np.full(len(gamma), "{", dtype=object)
    for k, c in enumerate(fs.comparisons):
        labels = np.array([json.dumps(label) for label in c.labels] + ['"missing"'], dtype=object)
        level = np.where(gamma[:, k] >= 0, gamma[:, k], len(c.labels))
        out = (out + ("" if k == 0 else ", ") + json.dumps(c.name, ensure_ascii=False)
               + ': {"level": ' + labels[level] + ', "weight": ' + _json_rounded(parts[:, k])
               + "}")
    sep = ", " if fs.comparisons else ""
    out = out + sep + '"household": ' + _json_rounded(household)
    if note is not None:
        said = np.asarray(note, dtype=object) != ""
        if said.any():
            text = np.array([', "household_note": ' + json.dumps(t, ensure_ascii=False)
                             for t in note[said]], dtype=object)
            out[said] = out[said] + text
    return out + ', "prior": ' + json.dumps(round(fs.prior_weight, 2)) + "}"


def _json_rounded(values: np.ndarray) -> np.ndarray:
    """json.dumps(round(float(v), 2)) per value, computed once per distinct value."""
    distinct, inverse = np.unique(np.asarray(values, dtype=np.float64), return_inverse=True)
    text = np.array([json.dumps(round(float(v), 2)) for v in distinct], dtype=object)
    return text[inverse.reshape(-1)]


def _write_outputs(out_dir, clusters, gold, review, rejects, fs, summary) -> None:
    from linkage.outputs.tables import write_csv  # rejects quote source values an office opens

    # the data team's files, as pandas writes them (values as they are), by the fast writer:
    # pandas took seconds for the million golden rows
    write_csv(clusters, out_dir / "clusters.csv", encoding="utf-8", neutralise=False)
    write_csv(gold, out_dir / "golden.csv", encoding="utf-8", neutralise=False)
    review.to_csv(out_dir / "review_pairs.csv", index=False, encoding="utf-8")
    write_csv(rejects, out_dir / "rejects.csv", encoding="utf-8")
    fs.save(out_dir / "model.json")
