"""Entities in Spark: connected components of the match edges, then the constrained clustering
of :func:`linkage.core.cluster.cluster` per component on the executors.

The constrained clustering decides each component on its own: whether it needs rebuilding (two
authority or exclusive records, or a cannot-link inside) and, if so, which of its edges the
greedy refuses, strongest first and ties in edge order. So the components are found in Spark
(large-star / small-star over DataFrames, no GraphFrames), the ones that need rebuilding are
found there too, and each of those is handed whole to ``linkage.core.cluster.cluster`` on an
executor (``applyInPandas``) with its edges in their original order. The rest are entities as
they stand. Labels are numbered by each entity's smallest record position and refused edges are
listed strongest first (ties in edge order), as the local clustering gives them.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from linkage.core import cluster as core
from linkage.core.cluster import Clustering

NO_PAIRS = (np.empty(0, int), np.empty(0, int))
MAX_ROUNDS = 100  # large-star / small-star needs O(log² n) rounds; this is a runaway guard
# What each row of a component's frame is: a record, a match edge, a must-link, a cannot-link.
NODE, EDGE, MUST, CANNOT = 0, 1, 2, 3
ITEMS = T.StructType([T.StructField(c, t, False) for c, t in (
    ("comp", T.LongType()), ("kind", T.ByteType()), ("a", T.LongType()), ("b", T.LongType()),
    ("idx", T.LongType()), ("w", T.DoubleType()), ("auth", T.BooleanType()),
    ("excl", T.BooleanType()))])
DECIDED = T.StructType([T.StructField(c, T.LongType(), False) for c in ("kind", "key", "rep")])


def cluster(
    spark: SparkSession,
    n: int,
    left: np.ndarray,
    right: np.ndarray,
    weight: np.ndarray,
    authority: np.ndarray,
    must_link: tuple[np.ndarray, np.ndarray] = NO_PAIRS,
    cannot_link: tuple[np.ndarray, np.ndarray] = NO_PAIRS,
    exclusive: np.ndarray | None = None,
) -> Clustering:
    """:func:`linkage.core.cluster.cluster`'s result, computed in Spark (same arguments)."""
    left, right = np.asarray(left, np.int64), np.asarray(right, np.int64)
    ml_l, ml_r = (np.asarray(a, np.int64) for a in must_link)
    cl_l, cl_r = (np.asarray(a, np.int64) for a in cannot_link)
    weight = np.asarray(weight, np.float64)
    m = len(left)
    rep = np.arange(n, dtype=np.int64)  # each record's entity, as its smallest member
    if m + len(ml_l) == 0:
        return Clustering(rep, np.empty(0, dtype=np.int64))

    edges = _frame(spark, {
        "idx": np.arange(m + len(ml_l), dtype=np.int64),
        "a": np.concatenate([left, ml_l]), "b": np.concatenate([right, ml_r]),
        "w": np.concatenate([weight, np.zeros(len(ml_l))])}).persist()
    comps = connected_components(edges)
    flagged = np.flatnonzero(authority | (exclusive if exclusive is not None else False))
    flags = _frame(spark, {
        "node": flagged.astype(np.int64), "auth": np.asarray(authority, bool)[flagged],
        "excl": (np.asarray(exclusive, bool)[flagged] if exclusive is not None
                 else np.zeros(len(flagged), bool))})
    cannot = _frame(spark, {"a": cl_l, "b": cl_r})
    try:
        nodes = comps.join(flags, "node", "left").fillna(False, ["auth", "excl"])
        inside = (cannot.join(comps.withColumnRenamed("node", "a"), "a")
                  .join(comps.select(F.col("node").alias("b"), F.col("comp").alias("comp_b")),
                        "b")
                  .where(F.col("comp") == F.col("comp_b")).select("comp", "a", "b"))
        crowded = (nodes.groupBy("comp")
                   .agg(F.sum(F.col("auth").cast("int")).alias("n_auth"),
                        F.sum(F.col("excl").cast("int")).alias("n_excl"))
                   .where((F.col("n_auth") > 1) | (F.col("n_excl") > 1)).select("comp"))
        bad = crowded.unionByName(inside.select("comp")).distinct()
        decided = _rebuild(_items(nodes, edges, inside, bad, m), exclusive is not None)
        assigned = comps.toPandas()
        rebuilt = decided.toPandas()
    finally:
        edges.unpersist()
        comps.unpersist()

    rep[assigned["node"].to_numpy(np.int64)] = assigned["comp"].to_numpy(np.int64)
    is_node = rebuilt["kind"].to_numpy() == NODE
    rep[rebuilt["key"].to_numpy(np.int64)[is_node]] = rebuilt["rep"].to_numpy(np.int64)[is_node]
    refused = np.sort(rebuilt["key"].to_numpy(np.int64)[~is_node])
    refused = refused[np.argsort(-weight[refused], kind="stable")]
    return Clustering(np.unique(rep, return_inverse=True)[1].astype(np.int64), refused)


def connected_components(edges: DataFrame) -> DataFrame:
    """(node, comp), persisted, for every node of an edge (columns a, b): comp is the smallest
    node.

    Large-star / small-star (Kiveris et al., "Connected components in MapReduce and beyond",
    2014): each round links every node to the smallest node it can see, until every component
    is a star around its smallest node. Each round reads its input several times, so its plan
    would double every round: each round's edges are checkpointed on the executors (a local
    checkpoint, computed when it is made: a lazy one logs spurious accumulator errors on a
    cluster).
    """
    linked = (edges.select(F.greatest("a", "b").alias("u"), F.least("a", "b").alias("v"))
              .where(F.col("u") != F.col("v")).distinct().localCheckpoint())
    for _ in range(MAX_ROUNDS):
        if _stars(linked):
            break
        linked = _small_star(_large_star(linked)).localCheckpoint()
    else:  # pragma: no cover - would need a graph of astronomical diameter
        raise RuntimeError(f"connected components did not converge in {MAX_ROUNDS} rounds")
    roots = linked.select(F.col("v").alias("node"), F.col("v").alias("comp"))
    stars = linked.select(F.col("u").alias("node"), F.col("v").alias("comp"))
    return stars.unionByName(roots).distinct().persist()


def _large_star(linked: DataFrame) -> DataFrame:
    """Every node's larger neighbours linked to the smallest of the node and its neighbours."""
    both = linked.select(F.col("u").alias("x"), F.col("v").alias("y")).unionByName(
        linked.select(F.col("v").alias("x"), F.col("u").alias("y")))
    least = both.groupBy("x").agg(F.least(F.min("y"), F.col("x")).alias("m"))
    # Duplicates are left to small-star, which removes them.
    return (both.where(F.col("y") > F.col("x")).join(least, "x")
            .select(F.col("y").alias("u"), F.col("m").alias("v")))


def _small_star(linked: DataFrame) -> DataFrame:
    """Every node and its smaller neighbours linked to the smallest of those neighbours."""
    least = linked.groupBy("u").agg(F.min("v").alias("m"))
    joined = linked.join(least, "u")
    return (joined.where(F.col("v") != F.col("m")).select(F.col("v").alias("u"),
                                                          F.col("m").alias("v"))
            .unionByName(joined.select("u", F.col("m").alias("v"))).distinct())


def _stars(linked: DataFrame) -> bool:
    """Whether every node links to one smaller node only, and that one to none (one job)."""
    many = linked.groupBy("u").count().where(F.col("count") > 1).select("u")
    hubs = (linked.join(linked.select(F.col("u").alias("v")), "v", "left_semi")
            .select(F.col("v").alias("u")))
    return many.unionByName(hubs).limit(1).count() == 0


def _items(nodes: DataFrame, edges: DataFrame, inside: DataFrame, bad: DataFrame,
           m: int) -> DataFrame:
    """One frame of the components to rebuild: their records, match edges, must-links and
    cannot-links, each row tagged with its component."""
    comp_of = nodes.select(F.col("node").alias("a"), "comp")
    edged = edges.join(comp_of, "a").join(bad, "comp", "left_semi")

    def rows(frame, kind, a="a", b="b", idx=F.lit(-1), w=F.lit(0.0), auth=F.lit(False),
             excl=F.lit(False)):
        return frame.select(
            "comp", F.lit(kind).cast("tinyint").alias("kind"), F.col(a).alias("a"),
            F.col(b).alias("b"), idx.cast("long").alias("idx"), w.cast("double").alias("w"),
            auth.alias("auth"), excl.alias("excl"))

    return (rows(nodes.join(bad, "comp", "left_semi"), NODE, a="node", b="node",
                 auth=F.col("auth"), excl=F.col("excl"))
            .unionByName(rows(edged.where(F.col("idx") < m), EDGE, idx=F.col("idx"),
                              w=F.col("w")))
            .unionByName(rows(edged.where(F.col("idx") >= m), MUST))
            .unionByName(rows(inside.join(bad, "comp", "left_semi"), CANNOT)))


def _rebuild(items: DataFrame, with_exclusive: bool) -> DataFrame:
    """Per component: each record's entity (kind 0, key = record, rep = smallest member) and
    each refused edge (kind 1, key = edge index), from ``linkage.core.cluster.cluster``."""

    def run(pdf: pd.DataFrame) -> pd.DataFrame:
        kind = pdf["kind"].to_numpy()
        node = pdf[kind == NODE].sort_values("a")
        positions = node["a"].to_numpy(np.int64)

        def pairs(k, by="idx"):
            part = pdf[kind == k].sort_values([by, "a", "b"])
            return (part, np.searchsorted(positions, part["a"].to_numpy(np.int64)),
                    np.searchsorted(positions, part["b"].to_numpy(np.int64)))

        edge, el, er = pairs(EDGE)  # edge order is the greedy's tie order
        _, ml, mr = pairs(MUST)
        _, cl, cr = pairs(CANNOT)
        result = core.cluster(
            len(positions), el, er, edge["w"].to_numpy(np.float64), node["auth"].to_numpy(bool),
            must_link=(ml, mr), cannot_link=(cl, cr),
            exclusive=node["excl"].to_numpy(bool) if with_exclusive else None)
        labels = result.labels
        first = np.full(labels.max() + 1, np.iinfo(np.int64).max)
        np.minimum.at(first, labels, positions)
        refused = edge["idx"].to_numpy(np.int64)[result.refused]
        return pd.DataFrame({
            "kind": np.concatenate([np.full(len(positions), NODE), np.full(len(refused), 1)]),
            "key": np.concatenate([positions, refused]),
            "rep": np.concatenate([first[labels], np.full(len(refused), -1)])})

    return items.groupBy("comp").applyInPandas(run, DECIDED)


def _frame(spark: SparkSession, columns: dict[str, np.ndarray]) -> DataFrame:
    """A Spark frame of numpy columns (int64 as long, float64 as double, bool as boolean)."""
    kinds = {"i": T.LongType(), "f": T.DoubleType(), "b": T.BooleanType()}
    frame = pd.DataFrame(columns)
    schema = T.StructType([T.StructField(c, kinds[frame[c].dtype.kind], False) for c in frame])
    return spark.createDataFrame(frame, schema)
