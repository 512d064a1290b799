"""The teacher <-> student loop: a teacher chooses every sub-environment's next task and learns from each episode.

SB3 vector envs reset a finished sub-environment inside ``step()``, so a task chosen after an episode ends can
only apply to the episode after the one that already started. Each sub-environment therefore holds one
*pending* task (one episode of look-ahead): :meth:`CurriculumCallback.prime` gives every sub-environment its
first task before ``learn()`` resets them and queues the next one; each time an episode ends, a new task is
queued for that sub-environment. Every episode is reported to the teacher exactly once, attributed to the task
its final ``info`` says it played, in a fixed order (rollout step, then sub-environment index).

Updates are applied when a rollout ends, after SB3 has computed values and advantages, so that each episode's
feedback can carry value-based scores from the student (on-policy students):

- ``positive_value_loss``: mean over the episode's steps of max(GAE advantage, 0);
- ``value_l1``: mean |advantage|;
- ``initial_value``: the value estimate of the episode's first state.

An episode split across rollouts is merged: its per-step sums are carried over, weighted by step count.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Figure
from stable_baselines3.common.vec_env import VecEnv

from curriculum.base import Feedback, Teacher

_NOT_TEXT = ("stdout", "log", "json", "csv")  # histograms and images go to TensorBoard only


@dataclass
class _Partial:
    """Sums over the steps an unfinished episode has spent in earlier rollouts."""

    positive_advantage: float = 0.0
    absolute_advantage: float = 0.0
    steps: int = 0
    initial_value: float | None = None


@dataclass
class _Finished:
    step: int  # position in the current rollout buffer (on-policy) or a running counter
    env_index: int
    outcome: dict[str, Any]


@dataclass
class CurriculumStats:
    """Episode count and the last ``window`` episodes' returns, tasks and successes (for the logs)."""

    window: int = 500
    episodes: int = 0
    recent_returns: deque[float] = field(init=False)
    recent_tasks: deque[np.ndarray] = field(init=False)
    recent_success: deque[bool] = field(init=False)

    def __post_init__(self) -> None:
        self.recent_returns = deque(maxlen=self.window)
        self.recent_tasks = deque(maxlen=self.window)
        self.recent_success = deque(maxlen=self.window)


class CurriculumCallback(BaseCallback):
    """Drive a vector env's tasks with a teacher (see the module docstring).

    :param teacher: the teacher; its task space must be the environment's
    :param log_window: episodes kept for the ``curriculum/*`` logs
    """

    def __init__(self, teacher: Teacher, log_window: int = 500, image_every: int = 1000, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.teacher = teacher
        self.image_every = image_every
        self.stats = CurriculumStats(log_window)
        self._finished: list[_Finished] = []
        self._partials: dict[int, _Partial] = {}

    # -- priming ---------------------------------------------------------------------------------------------
    def prime(self, env: VecEnv) -> None:
        """Give every sub-environment its first task, to be built by the reset ``learn()`` starts with.

        The pending tasks for the episodes after those are queued in :meth:`_on_training_start`.
        """
        for i in range(env.num_envs):
            env.env_method("set_task", self.teacher.sample(), indices=[i])

    def _on_training_start(self) -> None:
        for i in range(self.training_env.num_envs):
            self._queue_next(i)

    def _queue_next(self, env_index: int) -> None:
        self.training_env.env_method("set_task", self.teacher.sample(), indices=[env_index])

    # -- collection ------------------------------------------------------------------------------------------
    def _on_step(self) -> bool:
        buffer = getattr(self.model, "rollout_buffer", None)
        position = buffer.pos if buffer is not None else 0  # SB3 adds this step to the buffer right after on_step
        for i, (done, info) in enumerate(zip(self.locals["dones"], self.locals["infos"], strict=True)):
            if not done:
                continue
            if "episode_outcome" not in info:
                raise RuntimeError(
                    "the training env does not report episode outcomes: build it with students.vec_env.make_vec_env"
                )
            self._finished.append(_Finished(position, i, info["episode_outcome"]))
            self._queue_next(i)
        return True

    def _on_rollout_end(self) -> None:
        self._flush(with_scores=True)

    def _on_training_end(self) -> None:
        # PPO's train() has flattened its rollout buffer by now: whatever is left is reported without scores
        self._flush(with_scores=False)

    @property
    def episodes_finished(self) -> int:
        """Episodes finished so far, reported to the teacher or waiting for the rollout's end."""
        return self.stats.episodes + len(self._finished)

    def _flush(self, with_scores: bool) -> None:
        """Score the finished episodes (when the student has a rollout buffer) and update the teacher, in order."""
        buffer = getattr(self.model, "rollout_buffer", None)
        on_policy = with_scores and buffer is not None and getattr(buffer, "full", False)
        starts = np.zeros(self.training_env.num_envs, dtype=int)
        for item in sorted(self._finished, key=lambda f: (f.step, f.env_index)):
            scores: dict[str, float] = {}
            if on_policy:
                scores = self._episode_scores(buffer, item.env_index, int(starts[item.env_index]), item.step)
                starts[item.env_index] = item.step + 1
            self._report(item.outcome, scores)
        if on_policy:  # the unfinished tails of this rollout continue in the next one
            for i in range(self.training_env.num_envs):
                if starts[i] < buffer.buffer_size:
                    self._carry(buffer, i, int(starts[i]))
        self._finished = []

    def _episode_scores(self, buffer: Any, env_index: int, start: int, end: int) -> dict[str, float]:
        advantages = buffer.advantages[start : end + 1, env_index]
        partial = self._partials.pop(env_index, _Partial())
        steps = partial.steps + len(advantages)
        initial = partial.initial_value if partial.initial_value is not None else float(buffer.values[start, env_index])
        return {
            "positive_value_loss": (partial.positive_advantage + float(np.maximum(advantages, 0).sum())) / steps,
            "value_l1": (partial.absolute_advantage + float(np.abs(advantages).sum())) / steps,
            "initial_value": initial,
        }

    def _carry(self, buffer: Any, env_index: int, start: int) -> None:
        advantages = buffer.advantages[start:, env_index]
        partial = self._partials.setdefault(env_index, _Partial())
        if partial.initial_value is None:
            partial.initial_value = float(buffer.values[start, env_index])
        partial.positive_advantage += float(np.maximum(advantages, 0).sum())
        partial.absolute_advantage += float(np.abs(advantages).sum())
        partial.steps += len(advantages)

    def _report(self, outcome: dict[str, Any], scores: dict[str, float]) -> None:
        feedback = Feedback(
            episode_return=outcome["return"], success=outcome["success"], length=outcome["length"], scores=scores
        )
        self.teacher.update(outcome["task"], feedback)
        s = self.stats
        s.episodes += 1
        s.recent_returns.append(outcome["return"])
        s.recent_tasks.append(np.asarray(outcome["task"]))
        s.recent_success.append(outcome["success"])
        if self.logger is not None and s.episodes % 10 == 0:
            self._log()
        if self.logger is not None and self.image_every and s.episodes % self.image_every == 0:
            self._log_task_scatter()

    def _log(self) -> None:
        s = self.stats
        self.logger.record("curriculum/episodes", s.episodes)
        self.logger.record("curriculum/return_mean", float(np.mean(s.recent_returns)))
        self.logger.record("curriculum/success_rate", float(np.mean(s.recent_success)))
        for key, value in self.teacher.stats().items():
            self.logger.record(f"curriculum/teacher/{key}", value)
        tasks = np.array(s.recent_tasks)
        for d, name in enumerate(getattr(self.teacher.task_space, "names", ())):
            self.logger.record(f"curriculum/task/{name}", tasks[:, d], exclude=_NOT_TEXT)

    def _log_task_scatter(self) -> None:
        """An image of the recent tasks' first two dimensions, coloured by their return."""
        names = getattr(self.teacher.task_space, "names", ())
        if len(names) < 2:
            return
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        tasks = np.array(self.stats.recent_tasks)
        figure, axis = plt.subplots(figsize=(4, 3.5))
        points = axis.scatter(tasks[:, 0], tasks[:, 1], c=list(self.stats.recent_returns), s=8, cmap="viridis")
        space = self.teacher.task_space
        axis.set(xlim=(space.low[0], space.high[0]), ylim=(space.low[1], space.high[1]), xlabel=names[0], ylabel=names[1])
        figure.colorbar(points, label="return")
        figure.tight_layout()
        self.logger.record("curriculum/tasks", Figure(figure, close=True), exclude=_NOT_TEXT)
