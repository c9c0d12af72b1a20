"""`linkage add` scores its batch's pairs over only the records they can touch.

Each batch is added twice from the same base state: scoped (the default) and over every
record (``add.SCOPED`` off, the reference). Everything the run makes must be identical:
pairs and their weights, entities, golden rows, the rows stored, the review queue.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from test_incremental import _config, split  # noqa: F401 - the split world, a fixture

from linkage.core import blocking
from linkage.core.config import load_config
from linkage.jobs import add as add_job
from linkage.jobs.run import run
from linkage.store import Store, scored_pairs
from linkage.store.queue_rows import pairs_of


@pytest.fixture(scope="module")
def base(split, tmp_path_factory):  # noqa: F811 - the fixture imported above
    """A base run over the split world's base files, and a copy of its folder to restore."""
    root = tmp_path_factory.mktemp("scope")
    config = load_config(_config(root, split["base"], "job"))
    run(config)
    snapshot = root / "snapshot"
    shutil.copytree(root / "job", snapshot)
    return {"root": root, "config": config, "snapshot": snapshot}


def _restore(base) -> None:
    shutil.rmtree(base["root"] / "job")
    shutil.copytree(base["snapshot"], base["root"] / "job")


def _stored(config, run_id: str) -> dict:
    """The run's stored pairs, members and golden records, without the run id."""
    store = Store(config.store)
    try:
        with store.engine.connect() as conn:
            pairs = pd.DataFrame(conn.execute(sa.select(
                *[c for c in scored_pairs.c if c.name != "run_id"])
                .where(pairs_of(run_id))).all())
        members = store.members(run_id)
        golden = sorted(store.golden_records(run_id))
    finally:
        store.engine.dispose()
    pairs = pairs.sort_values(list(pairs.columns[:4])).reset_index(drop=True)
    members = members.sort_values(["source", "record_id"]).reset_index(drop=True)
    return {"pairs": pairs, "members": members, "golden": golden}


def _both(base, batch: Path, source: str):
    """The batch added scoped with the base run's kept counts, then (from the same base, its
    kept counts removed) over every record, counting every record."""
    from linkage.jobs.state import state_folder

    config = base["config"]
    _restore(base)
    scoped = add_job.add(config, batch, source=source)
    scoped_rows = _stored(config, scoped.run_id)
    _restore(base)
    for path in (state_folder(config) / "runs").glob("*-stats.parquet"):
        path.unlink()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(add_job, "SCOPED", False)
        whole = add_job.add(config, batch, source=source)
    assert whole.summary["add_scope"]["counts"] == "counted"
    assert whole.summary["add_scope"]["counts_why"] == (
        "the base run kept no counts for these inputs and settings")
    return scoped, scoped_rows, whole, _stored(config, whole.run_id)


def _assert_identical(scoped, scoped_rows, whole, whole_rows) -> None:
    np.testing.assert_array_equal(scoped.weights, whole.weights)
    pd.testing.assert_frame_equal(scoped.clusters, whole.clusters)
    pd.testing.assert_frame_equal(scoped.golden, whole.golden)
    pd.testing.assert_frame_equal(scoped.review, whole.review)
    pd.testing.assert_frame_equal(scoped_rows["pairs"], whole_rows["pairs"])
    pd.testing.assert_frame_equal(scoped_rows["members"], whole_rows["members"])
    assert scoped_rows["golden"] == whole_rows["golden"]
    for part in ("blocking", "store_rows", "golden_rows", "state", "review_pairs", "bands",
                 "changes", "records"):
        assert scoped.summary.get(part) == whole.summary.get(part), part
    for name in ("clusters.csv", "golden.csv", "review_pairs.csv", "roster.csv"):
        assert (scoped.out_dir / name).is_file()


@pytest.mark.parametrize("batch,source", [("ncms_new", "ncms"), ("urban_new", "urban")])
def test_scoped_add_gives_what_scoring_over_every_record_gives(base, split, batch,  # noqa: F811
                                                               source):
    scoped, scoped_rows, whole, whole_rows = _both(base, split[batch], source)
    scope = scoped.summary["add_scope"]
    assert scope["mode"] == "touched" and scope["counts"] == "kept"
    assert 0 < scope["records_scored"] < scope["records"] == len(scoped.records)
    assert whole.summary["add_scope"]["mode"] == "whole"
    assert whole.summary["add_scope"]["why"] == "scoped scoring is off"
    assert len(scoped_rows["pairs"]) > 0
    _assert_identical(scoped, scoped_rows, whole, whole_rows)

    records = scoped.records
    new = np.arange(len(records)) >= len(records) - scoped.summary["records"]["linked"]
    if batch == "ncms_new":
        # Some new records join a household the base run knows (the held-out single members).
        homes = records["source"].astype(str) + ":" + records["household_id"].astype(str)
        assert homes[new].isin(set(homes[~new])).any()


def test_a_batch_into_one_big_block(base, split, tmp_path):  # noqa: F811
    """Records that all share one block of a rule (one birthdate and surname), making it
    outgrow its budget: split (or skipped) the same way in the scoped and the whole add."""
    import csv

    with open(split["urban_new"], encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], [r for r in rows[1:] if len(r) == len(rows[0]) and r[0]]
    column = {name: k for k, name in enumerate(header)}
    config = base["config"]
    urban = config.source("urban").fields
    birth, name = column[urban["birth_date"]], column[urban["name"]]
    # The commonest birthdate among the urban batch, given to twelve more made-up people.
    common = pd.Series([r[birth] for r in body]).value_counts().index[0]
    out = [header, *body[:20]]
    for k in range(12):
        made = list(body[k])
        made[0] = f"BIG{k}"
        made[birth] = common
        made[name] = "王" + "伟芳丽强敏静磊军洋勇艳杰"[k]
        out.append(made)
    path = tmp_path / "big_block.csv"
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        csv.writer(fh).writerows(out)
    scoped, scoped_rows, whole, whole_rows = _both(base, path, "urban")
    assert scoped.summary["add_scope"]["mode"] == "touched"
    _assert_identical(scoped, scoped_rows, whole, whole_rows)
    records = scoped.records
    big = records["record_id"].astype(str).str.startswith("BIG").to_numpy()
    rule = next(r for r in config.blocking if r.name == "birthdate_surname")
    blocks = blocking.rule_blocks(records, rule)
    assert len(np.unique(blocks.keys[big])) == 1 and (blocks.depth[big] > 0).all()


def test_context_holds_whole_blocks_and_households(base):
    """The records :func:`context` picks: every record sharing a block or a household with
    the focus is among them, and it is far fewer than all."""
    from linkage.core import household
    from linkage.jobs.state import standardised_job

    config = base["config"]
    _restore(base)
    records = standardised_job(config)[0].records
    focus = np.zeros(len(records), dtype=bool)
    focus[[3, len(records) // 2]] = True
    at = add_job.context(records, config, focus)
    picked = np.zeros(len(records), dtype=bool)
    picked[at] = True
    assert (np.diff(at) > 0).all() and picked[focus].all()
    for rule in config.blocking:
        keys = blocking.block_keys(records, rule.keys)
        shared = np.isin(keys, keys[focus & (keys >= 0)])
        assert picked[shared].all(), rule.name
    hh = household.household_codes(records)
    per_household = pd.Series(picked[hh >= 0]).groupby(hh[hh >= 0]).agg(["min", "max"])
    assert (per_household["min"] == per_household["max"]).all()
    assert picked.sum() < len(records) / 5


def _job_records(base):
    """The base state's records, comparisons and model, as score_around reads them."""
    from linkage.core.model import FSModel
    from linkage.jobs.run import plan
    from linkage.jobs.state import standardised_job

    config = base["config"]
    _restore(base)
    store = Store(config.store)
    try:
        fs = FSModel.from_dict(store.run_model(store.last_complete_run(config.job)))
    finally:
        store.engine.dispose()
    return config, plan(config), fs, standardised_job(config)[0].records


def test_score_around_scoped_equals_over_every_record(base):
    """Every pair score_around returns, context pairs and household member pairs included,
    with its levels, weights, household term and note, scoped as over every record."""
    config, comparisons, fs, records = _job_records(base)
    focus = np.zeros(len(records), dtype=bool)
    focus[np.random.default_rng(3).choice(len(records), 40, replace=False)] = True
    scoped, scoped_reports, over = add_job.score_around(records, config, comparisons, fs, focus)
    whole, whole_reports, every = add_job.score_around(records, config, comparisons, fs, focus,
                                                       scope=False)
    assert over < every == len(records)
    assert len(whole.left) > 0 and whole.household.any()
    for name in ("left", "right", "gamma", "parts", "household", "weight", "cannot", "note"):
        np.testing.assert_array_equal(getattr(scoped, name), getattr(whole, name), err_msg=name)
    pd.testing.assert_frame_equal(scoped.households, whole.households)
    assert scoped_reports == whole_reports


def test_a_context_of_most_records_scores_over_every_record(base):
    """Where the focus's blocks and households hold more than half the records, a copy of them
    saves nothing: score_around scores over every record."""
    config, comparisons, fs, records = _job_records(base)
    focus = np.random.default_rng(4).random(len(records)) < 0.6
    _, _, over = add_job.score_around(records, config, comparisons, fs, focus)
    assert over == len(records)


def test_kept_counts_are_the_counts_of_every_record(base, split):  # noqa: F811
    """The counts an add keeps (its base run's plus its batch's) are those of counting every
    record of its state, so the next add builds on them; a batch with a later birth year
    than any counted is counted with every record instead."""
    import pyarrow.parquet as pq

    from linkage.engines.local import FieldStats
    from linkage.jobs import kept_run
    from linkage.jobs.state import state_folder

    config, comparisons = base["config"], _job_records(base)[1]  # restores the base
    first = add_job.add(config, split["ncms_new"], source="ncms")
    assert first.summary["add_scope"]["counts"] == "kept"
    fs = first.model
    tf_columns, tf_column = FieldStats.columns(first.records, comparisons, fs)
    path = state_folder(config) / "runs" / f"{first.run_id}-stats.parquet"
    meta = json.loads(pq.read_schema(path).metadata[kept_run.META_KEY])
    kept = kept_run.field_stats(state_folder(config), first.run_id, meta["inputs"],
                                kept_run.stats_settings(config), config, tf_columns, tf_column,
                                len(first.records))
    counted = FieldStats.learn(first.records, config, comparisons, fs)
    assert kept.names.milk_names == counted.names.milk_names
    assert kept.names.latest_year == counted.names.latest_year
    pd.testing.assert_series_equal(kept.names.cohort.sort_index(),
                                   counted.names.cohort.sort_index())
    for column in tf_columns:
        pd.testing.assert_series_equal(kept.tf_tables[column].sort_index(),
                                       counted.tf_tables[column].sort_index(), check_names=False)
    second = add_job.add(config, split["urban_new"], source="urban")
    assert second.summary["add_scope"]["counts"] == "kept"

    # A record born after every counted one: infants and adults move, so every record counts.
    later = first.records.iloc[-1:].copy()
    later["birth_year"] = counted.counts.latest_year + 1
    assert kept.plus(later, config, comparisons, fs) is None


def _reference_entities(records: pd.DataFrame, members: pd.DataFrame):
    """What `add` looked up before: every key as a MultiIndex."""
    def keys(frame):
        return pd.MultiIndex.from_arrays([frame["source"].astype(str),
                                          frame["record_id"].astype(str)])
    entity_of = pd.Series(members["entity_id"].to_numpy(), index=keys(members))
    return (entity_of.reindex(keys(records)).to_numpy(dtype=object),
            members.loc[~keys(members).isin(keys(records)), "entity_id"].to_numpy(dtype=object))


@pytest.mark.parametrize("order", ["same", "shuffled"])
def test_membership_and_key_lookups_equal_the_multiindex_reference(order):
    rng = np.random.default_rng(3)
    n = 400
    members = pd.DataFrame({"source": rng.choice(["police", "ncms", "urban"], n).astype(object),
                            "record_id": [f"R{i % 150}" for i in range(n)],
                            "entity_id": [f"E{i // 3}" for i in range(n)]})
    members = members.drop_duplicates(["source", "record_id"]).reset_index(drop=True)
    records = members[["source", "record_id"]].copy()
    if order == "shuffled":  # some gone from the inputs, some not linked, another order
        records = pd.concat([records.iloc[5:], pd.DataFrame(
            {"source": ["ncms", "police"], "record_id": ["NEW1", "R1"]})]).sample(
                frac=1, random_state=1).reset_index(drop=True)
        records = records.drop_duplicates(["source", "record_id"]).reset_index(drop=True)
    linked, gone = add_job._membership(records, members)
    want_linked, want_gone = _reference_entities(records, members)
    assert [None if pd.isna(v) else v for v in linked] == [
        None if pd.isna(v) else v for v in want_linked]
    assert sorted(gone) == sorted(want_gone)
    assert (len(gone) == 0) == (order == "same")

    keys = add_job._Keys.of(records)
    asked = records.sample(30, random_state=2)
    asked_source = np.concatenate([asked["source"].to_numpy(dtype=object), ["urban", "ncms"]])
    asked_id = np.concatenate([asked["record_id"].to_numpy(dtype=object), ["R2", "nope"]])
    want = pd.MultiIndex.from_arrays([records["source"], records["record_id"]]).isin(
        pd.MultiIndex.from_arrays([asked_source, asked_id]))
    assert (keys.among(asked_source, asked_id) == want).all()
    # the other way round: a few records looked up among many
    few = add_job._Keys.of(asked)
    assert few.among(records["source"], records["record_id"]).all()
    assert not few.among(records["source"].iloc[:0], records["record_id"].iloc[:0]).any()
    positions = keys.positions((asked_source, asked_id))
    assert sorted(positions.to_numpy()) == list(np.flatnonzero(want))
