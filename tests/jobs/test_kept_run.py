"""The previous run's membership and golden rows kept beside the state: read instead of the
store, never trusted beyond the run they are named for, and never changing a result."""
from __future__ import annotations

import logging
import shutil
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkage.core.config import load_config
from linkage.jobs import kept_run
from linkage.jobs.run import run
from linkage.jobs.state import state_folder
from linkage.store import Store


@pytest.fixture(scope="module")
def two_runs(make_demo_job, tmp_path_factory):
    """The demo job over the small world run twice (nothing changed in between), with a copy
    of everything as the first run left it."""
    folder = tmp_path_factory.mktemp("kept-run")
    config = load_config(make_demo_job(folder))
    first = run(config)
    snapshot = folder.with_name(folder.name + "-after-first")
    shutil.copytree(folder, snapshot)
    second = run(config)
    return {"config": config, "folder": folder, "snapshot": snapshot, "first": first,
            "second": second}


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["source", "record_id"]).reset_index(drop=True)


def test_each_run_keeps_its_membership_and_golden_rows(two_runs):
    config, second = two_runs["config"], two_runs["second"]
    folder = state_folder(config)
    kept = sorted(p.name for p in (folder / kept_run.FOLDER).glob("*.parquet"))
    runs = sorted([two_runs["first"].run_id, second.run_id])
    assert kept == sorted(f"{r}-{kind}.parquet" for r in runs
                          for kind in ("golden", "members", "stats"))
    store = Store(config.store)
    try:
        stored = store.members(second.run_id)
        golden_json = sorted(store.golden_records(second.run_id))
    finally:
        store.engine.dispose()
    members = kept_run.members(folder, second.run_id, store=None)
    pd.testing.assert_frame_equal(_sorted(members), _sorted(stored))
    rows, digests = kept_run.golden_rows(folder, second.run_id)
    pd.testing.assert_frame_equal(rows, second.golden)
    assert len(digests) == len(rows) == len(golden_json)
    # the unchanged second run wrote nothing: its diff against the kept rows found nothing
    assert second.summary["store_rows"]["golden"]["written"] == 0
    assert second.summary["store_rows"]["entity_members"]["written"] == 0


def test_without_the_kept_rows_a_run_reads_the_store_and_gives_the_same(two_runs, tmp_path):
    """The second run again from the first run's state with its kept rows deleted: the same
    entities, golden rows, changes and store rows."""
    folder = tmp_path / "job"
    shutil.copytree(two_runs["snapshot"], folder)
    config = replace(two_runs["config"], output=folder / "out",  # the copy's folder
                     store=f"sqlite:///{folder / 'store.sqlite'}")
    shutil.rmtree(state_folder(config) / kept_run.FOLDER)
    again = run(config)
    second = two_runs["second"]
    pd.testing.assert_frame_equal(again.golden, second.golden)
    pd.testing.assert_frame_equal(_sorted(again.clusters), _sorted(second.clusters))
    for key in ("store_rows", "changes"):
        got, want = dict(again.summary[key]), dict(second.summary[key])
        got.pop("previous_run", None)
        want.pop("previous_run", None)
        assert got == want


def test_a_damaged_kept_file_is_not_used(two_runs, tmp_path, caplog):
    config, run_id = two_runs["config"], two_runs["second"].run_id
    folder = tmp_path / "state"
    shutil.copytree(state_folder(config), folder)
    members = folder / kept_run.FOLDER / f"{run_id}-members.parquet"
    members.write_bytes(members.read_bytes()[: members.stat().st_size // 2])

    class Store_:  # what the caller falls back to
        def members(self, wanted):
            assert wanted == run_id
            return pd.DataFrame({"source": ["police"], "record_id": ["GA1"],
                                 "entity_id": ["E1"]})

    with caplog.at_level(logging.WARNING, logger="linkage"):
        got = kept_run.members(folder, run_id, Store_())
    assert got["record_id"].tolist() == ["GA1"] and "cannot be read" in caplog.text
    # a file named for another run is never read as this one's
    other = folder / kept_run.FOLDER / f"{run_id}-golden.parquet"
    shutil.copy(other, other.with_name("20990101T000000-00000000-golden.parquet"))
    assert kept_run.golden_rows(folder, "20990101T000000-00000000") is None
    assert kept_run.golden_digests(folder, "20990101T000000-00000000") is None


def test_golden_rows_are_reused_only_for_the_same_inputs_and_settings(two_runs):
    config, second = two_runs["config"], two_runs["second"]
    folder = state_folder(config)
    settings = kept_run.job_settings(config)
    inputs = [[s["source"], "x"] for s in second.summary["kept_state"]["files"]]
    assert kept_run.golden_rows(folder, second.run_id, inputs, settings) is None
    other = kept_run.settings_key(tuple(reversed(config.precedence)),
                                  {s.name: s.role for s in config.sources}, {})
    assert other != settings
    digests = kept_run.golden_digests(folder, second.run_id)
    assert list(digests.columns) == ["entity_id", "digest", "status"]
    assert digests["digest"].dtype == np.int64


def test_updated_takes_fresh_rows_for_touched_entities_in_entity_order():
    previous = pd.DataFrame({"entity_id": ["E1", "E3", "E5"], "name": ["张伟", "王芳", "李娜"],
                             "n_records": [2, 1, 3]})
    fresh = pd.DataFrame({"entity_id": ["E4", "E3"], "name": ["赵敏", "王芳"],
                          "n_records": [1, 2]})
    rows, known = kept_run.updated(previous, np.array([11, 33, 55]), fresh,
                                   np.array(["E1", "E3", "E3", "E4"], dtype=object))
    assert rows["entity_id"].tolist() == ["E1", "E3", "E4"]  # E5 has no record any more
    assert rows["n_records"].tolist() == [2, 2, 1]
    assert known.to_dict() == {"E1": 11}


@given(st.sets(st.integers(0, 60), max_size=30), st.sets(st.integers(0, 60), max_size=10),
       st.sets(st.integers(0, 60), max_size=30))
@settings(max_examples=200, deadline=None)
def test_updated_rows_are_those_survivorship_over_all_would_order(previous_ids, fresh_ids, live):
    """Any previous rows, fresh rows and live entities: the fresh rows replace or join the
    previous ones, the dead go, and the order is the sorted order of the ids."""
    name = lambda i: f"E{i:03d}" if i % 3 else f"E{i}"  # noqa: E731 - ids of unequal length
    previous = pd.DataFrame({"entity_id": pd.Series(sorted(map(name, previous_ids)),
                                                    dtype=object), "v": "old"})
    live_ids = {name(i) for i in live} | {name(i) for i in fresh_ids}
    fresh = pd.DataFrame({"entity_id": pd.Series([name(i) for i in fresh_ids], dtype=object),
                          "v": "new"})
    rows, known = kept_run.updated(previous, np.arange(len(previous)), fresh,
                                   np.array(sorted(live_ids), dtype=object))
    want = pd.concat([previous[previous["entity_id"].isin(live_ids)
                               & ~previous["entity_id"].isin(fresh["entity_id"])], fresh])
    want = want.sort_values("entity_id", kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(rows, want)
    assert set(known.index) == set(want.loc[want["v"] == "old", "entity_id"])
