"""Match weights, household context and bands of every candidate pair, in Spark.

Field weights come from :func:`linkage.core.model.score` on pandas chunks (term-frequency tables are
broadcast); the household context is the local engine's household step, run on the driver over
the few pairs it can change; bands are :func:`linkage.core.model.bands` on pandas chunks.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from pyspark import Broadcast
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from linkage.core import model
from linkage.core.config import JobConfig
from linkage.engines import local as scoring

CARRIED = ["pos_l", "pos_r", "hh_l", "hh_r"]


def field_weights(
    gamma: DataFrame,
    fs: model.FSModel,
    tf_tables: Broadcast,
    tf_columns: dict[str, str],
    tf_floor: float,
    n_comparisons: int,
) -> DataFrame:
    """pos_l, pos_r, households and ``w``: prior + per-comparison weights,
    term-frequency adjusted (no household yet). The levels stay behind in ``gamma``.

    ``tf_tables`` is the broadcast {column: value frequencies}; ``tf_columns`` maps each
    term-frequency column to the pair column holding its left value.
    """
    levels = [f"g{k}" for k in range(n_comparisons)]
    schema = T.StructType(
        [gamma.schema[c] for c in CARRIED] + [T.StructField("w", T.DoubleType(), False)])

    def run(batches):
        for pdf in batches:
            left_values = pd.DataFrame({col: pdf[t].to_numpy(dtype=object)
                                        for col, t in tf_columns.items()})
            weight, _ = model.score(pdf[levels].to_numpy(dtype=np.int8), fs, left_values,
                                    np.arange(len(pdf)), tf_tables.value, tf_floor)
            yield pdf[CARRIED].assign(w=weight)

    return gamma.mapInPandas(run, schema)


def household_context(spark: SparkSession, pairs: DataFrame, records: pd.DataFrame,
                      config: JobConfig) -> DataFrame:
    """Adds ``hh``: the local engine's household step itself
    (:func:`linkage.engines.local.household_bits`), run on the driver over the pairs it can change.

    A pair below the household floor, or without two known and different households, gets 0
    and changes no other pair's bits (see :func:`linkage.core.household.household_adjustment`), so
    only the others are collected: about the pairs in the review band or above, O(records)
    like the pairs the engine keeps. They are put in the local engine's pair order first.
    """
    if not config.household.enabled:
        return pairs.withColumn("hh", F.lit(0.0))
    known = (F.col("hh_l") >= 0) & (F.col("hh_r") >= 0) & (F.col("hh_l") != F.col("hh_r"))
    near = (pairs.where(known & (F.col("w") >= scoring.household_floor(config)))
            .select("pos_l", "pos_r", "w").toPandas()
            .sort_values(["pos_l", "pos_r"], kind="stable").reset_index(drop=True))
    bits = scoring.household_bits(records, config, near["pos_l"].to_numpy(dtype=np.int64),
                                  near["pos_r"].to_numpy(dtype=np.int64),
                                  near["w"].to_numpy(dtype=np.float64))
    changed = near.loc[bits != 0, ["pos_l", "pos_r"]].assign(hh=bits[bits != 0])
    hh = spark.createDataFrame(changed.astype({"pos_l": np.int64, "pos_r": np.int64}),
                               "pos_l long, pos_r long, hh double")
    return pairs.join(hh, ["pos_l", "pos_r"], "left").fillna(0.0, subset=["hh"])


def bands(pairs: DataFrame, match: float, review: float, decisions: DataFrame | None) -> DataFrame:
    """Adds ``weight`` (w + hh), ``decision`` (null where none), ``band`` (0 match, 1 review,
    2 non-match; reviewer decisions override) and ``keep`` (review band or better, or decided).

    The band is :func:`linkage.core.model.bands` of :func:`linkage.core.model.probability` on pandas
    chunks, the pipeline's own banding, so a pair exactly at a threshold lands where the local
    engine puts it. A decided pair is kept whatever its band, as the local engine keeps it.
    """
    @F.pandas_udf(T.ByteType())
    def banded(weight: pd.Series, decision: pd.Series) -> pd.Series:
        prob = model.probability(weight.to_numpy())
        return pd.Series(model.bands(prob, match, review, decision.to_numpy(dtype=object)))

    out = pairs.withColumn("weight", F.col("w") + F.col("hh"))
    if decisions is not None:
        out = out.join(F.broadcast(decisions), ["pos_l", "pos_r"], "left")
    else:
        out = out.withColumn("decision", F.lit(None).cast("string"))
    return (out.withColumn("band", banded("weight", "decision"))
            .withColumn("keep", (F.col("band") <= 1) | F.col("decision").isNotNull()))


def band_counts(scored: DataFrame) -> dict[str, int]:
    counts = {int(r["band"]): int(r["count"]) for r in scored.groupBy("band").count().collect()}
    return {name: counts.get(i, 0) for i, name in enumerate(model.BANDS)}
