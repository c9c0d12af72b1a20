"""An entity id's life over runs: created, merged into another by a reviewer's 同一人, split by a
reviewer's 不是同一人, each change naming the decision behind it; a merged-away id points to
its successor."""
from __future__ import annotations

import pandas as pd
import pytest

from linkage.cli import main
from linkage.core.config import load_config
from linkage.jobs.history import UnknownEntity, entity_history
from linkage.jobs.run import run
from linkage.store import Store


@pytest.fixture(scope="module")
def three_runs(small_world, tmp_path_factory):
    """Run, a reviewer's match joining two entities, run, a non-match inside one, run."""
    from demo_config import write_demo_config

    tmp = tmp_path_factory.mktemp("history")
    config = load_config(write_demo_config(small_world / "configs" / f"demo-{tmp.name}.yaml",
                                           tmp / "out", f"sqlite:///{tmp / 'store.sqlite'}"))
    store = Store(config.store)
    first = run(config)
    entity = first.clusters.set_index(["source", "record_id"])["entity_id"]
    review = first.review[first.review["reason"] == "score in the review band"]
    roles = {s.name: s.role for s in config.sources}
    size = first.clusters["entity_id"].value_counts()
    # An insurance record alone in its entity, in the review band with another entity's record.

    def alone(source, record):
        return roles[source] == "insurance" and size[entity[(source, record)]] == 1

    pick = next(p for p in review.itertuples()
                if entity[(p.source_l, p.record_l)] != entity[(p.source_r, p.record_r)]
                and (alone(p.source_l, p.record_l) or alone(p.source_r, p.record_r)))
    a, b = (pick.source_l, pick.record_l), (pick.source_r, pick.record_r)
    if not (roles[a[0]] == "insurance" and size[entity[a]] == 1):
        a, b = b, a
    gone, kept = entity[a], entity[b]
    store.add_decision(a, b, "match", "县合管办-李")
    second = run(config)
    now = second.clusters.set_index(["source", "record_id"])["entity_id"]
    # A registry person and one of their NCMS records, ruled two people.
    members = second.clusters.assign(role=second.clusters["source"].map(roles))
    both = members.groupby("entity_id")["role"].agg(set)
    whole = next(e for e, r in both.items() if r == {"authority", "insurance"} and e != now[a])
    rows = members[members["entity_id"] == whole]
    police = rows[rows["role"] == "authority"].iloc[0]
    ncms = rows[rows["role"] == "insurance"].iloc[0]
    store.add_decision((police.source, police.record_id), (ncms.source, ncms.record_id),
                       "non_match", "县合管办-王")
    third = run(config)
    return {"config": config, "store": store, "runs": [first, second, third], "gone": gone,
            "kept": kept, "split": whole, "third": third}


def test_a_reviewers_match_merges_one_id_into_another(three_runs):
    config, store = three_runs["config"], three_runs["store"]
    first, second, _ = three_runs["runs"]
    history = entity_history(store, config.job, three_runs["gone"])
    kinds = [e.kind for e in history.events]
    assert kinds == ["created", "merged_into"]
    merged = history.events[1]
    assert merged.run_id == second.run_id and merged.other == [three_runs["kept"]]
    assert history.successor == three_runs["kept"]
    assert any("match on" in d and "县合管办-李" in d for d in merged.decisions)
    taker = entity_history(store, config.job, three_runs["kept"])
    absorbed = [e for e in taker.events if e.kind == "absorbed"]
    assert absorbed and absorbed[0].other == [three_runs["gone"]]
    assert history.events[0].run_id == first.run_id


def test_a_reviewers_non_match_splits_an_entity(three_runs):
    config, store, third = three_runs["config"], three_runs["store"], three_runs["third"]
    history = entity_history(store, config.job, three_runs["split"])
    split = [e for e in history.events if e.kind == "split"]
    assert len(split) == 1 and split[0].run_id == third.run_id
    new_id = split[0].other[0]
    assert new_id in set(third.clusters["entity_id"]) and new_id != three_runs["split"]
    assert any("non_match" in d and "县合管办-王" in d for d in split[0].decisions)
    assert history.successor is None  # split, not merged: the id lives on


def test_linkage_history_prints_the_life_and_the_successor(three_runs, capsys):
    config = three_runs["config"]
    assert main(["history", str(config.path), three_runs["gone"]]) == 0
    out = capsys.readouterr().out
    assert f"merged into {three_runs['kept']}" in out
    assert f"now: {three_runs['kept']}" in out
    assert "reviewer decision: match on" in out


def test_an_unknown_id_is_a_clear_error(three_runs, capsys):
    config, store = three_runs["config"], three_runs["store"]
    with pytest.raises(UnknownEntity):
        entity_history(store, config.job, "E000000000000")
    assert main(["history", str(config.path), "E000000000000"]) == 1
    assert "no complete run" in capsys.readouterr().err


def test_an_unchanged_entity_has_only_its_creation(three_runs):
    config, store = three_runs["config"], three_runs["store"]
    sets = [r.clusters.assign(key=r.clusters["source"] + ":" + r.clusters["record_id"])
            .groupby("entity_id")["key"].agg(frozenset) for r in three_runs["runs"]]
    same = [e for e in sets[0].index
            if all(e in s.index and s[e] == sets[0][e] for s in sets[1:])]
    assert same
    for e in same[:5]:
        assert [ev.kind for ev in entity_history(store, config.job, e).events] == ["created"]


def test_the_office_file_points_a_merged_away_id_to_its_successor(three_runs):
    """entity_changes.csv/.xlsx: the card office finds the id a card was issued to."""
    from openpyxl import load_workbook

    first, second, third = three_runs["runs"]
    assert first.successors.empty  # a job's first run: nothing moved
    after_merge = second.successors.set_index("entity_id")
    gone = after_merge.loc[three_runs["gone"]]
    assert (gone["change"], gone["successor_ids"]) == ("merged_into", three_runs["kept"])
    assert gone["remarks"].startswith(f"此编号已并入 {three_runs['kept']}")
    out = three_runs["config"].output
    listed = pd.read_csv(out / "entity_changes.csv", dtype=str, keep_default_na=False)
    row = listed.set_index("entity_id").loc[three_runs["split"]]
    assert row["change"] == "split_off" and row["previous_run"] == second.run_id
    assert row["successor_ids"] in set(third.clusters["entity_id"])
    sheet = load_workbook(out / "entity_changes.xlsx", read_only=True)["实体变更"]
    cells = [c for r in sheet.iter_rows(values_only=True) for c in r]
    assert three_runs["split"] in cells
    assert third.summary["outputs"]["entity_changes"]["rows"] == len(listed)
