"""EM must recover known m and u from simulated comparison vectors (convergence test)."""
import numpy as np
import pytest

from linkage.core.model import (
    BANDS,
    FSModel,
    bands,
    count_levels,
    patterns,
    probability,
    score,
    train_em,
    train_sessions,
)
from matchers.base import MISSING, Comparison, Level


def _comparison(name, n_levels):
    levels = tuple(Level(f"l{i}", lambda a, b: np.zeros(len(a), bool)) for i in range(n_levels - 1))
    return Comparison(name, ("x",), levels, lambda a, b: np.zeros(len(a), bool))


def _simulate(rng, n, prior, m, u, missing_rate=0.05):
    is_match = rng.random(n) < prior
    gamma = np.empty((n, len(m)), dtype=np.int8)
    for k, (mk, uk) in enumerate(zip(m, u)):
        gamma[is_match, k] = rng.choice(len(mk), size=is_match.sum(), p=mk)
        gamma[~is_match, k] = rng.choice(len(uk), size=(~is_match).sum(), p=uk)
        gamma[rng.random(n) < missing_rate, k] = MISSING
    return gamma, is_match


def test_em_recovers_known_parameters():
    rng = np.random.default_rng(1)
    m = [np.array([0.85, 0.1, 0.05]), np.array([0.9, 0.07, 0.03]), np.array([0.8, 0.15, 0.05]),
         np.array([0.95, 0.05])]
    u = [np.array([0.01, 0.09, 0.9]), np.array([0.02, 0.08, 0.9]), np.array([0.05, 0.15, 0.8]),
         np.array([0.5, 0.5])]
    gamma, _ = _simulate(rng, 200_000, 0.2, m, u)
    comps = [_comparison(f"c{k}", len(mk)) for k, mk in enumerate(m)]
    model = train_em(gamma, comps, u, max_iterations=200, tolerance=1e-8)
    assert model.prior == pytest.approx(0.2, abs=0.01)
    for fitted, true in zip(model.comparisons, m):
        np.testing.assert_allclose(fitted.m, true, atol=0.02)


def test_scores_separate_matches_and_model_round_trips(tmp_path):
    rng = np.random.default_rng(2)
    m = [np.array([0.9, 0.08, 0.02]), np.array([0.9, 0.1])]
    u = [np.array([0.01, 0.04, 0.95]), np.array([0.1, 0.9])]
    gamma, truth = _simulate(rng, 50_000, 0.1, m, u, missing_rate=0.0)
    comps = [_comparison("name", 3), _comparison("id", 2)]
    model = train_em(gamma, comps, u)
    weight, parts = score(gamma, model)
    assert parts.shape == (len(gamma), 2)
    assert probability(weight)[truth].mean() > 0.8 > probability(weight)[~truth].mean()
    model.save(tmp_path / "model.json")
    again = FSModel.load(tmp_path / "model.json")
    np.testing.assert_allclose(score(gamma, again)[0], weight)


def test_missing_level_carries_no_weight():
    comps = [_comparison("a", 2)]
    model = train_em(np.array([[0], [1], [MISSING]], dtype=np.int8), comps, [np.array([0.1, 0.9])])
    _, parts = score(np.array([[MISSING]], dtype=np.int8), model)
    assert parts[0, 0] == 0


def test_sessions_recover_m_when_blocking_makes_non_matches_agree():
    """Pairs blocked on comparison 0 all agree on it; its session must not learn from it."""
    rng = np.random.default_rng(3)
    m = [np.array([0.9, 0.1]), np.array([0.85, 0.1, 0.05]), np.array([0.9, 0.1])]
    u = [np.array([0.02, 0.98]), np.array([0.01, 0.04, 0.95]), np.array([0.05, 0.95])]
    gamma, is_match = _simulate(rng, 100_000, 0.05, m, u, missing_rate=0.0)
    gamma[:, 0] = 0  # the blocking key: everyone in the block agrees
    comps = [_comparison(f"c{k}", len(mk)) for k, mk in enumerate(m)]
    mask = np.ones(len(gamma), dtype=bool)
    model = train_sessions(gamma, comps, u, [("rule", mask, {0})], total_pairs=len(gamma) * 100)
    for k in (1, 2):
        np.testing.assert_allclose(model.comparisons[k].m, m[k], atol=0.03)
    assert model.prior == pytest.approx(0.05 / 100, rel=0.3)


def test_training_on_pattern_counts_is_training_on_pairs():
    """Spark trains on (distinct levels and rule agreement, count) in whatever order Spark
    returns them; the local engine on one row per pair. One training: the same model, bit
    for bit."""
    rng = np.random.default_rng(5)
    m = [np.array([0.85, 0.1, 0.05]), np.array([0.9, 0.1]), np.array([0.7, 0.2, 0.05, 0.05])]
    u = [np.array([0.05, 0.15, 0.8]), np.array([0.3, 0.7]), np.array([0.1, 0.1, 0.2, 0.6])]
    gamma, _ = _simulate(rng, 20_000, 0.2, m, u)
    comps = [_comparison(f"c{k}", len(mk)) for k, mk in enumerate(m)]
    agree = np.stack([gamma[:, 0] == 0, gamma[:, 1] == 0, rng.random(len(gamma)) < 0.01], axis=1)
    involved = [{0}, {1}, {2}]  # the last rule has too few pairs for a session
    by_pair = train_sessions(gamma, comps, u, [(f"r{i}", agree[:, i], involved[i])
                                                for i in range(3)], 200, 1e-9, 20_000 * 40)

    uniq, counts = patterns(np.column_stack([gamma, agree.astype(np.int8)]))
    shuffled = rng.permutation(len(uniq))
    uniq, counts = uniq[shuffled], counts[shuffled]
    assert counts.sum() == len(gamma) and len(uniq) < 200
    by_pattern = train_sessions(uniq[:, :3], comps, u, [(f"r{i}", uniq[:, 3 + i] == 1, involved[i])
                                                        for i in range(3)], 200, 1e-9,
                                20_000 * 40, counts=counts)
    assert by_pattern.to_dict() == by_pair.to_dict()
    assert by_pattern.em_iterations > 0 and by_pattern.trained_on_pairs == len(gamma)


def test_patterns_with_counts_sum_the_counts_of_equal_rows():
    gamma = np.array([[1, -1], [0, 2], [1, -1], [0, 0]], dtype=np.int8)
    uniq, counts = patterns(gamma, np.array([3.0, 1.0, 2.0, 5.0]))
    np.testing.assert_array_equal(uniq, [[0, 0], [0, 2], [1, -1]])
    np.testing.assert_array_equal(counts, [5.0, 1.0, 5.0])
    plain_uniq, plain_counts = patterns(gamma)
    np.testing.assert_array_equal(plain_uniq, uniq)
    np.testing.assert_array_equal(plain_counts, [1.0, 1.0, 2.0])


def test_count_levels_puts_missing_first_and_weighs_patterns():
    levels = np.array([0, 2, MISSING, 2, 1], dtype=np.int8)
    np.testing.assert_array_equal(count_levels(levels, 3), [1, 1, 1, 2])
    np.testing.assert_array_equal(count_levels(levels, 3, np.array([1., 2., 3., 4., 5.])),
                                  [3., 1., 5., 6.])


def test_bands_by_thresholds_and_reviewers_overrule():
    prob = np.array([0.99, 0.95, 0.94, 0.5, 0.49, 0.99, 0.1])
    decision = np.array(["", "", "", "", "", "non_match", "match"], dtype=object)
    assert bands(prob, 0.95, 0.5).tolist() == [0, 0, 1, 1, 2, 0, 2]
    assert bands(prob, 0.95, 0.5, decision).tolist() == [0, 0, 1, 1, 2, 2, 0]
    assert BANDS[0] == "match" and BANDS[2] == "non_match"
