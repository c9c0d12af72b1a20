"""Candidate pairs from several blocking rules, unioned, as compact integer arrays.

A pair is two record positions (i < j) packed into one int64, so tens of millions of pairs
cost eight bytes each and the union of rules is one sort.

A block over its rule's budget (``max_block_size`` records, ``max_pairs`` pairs) is split by
the rule's refining keys in order: every 王伟 born in 1970 becomes the 王伟 born in March 1970,
and a sub-block still over budget is split by the next key (township, gender ...). The pairs of
a block grow with the square of its size, so without this a rule's pairs grow with the square
of the population; split, they grow with it. A block still over budget after every refining key
is skipped and reported: its pairs are left to the other rules (ID, birthdate + village).
:func:`rule_blocks` decides the sub-blocks, once for every engine: the Spark engine joins on
its codes, and the estimate (:mod:`linkage.core.blocking_plan`) counts them.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from linkage.core.config import DERIVED_REFINERS, BlockingRule
from linkage.core.standardise import arrow_text


@dataclass
class RuleReport:
    name: str
    pairs: int  # pairs this rule generated (before the union)
    new_pairs: int  # pairs no earlier rule had found
    blocks: int
    skipped_blocks: int  # blocks still over budget after every refining key
    skipped_pairs: int  # pairs those blocks would have produced (before the link type)


def _factorized(records: pd.DataFrame, key: str, memo: dict | None = None
                ) -> tuple[np.ndarray, int, np.ndarray]:
    """(code per record, distinct values, not blank) of one column; -1 codes a blank text
    value, 0 in an integer column is blank but has a code. ``memo`` keeps them across rules."""
    if memo is not None and key in memo:
        return memo[key]
    col = records[key]
    if pd.api.types.is_integer_dtype(col.dtype):  # not a category (a compacted text column)
        values = col.to_numpy()
        c, uniques = pd.factorize(values)
        valid = values != 0
    elif isinstance(col.dtype, pd.ArrowDtype):  # Arrow text (compact_records): no objects made
        text = arrow_text(col)
        blank = pc.if_else(pc.equal(text, ""), pa.scalar(None, text.type), text)
        coded = blank.dictionary_encode()  # codes in order of first appearance, as factorize
        c, uniques = coded.indices.fill_null(-1).to_numpy(), coded.dictionary
        valid = c >= 0
    else:
        c, uniques = pd.factorize(col.astype(object).where(col.astype(str) != "", None))
        valid = c >= 0
    out = (c.astype(np.int64), len(uniques), valid)
    if memo is not None:
        memo[key] = out
    return out


def block_keys(records: pd.DataFrame, keys: tuple[str, ...], memo: dict | None = None
               ) -> np.ndarray:
    """Integer block code per record, -1 where any key is blank (blank never blocks)."""
    codes = np.zeros(len(records), dtype=np.int64)
    valid = np.ones(len(records), dtype=bool)
    for key in keys:
        c, distinct, usable = _factorized(records, key, memo)
        valid &= usable
        codes = codes * (distinct + 1) + (c + 1)
        # Re-densify so the product of many keys never overflows.
        codes, _ = pd.factorize(codes)
        codes = codes.astype(np.int64)
    codes[~valid] = -1
    return codes


def _birth_month(records: pd.DataFrame) -> np.ndarray:
    return records["birth_date"].to_numpy(dtype=np.int64) // 100 % 100  # 0: not known


# Refining keys blocking derives itself, by name (config.DERIVED_REFINERS names what each reads).
REFINERS = {"birth_month": _birth_month}


def refining_values(records: pd.DataFrame, key: str, memo: dict | None = None) -> np.ndarray:
    """Integer value per record of a refining key: inside a block a blank is a value like any
    other (a year-only birthdate has birth month 0), so refining never drops a record from its
    block."""
    if key in REFINERS:
        if DERIVED_REFINERS[key] not in records:
            return np.zeros(len(records), dtype=np.int64)
        if memo is not None and key in memo:
            return memo[key]
        values = pd.factorize(REFINERS[key](records))[0].astype(np.int64)
        if memo is not None:
            memo[key] = values
        return values
    if key not in records:
        return np.zeros(len(records), dtype=np.int64)
    return _factorized(records, key, memo)[0] + 1


@dataclass
class Blocks:
    """A rule's blocks after splitting: one code per record.

    ``codes``: the record's sub-block, >= 0 where it is paired; -1 where a key is blank;
    -2 - k for the k-th sub-block still over budget after every refining key (skipped).
    ``keys``: the record's block before splitting (:func:`block_keys`). ``depth``: how many
    refining keys split the record's block, so that a new record (the online check) finds its
    sub-block: the records of its block with its values of the first ``depth`` keys.
    """

    rule: BlockingRule
    codes: np.ndarray
    keys: np.ndarray
    split_blocks: int  # blocks over budget (split, or skipped when no refining key is left)
    refined_by: tuple[str, ...]  # the refining keys some block needed
    depth: np.ndarray = field(repr=False, default=None)  # refining keys applied, per record
    sizes: np.ndarray = field(repr=False, default=None)  # records per code >= 0 (bincount)

    @property
    def paired(self) -> np.ndarray:
        """Sub-block per record, -1 where the record pairs with nobody by this rule."""
        return np.where(self.codes >= 0, self.codes, -1)

    def _skipped_sizes(self) -> np.ndarray:
        skipped = self.codes[self.codes <= -2]
        return np.bincount(-2 - skipped) if skipped.size else np.empty(0, dtype=np.int64)

    @property
    def blocks(self) -> int:
        """Blocks of two or more records after splitting, skipped ones included."""
        return int((self.sizes > 1).sum()) + int(self._skipped_sizes().size)

    @property
    def skipped_blocks(self) -> int:
        return int(self._skipped_sizes().size)

    @property
    def skipped_pairs(self) -> int:
        """Pairs the skipped blocks hold (before the link type)."""
        s = self._skipped_sizes().astype(np.int64)
        return int((s * (s - 1) // 2).sum())


def block_pairs(codes: np.ndarray, sources: np.ndarray | None, link_type: str) -> np.ndarray:
    """Per block code 0..max (codes >= 0, dense), the pairs the link type allows in it: all
    s (s - 1) / 2, those across sources or those within one, from per-source counts."""
    valid = codes >= 0
    c = codes[valid]
    if c.size == 0:
        return np.zeros(0, dtype=np.int64)
    sizes = np.bincount(c).astype(np.int64)
    every = sizes * (sizes - 1) // 2
    if link_type == "link_and_dedupe" or sources is None:
        return every
    src = np.asarray(sources)[valid].astype(np.int64)
    width = int(src.max()) + 1
    cells, counts = np.unique(c * width + src, return_counts=True)
    counts = counts.astype(np.int64)
    within = np.bincount(cells // width, weights=counts * (counts - 1) // 2,
                         minlength=sizes.size).astype(np.int64)
    return within if link_type == "dedupe_only" else every - within


def _over_budget(codes: np.ndarray, rule: BlockingRule, sources: np.ndarray | None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(records of blocks over the rule's budget, records per block)."""
    valid = codes >= 0
    sizes = np.bincount(codes[valid]) if valid.any() else np.zeros(0, dtype=np.int64)
    over = sizes > rule.max_block_size
    if rule.max_pairs is not None:
        over |= block_pairs(codes, sources, rule.link_type) > rule.max_pairs
    out = np.zeros(len(codes), dtype=bool)
    out[valid] = over[codes[valid]]
    return out, sizes


def _split(codes: np.ndarray, over: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Codes with the records of oversized blocks given new codes, one per (block, value)."""
    out = codes.copy()
    rows = np.flatnonzero(over)
    combined = codes[rows] * (int(values[rows].max()) + 1) + values[rows]
    out[rows] = int(codes.max()) + 1 + pd.factorize(combined)[0]
    return out


def rule_blocks(records: pd.DataFrame, rule: BlockingRule, sources: np.ndarray | None = None,
                link_type: str | None = None, memo: dict | None = None) -> Blocks:
    """A rule's sub-blocks: each block over budget split by the refining keys in order, each
    sub-block still over budget by the next; what is over budget after them all is skipped.

    ``sources`` (source code per record) is needed only when ``max_pairs`` counts the pairs
    of one link type; ``link_type`` overrides the rule's; ``memo`` (a dict) keeps each
    column's codes for the next rule.
    """
    if link_type is not None and link_type != rule.link_type:
        rule = replace(rule, link_type=link_type)
    if sources is None and rule.max_pairs is not None and rule.link_type != "link_and_dedupe":
        sources = pd.factorize(records["source"])[0]
    keys = block_keys(records, rule.keys, memo)
    codes = keys
    over, sizes = _over_budget(codes, rule, sources)
    split = int(np.unique(codes[over]).size)
    used = []
    depth = np.zeros(len(codes), dtype=np.int8)
    for key in rule.refine:
        if not over.any():
            break
        codes = _split(codes, over, refining_values(records, key, memo))
        depth[over] += 1
        over, sizes = _over_budget(codes, rule, sources)
        used.append(key)
    if over.any():
        codes = codes.copy()
        codes[over] = -2 - pd.factorize(codes[over])[0]
        valid = codes >= 0
        sizes = np.bincount(codes[valid], minlength=sizes.size)
    return Blocks(rule, codes, keys, split, tuple(used), depth, sizes)


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


NO_LIMIT = sys.maxsize  # pairs_within_blocks without a size limit: rule_blocks applied it


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
    memo: dict = {}
    for rule in rules:
        blocks = rule_blocks(records, rule, source_codes, link_type, memo)
        packed = pairs_within_blocks(blocks.codes, NO_LIMIT)[0]
        packed = filter_packed_by_link_type(packed, n, source_codes, link_type)
        packed = unique_sorted(packed)
        before = found.size
        found = unique_sorted(np.concatenate([found, packed]))
        reports.append(RuleReport(rule.name, int(packed.size), int(found.size - before),
                                  blocks.blocks, blocks.skipped_blocks, blocks.skipped_pairs))
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
