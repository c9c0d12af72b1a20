"""Match weights, household context and bands of every candidate pair, in Spark.

Field weights come from :func:`linkage.model.score` on pandas chunks (term-frequency tables are
broadcast); the household context is :func:`linkage.household.household_adjustment` written as
window functions, so a household's pairs never have to meet on the driver.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from pyspark import Broadcast
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from linkage import model

BAND_NAMES = ("match", "review", "non_match")
CARRIED = ["pos_l", "pos_r", "src_l", "src_r", "hh_l", "hh_r"]


def field_weights(
    gamma: DataFrame,
    fs: model.FSModel,
    tf_tables: Broadcast,
    tf_columns: dict[str, str],
    tf_floor: float,
    n_comparisons: int,
) -> DataFrame:
    """pos_l, pos_r, sources, households and ``w``: prior + per-comparison weights,
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


def household_context(pairs: DataFrame, strong_weight: float, bonus: float,
                      penalty: float) -> DataFrame:
    """Adds ``hh``: the bits :func:`linkage.household.household_adjustment` gives each pair.

    Needs pos_l, pos_r, hh_l, hh_r (household codes, -1 unknown), src_l, src_r and w. The
    local function's "best partner household" is an argmax, but a pair is only ever tied
    elsewhere when its own household pair has no other strong pair (support 0, so at most one
    strong pair) while the best one has two or more; so "tied elsewhere" is exactly "the best
    household pair of this source has 2+ strong pairs and this pair has no support".
    """
    known = (F.col("hh_l") >= 0) & (F.col("hh_r") >= 0) & (F.col("hh_l") != F.col("hh_r"))

    def over(*keys):
        return Window.partitionBy(*keys)

    # Every window below is keyed by the left or the right household: two shuffles, not five.
    f = (pairs.where(known).withColumn("strong", (F.col("w") >= strong_weight).cast("int"))
         .repartition("hh_l"))
    f = f.withColumn("n_hh", F.sum("strong").over(over("hh_l", "hh_r")))
    f = (f.withColumn("best_b", F.max("w").over(over("pos_r", "hh_l")))
         .withColumn("best_n_l", F.max("n_hh").over(over("hh_l", "src_r")))
         .repartition("hh_r")
         .withColumn("best_a", F.max("w").over(over("pos_l", "hh_r")))
         .withColumn("best_n_r", F.max("n_hh").over(over("hh_r", "src_l"))))
    support = F.col("n_hh") - F.col("strong")
    mutual = (F.col("w") >= F.col("best_a")) & (F.col("w") >= F.col("best_b"))
    tied_l = (F.col("best_n_l") >= 2) & (support == 0)
    tied_r = (F.col("best_n_r") >= 2) & (support == 0)

    def bits(condition, value):
        return F.when(condition, F.lit(float(value))).otherwise(F.lit(0.0))

    hh = (bits(mutual & (support >= 1), bonus) - bits(~mutual, penalty)
          - bits(tied_l, penalty) - bits(tied_r, penalty))
    adjusted = f.withColumn("hh", hh).drop("strong", "n_hh", "best_a", "best_b", "best_n_l",
                                           "best_n_r")
    return adjusted.unionByName(pairs.where(~known).withColumn("hh", F.lit(0.0)))


def without_household(pairs: DataFrame) -> DataFrame:
    return pairs.withColumn("hh", F.lit(0.0))


def bands(pairs: DataFrame, match: float, review: float, decisions: DataFrame | None) -> DataFrame:
    """Adds ``weight`` (w + hh), ``decision`` (null where none), ``band`` (0 match, 1 review,
    2 non-match; reviewer decisions override) and ``keep`` (review band or better, or decided).

    Probabilities are computed by :func:`linkage.model.probability`, so a pair exactly at a
    threshold lands where the pipeline would put it.
    """
    @F.pandas_udf(T.ByteType())
    def scored_band(weight: pd.Series) -> pd.Series:
        p = model.probability(weight.to_numpy())
        return pd.Series(np.where(p >= match, 0, np.where(p >= review, 1, 2)).astype(np.int8))

    out = pairs.withColumn("weight", F.col("w") + F.col("hh"))
    out = out.withColumn("by_score", scored_band("weight"))
    if decisions is not None:
        out = out.join(F.broadcast(decisions), ["pos_l", "pos_r"], "left")
    else:
        out = out.withColumn("decision", F.lit(None).cast("string"))
    band = (F.when(F.col("decision") == "match", 0).when(F.col("decision") == "non_match", 2)
            .otherwise(F.col("by_score")).cast("byte"))
    return (out.withColumn("band", band)
            .withColumn("keep", (F.col("by_score") <= 1) | F.col("decision").isNotNull()))


def band_counts(scored: DataFrame) -> dict[str, int]:
    counts = {int(r["band"]): int(r["count"]) for r in scored.groupBy("band").count().collect()}
    return {name: counts.get(i, 0) for i, name in enumerate(BAND_NAMES)}
