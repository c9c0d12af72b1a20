"""End to end: the demo job on a small synthetic world, and its contracts."""
import json

import numpy as np
import pandas as pd
import pytest

from linkage.cli import main
from linkage.core.config import load_config
from linkage.jobs.run import run
from linkage.store import Store


@pytest.fixture(scope="module")
def first_run(small_world, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    config = load_config(small_world / "configs" / "demo.yaml", {
        "output": str(tmp / "out"), "store": f"sqlite:///{tmp / 'store.sqlite'}"})
    return config, run(config, truth_path=small_world / "data" / "demo" / "truth.csv")


def test_every_record_is_in_one_entity_or_rejected(first_run, small_world):
    config, result = first_run
    out = result.out_dir
    clusters = pd.read_csv(out / "clusters.csv", dtype=str)
    rejects = pd.read_csv(out / "rejects.csv", dtype=str)
    truth = pd.read_csv(small_world / "data" / "demo" / "truth.csv", dtype=str)
    assert list(clusters.columns) == ["source", "record_id", "entity_id"]
    assert not clusters.duplicated(["source", "record_id"]).any()
    assert len(clusters) + len(rejects) == len(truth)
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    records = summary["records"]
    assert records["read"] == records["linked"] + records["rejected"]
    assert summary["records"]["per_source"]["ncms"]["encoding"] == "gb18030"
    for name in ("golden.csv", "review_pairs.csv", "model.json"):
        assert (out / name).is_file()


def test_accuracy_on_the_small_world(first_run):
    _, result = first_run
    accuracy = result.summary["accuracy"]
    assert accuracy["pairwise"]["f1"] > 0.97, accuracy
    assert accuracy["duplicate_enrolment"]["recall"] > 0.9, accuracy
    assert accuracy["duplicate_enrolment"]["precision"] > 0.9, accuracy
    assert result.summary["blocking_recall"]["recall"] > 0.98


def test_golden_records_hold_one_row_per_entity(first_run):
    _, result = first_run
    golden = result.golden
    assert golden["entity_id"].is_unique
    assert set(golden["entity_id"]) == set(result.clusters["entity_id"])
    assert set(golden["status"]) <= {"VERIFIED", "UNVERIFIED", "CONFLICT"}
    verified = golden[golden["status"] == "VERIFIED"]
    assert verified["id_number"].notna().mean() > 0.95
    assert (golden.loc[golden["duplicate_enrolment"], "n_enrolments"] >= 2).all()


def test_no_entity_holds_two_registry_records(first_run):
    _, result = first_run
    police = result.clusters[result.clusters["source"] == "police"]
    assert not police["entity_id"].duplicated().any()


def test_rerun_gives_the_same_entity_ids(first_run):
    config, result = first_run
    again = run(config)
    merged = result.clusters.merge(again.clusters, on=["source", "record_id"])
    assert (merged["entity_id_x"] == merged["entity_id_y"]).all()


def test_reviewer_decisions_stick_across_runs(demo_job, small_world, backend_url):
    config = load_config(demo_job, {"store": backend_url})
    first = run(config)
    clusters = first.clusters
    police = clusters[clusters["source"] == "police"].iloc[0]
    same_entity = clusters["entity_id"] == police["entity_id"]
    partner = clusters[same_entity & (clusters["source"] != "police")]
    other = clusters[(clusters["source"] == "police") & ~same_entity].iloc[0]
    store = Store(config.store)
    if len(partner):
        store.add_decision(("police", police["record_id"]),
                           (partner.iloc[0]["source"], partner.iloc[0]["record_id"]),
                           "non_match", "r1")
    store.add_decision(("police", police["record_id"]), ("police", other["record_id"]),
                       "match", "r1")
    second = run(config).clusters.set_index(["source", "record_id"])["entity_id"]
    assert second[("police", police["record_id"])] == second[("police", other["record_id"])]
    if len(partner):
        key = (partner.iloc[0]["source"], partner.iloc[0]["record_id"])
        assert second[key] != second[("police", police["record_id"])]


def test_saved_model_scores_again(first_run, tmp_path):
    config, result = first_run
    again = run(config, out_dir=tmp_path, model_path=result.out_dir / "model.json")
    assert again.model.to_dict()["comparisons"] == result.model.to_dict()["comparisons"]


def test_cli_run_and_explain(demo_job, capsys):
    assert main(["run", str(demo_job), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "records read" in out and "entities" in out
    config = load_config(demo_job)
    clusters = pd.read_csv(config.output / "clusters.csv", dtype=str)
    entity = clusters.groupby("entity_id").filter(lambda g: len(g) >= 2).iloc[:2]
    left, right = [f"{s}:{r}" for s, r in zip(entity["source"], entity["record_id"])]
    assert main(["explain", str(demo_job), left, right]) == 0
    out = capsys.readouterr().out
    assert "match weight" in out and "name" in out


def test_cli_reports_config_errors_plainly(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("job: x\nsources: []\n", encoding="utf-8")
    assert main(["run", str(bad)]) == 2
    assert "sources" in capsys.readouterr().err


def test_summary_prints_without_blocking_recall(first_run, capsys):
    """The Spark engine keeps only strong pairs, so its summary has accuracy but no blocking
    recall."""
    from linkage.cli import _print_summary

    _, result = first_run
    summary = {k: v for k, v in result.summary.items() if k != "blocking_recall"}
    _print_summary(summary, result.out_dir)
    out = capsys.readouterr().out
    assert "pairwise P" in out and "blocking recall" not in out


def test_explanations_are_the_json_of_each_pairs_weights(first_run):
    from linkage.jobs.run import explanations

    fs = first_run[1].model
    rng = np.random.default_rng(3)
    n = 500
    gamma = np.stack([rng.integers(-1, len(c.labels), n) for c in fs.comparisons], axis=1)
    parts = rng.normal(0, 4, (n, len(fs.comparisons))).astype(np.float32)
    parts[:50] = np.round(parts[:50], 3)  # values on a rounding edge as well
    household = rng.choice([0.0, 0.5, -1.25, 0.285], n)
    text = explanations(gamma.astype(np.int8), parts, household, fs)
    for i in range(n):
        expected = {c.name: {"level": c.labels[gamma[i, k]] if gamma[i, k] >= 0 else "missing",
                             "weight": round(float(parts[i, k]), 2)}
                    for k, c in enumerate(fs.comparisons)}
        expected["household"] = round(float(household[i]), 2)
        expected["prior"] = round(fs.prior_weight, 2)
        assert text[i] == json.dumps(expected, ensure_ascii=False)
