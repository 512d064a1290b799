"""A user's own parametric environment, defined outside the project's packages (loaded by path in tests)."""

from typing import ClassVar

import gymnasium as gym
import numpy as np

from curriculum.spaces import BoxTaskSpace
from environments.base import ParametricEnv


class CorridorEnv(ParametricEnv):
    """Walk right along a corridor of parametric length; one step per action, reward 1 on arrival."""

    task_space: ClassVar[BoxTaskSpace] = BoxTaskSpace(["length"], [1.0], [20.0])
    default_task = np.array([5.0])
    return_bounds = (0.0, 1.0)
    success_threshold = 0.5
    success_rule = "reach the end (return 1)"

    def __init__(self, render_mode=None):
        self.observation_space = gym.spaces.Box(0.0, 20.0, (1,), np.float32)
        self.action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._begin_episode()
        self.position = 0.0
        return np.array([0.0], np.float32), self.task_info()

    def step(self, action):
        self.position += float(action)
        arrived = self.position >= self.task[0]
        return np.array([self.position], np.float32), float(arrived), arrived, False, self.task_info()

    @classmethod
    def _test_sets(cls):
        return {"default": np.array([[2.0], [10.0], [20.0]])}


def make_corridor(**kwargs):
    """A factory, as a user might register one."""
    return CorridorEnv(**kwargs)
