"""Covar-GMM (Moulin-Frier et al., 2013): Gaussian mixtures over (task, time, return)."""

from __future__ import annotations

import numpy as np

from curriculum.gmm import GaussianMixture
from curriculum.gmm_teacher import GmmTeacher
from curriculum.spaces import BoxTaskSpace


class CovarGmmTeacher(GmmTeacher):
    """Covar-GMM: a component's learning progress is the covariance of time and return inside it.

    Every ``fit_rate`` episodes, mixtures are fitted on the last ``fit_rate`` points [task, relative time in
    the fit window in [0, 1), normalised return]; a component's progress is its time-return covariance,
    kept if positive (or its absolute value with ``absolute_lp``), and components are chosen in proportion
    to it. Uniform tasks during the first ``fit_rate`` episodes and with probability ``random_task_ratio``.

    Deviations from the reference: tasks normalised to [0, 1] per dimension; vectorised numpy EM.

    :param fit_rate: episodes between two mixture fits; also the size of the fitted window
    :param random_task_ratio: probability of a uniform task once mixtures are fitted
    :param min_k: fewest mixture components tried
    :param max_k: most mixture components tried
    :param criterion: model selection criterion: aic, bic or aicc
    :param absolute_lp: use |covariance| (progress or forgetting) instead of its positive part
    """

    def __init__(
        self,
        task_space: BoxTaskSpace,
        seed: int = 0,
        return_bounds: tuple[float, float] | None = None,
        fit_rate: int = 250,
        random_task_ratio: float = 0.2,
        min_k: int = 2,
        max_k: int = 10,
        criterion: str = "aic",
        absolute_lp: bool = False,
    ) -> None:
        super().__init__(task_space, seed, return_bounds, fit_rate, random_task_ratio, min_k, max_k, criterion)
        self.absolute_lp = absolute_lp

    def _fit_points(self, unit_tasks: np.ndarray, returns: np.ndarray) -> np.ndarray:
        time = np.arange(len(returns)) / len(returns)
        return np.column_stack([unit_tasks, time, returns])

    def _learning_progress(self, gmm: GaussianMixture) -> np.ndarray:
        cov = gmm.covariances[:, -2, -1]
        return np.abs(cov) if self.absolute_lp else np.maximum(cov, 0.0)
