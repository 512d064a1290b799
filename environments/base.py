"""The parametric-environment contract: a gymnasium env whose *next* reset builds a task a teacher chose.

- ``task_space``: a :class:`~curriculum.spaces.BoxTaskSpace` of named dimensions with bounds;
- ``set_task(task, level_seed=None)``: what the next ``reset()`` builds (a vector or ``{name: value}``); without
  a call, reset builds ``default_task``; without a level seed, one is drawn from the env's own generator;
- every step's ``info`` carries ``task`` (the vector being played) and ``level_seed``, so whichever step ends the
  episode (termination, the env's own time limit, or an outer wrapper's truncation) reports what was played;
- ``return_bounds`` (for teachers' normalisation), ``is_success(episode_return, final_info)``, and
  ``test_set(name)``: fixed, documented task lists (``test_set_names`` lists them);
- optionally ``easy_task_space``: an easy region where ACCEL starts (documented per environment).

Environments that can also emit ``{"student": ..., "privileged": ...}`` observations take
``observation_mode="privileged"``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from curriculum.spaces import BoxTaskSpace, TaskSpaceError

OBSERVATION_MODES = ("plain", "privileged")


class ParametricEnv(gym.Env):
    """Base class of parametric environments (see the module docstring for the contract).

    Subclasses set ``task_space``, ``default_task``, ``return_bounds`` and ``success_threshold`` (an episode
    succeeds when its return exceeds it, unless :meth:`is_success` is overridden), implement
    :meth:`_test_sets`, and call :meth:`_begin_episode` at the start of ``reset`` and add :meth:`task_info`
    to every step's ``info``.
    """

    task_space: ClassVar[BoxTaskSpace]
    default_task: ClassVar[np.ndarray]
    return_bounds: ClassVar[tuple[float, float]]
    success_threshold: ClassVar[float]
    #: one line a user reads in ``cli.py list envs``
    success_rule: ClassVar[str] = ""
    #: an easy region of the task space where ACCEL starts its new levels (``None``: the whole space)
    easy_task_space: BoxTaskSpace | None = None

    _pending_task: np.ndarray | None = None
    _pending_seed: int | None = None
    task: np.ndarray
    level_seed: int = 0

    def set_task(self, task: Any, level_seed: int | None = None) -> None:
        """Choose the task (and optionally the level seed) that the next ``reset()`` builds.

        :raises TaskSpaceError: wrong length, out of bounds, NaN, or unknown dimension name
        """
        self._pending_task = self.task_space.validate(task).copy()
        if level_seed is not None:
            if not isinstance(level_seed, int | np.integer) or level_seed < 0:
                raise TaskSpaceError(f"level_seed must be a non-negative integer, got {level_seed!r}")
            level_seed = int(level_seed)
        self._pending_seed = level_seed

    def _begin_episode(self) -> np.random.Generator:
        """Take the pending task (or the default) for the episode starting now; return the level's generator."""
        self.task = self._pending_task if self._pending_task is not None else np.array(self.default_task, dtype=np.float64)
        if self._pending_seed is not None:
            self.level_seed = self._pending_seed
        else:
            self.level_seed = int(self.np_random.integers(2**31 - 1))
        self._pending_task, self._pending_seed = None, None
        self._task_info = {"task": self.task, "level_seed": self.level_seed}
        return np.random.default_rng(self.level_seed)

    def task_info(self) -> dict[str, Any]:
        """``{"task": vector, "level_seed": int}`` of the episode being played."""
        return dict(self._task_info)

    def is_success(self, episode_return: float, final_info: dict[str, Any] | None = None) -> bool:
        """Whether an episode met the success rule (default: return above ``success_threshold``)."""
        return bool(episode_return > self.success_threshold)

    def test_set_names(self) -> list[str]:
        return list(self._test_sets())

    def test_set(self, name: str = "default") -> np.ndarray:
        """A fixed, documented list of tasks, one per row.

        :raises KeyError: unknown test-set name (the message lists the valid ones)
        """
        sets = self._test_sets()
        if name not in sets:
            raise KeyError(f"unknown test set '{name}'; valid: {', '.join(sets)}")
        return np.array(sets[name], dtype=np.float64)

    def _test_sets(self) -> dict[str, np.ndarray]:
        """Named test sets (may depend on the instance, e.g. a variant's bounds)."""
        raise NotImplementedError


def check_observation_mode(mode: str) -> str:
    if mode not in OBSERVATION_MODES:
        raise ValueError(f"unknown observation_mode '{mode}'; valid: {', '.join(OBSERVATION_MODES)}")
    return mode
