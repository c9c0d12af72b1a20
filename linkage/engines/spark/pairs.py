"""Records into Spark, candidate pairs by blocking rules, comparison levels per pair.

Block codes are computed on the driver with :func:`linkage.core.blocking.block_keys`
(O(records), and the same rules for blanks: blank never blocks, an integer key of 0 is blank), and
the sub-blocks of blocks over budget with :func:`linkage.core.blocking.rule_blocks`, so that
Spark joins on one integer per rule and the candidate pairs are exactly the local engine's.
Pairs are then made, filtered, unioned and compared in Spark; the comparers run on pandas chunks
of pairs (``mapInPandas``), the same code as on one machine. Where the records fit in a
broadcast, the Python workers take both sides of a chunk from their copy (as the local engine
does); otherwise Spark joins both sides' columns to the pairs.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import reduce
from operator import add

import numpy as np
import pandas as pd
from pyspark import Broadcast
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from linkage.core import blocking, household
from linkage.core.blocking import RuleReport
from linkage.core.config import BlockingRule
from matchers.base import Comparison

BROADCAST_RECORDS = 500_000  # up to this many records every executor gets all of them; above,
# the records frame is hash-partitioned by position and pairs are joined to it by shuffling
PAIR_KEYS = ["pos_l", "pos_r"]
MAX_RULES = 62  # which rules found a pair, and which agree on it, are bits of one long


def compared_columns(records: pd.DataFrame, comparisons: list[Comparison]) -> list[str]:
    """Standardised columns the comparers read, plus term-frequency columns."""
    cols = {col for c in comparisons for col in c.columns}
    cols |= {c.tf_column for c in comparisons if c.tf_column and c.tf_column in records}
    return sorted(cols)


@dataclass
class RecordTable:
    """What blocking and the comparers need of the records, computed once on the driver."""

    src: np.ndarray  # source code per record (int32)
    hh: np.ndarray  # household code per record, -1 where none (int64): which pairs the
    # household step can concern
    codes: np.ndarray  # (records x rules) block codes, -1 where a key is blank (int64)
    frame: pd.DataFrame  # the compared columns, as the local engine's comparison_vectors reads
    blocks: np.ndarray | None = None  # (records x rules) sub-block codes (blocking.Blocks.codes)


def record_table(records: pd.DataFrame, rules: tuple[BlockingRule, ...],
                 columns: list[str]) -> RecordTable:
    codes = np.empty((len(records), len(rules)), dtype=np.int64)
    blocks = np.empty((len(records), len(rules)), dtype=np.int64)
    src = pd.factorize(records["source"])[0].astype(np.int32)
    for i, rule in enumerate(rules):
        split = blocking.rule_blocks(records, rule, src)
        codes[:, i], blocks[:, i] = split.keys, split.codes
    return RecordTable(src, household.household_codes(records), codes,
                       records[columns].reset_index(drop=True), blocks)


def records_frame(spark: SparkSession, table: RecordTable, with_columns: bool) -> DataFrame:
    """pos, src, hh, a block code ``k{i}`` and a sub-block code ``b{i}`` per rule and
    (``with_columns``) the compared columns as ``c{j}``.

    Internal names keep Spark clear of whatever a column is called; object columns become
    strings (null where blank), integers and booleans keep their type.
    """
    n = len(table.src)
    data = {"pos": np.arange(n, dtype=np.int64), "src": table.src, "hh": table.hh}
    fields = [T.StructField("pos", T.LongType(), False),
              T.StructField("src", T.IntegerType(), False),
              T.StructField("hh", T.LongType(), False)]
    for i in range(table.codes.shape[1]):
        data[f"k{i}"] = table.codes[:, i]
        fields.append(T.StructField(f"k{i}", T.LongType(), False))
        data[f"b{i}"] = table.blocks[:, i]
        fields.append(T.StructField(f"b{i}", T.LongType(), False))
    for j, col in enumerate(table.frame.columns if with_columns else []):
        values, kind = _spark_column(table.frame[col])
        data[f"c{j}"] = values
        fields.append(T.StructField(f"c{j}", kind, True))
    frame = spark.createDataFrame(pd.DataFrame(data), T.StructType(fields))
    if n > BROADCAST_RECORDS:
        frame = frame.repartition("pos")  # pairs will be joined to records by position
    return frame


def _spark_column(values: pd.Series) -> tuple[pd.Series, T.DataType]:
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return values.reset_index(drop=True), T.BooleanType()
    if pd.api.types.is_integer_dtype(dtype):
        kind = {1: T.ByteType(), 2: T.ShortType(), 4: T.IntegerType()}.get(dtype.itemsize,
                                                                          T.LongType())
        return values.reset_index(drop=True), kind
    if pd.api.types.is_float_dtype(dtype):
        return values.reset_index(drop=True).astype(np.float64), T.DoubleType()
    text = [None if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v)
            for v in values.astype(object)]
    return pd.Series(text, dtype=object), T.StringType()


def candidate_pairs(
    spark: SparkSession,
    recs: DataFrame,
    rules: tuple[BlockingRule, ...],
    link_type: str,
    forced: pd.DataFrame,
) -> tuple[DataFrame, list[RuleReport], int]:
    """Distinct (pos_l < pos_r) candidate pairs, persisted, with a report per rule.

    ``forced`` (columns pos_l, pos_r) are reviewed pairs, candidates whatever the rules say.
    """
    if len(rules) > MAX_RULES:
        raise ValueError(f"the Spark engine takes at most {MAX_RULES} blocking rules")
    # Sub-blocks as blocking.rule_blocks made them: -1 a blank key, -2 and below skipped.
    entries = F.array(*[
        F.struct(F.lit(i).alias("rule"), F.col(f"b{i}").alias("key"))
        for i in range(len(rules))
    ])
    keyed = (recs.select("pos", "src", F.explode(entries).alias("e"))
             .select("pos", "src", "e.rule", "e.key")
             .where(F.col("key") != -1))
    # Records of blocks with two or more members, beside their block's size.
    members = F.count(F.lit(1)).over(Window.partitionBy("rule", "key"))
    blocks = keyed.withColumn("members", members).where(F.col("members") > 1).persist()
    big = F.col("key") < -1
    stats = {row["rule"]: row for row in blocks.groupBy("rule").agg(
        F.countDistinct("key").alias("blocks"),
        F.countDistinct(F.when(big, F.col("key"))).alias("skipped_blocks"),
        # Each of a block's m members adds m - 1: the block adds m (m - 1), twice its pairs.
        F.sum(F.when(big, F.col("members") - 1).otherwise(0)).alias("skipped_twice"),
    ).collect()}

    usable = blocks.where(~big)
    lhs = usable.select("rule", "key", F.col("pos").alias("pos_l"), F.col("src").alias("src_l"))
    rhs = usable.select("rule", "key", F.col("pos").alias("pos_r"), F.col("src").alias("src_r"))
    pairs = lhs.join(rhs, ["rule", "key"]).where(F.col("pos_l") < F.col("pos_r"))
    allowed = blocking.link_type_keeps(F.col("src_l"), F.col("src_r"), link_type)
    if allowed is not None:
        pairs = pairs.where(allowed)
    tagged = pairs.select("pos_l", "pos_r", "rule")
    if len(forced):
        tagged = tagged.unionByName(spark.createDataFrame(
            forced[PAIR_KEYS].astype(np.int64).assign(rule=np.int32(len(rules))),
            "pos_l long, pos_r long, rule int"))
    cands = (tagged.groupBy(*PAIR_KEYS)
             .agg(F.min("rule").alias("first"),
                  F.expr("bit_or(shiftleft(1L, rule))").alias("found"))
             .persist())
    found = cands.groupBy("first", "found").count().toPandas()
    reports = []
    for i, rule in enumerate(rules):
        s = stats.get(i)
        reports.append(RuleReport(
            rule.name,
            int(found.loc[(found["found"].to_numpy() >> i) & 1 == 1, "count"].sum()),
            int(found.loc[found["first"] == i, "count"].sum()),
            int(s["blocks"]) if s else 0,
            int(s["skipped_blocks"]) if s else 0,
            int(s["skipped_twice"] or 0) // 2 if s else 0,
        ))
    blocks.unpersist()
    return cands, reports, int(found["count"].sum())


def comparison_levels(
    cands: DataFrame,
    recs: DataFrame,
    table: RecordTable,
    comparisons: list[Comparison],
    lookup: Broadcast | None = None,
) -> DataFrame:
    """Per candidate pair: g0..gK (tinyint levels), ``rules`` and what scoring needs.

    ``rules`` has bit i set where the pair agrees on rule i's keys (non-blank): the pairs an EM
    session of that rule trains on, as :func:`linkage.engines.local.rule_agreement` finds them.
    ``t{j}`` carries the left record's value of each term-frequency column ``c{j}``.

    With ``lookup`` (the broadcast ``table``) every Python worker holds the records and takes
    both sides of a chunk of pairs from it, as the local engine does: only positions cross
    from the JVM. Without it, both sides' columns are joined to the pairs in Spark (``recs``
    must carry them) and cross in Arrow batches.
    """
    columns = list(table.frame.columns)
    n_rules = table.codes.shape[1]
    tf_idx = sorted({columns.index(c.tf_column) for c in comparisons if c.tf_column in columns})
    schema = T.StructType(
        [T.StructField(c, t, False) for c, t in (
            ("pos_l", T.LongType()), ("pos_r", T.LongType()), ("src_l", T.IntegerType()),
            ("src_r", T.IntegerType()), ("hh_l", T.LongType()), ("hh_r", T.LongType()),
            ("rules", T.LongType()))]
        + [T.StructField(f"t{j}", _spark_column(table.frame[columns[j]].iloc[:0])[1], True)
           for j in tf_idx]
        + [T.StructField(f"g{k}", T.ByteType(), False) for k in range(len(comparisons))])
    if lookup is not None:
        return cands.select(*PAIR_KEYS).mapInPandas(
            _levels_from_lookup(comparisons, lookup, tf_idx), schema)

    def side(s: str) -> DataFrame:
        return recs.select(
            F.col("pos").alias(f"pos_{s}"), F.col("src").alias(f"src_{s}"),
            F.col("hh").alias(f"hh_{s}"),
            *[F.col(f"k{i}").alias(f"k{i}_{s}") for i in range(n_rules)],
            *[F.col(f"c{j}").alias(f"c{j}_{s}") for j in range(len(columns))])

    joined = cands.select(*PAIR_KEYS).join(side("l"), "pos_l").join(side("r"), "pos_r")
    agrees = [F.when((F.col(f"k{i}_l") == F.col(f"k{i}_r")) & (F.col(f"k{i}_l") >= 0),
                     F.lit(1 << i).cast("long")).otherwise(F.lit(0).cast("long"))
              for i in range(n_rules)]
    joined = joined.withColumn("rules", reduce(add, agrees) if agrees else F.lit(0).cast("long"))
    return joined.mapInPandas(_levels_from_join(comparisons, columns, tf_idx), schema)


def _levels_from_lookup(comparisons: list[Comparison], lookup: Broadcast, tf_idx: list[int]):
    def run(batches):
        table: RecordTable = lookup.value
        columns = list(table.frame.columns)
        for pdf in batches:
            left = pdf["pos_l"].to_numpy(dtype=np.int64)
            right = pdf["pos_r"].to_numpy(dtype=np.int64)
            lhs, rhs = table.frame.take(left), table.frame.take(right)
            agree = (table.codes[left] == table.codes[right]) & (table.codes[left] >= 0)
            out = pd.DataFrame({
                "pos_l": left, "pos_r": right, "src_l": table.src[left],
                "src_r": table.src[right], "hh_l": table.hh[left], "hh_r": table.hh[right],
                "rules": (agree.astype(np.int64) << np.arange(agree.shape[1])).sum(axis=1),
            })
            for j in tf_idx:
                out[f"t{j}"] = lhs[columns[j]].to_numpy()
            yield _with_levels(out, comparisons, lhs, rhs)

    return run


def _levels_from_join(comparisons: list[Comparison], columns: list[str], tf_idx: list[int]):
    passed = ["pos_l", "pos_r", "src_l", "src_r", "hh_l", "hh_r", "rules"]

    def run(batches):
        for pdf in batches:
            lhs = pd.DataFrame({col: pdf[f"c{j}_l"] for j, col in enumerate(columns)})
            rhs = pd.DataFrame({col: pdf[f"c{j}_r"] for j, col in enumerate(columns)})
            out = pdf[passed].copy()
            for j in tf_idx:
                out[f"t{j}"] = pdf[f"c{j}_l"]
            yield _with_levels(out, comparisons, lhs, rhs)

    return run


def _with_levels(out: pd.DataFrame, comparisons: list[Comparison], lhs: pd.DataFrame,
                 rhs: pd.DataFrame) -> pd.DataFrame:
    for k, comparison in enumerate(comparisons):
        out[f"g{k}"] = comparison.compare(lhs, rhs).astype(np.int8)
    return out


def pattern_counts(gamma: DataFrame, n_comparisons: int) -> pd.DataFrame:
    """Distinct (g0..gK, rules) with how many pairs have each: all training needs of the pairs."""
    cols = [f"g{k}" for k in range(n_comparisons)]
    out = gamma.groupBy(*cols, "rules").count().toPandas()
    return out.astype({c: np.int8 for c in cols} | {"rules": np.int64, "count": np.int64})
