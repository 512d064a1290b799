"""Robust statistics over runs and test tasks (Agarwal et al. 2021, "Deep RL at the edge of the statistical
precipice"), with numpy and scipy only.

Scores come as a matrix: one row per run (seed), one column per test task (a final evaluation's return or 0/100
success). :func:`iqm` is the interquartile mean of all its entries; :func:`stratified_bootstrap_ci` resamples the
runs with replacement within each task (rliable's stratified bootstrap) and takes percentile intervals, so an
interval of percentages never leaves [0, 100]; :func:`probability_of_improvement` is the chance that a run of X
beats a run of Y on a task, averaged over tasks (the Mann-Whitney U statistic, ties counting one half);
:func:`cvar` is the mean over the worst ``alpha`` share of tasks of the runs' mean scores.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy import stats


def iqm(scores: np.ndarray) -> float:
    """Interquartile mean of all the entries: the mean of the middle 50% (scipy's 25%-trimmed mean)."""
    return float(stats.trim_mean(np.asarray(scores, dtype=float).ravel(), 0.25))


def stratified_bootstrap_ci(
    scores: np.ndarray,
    statistic: Callable[[np.ndarray], float] = iqm,
    level: float = 0.95,
    reps: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile interval of ``statistic`` over bootstrap resamples of the runs, drawn within each task.

    :param scores: runs x tasks
    """
    scores = np.asarray(scores, dtype=float)
    runs, tasks = scores.shape
    rng = np.random.default_rng(seed)
    picks = rng.integers(runs, size=(reps, runs, tasks))  # per resample, per task: which runs
    values = np.array([statistic(np.take_along_axis(scores, pick, axis=0)) for pick in picks])
    tail = (1.0 - level) / 2
    return float(np.quantile(values, tail)), float(np.quantile(values, 1.0 - tail))


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> float:
    """P(a run of X scores above a run of Y on the same task), averaged over tasks; ties count one half.

    :param x: runs x tasks of one algorithm
    :param y: runs x tasks of the other (the same tasks)
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    per_task = []
    for task in range(x.shape[1]):
        a, b = x[:, task][:, None], y[:, task][None, :]
        per_task.append(float(np.mean((a > b) + 0.5 * (a == b))))
    return float(np.mean(per_task))


def cvar(scores: np.ndarray, alpha: float = 0.1) -> float:
    """Conditional value at risk: the mean, over the worst ``ceil(alpha * tasks)`` tasks, of the runs' mean score."""
    per_task = np.sort(np.asarray(scores, dtype=float).mean(axis=0))
    return float(per_task[: max(1, math.ceil(alpha * len(per_task)))].mean())


def performance_profile(scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """The share of all runs x tasks scores above each threshold (a run-score distribution)."""
    flat = np.asarray(scores, dtype=float).ravel()
    return np.array([float(np.mean(flat > tau)) for tau in np.asarray(thresholds, dtype=float)])
