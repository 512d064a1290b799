"""Observation history for partially observed students: the last ``k`` observations, each with the action taken
just before it.

A student that does not see the task (a hidden friction, a gate it only senses when near) needs memory. Any
environment name takes ``history=k`` (``--env-kwarg history=4``): :func:`environments.registry.make_env` then
wraps the environment in :class:`HistoryEnv`, so training, evaluation, rendering and distillation all build the
same view. A frame is ``[observation, previous action]`` (zeros for the action before the first step); frames
are oldest first, and the frames before an episode's first observation are zeros. This is frame stacking with
actions, the input of RMA's adaptation module (Kumar et al. 2021), not a recurrent state.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from environments.base import DECLARED, ParametricEnv


class FrameHistory:
    """The last ``k`` frames ``[observation, previous action]`` as one flat float32 vector (oldest first).

    :param obs_space: a flat ``Box`` observation space
    :param action_space: a ``Box`` action space (actions are clipped to it, as the environment applies them)
    :param k: frames kept (>= 1)
    """

    def __init__(self, obs_space: gym.Space, action_space: gym.Space, k: int) -> None:
        if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
            raise ValueError(f"history needs a flat array observation (observation_mode=plain), got {obs_space}")
        if not isinstance(action_space, gym.spaces.Box):
            raise ValueError(f"history needs a continuous (Box) action space, got {action_space}")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"history must be an integer >= 1 (frames kept), got {k!r}")
        self.k, self.obs_dim, self.action_space = k, obs_space.shape[0], action_space
        self.frames = np.zeros((k, self.obs_dim + action_space.shape[0]), dtype=np.float32)

    @property
    def space(self) -> gym.spaces.Box:
        """The observation space of the flat history."""
        return gym.spaces.Box(-np.inf, np.inf, (self.frames.size,), np.float32)

    def reset(self, obs: np.ndarray) -> np.ndarray:
        """Start an episode with its first observation."""
        self.frames[:] = 0.0
        self.frames[-1, : self.obs_dim] = obs
        return self.frames.ravel().copy()

    def push(self, obs: np.ndarray, action: np.ndarray) -> np.ndarray:
        """Add the observation that followed ``action``."""
        self.frames[:-1] = self.frames[1:]
        self.frames[-1, : self.obs_dim] = obs
        self.frames[-1, self.obs_dim :] = np.clip(action, self.action_space.low, self.action_space.high)
        return self.frames.ravel().copy()


class HistoryEnv(ParametricEnv):
    """A parametric environment whose observation is the :class:`FrameHistory` of another's.

    Everything else (task space, ``set_task`` and ``set_level``, test sets, success rule, state for exact resume,
    rendering) is the wrapped environment's.
    """

    def __init__(self, env: ParametricEnv, k: int) -> None:
        self.env = env
        self.history = FrameHistory(env.observation_space, env.action_space, k)
        self.observation_space, self.action_space = self.history.space, env.action_space
        self.metadata, self.render_mode = env.metadata, getattr(env, "render_mode", None)
        for name in DECLARED:  # what the wrapped env declares about itself (its test levels, target, feasibility...)
            setattr(self, name, getattr(env, name))
        self.state_attrs = None if env.state_attrs is None else ()

    def __getattr__(self, name: str) -> Any:
        """Anything else a teacher may read (``spdl_target``...) is the wrapped environment's."""
        if name == "env":
            raise AttributeError(name)
        return getattr(self.env, name)

    # the generator is the wrapped env's: reset(seed) seeds it, gymnasium's checkers read it here
    _np_random = property(lambda self: self.env.unwrapped._np_random)

    # the episode's level lives in the wrapped env (the vector env's snapshots read these)
    task = property(lambda self: self.env.task)
    level_seed = property(lambda self: self.env.level_seed)
    _pending_task = property(lambda self: self.env._pending_task)
    _pending_seed = property(lambda self: self.env._pending_seed)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        obs, info = self.env.reset(seed=seed, options=options)
        return self.history.reset(obs), info

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self.history.push(obs, action), float(reward), terminated, truncated, info

    def set_task(self, task: Any, level_seed: int | None = None) -> None:
        self.env.set_task(task, level_seed)

    def set_level(self, level: Any, level_seed: int | None = None) -> None:
        self.env.set_level(level, level_seed)

    def played_level(self) -> str | None:
        return self.env.played_level()

    def task_info(self) -> dict[str, Any]:
        return self.env.task_info()

    def has_pending_task(self) -> bool:
        return self.env.has_pending_task()

    def is_success(self, episode_return: float, final_info: dict[str, Any] | None = None) -> bool:
        return self.env.is_success(episode_return, final_info)

    def _test_sets(self) -> dict[str, np.ndarray]:
        return self.env._test_sets()

    def get_state(self) -> dict[str, Any]:
        return {"env": self.env.get_state(), "frames": self.history.frames.copy()}

    def set_state(self, state: dict[str, Any]) -> None:
        self.env.set_state(state["env"])
        self.history.frames[:] = state["frames"]

    def render(self) -> Any:
        return self.env.render()

    def close(self) -> None:
        self.env.close()
