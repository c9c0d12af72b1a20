"""The Spark engine (local mode) against the local engine: same pairs, model, bands, entities."""
import os
import shutil

import numpy as np
import pandas as pd
import pytest

from linkage.core import blocking, model
from linkage.core.config import BlockingRule, load_config
from linkage.jobs.run import run
from linkage.store import Store

pytest.importorskip("pyspark")
pytest.importorskip("pyarrow")
needs_java = pytest.mark.skipif(not (os.environ.get("JAVA_HOME") or shutil.which("java")),
                                reason="Spark needs Java")


@pytest.fixture(scope="module")
def spark():
    from linkage.engines.spark.session import spark_session

    session = spark_session({"master": "local[2]"})
    yield session
    session.stop()


def _entities(clusters: pd.DataFrame) -> set:
    return {frozenset(zip(g["source"], g["record_id"])) for _, g in clusters.groupby("entity_id")}


def _decisions(truth: pd.DataFrame) -> list:
    """A non-match on a true police-NCMS pair, a match on a true NCMS-urban pair, and a match
    on two different people no blocking rule would pair (a forced candidate)."""
    by_person = truth.groupby("person_id")
    pn = next(g for _, g in by_person if {"police", "ncms"} <= set(g["source"]))
    nu = next(g for _, g in by_person if {"ncms", "urban"} <= set(g["source"]))
    ncms = truth[(truth["source"] == "ncms") & ~truth["person_id"].isin([pn["person_id"].iloc[0]])]
    urban = truth[(truth["source"] == "urban") & (truth["person_id"] != ncms["person_id"].iloc[0])]

    def key(g, source):
        row = g[g["source"] == source].iloc[0]
        return (source, row["record_id"])

    return [(key(pn, "police"), key(pn, "ncms"), "non_match"),
            (key(nu, "ncms"), key(nu, "urban"), "match"),
            (key(ncms.iloc[:1], "ncms"), key(urban.iloc[-1:], "urban"), "match")]


@pytest.fixture(scope="module")
def both_engines(small_world, tmp_path_factory, spark):
    truth = pd.read_csv(small_world / "data" / "demo" / "truth.csv", dtype=str)
    results = {}
    for engine in ("local", "spark"):
        tmp = tmp_path_factory.mktemp(engine)
        config = load_config(small_world / "configs" / "demo.yaml", {
            "engine": engine, "spark": {"master": "local[2]"},
            "output": str(tmp / "out"), "store": f"sqlite:///{tmp / 'store.sqlite'}"})
        store = Store(config.store)
        for a, b, decision in _decisions(truth):
            store.add_decision(a, b, decision, "tester")
        results[engine] = run(config)
    return results


@pytest.mark.slow
@needs_java
def test_spark_engine_gives_the_local_engines_results(both_engines):
    local, spark = both_engines["local"], both_engines["spark"]
    assert _entities(spark.clusters) == _entities(local.clusters)
    ids = local.clusters.merge(spark.clusters, on=["source", "record_id"])
    assert len(ids) == len(local.clusters)
    assert (ids["entity_id_x"] == ids["entity_id_y"]).all()

    ls, ss = local.summary, spark.summary
    assert ss["engine"] == "spark"
    assert ss["blocking"] == ls["blocking"]  # candidate count and every rule's report
    assert ss["bands"] == ls["bands"]
    assert ss["comparison_levels"] == ls["comparison_levels"]
    assert ss["entities"] == ls["entities"]
    assert {"block", "compare", "train", "score"} <= set(ss["timings"])

    # One training for both engines (Spark's on pattern counts): the same model to the bit.
    lm, sm = local.model.to_dict(), spark.model.to_dict()
    assert sm["m_source"] == lm["m_source"] == "em+labels"
    assert sm == lm

    # Review pairs: same pairs, weights, probabilities and explanations.
    pd.testing.assert_frame_equal(spark.review, local.review)


@pytest.fixture(scope="module")
def small_records(small_world) -> pd.DataFrame:
    """The small world's standardised records, as the pipeline hands them to an engine."""
    from linkage.core.standardise import standardise_records
    from linkage.jobs.ingest import ingest

    config = load_config(small_world / "configs" / "demo.yaml")
    fields = {f for s in config.sources for f in s.fields}
    return standardise_records(ingest(config.sources).records, fields).reset_index(drop=True)


@pytest.mark.slow
@needs_java
def test_spark_engine_scores_with_a_saved_model(both_engines, small_world, tmp_path):
    saved = both_engines["local"].out_dir / "model.json"
    results = {}
    for engine in ("local", "spark"):
        config = load_config(small_world / "configs" / "demo.yaml", {
            "engine": engine, "output": str(tmp_path / engine),
            "store": f"sqlite:///{tmp_path / engine / 'store.sqlite'}"})
        results[engine] = run(config, model_path=saved)
    local, spark = results["local"], results["spark"]
    assert spark.model.to_dict() == model.FSModel.load(saved).to_dict()
    assert _entities(spark.clusters) == _entities(local.clusters)
    assert spark.summary["bands"] == local.summary["bands"]
    pd.testing.assert_frame_equal(spark.review, local.review)


def _forced(records: pd.DataFrame) -> pd.DataFrame:
    """Two pairs of records no rule blocks together (different birth years, far apart)."""
    n = len(records)
    return pd.DataFrame({"pos_l": [0, 1], "pos_r": [n - 1, n - 2]})


@pytest.mark.slow
@needs_java
@pytest.mark.parametrize("link_type", ["link_and_dedupe", "link_only", "dedupe_only"])
def test_spark_blocking_equals_local_blocking(small_records, spark, link_type):
    from linkage.engines.spark import pairs

    records = small_records
    rules = (BlockingRule("id", ("id_norm",), 300),
             BlockingRule("year_initials", ("birth_year", "name_initials"), 3),  # skips blocks
             BlockingRule("village_birthdate", ("village_norm", "birth_date"), 5))
    recs = pairs.records_frame(spark, pairs.record_table(records, rules, []), with_columns=False)
    forced = _forced(records)
    cands, reports, count = pairs.candidate_pairs(spark, recs, rules, link_type, forced)
    got = cands.select("pos_l", "pos_r").toPandas().sort_values(["pos_l", "pos_r"])
    cands.unpersist()
    left, right, expected = blocking.candidate_pairs(
        records, rules, link_type,
        blocking.pack(forced["pos_l"].to_numpy(), forced["pos_r"].to_numpy(), len(records)))
    assert reports == expected
    assert any(r.skipped_blocks for r in reports)
    assert count == len(left)
    np.testing.assert_array_equal(got["pos_l"].to_numpy(), left)
    np.testing.assert_array_equal(got["pos_r"].to_numpy(), right)


@pytest.mark.slow
@needs_java
@pytest.mark.parametrize("path", ["lookup", "join"])
def test_spark_comparison_levels_equal_local_vectors(small_world, small_records, spark, path):
    """Both ways the comparers get their records (broadcast lookup, Spark join) agree with
    the local engine's comparison vectors, rule agreement and term-frequency values."""
    from linkage.core.compare import comparison_vectors
    from linkage.engines.spark import pairs
    from linkage.jobs.run import plan

    records = small_records
    config = load_config(small_world / "configs" / "demo.yaml")
    comparisons = plan(config)
    left, right, _ = blocking.candidate_pairs(records, config.blocking, config.link_type)
    columns = pairs.compared_columns(records, comparisons)
    table = pairs.record_table(records, config.blocking, columns)
    lookup = spark.sparkContext.broadcast(table) if path == "lookup" else None
    recs = pairs.records_frame(spark, table, with_columns=lookup is None)
    cands = spark.createDataFrame(pd.DataFrame({"pos_l": left.astype(np.int64),
                                                "pos_r": right.astype(np.int64)}))
    got = (pairs.comparison_levels(cands, recs, table, comparisons, lookup).toPandas()
           .sort_values(["pos_l", "pos_r"]).reset_index(drop=True))

    expected = comparison_vectors(records, comparisons, left, right)
    np.testing.assert_array_equal(got[[f"g{k}" for k in range(len(comparisons))]].to_numpy(),
                                  expected)
    codes = table.codes
    agree = (codes[left] == codes[right]) & (codes[left] >= 0)
    np.testing.assert_array_equal(got["rules"].to_numpy(),
                                  (agree.astype(np.int64) << np.arange(codes.shape[1])).sum(1))
    j = columns.index("name_key")
    assert got[f"t{j}"].tolist() == records["name_key"].to_numpy()[left].tolist()
