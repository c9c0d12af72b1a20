"""Candidate pairs from several blocking rules, unioned, as compact integer arrays.

A pair is two record positions (i < j) packed into one int64, so tens of millions of pairs
cost eight bytes each and the union of rules is one sort. Blocks larger than a rule's
``max_block_size`` are skipped and reported: a block of every 王伟 born in 1970 produces pairs
no comparison can rescue, and other rules (ID, birthdate + village) still reach those people.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from linkage.core.config import BlockingRule


@dataclass
class RuleReport:
    name: str
    pairs: int  # pairs this rule generated (before the union)
    new_pairs: int  # pairs no earlier rule had found
    blocks: int
    skipped_blocks: int  # blocks over max_block_size
    skipped_pairs: int  # pairs those blocks would have produced


def block_keys(records: pd.DataFrame, keys: tuple[str, ...]) -> np.ndarray:
    """Integer block code per record, -1 where any key is blank (blank never blocks)."""
    codes = np.zeros(len(records), dtype=np.int64)
    valid = np.ones(len(records), dtype=bool)
    for key in keys:
        col = records[key]
        if np.issubdtype(col.dtype, np.integer):
            values = col.to_numpy()
            valid &= values != 0
            c, uniques = pd.factorize(values)
        else:
            c, uniques = pd.factorize(col.astype(object).where(col.astype(str) != "", None))
            valid &= c >= 0
        codes = codes * (len(uniques) + 1) + (c + 1)
        # Re-densify so the product of many keys never overflows.
        codes, _ = pd.factorize(codes)
        codes = codes.astype(np.int64)
    codes[~valid] = -1
    return codes


def pairs_within_blocks(codes: np.ndarray, max_block_size: int) -> tuple[np.ndarray, int, int, int]:
    """All i<j pairs sharing a code.

    Returns (packed pairs, blocks, skipped blocks, skipped pairs).
    """
    n = len(codes)
    keep = np.flatnonzero(codes >= 0)
    if keep.size == 0:
        return np.empty(0, dtype=np.int64), 0, 0, 0
    order = keep[np.argsort(codes[keep], kind="stable")]
    sorted_codes = codes[order]
    boundaries = np.flatnonzero(np.diff(sorted_codes)) + 1
    starts = np.concatenate(([0], boundaries))
    sizes = np.diff(np.concatenate((starts, [order.size])))
    big = sizes > max_block_size
    skipped_pairs = int((sizes[big] * (sizes[big] - 1) // 2).sum())
    blocks = int((sizes > 1).sum())
    group_end = np.repeat(starts + sizes, sizes)
    usable = ~np.repeat(big, sizes)
    pos = np.flatnonzero(usable & (np.arange(order.size) + 1 < group_end))
    chunks = []
    k = 1
    while pos.size:
        i, j = order[pos], order[pos + k]
        lo, hi = np.minimum(i, j), np.maximum(i, j)
        chunks.append(lo.astype(np.int64) * n + hi)
        k += 1
        pos = pos[pos + k < group_end[pos]]
    packed = np.concatenate(chunks) if chunks else np.empty(0, dtype=np.int64)
    return packed, blocks, int(big.sum()), skipped_pairs


def candidate_pairs(
    records: pd.DataFrame,
    rules: tuple[BlockingRule, ...],
    link_type: str = "link_and_dedupe",
    forced: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, list[RuleReport]]:
    """Union of every rule's pairs (plus ``forced`` packed pairs) as sorted (left, right) arrays."""
    n = len(records)
    source_codes, _ = pd.factorize(records["source"])
    found = np.empty(0, dtype=np.int64)
    reports = []
    for rule in rules:
        packed, blocks, skipped_blocks, skipped_pairs = pairs_within_blocks(
            block_keys(records, rule.keys), rule.max_block_size
        )
        packed = filter_packed_by_link_type(packed, n, source_codes, link_type)
        packed = unique_sorted(packed)
        before = found.size
        found = unique_sorted(np.concatenate([found, packed]))
        reports.append(RuleReport(rule.name, int(packed.size), int(found.size - before), blocks,
                                  skipped_blocks, skipped_pairs))
    if forced is not None and forced.size:
        found = unique_sorted(np.concatenate([found, forced]))
    left = (found // n).astype(np.int32) if n else found.astype(np.int32)
    right = (found % n).astype(np.int32) if n else found.astype(np.int32)
    return left, right, reports


def unique_sorted(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values; a plain sort and a mask, several times faster than np.unique."""
    values = np.sort(values)
    if values.size:
        values = values[np.r_[True, values[1:] != values[:-1]]]
    return values


def link_type_keeps(source_a, source_b, link_type: str):
    """Which pairs the job's link type allows, from the sources of their two sides: pairs
    across sources for ``link_only``, within one source for ``dedupe_only``; None (every pair)
    for ``link_and_dedupe``.

    The sides may be numpy arrays or Spark columns: every engine, ``add`` and the online check
    filter by this one rule.
    """
    if link_type == "link_and_dedupe":
        return None
    same = source_a == source_b
    return ~same if link_type == "link_only" else same


def filter_packed_by_link_type(packed: np.ndarray, n: int, sources: np.ndarray,
                               link_type: str) -> np.ndarray:
    """The packed pairs (``left * n + right``) the link type allows, by link_type_keeps."""
    if link_type == "link_and_dedupe" or packed.size == 0:
        return packed
    return packed[link_type_keeps(sources[packed // n], sources[packed % n], link_type)]


def pack(left: np.ndarray, right: np.ndarray, n: int) -> np.ndarray:
    lo, hi = np.minimum(left, right).astype(np.int64), np.maximum(left, right).astype(np.int64)
    return lo * n + hi
