"""Training from pattern counts: the local engine's EM sessions without the pairs on the driver.

Spark reduces every candidate pair to its comparison pattern and the blocking rules whose keys
it agrees on, and counts them; a few thousand rows reach the driver. The EM here is
:func:`linkage.model.train_sessions` (``train_em`` with u fixed, then ``fit_prior``) run on
(distinct pattern, count) instead of one row per pair; it uses the model module's private
helpers (``_initial_m``, ``_log_likelihoods``, ``_level_mass``) so the arithmetic is the same,
and the Spark tests check that both engines give the same parameters.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from linkage import model, scoring, standardise
from linkage.config import JobConfig
from matchers.base import MISSING, Comparison


def level_counts(patterns: pd.DataFrame,
                 comparisons: list[Comparison]) -> dict[str, dict[str, int]]:
    """Per comparison and level (``missing`` first), how many candidate pairs have it."""
    out = {}
    for k, c in enumerate(comparisons):
        per = patterns.groupby(f"g{k}")["count"].sum()
        out[c.name] = {lab: int(per.get(level, 0))
                       for level, lab in enumerate(["missing", *c.labels], start=-1)}
    return out


def involved_comparisons(config: JobConfig, comparisons: list[Comparison]) -> list[set[int]]:
    """Per blocking rule, the comparisons its keys carry information into (as ``sessions``)."""
    fields = {f for s in config.sources for f in s.fields}
    carried = standardise.column_fields(fields)
    comp_fields = [set().union(*(carried.get(col, set()) for col in c.columns))
                   for c in comparisons]
    out = []
    for rule in config.blocking:
        rule_fields = set().union(*(carried.get(k, set()) for k in rule.keys))
        out.append({k for k, f in enumerate(comp_fields) if f & rule_fields})
    return out


def train_on_patterns(
    patterns: pd.DataFrame,
    records: pd.DataFrame,
    config: JobConfig,
    comparisons: list[Comparison],
) -> model.FSModel:
    """u from random pairs, m from one EM session per rule, the prior over all candidates."""
    t = config.training
    max_iterations, tolerance = t["em_max_iterations"], t["em_tolerance"]
    gamma = patterns[[f"g{k}" for k in range(len(comparisons))]].to_numpy(dtype=np.int8)
    rules = patterns["rules"].to_numpy(dtype=np.int64)
    counts = patterns["count"].to_numpy(dtype=np.float64)
    candidates = int(patterns["count"].sum())

    source_codes = pd.factorize(records["source"])[0]
    u = model.estimate_u(records, comparisons, t["u_sample_pairs"], t["seed"],
                         scoring.pair_filter(source_codes, config.link_type))
    involved = involved_comparisons(config, comparisons)
    estimates: list[list[np.ndarray]] = [[] for _ in comparisons]
    iterations = 0
    unforced = gamma.copy()
    for i, rule_involved in enumerate(involved):
        mask = (rules >> i) & 1 == 1
        for k in rule_involved:
            unforced[mask, k] = MISSING
        free = [k for k in range(len(comparisons)) if k not in rule_involved]
        if counts[mask].sum() < 50 or not free:
            continue
        uniq, weights = merge_patterns(gamma[mask][:, free], counts[mask])
        m_free, its = em_m(uniq, weights, [comparisons[k] for k in free], [u[k] for k in free],
                           max_iterations, tolerance)
        iterations += its
        for k, mk in zip(free, m_free):
            estimates[k].append(mk)
    m = [np.mean(e, axis=0) if e else model._initial_m(len(c.labels))
         for e, c in zip(estimates, comparisons)]
    prior = fit_prior(*merge_patterns(unforced, counts), m, u, max_iterations, tolerance)
    total = scoring.total_pairs(records["source"], config.link_type)
    if total:
        prior = float(np.clip(prior * candidates / total, model.FLOOR, 1 - model.FLOOR))
    return model.FSModel(
        [model.ComparisonParams(c.name, list(c.labels), mk.tolist(), np.asarray(uk).tolist(),
                                c.tf_column, list(c.tf_levels))
         for c, mk, uk in zip(comparisons, m, u)],
        prior, iterations, candidates, "em",
    )


def merge_patterns(gamma: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of ``gamma`` (as :func:`linkage.model.patterns` orders them), summed counts."""
    if gamma.shape[0] == 0:
        return gamma, np.zeros(0)
    uniq, inverse = np.unique(gamma, axis=0, return_inverse=True)
    return uniq, np.bincount(inverse.reshape(-1), weights=counts, minlength=len(uniq))


def em_m(uniq, counts, comparisons, u, max_iterations=100, tolerance=1e-6):
    """``model.train_em(..., fix_u=True)`` on pattern counts: m per comparison, iterations."""
    m = [model._initial_m(len(c.labels)) for c in comparisons]
    u = [np.asarray(x, dtype=float) for x in u]
    prior = 0.3
    iterations = 0
    for iterations in range(1, max_iterations + 1):
        log_m = model._log_likelihoods(uniq, m)
        log_u = model._log_likelihoods(uniq, u)
        logit = np.log(prior) - np.log1p(-prior) + log_m - log_u
        post = 1 / (1 + np.exp(-np.clip(logit, -700, 700)))
        new_m = model._level_mass(uniq, post * counts, comparisons, 1e-3, None)
        new_prior = float(np.clip((post * counts).sum() / counts.sum(), model.FLOOR,
                                  1 - model.FLOOR))
        change = max(max(np.abs(a - b).max() for a, b in zip(new_m + u, m + u)),
                     abs(new_prior - prior))
        m, prior = new_m, new_prior
        if change < tolerance:
            break
    return m, iterations


def fit_prior(uniq, counts, m, u, max_iterations=100, tolerance=1e-6) -> float:
    """``model.fit_prior`` on pattern counts."""
    ratio = model._log_likelihoods(uniq, m) - model._log_likelihoods(uniq, u)
    prior = 0.1
    for _ in range(max_iterations):
        logit = np.log(prior) - np.log1p(-prior) + ratio
        post = 1 / (1 + np.exp(-np.clip(logit, -700, 700)))
        new = float(np.clip((post * counts).sum() / counts.sum(), model.FLOOR, 1 - model.FLOOR))
        if abs(new - prior) < tolerance:
            return new
        prior = new
    return prior
