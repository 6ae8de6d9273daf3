import itertools
import math

import numpy as np
import pytest

from prend.experiments.diagnose import decay_ratio, oscillation_cv, pairwise_distances, reward_differences
from prend.experiments.scores import ATARI_SCORES, human_normalized, reference_scores
from prend.experiments.stats import (
    interval_estimate,
    iqm,
    mean_score,
    median_score,
    normalized_auc,
    seed_interval,
    stratified_bootstrap,
    upper_triangle_correlation,
)


def test_iqm_worked_example():
    # Two games x four runs; pooled and sorted: 1 2 | 3 4 10 20 | 30 40. Cutting 25% (2 values) from each
    # end leaves 3, 4, 10, 20, whose mean is 37 / 4 = 9.25.
    scores = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [4.0, 40.0]])
    assert iqm(scores) == pytest.approx(9.25)
    assert mean_score(scores) == pytest.approx(13.75)
    assert median_score(scores) == pytest.approx(7.0)


def test_stratified_bootstrap_matches_the_hand_computed_distribution():
    # Game A has runs {0, 1}, game B runs {2, 3}. A stratified resample keeps two runs of each game, so the
    # sorted pooled sample is (A, A, B, B) and its IQM, the mean of the middle two, is (max A + min B) / 2.
    # max A = 0 w.p. 1/4 (both draws 0), 1 w.p. 3/4; min B = 2 w.p. 3/4, 3 w.p. 1/4. Hence
    # IQM = 1 w.p. 3/16, 1.5 w.p. 1/16 + 9/16 = 10/16, 2 w.p. 3/16: a 95% percentile interval [1, 2].
    per_game = [np.array([0.0, 1.0]), np.array([2.0, 3.0])]
    boot = stratified_bootstrap(per_game, iqm, reps=40_000, seed=1)
    values, counts = np.unique(boot, return_counts=True)
    assert values.tolist() == [1.0, 1.5, 2.0]
    np.testing.assert_allclose(counts / counts.sum(), [3 / 16, 10 / 16, 3 / 16], atol=0.01)
    point, low, high = interval_estimate(per_game, iqm, reps=40_000, seed=1)
    assert (point, low, high) == (1.5, 1.0, 2.0)
    # An unstratified bootstrap of the pooled runs could draw e.g. {0, 0, 0, 1}, whose IQM (0) never occurs here.
    assert boot.min() == 1.0


def test_bootstrap_of_a_generic_statistic_agrees_with_exact_enumeration():
    per_game = [np.array([0.0, 5.0, 7.0]), np.array([1.0, 2.0])]
    exact = []
    for a in itertools.product(per_game[0], repeat=3):
        for b in itertools.product(per_game[1], repeat=2):
            exact.append(np.median(np.concatenate([a, b])))
    boot = stratified_bootstrap(per_game, median_score, reps=20_000, seed=0)
    assert boot.mean() == pytest.approx(np.mean(exact), abs=0.05)


def test_interval_estimate_drops_nans_and_empty_games():
    point, low, high = interval_estimate([np.array([1.0, np.nan, 3.0]), np.array([np.nan])], mean_score, reps=500)
    assert point == 2.0 and low >= 1.0 and high <= 3.0
    assert all(math.isnan(v) for v in interval_estimate([np.array([np.nan])], iqm, reps=500))


def test_agrees_with_rliable_when_it_is_installed():
    # scripts/test.sh installs the `rliable` extra, so this runs in CI; a bare `pip install -e .[dev]` skips it.
    rly = pytest.importorskip("rliable.library")
    metrics = pytest.importorskip("rliable.metrics")
    # The worked example (runs x games): rliable's percentile CI is exactly [1, 2] as worked out by hand above.
    example = np.array([[0.0, 2.0], [1.0, 3.0]])
    estimates, intervals = rly.get_interval_estimates({"m": example},
                                                      lambda x: np.array([metrics.aggregate_iqm(x)]), reps=20_000)
    assert float(estimates["m"][0]) == 1.5 and intervals["m"][:, 0].tolist() == [1.0, 2.0]
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(5, 3))
    estimates, intervals = rly.get_interval_estimates({"m": scores}, lambda x: np.array([metrics.aggregate_iqm(x)]),
                                                      reps=20_000)
    point, low, high = interval_estimate(list(scores.T), iqm, reps=20_000)
    assert point == pytest.approx(float(estimates["m"][0]))
    assert low == pytest.approx(float(intervals["m"][0, 0]), abs=0.05)
    assert high == pytest.approx(float(intervals["m"][1, 0]), abs=0.05)


def test_seed_interval_is_the_student_t_interval():
    mean, half = seed_interval(np.array([[1.0, 5.0], [3.0, 5.0], [5.0, np.nan]]))
    # column 0: mean 3, sd 2, n 3: t(0.975, 2) = 4.3027 -> 4.3027 * 2 / sqrt(3)
    assert mean[0] == 3.0 and half[0] == pytest.approx(4.302653 * 2 / math.sqrt(3), rel=1e-5)
    assert mean[1] == 5.0 and half[1] == 0.0
    mean, half = seed_interval(np.array([[2.0]]))
    assert mean[0] == 2.0 and math.isnan(half[0])


def test_normalized_auc_skips_the_nan_prefix():
    frames = np.array([0.0, 100.0, 200.0, 300.0])
    assert normalized_auc(frames, np.array([np.nan, 0.0, 2.0, 2.0])) == pytest.approx(1.5)
    assert math.isnan(normalized_auc(frames, np.full(4, np.nan)))


def test_correlation_of_synthetic_matrices_with_known_answers():
    v = np.array([0.0, 1.0, 2.0])
    d = pairwise_distances(v[:, None])
    # Pairs (0,1), (0,2), (1,2): distances 1, 2, 1; rewards 0, 2, 1 give |dr| = 2, 1, 1. By hand: both have
    # mean 4/3, deviations (-1/3, 2/3, -1/3) and (2/3, -1/3, -1/3), covariance -3/9, variances 6/9: r = -0.5.
    result = upper_triangle_correlation(reward_differences(np.array([0.0, 2.0, 1.0])), d)
    assert result["pearson"] == pytest.approx(-0.5) and result["pairs"] == 3
    # A reward affine in a 1-D state: |dr| = 3 d exactly, so r = 1 (and Spearman too).
    x = np.arange(7.0)
    result = upper_triangle_correlation(reward_differences(5 - 3 * x), pairwise_distances(x[:, None]))
    assert result["pearson"] == pytest.approx(1.0) and result["spearman"] == pytest.approx(1.0)
    # Constant rewards: undefined.
    assert math.isnan(upper_triangle_correlation(reward_differences(np.ones(5)), pairwise_distances(x[:5, None]))
                      ["pearson"])


def test_decay_and_oscillation():
    assert decay_ratio(np.array([4.0, 4.0, 2.0, 2.0, 1.0, 1.0]), 1 / 3) == pytest.approx(0.25)
    smooth = np.exp(-np.linspace(0, 3, 100))
    jumpy = smooth * (1 + 0.5 * (-1) ** np.arange(100))
    assert oscillation_cv(smooth) < 0.01 < 0.3 < oscillation_cv(jumpy)
    assert math.isnan(decay_ratio(np.array([np.nan, 1.0]))) and math.isnan(oscillation_cv(np.ones(3)))


def test_human_normalized_scores():
    assert len(ATARI_SCORES) == 57
    assert reference_scores("Riverraid") == (1338.5, 17118.0)
    assert human_normalized("ALE/Boxing-v5", 6.1) == pytest.approx(0.5)
    assert math.isnan(human_normalized("CartPole-v1", 10.0))
