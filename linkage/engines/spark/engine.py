"""The Spark engine: standardisation, blocking, comparison, training, scoring and clustering on
Spark.

``engine: spark`` in a job config (or ``linkage run --engine spark``) makes the pipeline call
:func:`standardise_spark`, :func:`score_candidates_spark` and :func:`cluster_spark` instead of
:func:`linkage.core.standardise.standardise_records`,
:func:`linkage.engines.local.score_candidates` and :func:`linkage.core.cluster.cluster`. They
return the same records, :class:`~linkage.engines.local.ScoredPairs` and clustering (same
comparers, model, weights, entities), but scoring keeps only the pairs later stages need:
everything in the review band or above, and every pair a reviewer decided. Those are
O(records); all candidate pairs stay in Spark.

What runs where:

* executors, standardisation: :func:`linkage.core.standardise.standardise_records` on chunks of
  the raw fields (:mod:`linkage.engines.spark.standardise`); the columns come back to the driver.
* driver (O(records)): ingest; one integer block code per record and rule
  (:func:`linkage.core.blocking.block_keys`, so blanks never block exactly as locally); training
  (:func:`linkage.engines.local.train`, the local engine's, on the distinct patterns of levels
  and rule agreement with their counts); term-frequency tables; entity ids, golden records,
  review and outputs (the pipeline).
* Spark (O(pairs)): the self-join of each rule's blocks (sub-blocks as the local engine makes
  them, :mod:`linkage.engines.spark.pairs`),
  link-type filter, union of rules and reviewed pairs; comparison levels (the comparers'
  ``compare`` on pandas chunks via ``mapInPandas``); pattern counts for training and level
  counts; weights (:func:`linkage.core.model.score` on chunks); bands
  (:func:`linkage.core.model.bands` on chunks) and band counts.
* driver again, for the household step: the kept pairs (those that could reach the review
  band, share a source household or carry a parent's ID, and the reviewed ones; O(records))
  get the local engine's name evidence and household step
  (:func:`linkage.engines.local.household_step`), which compares the member pairs of the
  household correspondences itself, so both engines run one implementation.
* Spark, clustering (:mod:`linkage.engines.spark.cluster`): connected components of the match
  and must-link edges, then :func:`linkage.core.cluster.cluster` per component that needs its
  constraints (authority records, cannot-links) on the executors.

Stages are timed as ``standardise`` (which starts the session), ``spark_session``, ``block``,
``compare``, ``train``, ``score``, ``household`` and ``cluster`` in summary.json. The summary's
blocking recall needs every pair and is left out (``candidate_pairs`` is None).

Running on a Spark cluster
--------------------------
docs/spark.md has the recipes (standalone, YARN, Kubernetes), what to ship to the executors
and the memory settings. In short: the executors' Python must import the same version of
``linkage`` and ``matchers`` and their dependencies (they unpickle the comparers); the driver
reads the inputs and writes the outputs and the store at the config's paths, so executors need
no access to them; name the master in the config (``spark: {master: ...}``) or let
``spark-submit`` name it. Without a master from either, Spark runs in this process as
``local[2]`` (driver memory 4g, 8 shuffle partitions; any ``spark.*`` key in the config
overrides these).

The records are shipped from the driver: up to 500,000 records they are broadcast to every
executor's Python workers, which take both sides of each chunk of pairs from them (only
positions cross from the JVM); above that they become a Spark table hash-partitioned by
position and both sides are joined to the pairs in Spark. For inputs too large for the driver
(tens of millions of records), ingest would have to read Parquet/JDBC in Spark, block codes
would be computed there (a ``dense_rank`` over the keys) and u sampled there.
"""
from __future__ import annotations

import sys
import time
from contextlib import nullcontext

import numpy as np
import pandas as pd
from pyspark.sql import functions as F

from linkage.core.cluster import Clustering
from linkage.core.config import JobConfig
from linkage.engines import local as scoring
from linkage.engines.local import ScoredPairs
from matchers.base import Comparison

PAIR = ["pos_l", "pos_r"]


def score_candidates_spark(
    records: pd.DataFrame,
    config: JobConfig,
    comparisons: list[Comparison],
    decided: pd.DataFrame,
    model_path=None,
    stage=None,
    progress: bool = False,
    household_decisions: pd.DataFrame | None = None,
) -> ScoredPairs:
    """Block, compare, train (or load) and score every candidate pair on Spark.

    Returns the pairs at review level or above and the reviewed pairs, with counts (pairs,
    levels, bands) over all candidates. ``stage`` times the steps (the pipeline's timer).
    ``household_decisions``: reviewers' decisions on correspondences, for the household step.
    """
    from linkage.engines.spark import pairs
    from linkage.engines.spark.session import spark_session

    stage = stage or (lambda name: nullcontext())
    say = _reporter(progress)
    n, k = len(records), len(comparisons)
    reviewed = _reviewed_pairs(decided)
    cache = _Cache()
    with stage("spark_session"):
        spark = spark_session(config.spark.settings(), progress)
        say(f"Spark {spark.version} at {spark.sparkContext.master}")
        columns = pairs.compared_columns(records, comparisons)
        table = pairs.record_table(records, config.blocking, columns)
        # Small enough: every Python worker gets the records; otherwise Spark joins them.
        lookup = cache.share(spark, table) if n <= pairs.BROADCAST_RECORDS else None
        recs = cache.keep(pairs.records_frame(spark, table, with_columns=lookup is None))
    try:
        with stage("block"):
            cands, rules, candidates = pairs.candidate_pairs(
                spark, recs, config.blocking, config.link_type, reviewed[PAIR])
            cache.keep(cands)
            say(f"{candidates:,} candidate pairs from {len(rules)} rules")
        with stage("compare"):
            gamma = cache.keep(pairs.comparison_levels(cands, recs, table, comparisons, lookup))
            patterns = pairs.pattern_counts(gamma, k)
            cands.unpersist()
            say(f"compared; {len(patterns):,} distinct patterns of levels and rules")
        with stage("train"):
            fs = _train(spark, gamma, patterns, records, config, comparisons, decided, reviewed,
                        model_path)
            say(f"model: prior {fs.prior:.3g}, {fs.em_iterations} EM iterations ({fs.m_source})")
        with stage("score"):
            scorer = scoring.FieldScorer(records, config, comparisons, fs)
            kept, dropped = _score(spark, cache, gamma, fs, config, scorer.tf_tables, columns,
                                   reviewed)
            say(f"{len(kept):,} pairs kept for the household step, review and clustering")
        left = kept["pos_l"].to_numpy(dtype=np.int64)
        right = kept["pos_r"].to_numpy(dtype=np.int64)
        gamma_kept = kept[[f"g{i}" for i in range(k)]].to_numpy(dtype=np.int8).reshape(
            len(kept), k)
        weight, parts = scorer(left, right, gamma_kept)
        with stage("household"):
            weighed = scoring.household_step(records, config, scorer, left, right, gamma_kept,
                                             parts, weight, household_decisions)
            # Member pairs the step added that were candidates all along (dropped here as too
            # weak) are no new pairs: counted once, as the local engine counts them.
            added = (weighed.added if weighed.added is not None
                     else np.zeros(len(weighed.left), dtype=bool))
            known = np.zeros(len(weighed.left), dtype=bool)
            known[added] = _candidates_among(spark, gamma, weighed.left[added],
                                             weighed.right[added])
    finally:
        cache.release()

    return scoring.streamed(
        weighed, decided, n, fs, rules, comparisons, candidates=candidates,
        dropped=dropped - int(known.sum()), known=known,
        base_levels=scoring.level_counts(patterns[[f"g{i}" for i in range(k)]].to_numpy(
            dtype=np.int8), comparisons, patterns["count"].to_numpy(dtype=np.float64)),
        field_stats=scorer.stats)


def standardise_spark(records: pd.DataFrame, fields: set[str], config: JobConfig,
                      progress: bool = False) -> pd.DataFrame:
    """The pipeline's standardise stage on the executors; starts the job's Spark session.

    Gives :func:`linkage.core.standardise.standardise_records` (index reset) to the value
    (:mod:`linkage.engines.spark.standardise`).
    """
    from linkage.engines.spark import standardise
    from linkage.engines.spark.session import spark_session

    spark = spark_session(config.spark.settings(), progress)
    return standardise.standardise_records(spark, records, fields)


def cluster_spark(config: JobConfig, n: int, left: np.ndarray, right: np.ndarray,
                  weight: np.ndarray, authority: np.ndarray, **constraints) -> Clustering:
    """:func:`linkage.core.cluster.cluster` in Spark (:mod:`linkage.engines.spark.cluster`):
    components found there, the constrained clustering per component on the executors."""
    from linkage.engines.spark import cluster
    from linkage.engines.spark.session import spark_session

    spark = spark_session(config.spark.settings())
    return cluster.cluster(spark, n, left, right, weight, authority, **constraints)


def _train(spark, gamma, patterns, records, config, comparisons, decided, reviewed, model_path):
    """:func:`linkage.engines.local.train` on the pattern counts (the pairs stay in Spark), with the
    reviewed pairs' levels fetched for the labels."""
    levels = [f"g{i}" for i in range(len(comparisons))]
    rules = patterns["rules"].to_numpy(dtype=np.int64)
    labelled = None
    if len(reviewed):
        rows = _levels_of(spark, gamma, reviewed[PAIR], len(comparisons))
        decision = scoring.pair_decisions(rows["pos_l"].to_numpy(), rows["pos_r"].to_numpy(),
                                          len(records), decided)
        labelled = (rows[levels].to_numpy(dtype=np.int8), decision)
    return scoring.train(
        records, config, comparisons, patterns[levels].to_numpy(dtype=np.int8),
        lambda: [(rules >> i) & 1 == 1 for i in range(len(config.blocking))], labelled,
        model_path, patterns["count"].to_numpy(dtype=np.float64))


def _score(spark, cache, gamma, fs, config, tf_tables, columns, reviewed):
    """Field weights in Spark; the kept pairs with their levels (sorted by position, the local
    engine's order) and how many candidates were dropped."""
    from linkage.engines.spark import score

    k = len(fs.comparisons)
    weighted = score.field_weights(
        gamma, fs, cache.share(spark, tf_tables),
        {col: f"t{columns.index(col)}" for col in tf_tables},
        config.training.tf_min_frequency, k,
        score.keep_floor(fs, scoring.threshold_weight(config.review_threshold)))
    decisions = (spark.createDataFrame(reviewed, "pos_l long, pos_r long, decision string")
                 if len(reviewed) else None)
    flagged = cache.keep(score.kept_pairs(weighted, decisions))
    dropped = flagged.where(~F.col("keep")).count()
    kept = flagged.where("keep").select(*PAIR).toPandas()
    kept = kept.merge(_levels_of(spark, gamma, kept[PAIR], k), on=PAIR, validate="one_to_one")
    return kept.sort_values(PAIR, kind="stable").reset_index(drop=True), int(dropped)


def _candidates_among(spark, gamma, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Which of these pairs are candidate pairs in Spark (a mask)."""
    if not len(left):
        return np.zeros(0, dtype=bool)
    lo, hi = np.minimum(left, right).astype(np.int64), np.maximum(left, right).astype(np.int64)
    wanted = spark.createDataFrame(pd.DataFrame({"pos_l": lo, "pos_r": hi}),
                                   "pos_l long, pos_r long")
    found = gamma.select(*PAIR).join(wanted.hint("broadcast"), PAIR).toPandas()
    n = int(max(hi.max(), 0)) + 1
    return np.isin(lo * n + hi, found["pos_l"].to_numpy(np.int64) * n
                   + found["pos_r"].to_numpy(np.int64))


def _levels_of(spark, gamma, keys: pd.DataFrame, k: int) -> pd.DataFrame:
    """The comparison levels of a few pairs (O(records) of them), fetched from Spark."""
    cols = [*PAIR, *[f"g{i}" for i in range(k)]]
    if not len(keys):
        return pd.DataFrame({c: pd.Series([], dtype=np.int64 if c in PAIR else np.int8)
                             for c in cols})
    wanted = spark.createDataFrame(keys.astype(np.int64), "pos_l long, pos_r long")
    return gamma.join(wanted.hint("broadcast"), PAIR).select(*cols).toPandas()


def _reviewed_pairs(decided: pd.DataFrame) -> pd.DataFrame:
    """One row per reviewed pair (pos_l <= pos_r), the latest decision winning as in
    :func:`linkage.engines.local.pair_decisions`."""
    if not len(decided):
        return pd.DataFrame({"pos_l": [], "pos_r": [], "decision": []}).astype(
            {"pos_l": np.int64, "pos_r": np.int64, "decision": object})
    frame = pd.DataFrame({
        "pos_l": np.minimum(decided["l"], decided["r"]).to_numpy(dtype=np.int64),
        "pos_r": np.maximum(decided["l"], decided["r"]).to_numpy(dtype=np.int64),
        "decision": decided["decision"].to_numpy(),
    })
    return frame.drop_duplicates(PAIR, keep="last").reset_index(drop=True)


class _Cache:
    """Persisted frames and broadcast variables of one run, released together at its end."""

    def __init__(self):
        self.frames, self.shared = [], []

    def keep(self, frame):
        self.frames.append(frame.persist())
        return frame

    def share(self, spark, value):
        self.shared.append(spark.sparkContext.broadcast(value))
        return self.shared[-1]

    def release(self) -> None:
        for frame in self.frames:
            frame.unpersist()
        for variable in self.shared:
            variable.destroy()


def _reporter(progress: bool):
    def say(message: str) -> None:
        if progress:
            print(f"[{time.strftime('%H:%M:%S')}]   spark: {message}", file=sys.stderr, flush=True)

    return say
