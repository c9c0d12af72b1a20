"""The Python API (linkage/api.py) on the small world: a run's frames are the files it wrote,
`explain` gives what `linkage explain` prints, `add` and `decide` work through a Job, and
`synth_world` writes the world `linkage synth` writes."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from demo_config import write_demo_config

from linkage import Job, RunReplaced, record_key, synth_world
from linkage.cli import main
from linkage.core.config import ConfigError
from linkage.store import Store


@pytest.fixture(scope="module")
def ran(make_demo_job, small_world, tmp_path_factory):
    """The demo job over the small world, run once through the API with its truth file."""
    path = make_demo_job(tmp_path_factory.mktemp("api"))
    job = Job.from_yaml(path)
    truth = small_world / "data" / "demo" / "truth.csv"
    return {"path": path, "job": job, "result": job.run(truth=truth), "truth": truth}


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _pair(row) -> tuple[str, str]:
    return f"{row.source_l}:{row.record_l}", f"{row.source_r}:{row.record_r}"


def test_a_runs_frames_summary_and_model_are_its_files(ran):
    result = ran["result"]
    out = result.out_dir
    assert out == ran["job"].config.output
    assert result.clusters.to_csv(index=False) == _text(out / "clusters.csv")
    assert result.golden.to_csv(index=False) == _text(out / "golden.csv")
    assert result.review.to_csv(index=False) == _text(out / "review_pairs.csv")
    rejects = pd.read_csv(out / "rejects.csv", dtype=str, encoding="utf-8-sig")
    assert list(result.rejects.columns) == list(rejects.columns)
    assert len(result.rejects) == len(rejects)
    summary = json.loads(json.dumps(result.summary, default=str))
    assert summary["timings"]["store"] >= 0  # the file is written again once stored
    assert summary == json.loads(_text(out / "summary.json"))
    assert result.model.to_dict() == json.loads(_text(out / "model.json"))
    assert result.run_id == result.summary["run_id"]
    assert result.report_path == out / "report.html" and result.report_path.is_file()
    store = Store(ran["job"].config.store)
    try:
        assert store.last_complete_run(ran["job"].name) == result.run_id
    finally:
        store.engine.dispose()
    assert result.run_id in repr(result) and "demo" in repr(ran["job"])


def test_the_office_lists_are_read_from_the_folder_as_text(ran):
    result = ran["result"]
    roster = pd.read_csv(result.out_dir / "roster.csv", dtype=str, encoding="utf-8-sig")
    pd.testing.assert_frame_equal(result.roster, roster)
    # 制卡名册 and 暂缓制卡 together: every VERIFIED person and every CONFLICT, once.
    deferred = result.table("roster_deferred")
    by_status = result.summary["entities"]["by_status"]
    assert len(result.roster) + len(deferred) == (by_status["VERIFIED"]
                                                  + by_status.get("CONFLICT", 0))
    assert not set(result.roster["entity_id"]) & set(deferred["entity_id"])
    assert result.roster["resident_id"].dropna().str.fullmatch(r"\d{17}[\dX]").all()
    duplicates = result.duplicate_enrolments
    assert duplicates["entity_id"].nunique() == result.summary["entities"]["duplicate_enrolment"]
    assert len(result.table("village_quality")) == result.outputs["village_quality"]["rows"]
    with pytest.raises(KeyError, match="roster, not_verified"):
        result.table("report")


def test_explain_gives_what_the_cli_prints(ran, capsys):
    result, job = ran["result"], ran["job"]
    left, right = _pair(result.review.iloc[0])
    assert main(["explain", str(ran["path"]), left, right]) == 0
    printed = capsys.readouterr().out
    explanation = result.explain(left, right)
    assert explanation.stored and f"{explanation}\n" == printed
    assert str(result.explain(record_key(left), tuple(right.split(":", 1)))) == str(explanation)
    assert str(job.explain(left, right)) == str(explanation)


def test_records_are_named_by_tuple_or_source_colon_id():
    assert record_key("ncms:NH1:2") == ("ncms", "NH1:2")  # an id may hold a colon
    assert record_key(("police", 17)) == ("police", "17")
    with pytest.raises(ValueError, match="should be SOURCE:RECORD_ID"):
        record_key("NH1")
    with pytest.raises(TypeError):
        record_key(("police", "1", "2"))


def test_evaluate_scores_as_the_run_and_the_cli_do(ran, capsys):
    accuracy = ran["job"].evaluate(ran["truth"])
    assert accuracy == ran["result"].summary["accuracy"]
    assert main(["evaluate", "--config", str(ran["path"]), "--truth", str(ran["truth"])]) == 0
    assert json.loads(capsys.readouterr().out) == accuracy


def test_export_writes_the_latest_runs_files_again(ran, tmp_path):
    exported = ran["job"].export(tmp_path / "export")
    assert exported.run_id == ran["result"].run_id and exported.out_dir == tmp_path / "export"
    assert set(exported.outputs) == set(ran["result"].outputs)
    assert (tmp_path / "export" / "roster.csv").read_bytes() == (
        ran["result"].out_dir / "roster.csv").read_bytes()


def test_from_yaml_takes_overrides_from_the_current_folder(ran, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    job = Job.from_yaml(ran["path"], output="o", store="sqlite:///s.sqlite", engine="spark",
                        overrides={"thresholds": {"match": 0.99, "review": 0.5}})
    assert job.config.output == tmp_path / "o"
    assert job.config.store == f"sqlite:///{tmp_path / 's.sqlite'}"
    assert job.config.engine == "spark" and job.config.match_threshold == 0.99
    assert Job.from_config(job.config).config is job.config
    with pytest.raises(ConfigError, match="thresholdz"):
        Job.from_yaml(ran["path"], overrides={"thresholdz": {}})


def test_a_decision_applies_on_the_next_run(make_demo_job, tmp_path):
    job = Job.from_yaml(make_demo_job(tmp_path))
    first = job.run()
    entity = dict(zip(zip(first.clusters["source"], first.clusters["record_id"]),
                      first.clusters["entity_id"]))
    apart = [p for p in map(_pair, first.review.itertuples())
             if entity[record_key(p[0])] != entity[record_key(p[1])]]
    assert apart, "the small world's review queue holds a pair clustering kept apart"
    to_merge = apart[0]
    two = first.golden[first.golden["n_records"] == 2]
    to_split = tuple(two["lineage"].iloc[0].split(";"))
    assert entity[record_key(to_split[0])] == entity[record_key(to_split[1])]

    assert job.decide(*to_merge, "match", "wang", note="household book checked") > 0
    job.decide(record_key(to_split[0]), record_key(to_split[1]), "non_match", "li")
    second = job.run()
    after = dict(zip(zip(second.clusters["source"], second.clusters["record_id"]),
                     second.clusters["entity_id"]))
    assert after[record_key(to_merge[0])] == after[record_key(to_merge[1])]
    assert after[record_key(to_split[0])] != after[record_key(to_split[1])]
    assert second.explain(*to_merge).band == "match"

    # The first result keeps its own frames, but what only the latest run holds is refused.
    assert first.clusters["entity_id"].map(lambda e: isinstance(e, str)).all()
    with pytest.raises(RunReplaced, match=second.run_id):
        first.explain(*to_merge)
    with pytest.raises(RunReplaced, match=f"files of run {second.run_id}"):
        first.roster


def test_add_links_a_file_of_new_records(small_world, tmp_path):
    world = small_world / "data" / "demo"
    base = tmp_path / "base"
    base.mkdir()
    for name in ("police.csv", "ncms.csv"):
        shutil.copy(world / name, base / name)
    with open(world / "urban.csv", encoding="utf-8-sig", newline="") as fh:
        urban = list(csv.reader(fh))
    held = urban[-20:]
    for path, rows in ((base / "urban.csv", urban[:-20]), (tmp_path / "new.csv", urban[:1] + held)):
        with open(path, "w", encoding="utf-8-sig", newline="") as fh:
            csv.writer(fh).writerows(rows)
    job = Job.from_yaml(write_demo_config(tmp_path / "job.yaml", tmp_path / "out",
                                          f"sqlite:///{tmp_path / 'store.sqlite'}", data=base,
                                          fast_training=True))
    first = job.run()
    added = job.add(tmp_path / "new.csv")
    assert added.summary["mode"] == "add" and added.summary["added"]["source"] == "urban"
    assert len(added.clusters) == len(first.clusters) + len(held)
    new = added.clusters[added.clusters["source"] == "urban"]
    assert {row[0] for row in held} <= set(new["record_id"])
    assert added.run_id != first.run_id and added.run_id == added.summary["run_id"]


def test_synth_world_writes_the_world_the_cli_writes(tmp_path):
    paths = synth_world(200, 3, tmp_path / "api")
    assert {"police", "ncms", "urban", "truth"} <= set(paths)
    assert main(["synth", "--persons", "200", "--seed", "3", "--out", str(tmp_path / "cli")]) == 0
    for name in ("police", "ncms", "urban", "truth"):
        assert paths[name].read_bytes() == (tmp_path / "cli" / f"{name}.csv").read_bytes()
