"""Fellegi-Sunter scoring: m and u per comparison level, EM, term frequencies, explanations.

u comes from random record pairs (almost all non-matches, so they describe non-matches). m comes
from EM sessions, one per blocking rule, as Splink does: inside the pairs a rule generated, the
comparisons on the rule's own fields agree by construction and say nothing, so each session
estimates m only for the other comparisons. Reviewers' labels, where there are any, sharpen m.
EM runs on the distinct comparison patterns with their counts, so ten million pairs with a few
thousand patterns train in milliseconds. The trained model is plain JSON with m and u beside
each level.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from matchers.base import MISSING, Comparison, as_objects, column_at

SCHEMA_VERSION = 1
FLOOR = 1e-6


@dataclass
class ComparisonParams:
    name: str
    labels: list[str]
    m: list[float]
    u: list[float]
    tf_column: str | None = None
    tf_levels: list[str] = field(default_factory=list)

    def weights(self) -> np.ndarray:
        """log2(m/u) per level, plus a final 0 for MISSING (indexed by level -1)."""
        m = np.clip(np.asarray(self.m, dtype=float), FLOOR, 1)
        u = np.clip(np.asarray(self.u, dtype=float), FLOOR, 1)
        return np.append(np.log2(m / u), 0.0)


@dataclass
class FSModel:
    comparisons: list[ComparisonParams]
    prior: float  # share of candidate pairs that are matches
    em_iterations: int = 0
    trained_on_pairs: int = 0
    m_source: str = "em"
    household_prior: float | None = None  # share of household-assigned pairs that match


    @property
    def prior_weight(self) -> float:
        p = min(max(self.prior, FLOOR), 1 - FLOOR)
        return float(np.log2(p / (1 - p)))

    def to_dict(self) -> dict:
        return {
            "schema_version": SCHEMA_VERSION,
            "prior": self.prior,
            "em_iterations": self.em_iterations,
            "trained_on_pairs": self.trained_on_pairs,
            "m_source": self.m_source,
            **({"household_prior": self.household_prior}
               if self.household_prior is not None else {}),
            "comparisons": [
                {
                    "name": c.name,
                    "tf_column": c.tf_column,
                    "tf_levels": c.tf_levels,
                    "levels": [
                        {"label": lab, "m": m, "u": u, "weight": w}
                        for lab, m, u, w in zip(c.labels, c.m, c.u, c.weights()[:-1].tolist())
                    ],
                }
                for c in self.comparisons
            ],
        }

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=2), encoding="utf-8")

    @classmethod
    def from_dict(cls, data: dict) -> FSModel:
        if data.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(
                f"model schema_version {data.get('schema_version')!r} is not {SCHEMA_VERSION}; "
                "retrain"
            )
        comps = [
            ComparisonParams(
                name=c["name"],
                labels=[lv["label"] for lv in c["levels"]],
                m=[lv["m"] for lv in c["levels"]],
                u=[lv["u"] for lv in c["levels"]],
                tf_column=c.get("tf_column"),
                tf_levels=list(c.get("tf_levels") or []),
            )
            for c in data["comparisons"]
        ]
        return cls(comps, data["prior"], data.get("em_iterations", 0),
                   data.get("trained_on_pairs", 0), data.get("m_source", "em"),
                   data.get("household_prior"))

    @classmethod
    def load(cls, path: Path) -> FSModel:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def check_matches(self, comparisons: list[Comparison]) -> None:
        """A loaded model must describe exactly the configured comparisons and levels."""
        mine = [(c.name, c.labels) for c in self.comparisons]
        theirs = [(c.name, list(c.labels)) for c in comparisons]
        if mine != theirs:
            raise ValueError(f"model comparisons {mine} do not match the config's {theirs}")


def count_levels(levels: np.ndarray, n_levels: int, counts: np.ndarray | None = None
                 ) -> np.ndarray:
    """How many pairs have each level of one comparison, MISSING first: index 0 counts
    MISSING, index i + 1 level i. With ``counts``, ``levels`` are distinct patterns and each
    stands for that many pairs (the Spark engine's pattern counts)."""
    shifted = levels.astype(np.int64) + 1  # MISSING (-1) lands at 0
    return np.bincount(shifted, weights=counts, minlength=n_levels + 1)[:n_levels + 1]


def estimate_u(
    records: pd.DataFrame,
    comparisons: list[Comparison],
    sample_pairs: int,
    seed: int,
    valid_pair=None,
) -> list[np.ndarray]:
    """u per level from random record pairs: almost every random pair is two different people."""
    from linkage.core.compare import comparison_vectors

    n = len(records)
    rng = np.random.default_rng(seed)
    size = int(min(sample_pairs, max(n * (n - 1) // 2, 1)))
    left = rng.integers(0, n, size=size, dtype=np.int64).astype(np.int32)
    right = rng.integers(0, n, size=size, dtype=np.int64).astype(np.int32)
    keep = left != right
    if valid_pair is not None:
        keep &= valid_pair(left, right)
    gamma = comparison_vectors(records, comparisons, left[keep], right[keep])
    out = []
    for k, c in enumerate(comparisons):
        counts = count_levels(gamma[:, k], len(c.labels))[1:].astype(float)
        out.append((counts + 0.5) / (counts.sum() + 0.5 * len(counts)))
    return out


def _initial_m(n_levels: int) -> np.ndarray:
    """Start EM believing matches mostly agree: mass falls geometrically down the levels."""
    m = 0.5 ** np.arange(1, n_levels + 1)
    m[-1] = 0.05  # 'different'
    return m / m.sum()


def patterns(gamma: np.ndarray, counts: np.ndarray | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
    """Distinct comparison vectors (in lexicographic order) and how many pairs have each.

    With ``counts``, each row of ``gamma`` already stands for that many pairs (the Spark
    engine's pattern counts, or a subset of their columns) and the counts are summed.

    Rows are packed into one int64 each (levels are small), so finding the distinct patterns
    of ten million pairs is one integer sort rather than a row-wise lexsort.
    """
    if gamma.shape[0] == 0:
        return gamma, np.zeros(0)
    shifted = gamma.astype(np.int64) + 1  # MISSING (-1) becomes 0
    radix = np.maximum(shifted.max(axis=0) + 1, 1)
    if float(np.prod(radix.astype(float))) >= 2**62:
        uniq, inverse, n = np.unique(gamma, axis=0, return_inverse=True, return_counts=True)
        if counts is None:
            return uniq, n.astype(float)
        return uniq, np.bincount(inverse.reshape(-1), weights=counts, minlength=len(uniq))
    code = np.zeros(len(gamma), dtype=np.int64)
    for k in range(gamma.shape[1]):
        code = code * radix[k] + shifted[:, k]
    if counts is None:
        code = np.sort(code)  # sort + mask: np.unique is several times slower on big int arrays
    else:
        order = np.argsort(code, kind="stable")
        code = code[order]
    starts = np.flatnonzero(np.r_[True, code[1:] != code[:-1]])
    codes = code[starts]
    if counts is None:
        counts = np.diff(np.r_[starts, code.size])
    else:
        # Whole numbers of pairs: their float sum is exact in any order.
        counts = np.add.reduceat(np.asarray(counts, dtype=float)[order], starts)
    uniq = np.empty((len(codes), gamma.shape[1]), dtype=gamma.dtype)
    rest = codes.copy()
    for k in range(gamma.shape[1] - 1, -1, -1):
        uniq[:, k] = rest % radix[k] - 1
        rest //= radix[k]
    return uniq, counts.astype(float)


def _log_likelihoods(uniq: np.ndarray, probs: list[np.ndarray]) -> np.ndarray:
    total = np.zeros(len(uniq))
    for k, p in enumerate(probs):
        logp = np.append(np.log(np.clip(p, FLOOR, 1)), 0.0)  # MISSING contributes nothing
        total += logp[uniq[:, k]]
    return total


def train_sessions(
    gamma: np.ndarray,
    comparisons: list[Comparison],
    u: list[np.ndarray],
    sessions: list[tuple[str, np.ndarray, set[int]]],
    max_iterations: int = 100,
    tolerance: float = 1e-6,
    total_pairs: float | None = None,
    counts: np.ndarray | None = None,
) -> FSModel:
    """m from one EM session per blocking rule, then the prior over all candidates.

    ``sessions`` holds (rule name, mask of the candidate pairs it generated, indices of the
    comparisons its keys involve). m per comparison is the mean over the sessions that could
    estimate it. The prior is then fitted on all candidates with m and u fixed (hiding, for each
    pair, the comparisons its own rules forced to agree) and turned into the prior of a random
    record pair (``total_pairs``), which is what fixed random-pair u needs.

    ``gamma`` holds one row per candidate pair, or (with ``counts``) distinct rows each standing
    for that many pairs: EM only ever sees distinct patterns with their counts, so both give
    the same model to the last bit.
    """
    pairs = int(gamma.shape[0] if counts is None else counts.sum())
    estimates: list[list[np.ndarray]] = [[] for _ in comparisons]
    iterations = 0
    for _, mask, involved in sessions:
        free = [k for k in range(len(comparisons)) if k not in involved]
        in_session = mask.sum() if counts is None else counts[mask].sum()
        if in_session < 50 or not free:
            continue
        sub = gamma[mask][:, free]
        fitted = train_em(sub, [comparisons[k] for k in free], [u[k] for k in free],
                          max_iterations, tolerance, fix_u=True,
                          counts=None if counts is None else counts[mask])
        iterations += fitted.em_iterations
        for k, params in zip(free, fitted.comparisons):
            estimates[k].append(np.asarray(params.m))
    m = [np.mean(e, axis=0) if e else _initial_m(len(c.labels))
         for e, c in zip(estimates, comparisons)]
    # Agreement a rule forced on its pairs says nothing about them: hide it from the prior too.
    unforced = gamma.copy()
    for _, mask, involved in sessions:
        for k in involved:
            unforced[mask, k] = MISSING
    prior = fit_prior(unforced, m, u, max_iterations, tolerance, counts)
    if total_pairs:
        prior = float(np.clip(prior * pairs / total_pairs, FLOOR, 1 - FLOOR))
    return FSModel(
        [ComparisonParams(c.name, list(c.labels), mk.tolist(), np.asarray(uk).tolist(),
                          c.tf_column, list(c.tf_levels))
         for c, mk, uk in zip(comparisons, m, u)],
        prior, iterations, pairs, "em",
    )


def fit_prior(gamma, m, u, max_iterations: int = 100, tolerance: float = 1e-6,
              counts: np.ndarray | None = None) -> float:
    """Share of matches among the given pairs (rows of ``gamma``, or distinct rows with their
    ``counts``), with m and u held fixed."""
    uniq, counts = patterns(gamma, counts)
    ratio = _log_likelihoods(uniq, m) - _log_likelihoods(uniq, u)
    prior = 0.1
    for _ in range(max_iterations):
        logit = np.log(prior) - np.log1p(-prior) + ratio
        post = 1 / (1 + np.exp(-np.clip(logit, -700, 700)))
        new = float(np.clip((post * counts).sum() / counts.sum(), FLOOR, 1 - FLOOR))
        if abs(new - prior) < tolerance:
            return new
        prior = new
    return prior


def train_em(
    gamma: np.ndarray,
    comparisons: list[Comparison],
    u: list[np.ndarray],
    max_iterations: int = 100,
    tolerance: float = 1e-6,
    initial_prior: float = 0.3,
    fix_u: bool = False,
    u_pseudo_pairs: float = 1000.0,
    counts: np.ndarray | None = None,
) -> FSModel:
    """EM for m, u and the prior over the candidate pairs.

    Candidate pairs are not random pairs: non-matches that share a birth year and a surname
    agree far more often than random ones. So u starts from the random-pair estimate and EM
    refines it on the candidates, held near the random estimate by ``u_pseudo_pairs`` pseudo
    counts (``fix_u`` keeps it as sampled). ``counts``: as in :func:`train_sessions`.
    """
    pairs = int(gamma.shape[0] if counts is None else counts.sum())
    uniq, counts = patterns(gamma, counts)
    m = [_initial_m(len(c.labels)) for c in comparisons]
    u = [np.asarray(x, dtype=float) for x in u]
    u_random = [x.copy() for x in u]
    prior = initial_prior
    iterations = 0
    for iterations in range(1, max_iterations + 1):
        log_m = _log_likelihoods(uniq, m)
        log_u = _log_likelihoods(uniq, u)
        logit = np.log(prior) - np.log1p(-prior) + log_m - log_u
        post = 1 / (1 + np.exp(-np.clip(logit, -700, 700)))
        new_m = _level_mass(uniq, post * counts, comparisons, 1e-3, None)
        new_u = u if fix_u else _level_mass(uniq, (1 - post) * counts, comparisons,
                                            u_pseudo_pairs, u_random)
        new_prior = float(np.clip((post * counts).sum() / counts.sum(), FLOOR, 1 - FLOOR))
        change = max(max(np.abs(a - b).max() for a, b in zip(new_m + new_u, m + u)),
                     abs(new_prior - prior))
        m, u, prior = new_m, new_u, new_prior
        if change < tolerance:
            break
    return FSModel(
        [
            ComparisonParams(c.name, list(c.labels), mk.tolist(), uk.tolist(), c.tf_column,
                             list(c.tf_levels))
            for c, mk, uk in zip(comparisons, m, u)
        ],
        prior,
        iterations,
        pairs,
        "em",
    )


def _level_mass(uniq, weight, comparisons, pseudo, base) -> list[np.ndarray]:
    """Weighted level frequencies per comparison, smoothed towards ``base`` (or uniform)."""
    out = []
    for k, c in enumerate(comparisons):
        col = uniq[:, k]
        present = col != MISSING
        mass = np.bincount(col[present].astype(np.int64), weights=weight[present],
                           minlength=len(c.labels))
        prior = base[k] if base is not None else np.full(len(mass), 1.0 / len(mass))
        mass = mass + pseudo * prior
        out.append(mass / mass.sum())
    return out


def m_from_labels(gamma: np.ndarray, is_match: np.ndarray, model: FSModel) -> FSModel:
    """Blend reviewers' labelled matches into m (labels outvote EM where they exist)."""
    if not is_match.any():
        return model
    comps = []
    for k, c in enumerate(model.comparisons):
        counts = count_levels(gamma[is_match, k], len(c.labels))[1:].astype(float)
        labelled = (counts + 0.5) / (counts.sum() + 0.5 * len(counts))
        share = counts.sum() / (counts.sum() + 50.0)  # 50 labelled pairs weigh as much as EM
        m = share * labelled + (1 - share) * np.asarray(c.m)
        comps.append(ComparisonParams(c.name, c.labels, m.tolist(), c.u, c.tf_column, c.tf_levels))
    return FSModel(comps, model.prior, model.em_iterations, model.trained_on_pairs, "em+labels",
                   model.household_prior)


def term_frequencies(records: pd.DataFrame, column: str) -> pd.Series:
    """Relative frequency of each value of ``column`` among records that have one."""
    return frequencies(term_counts(records, column))


def term_counts(records: pd.DataFrame, column: str) -> pd.Series:
    """Records per value of ``column`` (int64), among records that have one: counts add up
    over sets of records, frequencies do not."""
    values = records[column]
    if isinstance(values.dtype, pd.ArrowDtype):  # counted as the object column it stands for
        values = pd.Series(as_objects(values), index=values.index, name=values.name)
    values = values.dropna()
    values = values[values.astype(str) != ""]
    return values.value_counts().astype(np.int64)


def frequencies(counts: pd.Series) -> pd.Series:
    """Relative frequencies of counted values (as ``value_counts(normalize=True)`` gives them)."""
    return counts / counts.sum()


def score(
    gamma: np.ndarray,
    model: FSModel,
    records: pd.DataFrame | None = None,
    left: np.ndarray | None = None,
    tf_tables: dict[str, pd.Series] | None = None,
    tf_floor: float = 1e-6,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-pair match weight (bits) and per-comparison weights (the explanation)."""
    n, k = gamma.shape
    parts = np.empty((n, k), dtype=np.float32)
    for idx, c in enumerate(model.comparisons):
        parts[:, idx] = c.weights()[gamma[:, idx]]
        if c.tf_column and tf_tables and c.tf_column in tf_tables and records is not None:
            levels = [c.labels.index(lab) for lab in c.tf_levels if lab in c.labels]
            hit = np.isin(gamma[:, idx], levels)
            if hit.any():
                u_level = np.asarray(c.u)[gamma[hit, idx]]
                values = column_at(records, c.tf_column, left[hit])
                table = tf_tables[c.tf_column]
                at = table.index.get_indexer(values)  # -1: a value the table never saw
                freq = np.where(at >= 0, table.to_numpy()[at], tf_floor)
                # Agreeing on a common name is weaker evidence than the average agreement.
                parts[hit, idx] += np.log2(u_level / np.maximum(freq, tf_floor)).astype(np.float32)
    total = parts.sum(axis=1, dtype=np.float64) + model.prior_weight
    return total, parts


def probability(weight: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp2(-np.clip(weight, -60, 60)))


BANDS = ("match", "review", "non_match")  # the names of band codes 0, 1 and 2


def bands(prob: np.ndarray, match_threshold: float, review_threshold: float,
          decision: np.ndarray | None = None) -> np.ndarray:
    """Band code per pair (0 match, 1 review, 2 non-match) from its match probability; a
    reviewer's decision ("match" or "non_match"; anything else is none) overrules the score."""
    band = np.where(prob >= match_threshold, 0,
                    np.where(prob >= review_threshold, 1, 2)).astype(np.int8)
    if decision is not None:
        band[decision == "match"] = 0
        band[decision == "non_match"] = 2
    return band
