"""`linkage explain` gives exactly the weight the run gave a pair: the stored one for a pair the
run stored, and otherwise the run's own scoring (its model, term frequencies over its records,
household context), which for a stored pair lands on the stored weight."""
from __future__ import annotations

import json
import re

import pandas as pd
import pytest
import sqlalchemy as sa

from linkage.cli import main
from linkage.core.config import load_config
from linkage.jobs.run import run
from linkage.online.explain import explain_pairs
from linkage.store import Store, scored_pairs


@pytest.fixture(scope="module")
def demo_run(make_demo_job, tmp_path_factory):
    """The demo job run once, and the pairs it stored (with their parts)."""
    path = make_demo_job(tmp_path_factory.mktemp("explain"))
    config = load_config(path)
    result = run(config)
    engine = Store(config.store).engine
    try:
        with engine.connect() as conn:
            pairs = pd.read_sql(sa.select(scored_pairs).where(
                scored_pairs.c.run_id == result.run_id), conn)
    finally:
        engine.dispose()
    parts = pairs["explanation"].map(json.loads)
    pairs["household"] = parts.map(lambda p: p["household"])
    return {"path": path, "config": config, "result": result, "pairs": pairs, "parts": parts}


def _key(source: str, record: str) -> str:
    return f"{source}:{record}"


def test_explain_prints_the_stored_weight_of_a_stored_pair(demo_run, capsys):
    pairs = demo_run["pairs"]
    with_household = pairs[(pairs["household"] != 0) & (pairs["band"] == "review")]
    pair = (with_household if len(with_household) else pairs[pairs["household"] != 0]).iloc[0]
    parts = json.loads(pair["explanation"])
    assert main(["explain", str(demo_run["path"]), _key(pair["source_l"], pair["record_l"]),
                 _key(pair["source_r"], pair["record_r"])]) == 0
    out = capsys.readouterr().out
    assert f"match weight {pair['weight']:+.2f} bits" in out
    assert f"band {pair['band']}" in out
    assert f"the weight run {demo_run['result'].run_id} stored for this pair" in out
    names = [c.name for c in demo_run["result"].model.comparisons]
    printed = {}
    for name in [*names, "household", "prior"]:
        line = re.search(rf"^  {re.escape(name)} .*?([+-]\d+\.\d\d)(?:   |$)", out, re.MULTILINE)
        assert line, (name, out)
        printed[name] = float(line.group(1))
    assert printed == {n: pytest.approx(parts[n]["weight"] if n in names else parts[n], abs=5e-3)
                       for n in printed}
    # The run's total is the prior, the fields' weights (term frequencies included) and the
    # household term; the parts are stored to 0.01 bits.
    total = printed["prior"] + sum(printed[n] for n in names) + printed["household"]
    assert total == pytest.approx(pair["weight"], abs=0.005 * (len(names) + 2))


def test_scoring_a_pair_as_the_run_does_gives_the_stored_weight(demo_run):
    """Without the stored row (scored with the run's own model file), explain recomputes each
    pair with term frequencies and household context and lands on the stored numbers."""
    pairs, parts = demo_run["pairs"], demo_run["parts"]
    sample = pd.concat([pairs[pairs["household"] > 0].head(3),
                        pairs[pairs["household"] < 0].head(3),
                        pairs[pairs["household"] == 0].head(2)])
    assert (sample["household"] != 0).sum() >= 3
    keys = [((p.source_l, p.record_l), (p.source_r, p.record_r)) for p in sample.itertuples()]
    found = explain_pairs(demo_run["config"], keys,
                          model_path=demo_run["result"].out_dir / "model.json")
    for (index, pair), got in zip(sample.iterrows(), found):
        stored = parts[index]
        assert not got.stored and got.candidate
        assert round(got.weight, 3) == pytest.approx(pair["weight"], abs=1e-3)
        assert round(got.household, 2) == stored["household"]
        assert {f.comparison: round(f.weight, 2) for f in got.fields} == \
            {n: v["weight"] for n, v in stored.items() if isinstance(v, dict)}
        assert [f.level for f in got.fields] == \
            [v["level"] for v in stored.values() if isinstance(v, dict)]
        assert got.band == pair["band"]


def test_pair_no_rule_blocks_is_scored_as_a_reviewer_would_bring_it_in(demo_run):
    clusters = demo_run["result"].clusters
    police = clusters[clusters["source"] == "police"]
    urban = clusters[clusters["source"] == "urban"]
    a = police.iloc[0]
    others = urban[urban["entity_id"] != a["entity_id"]].iloc[-5:]
    tried = explain_pairs(demo_run["config"], [((a["source"], a["record_id"]),
                                                (b["source"], b["record_id"]))
                                               for _, b in others.iterrows()])
    got = next(t for t in tried if not t.candidate)  # most pairs of strangers are not blocked
    assert not got.stored
    assert got.band == "non_match"
    text = "\n".join(got.lines())
    assert "no blocking rule pairs these records" in text
    total = got.prior + sum(f.weight for f in got.fields) + got.household
    assert total == pytest.approx(got.weight, abs=1e-6)
