"""The local engine: candidate pairs, comparison vectors, training and match weights.

An engine turns standardised records into ``ScoredPairs``; everything after (bands, review,
clustering, golden records) is the same whichever engine ran. The Spark engine returns the same
object with only the pairs worth keeping (review band and above, and reviewed pairs).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from linkage.core import blocking, household, model, name_evidence, standardise
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
    dropped: int = 0  # candidate pairs streamed away: all non-matches, counted in the bands
    cannot: np.ndarray | None = None  # hard negatives: never in one entity (None: none)
    note: np.ndarray | None = None  # per pair, what the household step did and why
    households: pd.DataFrame | None = None  # household correspondences
    milk_names: tuple[str, ...] = ()  # the milk and placeholder names of the run
    # Field weights of the candidates the engine streamed away (for the weight histogram), and
    # every candidate pair as (left, right) where the engine knows them (blocking recall).
    dropped_weights: np.ndarray | None = None
    candidate_pairs: tuple[np.ndarray, np.ndarray] | None = None
    field_stats: FieldStats | None = None  # what the weights read of all records (kept for add)

    @property
    def weights(self) -> np.ndarray:
        """The match weight of every candidate pair, kept or not (float32, in no set order)."""
        weight = self.weight.astype(np.float32)
        if self.dropped_weights is None or not len(self.dropped_weights):
            return weight
        return np.concatenate([weight, self.dropped_weights.astype(np.float32)])

    @classmethod
    def of(cls, weighed: Weighed, decided: pd.DataFrame, n: int, fs: model.FSModel,
           rules: list[blocking.RuleReport], comparisons: list[Comparison],
           **extra) -> ScoredPairs:
        """The engine's result from the weighed pairs: reviewers' decisions looked up, a
        decided pair never a hard negative, the household rule counted after the others."""
        decision = pair_decisions(weighed.left, weighed.right, n, decided)
        rules = [*rules, weighed.rule] if weighed.rule is not None else list(rules)
        extra.setdefault("candidates", len(weighed.left))
        extra.setdefault("level_counts", level_counts(weighed.gamma, comparisons))
        return cls(weighed.left, weighed.right, weighed.gamma, weighed.parts, weighed.household,
                   weighed.weight, decision, fs, rules, cannot=weighed.cannot & (decision == ""),
                   note=weighed.note, households=weighed.households,
                   milk_names=weighed.milk_names, **extra)


def score_candidates(
    records: pd.DataFrame,
    config: JobConfig,
    comparisons: list[Comparison],
    decided: pd.DataFrame,
    model_path=None,
    stage=None,
    progress: bool = False,
    household_decisions: pd.DataFrame | None = None,
) -> ScoredPairs:
    """Block, compare, train (or load) and score every candidate pair on this machine.
    ``household_decisions``: reviewers' decisions on correspondences, for the household step
    (:func:`linkage.core.household.household_step`'s ``decided``)."""
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
        scorer = FieldScorer(records, config, comparisons, fs)
        kept = scorer.stream(left, right, gamma, decision != "",
                             threshold_weight(config.review_threshold))
        base_levels = level_counts(gamma, comparisons)
    with stage("household"):
        k = kept.index
        weighed = household_step(records, config, scorer, left[k], right[k], gamma[k],
                                 kept.parts, kept.weight, household_decisions)
        # Member pairs the step regenerated that were candidates all along (streamed away as
        # too weak) are no new pairs: found by position among the (sorted) candidates.
        added = weighed.added if weighed.added is not None else np.zeros(len(weighed.left), bool)
        at = positions_among(blocking.pack(left, right, n), weighed.left, weighed.right, n, added)
        gone = np.ones(len(left), dtype=bool)
        gone[k] = False
        gone[at[at >= 0]] = False
        new = added & (at < 0)
        candidate_pairs = (np.concatenate([left, weighed.left[new]]),
                           np.concatenate([right, weighed.right[new]]))
    return streamed(weighed, decided, n, fs, rules, comparisons, candidates=len(left),
                    dropped=int(gone.sum()), known=at >= 0, base_levels=base_levels,
                    dropped_weights=kept.all_weight[gone], candidate_pairs=candidate_pairs,
                    field_stats=scorer.stats)


def positions_among(packed: np.ndarray, left: np.ndarray, right: np.ndarray, n: int,
                    which: np.ndarray) -> np.ndarray:
    """Per pair, its position among the sorted ``packed`` candidates, -1 where it is none of
    them or not one of ``which``."""
    out = np.full(len(left), -1, dtype=np.int64)
    if not len(packed) or not which.any():
        return out
    wanted = blocking.pack(left[which], right[which], n)
    at = np.minimum(np.searchsorted(packed, wanted), len(packed) - 1)
    out[which] = np.where(packed[at] == wanted, at, -1)
    return out


def streamed(weighed: Weighed, decided: pd.DataFrame, n: int, fs: model.FSModel,
             rules: list[blocking.RuleReport], comparisons: list[Comparison], *,
             candidates: int, dropped: int, known: np.ndarray,
             base_levels: dict[str, dict[str, int]], **extra) -> ScoredPairs:
    """The engine's result when it streamed weak candidates away (both engines): the counts
    of pairs, levels and bands still cover every candidate (the ``dropped`` ones are all
    non-matches). ``known`` marks the member pairs the household step regenerated that were
    candidates all along: counted once, as candidates, not as the household rule's new pairs."""
    added = weighed.added if weighed.added is not None else np.zeros(len(weighed.left), bool)
    new = added & ~known
    if weighed.rule is not None:
        weighed.rule.new_pairs -= int((added & known).sum())
    weighed.added = new
    levels = level_counts(weighed.gamma[new], comparisons)
    merged = {c: {lab: base_levels[c][lab] + levels[c][lab] for lab in base_levels[c]}
              for c in base_levels}
    return ScoredPairs.of(weighed, decided, n, fs, rules, comparisons,
                          candidates=candidates + int(new.sum()), level_counts=merged,
                          dropped=dropped, **extra)


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


@dataclass
class Weighed:
    """Scored pairs after the household step: the given pairs, then the member pairs it added."""

    left: np.ndarray
    right: np.ndarray
    gamma: np.ndarray
    parts: np.ndarray
    household: np.ndarray  # household term per pair
    weight: np.ndarray  # field weight + household term
    cannot: np.ndarray  # hard negatives: never in one entity
    note: np.ndarray  # why the household term is what it is
    households: pd.DataFrame  # the household correspondences
    rule: blocking.RuleReport | None  # the household rule's pairs, counted after the first pass
    prior: float = float("nan")  # the learned household prior
    added: np.ndarray | None = None  # pairs only the household rule found (None: none)
    milk_names: tuple[str, ...] = ()  # the milk and placeholder names of the run


@dataclass
class Kept:
    """The candidates worth keeping (positions among the candidates) with their weights."""

    index: np.ndarray
    weight: np.ndarray  # field weight per kept pair
    parts: np.ndarray  # per-comparison weights per kept pair
    all_weight: np.ndarray  # float32 field weight of every candidate (the histogram)


@dataclass
class FieldStats:
    """What weighing a pair reads of the whole job's records rather than of the pair's two:
    the term frequencies and the name model (milk names, birth-cohort frequencies). Learned
    once over every record; kept as counts, so that ``add`` adds its batch's counts to its
    base run's (:meth:`plus`) and weighs the pairs around the batch over only the records they
    touch, still as a full run over every record weighs them."""

    tf_counts: dict[str, pd.Series]  # per term-frequency column: records per value
    counts: name_evidence.NameCounts
    tf_column: str | None  # the name comparison's term-frequency column
    names: name_evidence.NameModel  # learned from ``counts``
    tf_tables: dict[str, pd.Series]  # relative frequencies, from ``tf_counts``
    records: int  # how many records were counted

    @classmethod
    def of_counts(cls, tf_counts: dict[str, pd.Series], counts: name_evidence.NameCounts,
                  tf_column: str | None, records: int, config: JobConfig) -> FieldStats:
        hh = config.household
        names = name_evidence.NameModel.of_counts(counts, hh.milk_name_min_households,
                                                  hh.milk_name_ratio, tuple(hh.milk_names))
        tables = {column: model.frequencies(c) for column, c in tf_counts.items()}
        return cls(tf_counts, counts, tf_column, names, tables, records)

    @classmethod
    def learn(cls, records: pd.DataFrame, config: JobConfig, comparisons: list[Comparison],
              fs: model.FSModel, latest_year: int | None = None) -> FieldStats:
        """Over ``records``; with ``latest_year``, their infants and adults measured from it
        (a batch counted as among a run's records: :meth:`plus`)."""
        tf_columns, tf_column = cls.columns(records, comparisons, fs)
        tf_counts = {column: model.term_counts(records, column) for column in tf_columns}
        counts = name_evidence.NameCounts.of(records, authority_of(records, config), tf_column,
                                             latest_year)
        return cls.of_counts(tf_counts, counts, tf_column, len(records), config)

    @staticmethod
    def columns(records: pd.DataFrame, comparisons: list[Comparison], fs: model.FSModel
                ) -> tuple[list[str], str | None]:
        """(the term-frequency columns counted, the name comparison's)."""
        tf_columns = sorted({c.tf_column for c in comparisons
                             if c.tf_column and c.tf_column in records})
        name_index, _ = name_evidence.name_levels(fs)
        return tf_columns, (fs.comparisons[name_index].tf_column if name_index is not None
                            else None)

    def plus(self, batch: pd.DataFrame, config: JobConfig, comparisons: list[Comparison],
             fs: model.FSModel) -> FieldStats | None:
        """These statistics with ``batch``'s records counted in, as :meth:`learn` over both
        gives them; None where the batch brings a later birth year than any counted (infants
        and adults move: learn over every record)."""
        other = FieldStats.learn(batch, config, comparisons, fs, self.counts.latest_year)
        counts = self.counts.plus(other.counts)
        if counts is None or other.tf_column != self.tf_column or set(other.tf_counts) != set(
                self.tf_counts):
            return None
        tf_counts = {c: self.tf_counts[c].add(other.tf_counts[c], fill_value=0).astype(np.int64)
                     for c in self.tf_counts}
        return FieldStats.of_counts(tf_counts, counts, self.tf_column,
                                    self.records + other.records, config)


def authority_of(records: pd.DataFrame, config: JobConfig) -> np.ndarray:
    """Per record, whether its source is the registry (role ``authority``)."""
    roles = {s.name: s.role for s in config.sources}
    return records["source"].map(roles).eq("authority").to_numpy()


class FieldScorer:
    """Field weights of any pair as the run weighs them: the model's per-level weights, term
    frequencies (the larger of overall and birth-cohort), milk names neutral. One instance per
    run, so every pair (first pass, household pairs, ``add``) is weighed alike. ``stats``:
    learned over a larger set of records than ``records`` (``add``), else over ``records``."""

    def __init__(self, records: pd.DataFrame, config: JobConfig, comparisons: list[Comparison],
                 fs: model.FSModel, stats: FieldStats | None = None):
        self.records, self.config, self.comparisons, self.fs = records, config, comparisons, fs
        self.stats = stats or FieldStats.learn(records, config, comparisons, fs)
        self.tf_tables, self.names = self.stats.tf_tables, self.stats.names
        self.name_index, self.tf_levels = name_evidence.name_levels(fs)
        self.authority = authority_of(records, config)
        self.evidence = self.names.evidence(records, len(records), self.stats.tf_column)

    def __call__(self, left: np.ndarray, right: np.ndarray, gamma: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
        """(field weight, per-comparison weights) per pair."""
        _, weight, parts = self._score(left, right, gamma)
        return weight, parts

    def _score(self, left, right, gamma):
        """(model weight, field weight, per-comparison weights): the field weight adds the
        name evidence (milk names neutral, birth-cohort frequencies) to the model's."""
        model_weight, parts = model.score(gamma, self.fs, self.records, left, self.tf_tables,
                                          self.config.training.tf_min_frequency)
        milk, cohort = self.evidence.pairs(left, right)
        weight = model_weight + name_evidence.adjust_name_parts(parts, gamma, milk, cohort,
                                                                self.name_index, self.tf_levels)
        return model_weight, weight, parts

    def stream(self, left: np.ndarray, right: np.ndarray, gamma: np.ndarray,
               reviewed: np.ndarray, review_weight: float) -> Kept:
        """Score the candidates a chunk at a time and keep only those a later step can need
        (:func:`linkage.core.household.worth_keeping`, and reviewed pairs): memory then
        follows the kept pairs, not the candidates (8 bytes of levels and weight each)."""
        fields = household.Fields.of(self.fs.comparisons)
        hh = household.household_codes(self.records)
        chunk = max(int(self.config.chunk_size), 1)
        index, weights, parts_kept = [], [], []
        all_weight = np.empty(len(left), dtype=np.float32)
        for start in range(0, len(left), chunk):
            sl = slice(start, start + chunk)
            a, b, g = left[sl], right[sl], gamma[sl]
            _, weight, parts = self._score(a, b, g)
            all_weight[sl] = weight
            same = (hh[a] >= 0) & (hh[a] == hh[b])
            # The field weight with its name evidence is known here: only pairs that reach
            # the review band on their fields (or a hard-negative class) are kept.
            keep = np.flatnonzero(household.worth_keeping(weight, g, same, fields,
                                                          review_weight) | reviewed[sl])
            index.append(keep + start)
            weights.append(weight[keep])
            parts_kept.append(parts[keep])
        k = len(self.fs.comparisons)
        return Kept(np.concatenate(index) if index else np.empty(0, np.int64),
                    np.concatenate(weights) if weights else np.empty(0),
                    np.concatenate(parts_kept) if parts_kept else np.empty((0, k), np.float32),
                    all_weight)

    def compare_and_score(self, left: np.ndarray, right: np.ndarray):
        """(gamma, parts, field weight) of new pairs: the household rule's."""
        gamma = comparison_vectors(self.records, self.comparisons, left, right,
                                   self.config.chunk_size)
        weight, parts = self(left, right, gamma)
        return gamma, parts, weight


def weigh(records, config, comparisons, fs, left, right, gamma,
          household_decisions: pd.DataFrame | None = None,
          stats: FieldStats | None = None) -> Weighed:
    """Field weights of the candidate pairs, then the household step
    (:func:`linkage.core.household.household_step`) with the job's settings: every engine and
    ``linkage add`` weigh pairs here (``stats``: as :class:`FieldScorer`)."""
    scorer = FieldScorer(records, config, comparisons, fs, stats)
    weight, parts = scorer(left, right, gamma)
    return household_step(records, config, scorer, left, right, gamma, parts, weight,
                          household_decisions)


def household_step(records, config, scorer: FieldScorer, left, right, gamma, parts,
                   weight, household_decisions: pd.DataFrame | None = None) -> Weighed:
    """The household step over scored pairs (only those at or above the review threshold
    matter, see :mod:`linkage.core.household`), honouring reviewers' decisions on
    correspondences; a no-op when the config turns it off."""
    milk = tuple(sorted(scorer.names.milk_names))
    if not config.household.enabled:
        n = len(left)
        return Weighed(left, right, gamma, parts, np.zeros(n), weight, np.zeros(n, dtype=bool),
                       np.full(n, "", dtype=object), pd.DataFrame(), None, milk_names=milk)
    result = household.household_step(records, scorer.authority, left, right, gamma, parts, weight,
                                      scorer.fs, household_params(config),
                                      scorer.compare_and_score, scorer.fs.household_prior,
                                      household_decisions)
    if scorer.fs.household_prior is None and np.isfinite(result.prior):
        scorer.fs.household_prior = float(result.prior)  # saved with the model, for `add`
    kinds = result.correspondences.get("kind", pd.Series([], dtype=object))
    rule = blocking.RuleReport("household", result.member_pairs, result.added,
                               int((~kinds.isin(["dropped", "rejected"])).sum()), 0, 0)
    # In position order, as the blocking rules give pairs: clustering breaks ties by order,
    # and an engine that kept fewer pairs then gets the same order.
    order = np.argsort(blocking.pack(result.left, result.right, len(records)), kind="stable")
    added = np.arange(len(result.left)) >= len(left)
    return Weighed(result.left[order], result.right[order], result.gamma[order],
                   result.parts[order], result.bits[order], result.weight[order],
                   result.cannot[order], result.note[order], result.correspondences, rule,
                   result.prior, added[order], milk)


def household_params(config: JobConfig) -> household.Params:
    """The job's household settings with its thresholds as weights (bits)."""
    return household.Params(strong=threshold_weight(config.match_threshold),
                            review=threshold_weight(config.review_threshold),
                            penalty=config.household.penalty,
                            relation_bits=config.household.relation_bits,
                            max_members=config.household.max_members)


def threshold_weight(probability: float) -> float:
    """The match weight (bits) of a probability threshold."""
    return float(np.log2(probability / (1 - probability)))


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
