"""Blocking that scales: blocks over budget split by refining keys, the estimate before any
comparison (pairs, new pairs, cumulative pairs, recall) against real counts, and a run refused
when its rules would give more pairs than the machine takes."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkage.core import blocking, blocking_plan
from linkage.core.blocking import candidate_pairs, rule_blocks
from linkage.core.config import BlockingRule, ConfigError, load_config


def _pairs(records: pd.DataFrame, rule: BlockingRule, link_type="link_and_dedupe") -> set:
    left, right, _ = candidate_pairs(records, (rule,), link_type)
    return set(zip(left.tolist(), right.tolist()))


def _frame(**columns) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    return pd.DataFrame({"source": ["police"] * n, **columns})


# --------------------------------------------------------------------------- splitting


def test_a_block_within_budget_keeps_every_pair():
    records = _frame(k=["王伟"] * 5 + ["李娜"] * 2,
                     birth_date=[19700301, 19700402, 19700503, 19700604, 19700705, 0, 0])
    split = BlockingRule("k", ("k",), 5, refine=("birth_month",))
    whole = BlockingRule("k", ("k",), 5)
    assert _pairs(records, split) == _pairs(records, whole)
    assert len(_pairs(records, split)) == 10 + 1
    assert rule_blocks(records, split).split_blocks == 0


def test_a_block_over_budget_is_split_by_the_refining_keys_in_order():
    # Eight 王伟 born in 1970: three in March (two townships), five in May (one township).
    records = _frame(
        k=["王伟"] * 8,
        birth_date=[19700301, 19700311, 19700321, 19700501, 19700502, 19700503, 19700504,
                    19700505],
        township_norm=["甲", "甲", "乙", "丙", "丙", "丙", "丙", "丙"])
    rule = BlockingRule("k", ("k",), 2, refine=("birth_month", "township_norm"))
    got = _pairs(records, rule)
    assert got == {(0, 1)}  # March split again by township; May stays over budget: skipped
    blocks = rule_blocks(records, rule)
    assert blocks.split_blocks == 1 and blocks.refined_by == ("birth_month", "township_norm")
    assert blocks.skipped_blocks == 1 and blocks.skipped_pairs == 10
    _, _, (report,) = candidate_pairs(records, (rule,))
    assert (report.pairs, report.skipped_blocks, report.skipped_pairs) == (1, 1, 10)
    # Without refining keys the whole block is skipped, as blocking always did.
    assert _pairs(records, BlockingRule("k", ("k",), 2)) == set()


def test_a_blank_refining_value_is_a_sub_block_of_its_own():
    records = _frame(k=["x"] * 4, birth_date=[19700300, 19700000, 19700000, 19700301])
    got = _pairs(records, BlockingRule("k", ("k",), 2, refine=("birth_month",)))
    assert got == {(0, 3), (1, 2)}  # the year-only birthdates pair with each other


def test_max_pairs_counts_the_pairs_the_link_type_allows():
    # One registry record and six enrolments: six pairs across sources, 21 in all.
    records = pd.DataFrame({"source": ["police"] + ["ncms"] * 6, "k": ["x"] * 7,
                            "birth_date": [19700101 + 100 * i for i in range(7)]})
    rule = BlockingRule("k", ("k",), 100, refine=("birth_month",), max_pairs=10,
                        link_type="link_only")
    assert len(_pairs(records, rule, "link_only")) == 6  # within budget: not split
    assert len(_pairs(records, rule, "link_and_dedupe")) == 0  # 21 > 10: split to singletons
    plan = blocking_plan.estimate(records, (rule,), "link_only", budget=10**6)
    assert plan.rules[0].pairs == plan.rules[0].whole_pairs == 6


def test_the_largest_blocks_never_show_an_id_prefix_whole():
    # A block keyed on the first 17 digits of an ID (a household's copies of one person).
    records = _frame(id_prefix17=["15052519800101234"] * 3, birth_date=[19800101] * 3)
    plan = blocking_plan.estimate(records, (BlockingRule("id", ("id_prefix17",), 100),),
                                  "link_and_dedupe", budget=10**6)
    shown = plan.rules[0].largest[0].key
    assert shown == "1505*************"
    assert "15052519800101234" not in plan.table()


@st.composite
def _blocks(draw):
    n = draw(st.integers(2, 60))
    key = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    month = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    town = draw(st.lists(st.sampled_from(["", "甲", "乙"]), min_size=n, max_size=n))
    source = draw(st.lists(st.sampled_from(["police", "ncms"]), min_size=n, max_size=n))
    size = draw(st.integers(2, 12))
    max_pairs = draw(st.none() | st.integers(1, 40))
    link_type = draw(st.sampled_from(["link_and_dedupe", "link_only", "dedupe_only"]))
    records = pd.DataFrame({"source": source, "k": key, "birth_date": [
        19700000 + 100 * m + 1 for m in month], "township_norm": town})
    return records, size, max_pairs, link_type


@settings(max_examples=150, deadline=None)
@given(_blocks())
def test_split_pairs_are_a_subset_and_every_sub_block_is_within_budget(case):
    records, size, max_pairs, link_type = case
    records["k"] = records["k"] + 1  # 0 would be a blank key
    rule = BlockingRule("k", ("k",), size, refine=("birth_month", "township_norm"),
                        max_pairs=max_pairs, link_type=link_type)
    whole = BlockingRule("k", ("k",), len(records) + 2)
    split_pairs = _pairs(records, rule, link_type)
    assert split_pairs <= _pairs(records, whole, link_type)
    blocks = rule_blocks(records, rule)
    sources = pd.factorize(records["source"])[0]
    paired = blocks.paired
    sizes = np.bincount(paired[paired >= 0]) if (paired >= 0).any() else np.zeros(0)
    assert (sizes <= size).all()
    if max_pairs is not None:
        assert (blocking.block_pairs(paired, sources, link_type) <= max_pairs).all()
    # A record's sub-block is the records of its block that share its depth and its values of
    # the first `depth` refining keys (what a new record needs to find its sub-block).
    values = [blocking.refining_values(records, k) for k in rule.refine]
    for i in range(len(records)):
        same = blocks.keys == blocks.keys[i]
        same &= blocks.depth == blocks.depth[i]
        for v in values[:blocks.depth[i]]:
            same &= v == v[i]
        assert (same == (blocks.codes == blocks.codes[i])).all()
    # A pair is lost only where its block was over budget, and the estimate counts exactly.
    plan = blocking_plan.estimate(records, (rule,), link_type, budget=10**9)
    assert plan.rules[0].pairs == len(split_pairs)
    if blocks.split_blocks == 0:
        assert split_pairs == _pairs(records, whole, link_type)


# --------------------------------------------------------------------------- the estimate


@pytest.fixture(scope="module")
def world_records(small_world):
    """The small world's records, read and standardised as a run reads them."""
    from linkage.core.standardise import standardise_records
    from linkage.jobs.inputs import ingest_job

    config = load_config(small_world / "configs" / "demo.yaml")
    fields = {f for s in config.sources for f in s.fields}
    records = standardise_records(ingest_job(config, store=_NoStore()).records, fields)
    return config, records.reset_index(drop=True)


class _NoStore:
    """A store with no complete runs: the configured sources only."""

    def complete_run_summaries(self, job):
        return []


def _tight(config):
    """The demo rules with small budgets, so that the small world's blocks get split."""
    from dataclasses import replace

    return tuple(replace(r, max_block_size=3, refine=("birth_month", "township_norm", "gender"))
                 for r in config.blocking)


@pytest.mark.parametrize("link_type", ["link_and_dedupe", "link_only", "dedupe_only"])
@pytest.mark.parametrize("tight", [False, True])
def test_estimate_equals_the_real_pair_counts(world_records, link_type, tight):
    config, records = world_records
    rules = _tight(config) if tight else config.blocking
    left, right, reports = candidate_pairs(records, rules, link_type)
    plan = blocking_plan.estimate(records, rules, link_type, budget=10**9)
    assert [r.pairs for r in plan.rules] == [r.pairs for r in reports]
    assert [r.new_pairs for r in plan.rules] == [r.new_pairs for r in reports]
    assert [r.skipped_blocks for r in plan.rules] == [r.skipped_blocks for r in reports]
    assert plan.total == len(left)
    if tight:
        assert sum(r.split_blocks for r in plan.rules) > 0
        assert any(r.pairs < r.whole_pairs for r in plan.rules)


@pytest.mark.parametrize("tight", [False, True])
def test_sampled_new_pairs_are_within_ten_percent(world_records, tight):
    config, records = world_records
    rules = _tight(config) if tight else config.blocking
    left, _, reports = candidate_pairs(records, rules, config.link_type)
    plan = blocking_plan.estimate(records, rules, config.link_type, budget=10**9,
                                  exact_pairs=0, seed=3)  # every rule sampled
    assert not any(r.new_exact for r in plan.rules[1:])
    assert abs(plan.total - len(left)) <= 0.1 * len(left)
    for est, real in zip(plan.rules, reports):
        assert abs(est.new_pairs - real.new_pairs) <= max(0.1 * real.new_pairs,
                                                          0.005 * real.pairs), est.name


def test_recall_matches_the_blocking_recall_of_the_candidates(world_records, small_world):
    from linkage.jobs.evaluate import blocking_recall

    config, records = world_records
    truth = pd.read_csv(small_world / "data" / "demo" / "truth.csv", dtype=str)
    rules = _tight(config)
    left, right, _ = candidate_pairs(records, rules, config.link_type)
    plan = blocking_plan.estimate(records, rules, config.link_type, truth, budget=10**9)
    real = blocking_recall(records, left, right, truth, config.link_type)
    assert plan.true_pairs == real["true_pairs"]
    assert plan.rules[-1].cumulative_recall == pytest.approx(real["recall"])
    for r in plan.rules:
        assert r.recall <= r.whole_recall <= 1 and r.recall <= r.cumulative_recall


# --------------------------------------------------------------------------- config


def test_refine_defaults_to_the_keys_the_sources_map(small_world, tmp_path):
    text = (small_world / "configs" / "demo.yaml").read_text(encoding="utf-8")
    config = load_config(small_world / "configs" / "demo.yaml")
    rule = next(r for r in config.blocking if r.name == "birthdate_surname")
    assert rule.refine and all(k not in rule.keys for k in rule.refine)
    bad = small_world / "configs" / f"demo-refine-{tmp_path.name}.yaml"
    bad.write_text(text.replace("    keys: [id_prefix17]\n",
                                "    keys: [id_prefix17]\n    refine: [birth_month, shoe]\n"),
                   encoding="utf-8")
    with pytest.raises(ConfigError, match=r"line \d+: config key 'blocking\[0\]\.refine': got "
                                          r"\['shoe'\]; expected keys the mapped fields"):
        load_config(bad)


# --------------------------------------------------------------------------- refusal and CLI


def _exploding(small_world, make_demo_job, tmp_path):
    """The demo job plus a rule on birth year alone, over a budget of 20,000 pairs."""
    path = make_demo_job(tmp_path)
    text = path.read_text(encoding="utf-8").replace(
        "\ncomparisons:", "  - name: birth_year_only\n    keys: [birth_year]\n"
        "    max_block_size: 100000\n    refine: []\n\ncomparisons:")
    path.write_text(text + "\nmax_candidate_pairs: 20000\n", encoding="utf-8")
    return path


def test_a_run_whose_rule_would_explode_is_refused_before_comparing(small_world,
                                                                    make_demo_job, tmp_path,
                                                                    monkeypatch):
    from linkage.engines import local
    from linkage.jobs.run import run

    def never(*args, **kwargs):
        raise AssertionError("compared pairs of a job over budget")

    monkeypatch.setattr(local, "comparison_vectors", never)
    config = load_config(_exploding(small_world, make_demo_job, tmp_path))
    with pytest.raises(ConfigError) as err:
        run(config)
    text = str(err.value)
    assert "rule 'birth_year_only'" in text and "budget of 20,000 (max_candidate_pairs)" in text
    assert "refine it: `refine: [" in text and "`max_block_size: " in text
    # The refinement named does bring the job within budget.
    size = int(text.split("`max_block_size: ")[1].split("`")[0])
    keys = text.split("`refine: [")[1].split("]`")[0].split(", ")
    path = config.path
    fixed = path.read_text(encoding="utf-8").replace(
        "    max_block_size: 100000\n    refine: []",
        f"    max_block_size: {size}\n    refine: [{', '.join(keys)}]")
    path.write_text(fixed, encoding="utf-8")
    config = load_config(path)
    from linkage.core.standardise import standardise_records
    from linkage.jobs.inputs import ingest_job

    fields = {f for s in config.sources for f in s.fields}
    records = standardise_records(ingest_job(config, store=_NoStore()).records,
                                  fields).reset_index(drop=True)
    blocking_plan.check_budget(records, config)  # no ConfigError


def test_linkage_blocking_prints_the_estimate(small_world, make_demo_job, tmp_path, capsys):
    from linkage.cli import main

    path = make_demo_job(tmp_path)
    truth = small_world / "data" / "demo" / "truth.csv"
    assert main(["blocking", str(path), "--truth", str(truth)]) == 0
    out = capsys.readouterr().out
    config = load_config(path)
    lines = out.splitlines()
    assert lines[0].startswith(f"blocking estimate for job {config.job}: ")
    header = next(line for line in lines if line.startswith("rule "))
    for column in ("pairs", "new", "cumulative", "recall", "cum.recall"):
        assert column in header.split()
    for rule in config.blocking:
        assert any(line.startswith(rule.name + " ") for line in lines)
        assert f"  {rule.name}" in out.split("largest blocks")[1]
    assert "household: its pairs depend on the first pass" in out
    assert "within the budget" in out


def test_linkage_blocking_over_budget_says_so(small_world, make_demo_job, tmp_path, capsys):
    from linkage.cli import main

    assert main(["blocking", str(_exploding(small_world, make_demo_job, tmp_path))]) == 0
    out = capsys.readouterr().out
    assert "OVER the budget of 20,000" in out
    assert next(line for line in out.splitlines() if line.startswith("birth_year_only "))


needs_java = pytest.mark.skipif(not (os.environ.get("JAVA_HOME") or shutil.which("java")),
                                reason="Spark needs Java")


@pytest.mark.slow
@needs_java
def test_spark_pairs_equal_local_pairs_with_split_blocks(world_records):
    from linkage.engines.spark import pairs
    from linkage.engines.spark.session import spark_session

    config, records = world_records
    rules = _tight(config)
    spark = spark_session({"master": "local[1]"}, False)
    recs = pairs.records_frame(spark, pairs.record_table(records, rules, []), with_columns=False)
    forced = pd.DataFrame({"pos_l": [0], "pos_r": [len(records) - 1]})
    cands, reports, count = pairs.candidate_pairs(spark, recs, rules, config.link_type, forced)
    got = cands.select("pos_l", "pos_r").toPandas().sort_values(["pos_l", "pos_r"])
    cands.unpersist()
    left, right, expected = candidate_pairs(
        records, rules, config.link_type, blocking.pack(np.array([0]),
                                                        np.array([len(records) - 1]),
                                                        len(records)))
    assert reports == expected and any(r.skipped_blocks for r in reports)
    np.testing.assert_array_equal(got["pos_l"].to_numpy(), left)
    np.testing.assert_array_equal(got["pos_r"].to_numpy(), right)
