"""What the teacher <-> student loop logs: ``curriculum/*`` scalars, task histograms and task images.

:class:`CurriculumStats` keeps the episode count and a window of recent episodes; :meth:`CurriculumStats.log`
writes them with the teacher's own diagnostics to an SB3 logger (TensorBoard). Figures are built with
:class:`matplotlib.figure.Figure`, never pyplot, so a user's backend and open figures stay untouched.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from stable_baselines3.common.logger import Figure, Logger

from curriculum.base import Teacher

_NOT_TEXT = ("stdout", "log", "json", "csv")  # histograms and images go to TensorBoard only


@dataclass
class CurriculumStats:
    """Episode count and the last ``window`` episodes' returns, tasks and successes (for the logs)."""

    window: int = 500
    episodes: int = 0
    infeasible: int = 0  # episodes on tasks the env declares unsolvable (its ``feasible``), when it declares them
    steps: int = 0  # the environment steps of the counted episodes
    infeasible_steps: int = 0  # those of the infeasible ones
    recent_returns: deque[float] = field(init=False)
    recent_tasks: deque[np.ndarray] = field(init=False)
    recent_success: deque[bool] = field(init=False)

    def __post_init__(self) -> None:
        self.recent_returns = deque(maxlen=self.window)
        self.recent_tasks = deque(maxlen=self.window)
        self.recent_success = deque(maxlen=self.window)

    def add(self, task: Any, episode_return: float, success: bool, length: int = 0) -> None:
        """Count one finished episode of ``length`` steps."""
        self.episodes += 1
        self.steps += length
        self.recent_returns.append(episode_return)
        self.recent_tasks.append(np.asarray(task))
        self.recent_success.append(success)

    def log(self, logger: Logger, teacher: Teacher, every: int = 10, image_every: int = 1000) -> None:
        """Scalars and histograms every ``every`` episodes, images every ``image_every`` (0: never)."""
        if self.episodes % every == 0:
            self.log_scalars(logger, teacher)
        if image_every and self.episodes % image_every == 0:
            self.log_images(logger, teacher)

    def log_scalars(self, logger: Logger, teacher: Teacher) -> None:
        """Recent mean return and success rate, the teacher's ``stats()``, a histogram per task dimension."""
        logger.record("curriculum/episodes", self.episodes)
        logger.record("curriculum/return_mean", float(np.mean(self.recent_returns)))
        logger.record("curriculum/success_rate", float(np.mean(self.recent_success)))
        for key, value in teacher.stats().items():
            logger.record(f"curriculum/teacher/{key}", value)
        tasks = np.array(self.recent_tasks)
        for d, name in enumerate(getattr(teacher.task_space, "names", ())):
            logger.record(f"curriculum/task/{name}", tasks[:, d], exclude=_NOT_TEXT)

    def log_images(self, logger: Logger, teacher: Teacher) -> None:
        """Images of the recent tasks' first two dimensions coloured by return, and of the teacher's own points
        (e.g. its level buffer coloured by score)."""
        space = teacher.task_space
        if len(getattr(space, "names", ())) < 2:
            return
        tasks, returns = np.array(self.recent_tasks), np.array(self.recent_returns)
        logger.record("curriculum/tasks", Figure(task_scatter(space, tasks, returns, "return"), close=False), _NOT_TEXT)
        points = teacher.plot_levels()
        if points is not None:
            logger.record("curriculum/teacher_levels", Figure(task_scatter(space, *points), close=False), _NOT_TEXT)


def task_scatter(space: Any, tasks: np.ndarray, values: np.ndarray, label: str) -> Any:
    """A scatter plot of tasks over a box space's first two dimensions, coloured by ``values``."""
    from matplotlib.figure import Figure as MplFigure

    figure = MplFigure(figsize=(4, 3.5))
    axis = figure.add_subplot()
    points = axis.scatter(tasks[:, 0], tasks[:, 1], c=values, s=8, cmap="viridis")
    axis.set(
        xlim=(space.low[0], space.high[0]),
        ylim=(space.low[1], space.high[1]),
        xlabel=space.names[0],
        ylabel=space.names[1],
    )
    figure.colorbar(points, label=label)
    figure.tight_layout()
    return figure
