"""The local engine: candidate pairs, comparison vectors, training and match weights.

An engine turns standardised records into ``ScoredPairs``; everything after (bands, review,
clustering, golden records) is the same whichever engine ran. The Spark engine returns the same
object with only the pairs worth keeping (review band and above, and reviewed pairs).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from linkage.core import blocking, household, model, standardise
from linkage.core.compare import comparison_vectors
from linkage.core.config import JobConfig
from matchers.base import Comparison


@dataclass
class ScoredPairs:
    left: np.ndarray  # record positions of the kept pairs (int32)
    right: np.ndarray
    gamma: np.ndarray  # (pairs x comparisons) int8 levels
    parts: np.ndarray  # (pairs x comparisons) float32 weights: the explanation
    household: np.ndarray  # household-context bits per pair
    weight: np.ndarray  # total match weight per pair (prior, fields, household)
    decision: np.ndarray  # reviewer decision per pair: "", "match" or "non_match"
    model: model.FSModel
    rules: list[blocking.RuleReport]
    candidates: int  # all candidate pairs, kept or not
    level_counts: dict[str, dict[str, int]]  # per comparison, over all candidates
    band_counts: dict[str, int] | None = None  # engines that drop pairs count bands themselves
    all_pairs: bool = True  # True when every candidate pair is kept (blocking recall possible)


def score_candidates(
    records: pd.DataFrame,
    config: JobConfig,
    comparisons: list[Comparison],
    decided: pd.DataFrame,
    model_path=None,
    stage=None,
    progress: bool = False,
) -> ScoredPairs:
    """Block, compare, train (or load) and score every candidate pair on this machine."""
    from contextlib import nullcontext

    stage = stage or (lambda name: nullcontext())
    n = len(records)
    forced = (blocking.pack(decided["l"].to_numpy(), decided["r"].to_numpy(), n)
              if len(decided) else None)
    with stage("block"):
        left, right, rules = blocking.candidate_pairs(records, config.blocking, config.link_type,
                                                      forced)
    with stage("compare"):
        gamma = comparison_vectors(records, comparisons, left, right, config.chunk_size, progress)
    decision = pair_decisions(left, right, n, decided)
    with stage("train"):
        fs = train(records, config, comparisons, gamma,
                   lambda: rule_agreement(records, config, left, right), (gamma, decision),
                   model_path)
    with stage("score"):
        weight, parts, hh = weigh(records, config, comparisons, fs, left, right, gamma)
    return ScoredPairs(left, right, gamma, parts, hh, weight, decision, fs, rules, len(left),
                       level_counts(gamma, comparisons))


def train(records, config, comparisons, gamma, agreement, labelled=None, model_path=None,
          counts=None) -> model.FSModel:
    """The run's model, whichever engine runs: a saved one, or u from random pairs and m from
    one EM session per blocking rule (:func:`linkage.core.model.train_sessions`); reviewers' labels
    then sharpen m.

    ``gamma`` holds the comparison levels of every candidate pair (the local engine) or of each
    distinct pattern, standing for ``counts`` pairs (Spark, where the pairs stay). Called only
    when training, ``agreement()`` gives per blocking rule which rows of ``gamma`` agree on
    its keys. ``labelled`` is (levels, decision) of pairs, decision "" where none.
    """
    if model_path:
        fs = model.FSModel.load(model_path)
        fs.check_matches(comparisons)
    else:
        source_codes = pd.factorize(records["source"])[0]
        u = model.estimate_u(records, comparisons, config.training.u_sample_pairs,
                             config.training.seed, pair_filter(source_codes, config.link_type))
        sessions = [(rule.name, mask, involved) for rule, mask, involved in zip(
            config.blocking, agreement(), involved_comparisons(config, comparisons))]
        fs = model.train_sessions(
            gamma, comparisons, u, sessions,
            config.training.em_max_iterations, config.training.em_tolerance,
            total_pairs(records["source"], config.link_type), counts)
    if labelled is not None:
        levels, decision = labelled
        known = decision != ""
        if known.any():
            fs = model.m_from_labels(levels[known], decision[known] == "match", fs)
    return fs


def weigh(records, config, comparisons, fs, left, right, gamma):
    """Match weight per pair: prior + per-field weights (term-frequency adjusted) + household."""
    tf_tables = {c.tf_column: model.term_frequencies(records, c.tf_column)
                 for c in comparisons if c.tf_column and c.tf_column in records}
    weight, parts = model.score(gamma, fs, records, left, tf_tables,
                                config.training.tf_min_frequency)
    hh = household_bits(records, config, left, right, weight)
    return weight + hh, parts, hh


def household_bits(records, config, left, right, weight) -> np.ndarray:
    """The run's household step (:func:`linkage.core.household.household_adjustment` with the
    job's settings): bits per pair from the pairs' field weights; zeros when it is off."""
    if not config.household.enabled:
        return np.zeros(len(weight))
    strong = float(np.log2(config.match_threshold / (1 - config.match_threshold)))
    return household.household_adjustment(records, left, right, weight, strong,
                                          config.household.bonus, config.household.penalty,
                                          floor=household_floor(config))


def household_floor(config) -> float:
    """The field weight below which a pair's household context changes nothing: even with the
    bonus it stays under the review threshold (see ``household_adjustment``)."""
    review = float(np.log2(config.review_threshold / (1 - config.review_threshold)))
    return review - config.household.bonus


def level_counts(gamma: np.ndarray, comparisons: list[Comparison],
                 counts: np.ndarray | None = None) -> dict[str, dict[str, int]]:
    """Per comparison and level (``missing`` first), how many candidate pairs have it: the
    summary's comparison levels. ``gamma`` holds every pair's levels, or distinct patterns
    with their ``counts``."""
    return {
        c.name: {lab: int(cnt) for lab, cnt in zip(
            ["missing", *c.labels], model.count_levels(gamma[:, k], len(c.labels), counts))}
        for k, c in enumerate(comparisons)
    }


def involved_comparisons(config: JobConfig, comparisons: list[Comparison]) -> list[set[int]]:
    """Per blocking rule, the comparisons its keys carry information into: an EM session over
    the pairs the rule generated cannot estimate them (they agree there by construction)."""
    fields = {f for s in config.sources for f in s.fields}
    carried = standardise.column_fields(fields)
    comp_fields = [set().union(*(carried.get(col, set()) for col in c.columns))
                   for c in comparisons]
    out = []
    for rule in config.blocking:
        rule_fields = set().union(*(carried.get(k, set()) for k in rule.keys))
        out.append({k for k, f in enumerate(comp_fields) if f & rule_fields})
    return out


def rule_agreement(records: pd.DataFrame, config: JobConfig, left: np.ndarray,
                   right: np.ndarray) -> list[np.ndarray]:
    """Per blocking rule, which pairs agree on all its keys (none blank): the pairs it found."""
    out = []
    for rule in config.blocking:
        codes = blocking.block_keys(records, rule.keys)
        out.append((codes[left] == codes[right]) & (codes[left] >= 0))
    return out


def total_pairs(sources: pd.Series, link_type: str) -> float:
    """How many record pairs the link type allows: the population random-pair u speaks of."""
    sizes = sources.value_counts().to_numpy(dtype=np.float64)
    n = sizes.sum()
    within = float((sizes * (sizes - 1) / 2).sum())
    if link_type == "dedupe_only":
        return within
    if link_type == "link_only":
        return n * (n - 1) / 2 - within
    return n * (n - 1) / 2


def pair_filter(source_codes: np.ndarray, link_type: str):
    """The link type as a test of record positions (a, b); None where every pair is allowed."""
    if link_type == "link_and_dedupe":
        return None
    return lambda a, b: blocking.link_type_keeps(source_codes[a], source_codes[b], link_type)


def pair_decisions(left, right, n, decided) -> np.ndarray:
    """The active reviewer decision of each pair ("" where none)."""
    out = np.full(len(left), "", dtype=object)
    if len(decided):
        packed = blocking.pack(left, right, n)
        lookup = pd.Series(decided["decision"].to_numpy(),
                           index=blocking.pack(decided["l"].to_numpy(), decided["r"].to_numpy(), n))
        lookup = lookup[~lookup.index.duplicated(keep="last")]
        hit = np.isin(packed, lookup.index.to_numpy())
        out[hit] = lookup.reindex(packed[hit]).to_numpy()
    return out
