"""A few pairs (the online check) and many pairs (a batch run) must get the same levels.

Comparison.compare takes a shortcut below SMALL_BATCH pairs, and the online check hands it
plain numpy columns (matchers.base.Columns) instead of DataFrames; this pins that both are only
shortcuts, on realistic pairs of a synthetic world with every comparison of the demo job.
"""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from linkage.blocking import candidate_pairs
from linkage.compare import build_comparisons
from linkage.config import load_config
from linkage.standardise import standardise_records
from linkage.synth import generate_world
from matchers.base import SMALL_BATCH, Columns

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pairs():
    config = load_config(REPO / "configs" / "demo.yaml")
    world = generate_world(400, seed=5)
    frames = []
    for source in config.sources:
        raw = getattr(world, source.name)
        frame = raw.rename(columns={v: k for k, v in source.fields.items()})
        frame.insert(0, "source", source.name)
        frame.insert(1, "record_id", raw[source.record_id].astype(str))
        frames.append(frame[["source", "record_id", *source.fields]])
    records = pd.concat(frames, ignore_index=True)
    fields = {f for s in config.sources for f in s.fields}
    for f in fields - set(records.columns):
        records[f] = None
    records = records.astype(object).where(records.notna(), None)
    std = standardise_records(records, fields).reset_index(drop=True)
    left, right, _ = candidate_pairs(std, config.blocking, config.link_type)
    rng = np.random.default_rng(0)
    extra = rng.integers(0, len(std), (2, 300))  # strangers too, so 'different' levels occur
    left, right = np.r_[left, extra[0]], np.r_[right, extra[1]]
    return std, left, right, build_comparisons(config.comparisons)


def test_small_batches_get_the_levels_of_one_big_batch(pairs):
    std, left, right, comparisons = pairs
    assert len(left) > 4 * SMALL_BATCH
    for comparison in comparisons:
        cols = list(comparison.columns)
        lhs, rhs = std[cols].take(left), std[cols].take(right)
        whole = comparison.compare(lhs, rhs)
        pieces = np.concatenate([comparison.compare(lhs.iloc[i:i + 7], rhs.iloc[i:i + 7])
                                 for i in range(0, len(left), 7)])
        assert np.array_equal(whole, pieces), comparison.name
        assert len(set(whole.tolist())) >= 3, comparison.name  # the pairs exercise several levels


def as_columns(frame: pd.DataFrame) -> Columns:
    return Columns({c: frame[c].to_numpy() for c in frame.columns})


def test_numpy_columns_get_the_levels_of_dataframes(pairs):
    std, left, right, comparisons = pairs
    for comparison in comparisons:
        cols = list(comparison.columns)
        lhs, rhs = std[cols].take(left), std[cols].take(right)
        whole = comparison.compare(lhs, rhs)
        assert np.array_equal(comparison.compare(as_columns(lhs), as_columns(rhs)), whole), \
            comparison.name
        pieces = np.concatenate([comparison.compare(as_columns(lhs.iloc[i:i + 5]),
                                                    as_columns(rhs.iloc[i:i + 5]))
                                 for i in range(0, len(left), 5)])
        assert np.array_equal(pieces, whole), comparison.name


def test_columns_reads_like_a_frame():
    frame = Columns({"name_key": np.array(["张伟", "王芳", None], dtype=object),
                     "birth_date": np.array([19650312, 0, 19800101], dtype=np.int32)})
    assert len(frame) == 3 and "name_key" in frame and "village_norm" not in frame
    picked = frame.take(np.array([2, 0]))
    assert picked["name_key"].tolist() == [None, "张伟"]
    assert picked["birth_date"].dtype == np.int32 and len(picked) == 2
