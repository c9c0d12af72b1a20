"""Field weights and the pairs worth keeping, in Spark.

Field weights come from :func:`linkage.core.model.score` on pandas chunks (term-frequency tables are
broadcast). A pair is kept (collected to the driver) when the household step or the name
evidence could put it in the review band or above: its model weight is at least the review
weight less the most a neutral milk name can lift it, its two records share a source household,
its ID agrees with a birthdate a generation away (the two hard classes), or a reviewer decided
it. On the driver the kept pairs get the local engine's name evidence and household step
(:func:`linkage.engines.local.household_step`), the one implementation both engines use.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from pyspark import Broadcast
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from linkage.core import household, model
from linkage.core.household import Fields

CARRIED = ["pos_l", "pos_r", "hh_l", "hh_r"]


def field_weights(
    gamma: DataFrame,
    fs: model.FSModel,
    tf_tables: Broadcast,
    tf_columns: dict[str, str],
    tf_floor: float,
    n_comparisons: int,
    keep_floor: float,
) -> DataFrame:
    """pos_l, pos_r, households, ``w`` (prior + per-comparison weights, term-frequency
    adjusted) and ``near`` (worth keeping: see the module docstring). The levels stay behind
    in ``gamma``.

    ``tf_tables`` is the broadcast {column: value frequencies}; ``tf_columns`` maps each
    term-frequency column to the pair column holding its left value.
    """
    levels = [f"g{k}" for k in range(n_comparisons)]
    fields = Fields.of(fs.comparisons)
    schema = T.StructType(
        [gamma.schema[c] for c in CARRIED] + [T.StructField("w", T.DoubleType(), False),
                                              T.StructField("near", T.BooleanType(), False)])

    def run(batches):
        for pdf in batches:
            left_values = pd.DataFrame({col: pdf[t].to_numpy(dtype=object)
                                        for col, t in tf_columns.items()})
            g = pdf[levels].to_numpy(dtype=np.int8)
            weight, _ = model.score(g, fs, left_values, np.arange(len(pdf)), tf_tables.value,
                                    tf_floor)
            hh_l, hh_r = pdf["hh_l"].to_numpy(), pdf["hh_r"].to_numpy()
            near = household.worth_keeping(weight, g, (hh_l >= 0) & (hh_l == hh_r), fields,
                                           keep_floor)
            yield pdf[CARRIED].assign(w=weight, near=near)

    return gamma.mapInPandas(run, schema)


def keep_floor(fs: model.FSModel, review_weight: float) -> float:
    """The model-weight floor of :func:`linkage.core.household.keep_floor`: the executors
    score without the name evidence, so they keep what a neutral milk name could lift."""
    return household.keep_floor(fs, review_weight)


def kept_pairs(pairs: DataFrame, decisions: DataFrame | None) -> DataFrame:
    """Adds ``keep``: near, or decided by a reviewer."""
    if decisions is not None:
        pairs = pairs.join(F.broadcast(decisions), ["pos_l", "pos_r"], "left")
        return pairs.withColumn("keep", F.col("near") | F.col("decision").isNotNull())
    return pairs.withColumn("keep", F.col("near"))
