"""Shared machinery of the Gaussian-mixture teachers (ALP-GMM, Covar-GMM)."""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

import numpy as np

from curriculum.base import Feedback, Teacher
from curriculum.gmm import GaussianMixture, fit_best_gmm
from curriculum.spaces import BoxTaskSpace, Task


class GmmTeacher(Teacher[BoxTaskSpace]):
    """Fit Gaussian mixtures on recent episodes and sample from components in proportion to their progress.

    Every ``fit_rate`` episodes, mixtures with ``min_k..max_k`` components are fitted on the last
    ``fit_rate`` points ``[task (normalised to [0, 1]), extra coordinates...]`` (subclasses compute the extra
    coordinates from the window's tasks and normalised returns) and the best one by ``criterion`` is kept.
    Until the first fit, and with probability ``random_task_ratio`` afterwards, tasks are uniform;
    otherwise a component is chosen in proportion to its learning progress (subclasses define it), a point
    is drawn from it, the extra coordinates are dropped and the task is clipped to the space.
    """

    state_attrs: ClassVar[tuple[str, ...]] = ("_buffer", "gmm", "_component_lp", "_cumulative_lp")

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
    ) -> None:
        super().__init__(task_space, seed, return_bounds)
        if fit_rate < 2:
            raise ValueError(f"fit_rate must be >= 2, got {fit_rate}")
        if not 0.0 <= random_task_ratio <= 1.0:
            raise ValueError(f"random_task_ratio must be in [0, 1], got {random_task_ratio}")
        if not 1 <= min_k <= max_k:
            raise ValueError(f"need 1 <= min_k <= max_k, got min_k={min_k}, max_k={max_k}")
        if criterion not in ("aic", "bic", "aicc"):
            raise ValueError(f"unknown criterion '{criterion}'; valid: aic, bic, aicc")
        self.fit_rate = fit_rate
        self.random_task_ratio = random_task_ratio
        self.ks = list(range(min_k, max_k + 1))
        self.criterion = criterion
        # [normalised task, normalised return] of the current window; row (n_updates % fit_rate) is next
        self._buffer = np.zeros((fit_rate, task_space.dim + 1))
        self.gmm: GaussianMixture | None = None
        self._component_lp = np.zeros(0)
        self._cumulative_lp = np.zeros(0)
        self._init_estimators()

    def _init_estimators(self) -> None:
        """Create subclass-specific state (called at the end of ``__init__``); nothing by default."""

    def _sample(self) -> np.ndarray:
        space = self.task_space
        if self.gmm is None or self.rng.random() < self.random_task_ratio:
            return space.sample(self.rng)
        cumulative = self._cumulative_lp
        if cumulative[-1] > 0:
            index = min(int(cumulative.searchsorted(self.rng.random() * cumulative[-1], side="right")), len(cumulative) - 1)
        else:
            index = int(self.rng.integers(len(cumulative)))
        unit = self.gmm.sample_component(index, self.rng)[: space.dim]
        return space.low + np.minimum(np.maximum(unit, 0.0), 1.0) * space.span

    def _update(self, task: Task, feedback: Feedback) -> None:
        unit = self.task_space.normalize(np.asarray(task))
        row = self.n_updates % self.fit_rate
        self._buffer[row, :-1] = unit
        self._buffer[row, -1] = self.normalize_return(feedback.episode_return)
        if row == self.fit_rate - 1:  # the buffer holds exactly the last fit_rate episodes
            points = self._fit_points(self._buffer[:, :-1], self._buffer[:, -1])
            self.gmm = fit_best_gmm(points, self.ks, self.rng, self.criterion)
            self._component_lp = self._learning_progress(self.gmm)
            self._cumulative_lp = np.cumsum(self._component_lp)

    def stats(self) -> dict[str, float]:
        if self.gmm is None:
            return {"n_components": 0.0, "mean_lp": 0.0}
        return {"n_components": float(self.gmm.n_components), "mean_lp": float(self._component_lp.mean())}

    @abstractmethod
    def _fit_points(self, unit_tasks: np.ndarray, returns: np.ndarray) -> np.ndarray:
        """The points a mixture is fitted on, from a window's normalised tasks and returns (in episode order)."""

    @abstractmethod
    def _learning_progress(self, gmm: GaussianMixture) -> np.ndarray:
        """Non-negative learning progress of each component of a fitted mixture."""
