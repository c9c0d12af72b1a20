"""One way to compare: a comparison prepares a batch's features once, its levels test them.

The online check compares a few pairs given as plain numpy columns (matchers.base.Columns), a
batch run chunks of a million given as DataFrames; both go through Comparison.compare, so this
pins that neither the kind of frame nor the size of the batch changes a level, on realistic
pairs of a synthetic world with every comparison of the demo job, and that levels are run as
the objects they are (a relabelled level still finds what it found).
"""
import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from linkage.core.blocking import candidate_pairs
from linkage.core.compare import build_comparisons
from linkage.core.config import load_config
from linkage.core.standardise import standardise_records
from linkage.synth import generate_world
from matchers.base import MISSING, Columns, Level

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
    assert len(left) > 500
    for comparison in comparisons:
        cols = list(comparison.columns)
        lhs, rhs = std[cols].take(left), std[cols].take(right)
        whole = comparison.compare(lhs, rhs)
        pieces = np.concatenate([comparison.compare(lhs.iloc[i:i + 7], rhs.iloc[i:i + 7])
                                 for i in range(0, len(left), 7)])
        assert np.array_equal(whole, pieces), comparison.name
        # The pairs exercise several levels (all of gender's two).
        assert len(set(whole.tolist())) >= min(3, len(comparison.labels)), comparison.name


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
        # A frame indexed like a slice of a bigger one (as a chunk of a run is) reads the same.
        shifted = lhs.set_axis(np.arange(len(lhs)) + 10**6), rhs.set_axis(np.arange(len(rhs)) * 3)
        assert np.array_equal(comparison.compare(*shifted), whole), comparison.name


def test_features_are_prepared_once_and_levels_see_only_unclaimed_pairs(pairs):
    std, left, right, comparisons = pairs
    for comparison in comparisons:
        cols = list(comparison.columns)
        lhs, rhs = std[cols].take(left), std[cols].take(right)
        expected = comparison.compare(lhs, rhs)
        calls = []

        def spy(level: Level) -> Level:
            def test(features, rows):
                hit = np.asarray(level.test(features, rows), dtype=bool)
                calls.append((features, rows.copy(), hit))
                return hit

            return dataclasses.replace(level, test=test)

        prepared = []
        spied = dataclasses.replace(
            comparison, levels=tuple(spy(level) for level in comparison.levels),
            features=lambda a, b: prepared.append(comparison.features(a, b)) or prepared[-1])
        assert np.array_equal(spied.compare(lhs, rhs), expected), comparison.name
        assert len(prepared) == 1, comparison.name
        assert all(features is prepared[0] for features, _, _ in calls), comparison.name
        todo = np.flatnonzero(expected != MISSING)
        for features, rows, hit in calls:  # level k sees what levels before it left open
            assert np.array_equal(rows, todo), comparison.name
            todo = rows[~hit]
        assert np.all(expected[todo] == len(comparison.levels)), comparison.name


def test_levels_are_found_by_object_not_by_label(pairs):
    std, left, right, comparisons = pairs
    for comparison in comparisons:
        cols = list(comparison.columns)
        lhs, rhs = std[cols].take(left), std[cols].take(right)
        renamed = dataclasses.replace(comparison, levels=tuple(
            dataclasses.replace(level, label=f"renamed_{k}")
            for k, level in enumerate(comparison.levels)))
        assert np.array_equal(renamed.compare(lhs, rhs), comparison.compare(lhs, rhs)), \
            comparison.name


def test_columns_reads_like_a_frame():
    frame = Columns({"name_key": np.array(["张伟", "王芳", None], dtype=object),
                     "birth_date": np.array([19650312, 0, 19800101], dtype=np.int32)})
    assert len(frame) == 3 and "name_key" in frame and "village_norm" not in frame
    picked = frame.take(np.array([2, 0]))
    assert picked["name_key"].tolist() == [None, "张伟"]
    assert picked["birth_date"].dtype == np.int32 and len(picked) == 2


def test_compacted_records_get_the_levels_of_plain_ones(pairs):
    """A run compares its records compacted (linkage.core.standardise.compact_records: name
    and ID keys as Arrow strings, villages and statuses as categories): every comparison finds
    the levels it finds on the plain object columns, and the blocking codes are the same; so
    it does with every text column as Arrow strings (matchers read them all through column())."""
    from linkage.core.blocking import block_keys
    from linkage.core.standardise import KEEP_TEXT, _arrow_text, compact_records

    std, left, right, comparisons = pairs
    compact = compact_records(std)
    arrow = {c for c in compact.columns if isinstance(compact[c].dtype, pd.ArrowDtype)}
    assert {"name_pinyin", "name_given", "id_prefix17", "id_birth_part"} <= arrow
    every = std.copy()
    for col in set(std.columns) - KEEP_TEXT:
        text = _arrow_text(std[col])
        if text is not None:
            every[col] = text
    assert {"name_raw", "name_key", "id_norm", "id_status"} <= {
        c for c in every.columns if isinstance(every[c].dtype, pd.ArrowDtype)}
    for comparison in comparisons:
        cols = list(comparison.columns)
        want = comparison.compare(std[cols].take(left), std[cols].take(right))
        for frame in (compact, every):
            got = comparison.compare(frame[cols].take(left), frame[cols].take(right))
            assert np.array_equal(want, got), comparison.name
    for keys in (("name_key",), ("id_prefix17",), ("id_birth_part", "name_initials"),
                 ("name_pinyin", "birth_year")):
        want = block_keys(std, keys)
        assert np.array_equal(want, block_keys(compact, keys)), keys
        assert np.array_equal(want, block_keys(every, keys)), keys
