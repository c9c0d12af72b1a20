"""The local engine streams weak candidates away (issue 17): a run that keeps only the pairs a
later step can need must give exactly what a run keeping every candidate gives."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from linkage.core import household
from linkage.core.config import load_config
from linkage.jobs.run import run
from linkage.outputs.fingerprint import VOLATILE_SUMMARY_KEYS


@pytest.fixture(scope="module")
def two_runs(make_demo_job, tmp_path_factory):
    """The demo job run as shipped (streaming) and with every candidate kept."""
    streamed_dir = tmp_path_factory.mktemp("streamed")
    seen = {"candidates": 0, "kept": 0}
    keep = household.worth_keeping

    def counted(*args):
        mask = keep(*args)
        seen["candidates"] += len(mask)
        seen["kept"] += int(mask.sum())
        return mask

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(household, "worth_keeping", counted)
        result = run(load_config(make_demo_job(streamed_dir)))
    result.streamed = seen
    everything_dir = tmp_path_factory.mktemp("everything")
    with pytest.MonkeyPatch.context() as mp:
        keep = household.worth_keeping
        mp.setattr(household, "worth_keeping",
                   lambda weight, *args: keep(np.full(len(weight), np.inf), *args))
        kept_all = run(load_config(make_demo_job(everything_dir)))
    return result, kept_all


def _stable(summary: dict) -> dict:
    return json.loads(json.dumps({k: v for k, v in summary.items()
                                  if k not in VOLATILE_SUMMARY_KEYS}, default=str))


def test_streaming_drops_weak_candidates(two_runs):
    streamed, everything = two_runs
    candidates = everything.summary["blocking"]["candidate_pairs"]
    assert candidates == streamed.summary["blocking"]["candidate_pairs"]
    # Every candidate is weighed once; those dropped are non-matches no later step needs.
    assert streamed.streamed["candidates"] == candidates - _household_new_pairs(streamed)
    dropped = streamed.streamed["candidates"] - streamed.streamed["kept"]
    assert 0 < dropped <= streamed.summary["bands"]["non_match"]


def _household_new_pairs(result) -> int:
    return sum(r["new_pairs"] for r in result.summary["blocking"]["rules"]
               if r["name"] == "household")


def test_streaming_changes_no_entity_and_no_count(two_runs):
    streamed, everything = two_runs
    pd.testing.assert_frame_equal(streamed.clusters, everything.clusters)
    pd.testing.assert_frame_equal(streamed.golden, everything.golden)
    pd.testing.assert_frame_equal(streamed.review, everything.review)
    assert _stable(streamed.summary) == _stable(everything.summary)


def test_counts_still_cover_every_candidate(two_runs):
    streamed, _ = two_runs
    s = streamed.summary
    candidates = s["blocking"]["candidate_pairs"]
    assert sum(s["bands"].values()) == candidates
    for comparison, levels in s["comparison_levels"].items():
        assert sum(levels.values()) == candidates, comparison
    # The weight histogram still sees every candidate, kept or not.
    assert len(streamed.weights) == candidates
    assert sorted(np.round(streamed.weights, 3)) == sorted(np.round(two_runs[1].weights, 3))
