import numpy as np
import pandas as pd

from linkage.core.blocking import (
    block_keys,
    candidate_pairs,
    filter_packed_by_link_type,
    link_type_keeps,
    pack,
    pairs_within_blocks,
)
from linkage.core.config import BlockingRule


def _pairs(packed, n):
    return {(int(p // n), int(p % n)) for p in packed}


def test_pairs_within_blocks_enumerates_every_pair_once():
    codes = np.array([0, 1, 0, 2, 0, 1, -1, -1])
    packed, blocks, skipped, skipped_pairs = pairs_within_blocks(codes, 10)
    assert _pairs(packed, 8) == {(0, 2), (0, 4), (2, 4), (1, 5)}
    assert len(packed) == 4 and blocks == 2 and skipped == 0 and skipped_pairs == 0


def test_oversized_blocks_are_skipped_and_reported():
    codes = np.array([0] * 5 + [1] * 2)
    packed, blocks, skipped, skipped_pairs = pairs_within_blocks(codes, 4)
    assert _pairs(packed, 7) == {(5, 6)}
    assert skipped == 1 and skipped_pairs == 10


def test_blank_keys_never_block():
    records = pd.DataFrame({"k": ["王伟", None, "", None, "王伟"],
                            "y": [1970, 1970, 1970, 1970, 0]})
    codes = block_keys(records, ("k",))
    assert codes[1] == codes[2] == codes[3] == -1
    assert codes[0] == codes[4] >= 0
    assert (block_keys(records, ("k", "y")) >= 0).sum() == 1  # year 0 is unknown


def test_rules_are_unioned_and_counted():
    records = pd.DataFrame({
        "source": ["police", "ncms", "ncms", "urban"],
        "id_norm": ["150521196503120016", "150521196503120016", None, None],
        "name_key": ["张伟", "张伟", "张伟", "李娜"],
    })
    rules = (BlockingRule("id", ("id_norm",), 100), BlockingRule("name", ("name_key",), 100))
    left, right, reports = candidate_pairs(records, rules)
    assert set(zip(left.tolist(), right.tolist())) == {(0, 1), (0, 2), (1, 2)}
    assert [r.pairs for r in reports] == [1, 3]
    assert [r.new_pairs for r in reports] == [1, 2]


def test_link_only_drops_pairs_within_a_source():
    records = pd.DataFrame({"source": ["a", "a", "b"], "k": ["x", "x", "x"]})
    left, right, _ = candidate_pairs(records, (BlockingRule("k", ("k",), 10),), "link_only")
    assert set(zip(left.tolist(), right.tolist())) == {(0, 2), (1, 2)}


def test_forced_pairs_join_the_candidates():
    records = pd.DataFrame({"source": ["a", "b", "b"], "k": ["x", "y", "z"]})
    forced = pack(np.array([2]), np.array([0]), 3)
    left, right, _ = candidate_pairs(records, (BlockingRule("k", ("k",), 10),), forced=forced)
    assert list(zip(left.tolist(), right.tolist())) == [(0, 2)]


def test_one_link_type_rule_for_every_caller():
    """The rule blocking, u sampling, the online check and Spark all filter by."""
    a, b = np.array([0, 0, 1, 2]), np.array([0, 1, 1, 0])
    assert link_type_keeps(a, b, "link_and_dedupe") is None
    assert link_type_keeps(a, b, "link_only").tolist() == [False, True, False, True]
    assert link_type_keeps(a, b, "dedupe_only").tolist() == [True, False, True, False]
    packed = pack(np.array([0, 0, 1]), np.array([1, 2, 2]), 3)
    sources = np.array([0, 0, 1])
    kept = filter_packed_by_link_type(packed, 3, sources, "link_only")
    assert _pairs(kept, 3) == {(0, 2), (1, 2)}
