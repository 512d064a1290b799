"""Vector environments whose sub-environments report every finished episode with the task it played, and whose
state can be saved and restored for an exact resume."""

from __future__ import annotations

import copy
import multiprocessing
import signal
from typing import Any

import gymnasium as gym
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

from curriculum.seeding import Streams
from environments.registry import make_env

#: Monitor's per-episode bookkeeping (its start time is wall clock and stays the new process's)
_MONITOR_STATE = ("rewards", "needs_reset", "episode_returns", "episode_lengths", "episode_times", "total_steps")


class EpisodeOutcomeWrapper(gym.Wrapper):
    """Adds ``info["episode_outcome"]`` on an episode's final step (terminated or truncated, by anyone inside).

    The outcome holds the return, length, success (the environment's own rule) and the task and level seed the
    episode actually played, read from the environment's ``info`` rather than from what a teacher last sent.

    It also saves and restores the state of everything beneath it (:meth:`snapshot`, :meth:`restore`): its own
    counters, the :class:`~stable_baselines3.common.monitor.Monitor`'s and the environment's ``get_state()``.
    """

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        self._return, self._length = 0.0, 0
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._return += float(reward)
        self._length += 1
        if terminated or truncated:
            base = self.env.unwrapped
            info = dict(info)
            info["episode_outcome"] = {
                "return": self._return,
                "length": self._length,
                "success": bool(base.is_success(self._return, info)),
                "task": info["task"],
                "level_seed": info["level_seed"],
            }
        return obs, reward, terminated, truncated, info

    def snapshot(self) -> dict[str, Any]:
        """The state of this sub-environment: the level it plays and the one pending, and, when its environment
        can capture its state (``supports_state``), the environment's and the wrappers' state."""
        base = self.env.unwrapped
        state: dict[str, Any] = {
            "playing": (copy.deepcopy(base.task), base.level_seed),
            "pending": (copy.deepcopy(base._pending_task), base._pending_seed),
            "env": None,
        }
        if getattr(base, "supports_state", False):
            monitor = self.env if isinstance(self.env, Monitor) else None
            state["env"] = base.get_state()
            state["outcome"] = (self._return, self._length)
            state["monitor"] = {k: copy.deepcopy(getattr(monitor, k)) for k in _MONITOR_STATE} if monitor else None
        return state

    def restore(self, state: dict[str, Any], seed: int) -> Any:
        """Continue from a :meth:`snapshot` of a sub-environment built with the same arguments.

        An environment that captured its state continues exactly (returns ``None``: the saved observation stands).
        One that could not restarts the level it was playing, its generator reseeded with ``seed``, and queues the
        pending level again; the new episode's first observation is returned.
        """
        base = self.env.unwrapped
        if state["env"] is not None:
            base.set_state(state["env"])
            self._return, self._length = state["outcome"]
            if state["monitor"] is not None and isinstance(self.env, Monitor):
                for key, value in state["monitor"].items():
                    setattr(self.env, key, copy.deepcopy(value))
            return None
        base.set_task(*state["playing"])
        if isinstance(self.env, Monitor):
            self.env.needs_reset = True  # the abandoned episode is not recorded
        obs, _ = self.reset(seed=seed)
        if state["pending"][0] is not None:
            base.set_task(*state["pending"])
        return obs


def _factory(env_name: str, seed: int, env_kwargs: dict[str, Any]) -> Any:
    def build() -> gym.Env:
        if multiprocessing.parent_process() is not None:  # a SubprocVecEnv worker: Ctrl-C is the trainer's to handle
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        env = EpisodeOutcomeWrapper(Monitor(make_env(env_name, **env_kwargs)))  # Monitor: SB3's rollout/ep_* logs
        env.reset(seed=seed)  # seeds the env's generator (level seeds, noise); later resets continue from it
        return env

    return build


def make_vec_env(
    env_name: str, n_envs: int, seed: int, subproc: bool = False, env_kwargs: dict[str, Any] | None = None
) -> VecEnv:
    """``n_envs`` copies of an environment, in this process or in subprocesses.

    Sub-environment ``i`` is seeded from its own stream of ``seed`` (:meth:`curriculum.seeding.Streams.env`).
    """
    streams = Streams(seed)
    factories = [_factory(env_name, streams.env(i), dict(env_kwargs or {})) for i in range(n_envs)]
    return SubprocVecEnv(factories) if subproc else DummyVecEnv(factories)
