"""A user's own parametric environment, defined outside the project's packages (loaded by path in tests)."""

from typing import ClassVar

import gymnasium as gym
import numpy as np

from curriculum.random_teacher import RandomTeacher
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


class TaskEchoEnv(ParametricEnv):
    """A scripted env whose return encodes its task: 1 + floor(4 * a) steps, then a reward of a + 10 * b.

    Episodes of different tasks last different numbers of steps, so parallel copies finish out of order.
    """

    task_space: ClassVar[BoxTaskSpace] = BoxTaskSpace(["a", "b"], [0.0, 0.0], [1.0, 1.0])
    default_task = np.array([0.5, 0.5])
    return_bounds = (0.0, 11.0)
    success_threshold = 5.0
    success_rule = "return > 5 (b above ~0.45)"

    def __init__(self, render_mode=None):
        self.observation_space = gym.spaces.Box(-1.0, 10.0, (3,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    @staticmethod
    def encoded_return(task) -> float:
        return float(task[0] + 10.0 * task[1])

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._begin_episode()
        self.t, self.length = 0, 1 + int(4 * self.task[0])
        return self._obs(), self.task_info()

    def _obs(self):
        return np.array([self.t, self.task[0], self.task[1]], np.float32)

    def step(self, action):
        self.t += 1
        done = self.t >= self.length
        reward = self.encoded_return(self.task) if done else 0.0
        return self._obs(), reward, done, False, self.task_info()

    @classmethod
    def _test_sets(cls):
        return {"default": np.array([[0.1, 0.1], [0.2, 0.9], [0.9, 0.3], [0.5, 0.6]])}


class ExplodingTeacher(RandomTeacher):
    """A user's teacher with a bug: it fails on its fourth episode."""

    def _update(self, task, feedback):
        if self.n_updates >= 3:
            raise RuntimeError("exploding teacher: deliberate failure")
