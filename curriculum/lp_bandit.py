"""A learning-progress bandit over a discrete task set (Matiisen et al., TSCL 2017)."""

from __future__ import annotations

from collections import deque

import numpy as np

from curriculum.base import Feedback, Teacher
from curriculum.spaces import DiscreteTaskSpace, Task

ESTIMATORS = ("window", "online")
POLICIES = ("epsilon-greedy", "boltzmann", "thompson")


class LpBanditTeacher(Teacher[DiscreteTaskSpace]):
    """LP bandit (TSCL): practise the task whose score moves fastest, up or down (discrete task spaces).

    Per task, learning progress is the slope of its recent scores (returns normalised by the environment's bounds):
    ``window``, the regression slope over its last ``window`` scores (TSCL's Window), or ``online``, an EMA of
    successive score differences with rate ``alpha`` (TSCL's Online). Its absolute value is used, so that
    forgetting attracts practice too. Choice: ``epsilon-greedy`` (the largest |slope|, else uniform with
    probability ``epsilon``), ``boltzmann`` (softmax of |slope| / ``temperature``), or ``thompson`` (TSCL's
    sampling: the largest |slope| among one recent slope drawn per task). A task with fewer than two scores is
    tried first (in index order of a random permutation).

    Defaults are TSCL's (window 10, alpha 0.1, epsilon 0.1). Unlike Syllabus's port, scores are not scaled by the
    episode's length.

    :param estimator: window or online
    :param policy: epsilon-greedy, boltzmann or thompson
    :param window: scores kept per task (the Window slope, Thompson's recent slopes)
    :param alpha: EMA rate of the online estimator
    :param epsilon: exploration probability of epsilon-greedy
    :param temperature: Boltzmann temperature (on |slope| of normalised scores)
    :param signal: return (normalised by the environment's bounds) or success
    """

    supported_spaces = (DiscreteTaskSpace,)
    needs = "return or success (signal)"
    state_attrs = ("scores", "slopes", "ema", "window_slope", "order")

    def __init__(
        self,
        task_space: DiscreteTaskSpace,
        seed: int = 0,
        return_bounds: tuple[float, float] | None = None,
        estimator: str = "window",
        policy: str = "epsilon-greedy",
        window: int = 10,
        alpha: float = 0.1,
        epsilon: float = 0.1,
        temperature: float = 0.0025,
        signal: str = "return",
    ) -> None:
        super().__init__(task_space, seed, return_bounds)
        if estimator not in ESTIMATORS or policy not in POLICIES or signal not in ("return", "success"):
            raise ValueError(
                f"estimator must be one of {', '.join(ESTIMATORS)}, policy one of {', '.join(POLICIES)}, "
                "signal return or success"
            )
        if window < 2 or not 0 < alpha <= 1 or not 0 <= epsilon <= 1 or temperature <= 0:
            raise ValueError("need window >= 2, 0 < alpha <= 1, 0 <= epsilon <= 1 and temperature > 0")
        self.estimator, self.policy, self.window, self.alpha = estimator, policy, window, alpha
        self.epsilon, self.temperature, self.signal = epsilon, temperature, signal
        n = task_space.n
        self.scores: list[deque[float]] = [deque(maxlen=window) for _ in range(n)]
        self.slopes: list[deque[float]] = [deque(maxlen=window) for _ in range(n)]
        self.ema = np.zeros(n)
        self.window_slope = np.zeros(n)  # the regression slope of each task's window, updated with it
        self.order = self.rng.permutation(n).tolist()  # untried tasks, in this order

    def progress(self) -> np.ndarray:
        """|learning progress| per task."""
        return np.abs(self.ema if self.estimator == "online" else self.window_slope)

    def _sample(self) -> Task:
        untried = [k for k in self.order if len(self.scores[k]) < 2]
        if untried:
            return int(untried[0])
        n = self.task_space.n
        if self.policy == "thompson":
            draws = np.array([abs(s[int(self.rng.integers(len(s)))]) if s else 0.0 for s in self.slopes])
            return self._argmax(draws)
        progress = self.progress()
        if self.policy == "boltzmann":
            logits = progress / self.temperature
            p = np.exp(logits - logits.max())
            return int(self.rng.choice(n, p=p / p.sum()))
        if self.rng.random() < self.epsilon:
            return int(self.rng.integers(n))
        return self._argmax(progress)

    def _argmax(self, values: np.ndarray) -> int:
        """The index of the largest value, ties broken at random."""
        best = np.flatnonzero(values == values.max())
        return int(best[int(self.rng.integers(len(best)))])

    def _update(self, task: Task, feedback: Feedback) -> None:
        score = float(feedback.success) if self.signal == "success" else self.normalize_return(feedback.episode_return)
        scores = self.scores[int(task)]
        if scores:
            difference = score - scores[-1]
            self.ema[int(task)] = self.alpha * difference + (1 - self.alpha) * self.ema[int(task)]
            self.slopes[int(task)].append(difference)
        scores.append(score)
        if len(scores) >= 2:
            x = np.arange(len(scores)) - (len(scores) - 1) / 2
            self.window_slope[int(task)] = float(x @ np.asarray(scores)) / float(x @ x)

    def stats(self) -> dict[str, float]:
        progress = self.progress()
        return {"progress_max": float(progress.max()), "progress_mean": float(progress.mean())}
