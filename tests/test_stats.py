"""Robust statistics against hand-computed values and simulated data."""

import numpy as np
import pytest

from students.analysis.stats import cvar, iqm, probability_of_improvement, stratified_bootstrap_ci


def test_iqm_is_the_mean_of_the_middle_half():
    assert iqm(np.array([[1, 2, 3, 4], [5, 6, 7, 100]])) == pytest.approx((3 + 4 + 5 + 6) / 4)
    assert iqm(np.arange(12)) == pytest.approx(np.mean(np.arange(3, 9)))


def test_probability_of_improvement_of_known_cases():
    x = np.array([[3.0, 1.0], [4.0, 1.0]])
    y = np.array([[1.0, 1.0], [2.0, 1.0]])
    assert probability_of_improvement(x, y) == pytest.approx((1.0 + 0.5) / 2)  # task 1: always; task 2: ties
    assert probability_of_improvement(y, x) == pytest.approx((0.0 + 0.5) / 2)
    rng = np.random.default_rng(0)  # N(1, 1) vs N(0, 1): P(X > Y) = Phi(1 / sqrt(2)) = 0.760
    a, b = rng.normal(1.0, 1.0, (400, 3)), rng.normal(0.0, 1.0, (400, 3))
    assert probability_of_improvement(a, b) == pytest.approx(0.760, abs=0.02)


def test_cvar_averages_the_worst_tasks():
    scores = np.array([[10.0, 0.0, 5.0, 100.0], [20.0, 0.0, 7.0, 100.0]])  # task means 15, 0, 6, 100
    assert cvar(scores, 0.25) == 0.0
    assert cvar(scores, 0.5) == pytest.approx(3.0)
    assert cvar(scores, 1.0) == pytest.approx(121 / 4)


def test_bootstrap_interval_covers_the_true_mean_at_about_the_nominal_rate_and_stays_in_range():
    rng = np.random.default_rng(1)
    covered = 0
    for trial in range(200):
        scores = rng.normal(50.0, 10.0, (10, 4))
        low, high = stratified_bootstrap_ci(scores, np.mean, reps=300, seed=trial)
        covered += low <= 50.0 <= high
    assert 0.85 <= covered / 200 <= 0.99  # percentile intervals of 10 runs run a little narrow
    successes = 100.0 * (rng.random((3, 20)) < 0.97)
    low, high = stratified_bootstrap_ci(successes, np.mean, reps=500)
    assert 0.0 <= low <= high <= 100.0  # a percentage's interval never leaves [0, 100]


def test_performance_profile_counts_scores_above_each_threshold():
    from students.analysis.stats import performance_profile

    scores = np.array([[0.0, 10.0, 20.0], [30.0, 40.0, 50.0]])
    np.testing.assert_allclose(performance_profile(scores, [-1.0, 10.0, 45.0, 50.0]), [1.0, 4 / 6, 1 / 6, 0.0])


def test_pairwise_improvement_table_is_antisymmetric_and_matches_known_cases():
    import pandas as pd

    from students.analysis.report import pairwise_improvement_table

    runs = pd.DataFrame({"teacher": ["a", "a", "b", "b"], "returns": [(3.0, 1.0), (4.0, 1.0), (1.0, 1.0), (2.0, 1.0)]})
    lines = pairwise_improvement_table(runs)
    assert "| a | - | 0.75 |" in lines and "| b | 0.25 | - |" in lines  # task 1: a always wins; task 2: ties
    assert pairwise_improvement_table(runs[runs["teacher"] == "a"]) == []
