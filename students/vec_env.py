"""Vector environments whose sub-environments report every finished episode with the task it played."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

from environments.registry import make_env


class EpisodeOutcomeWrapper(gym.Wrapper):
    """Adds ``info["episode_outcome"]`` on an episode's final step (terminated or truncated, by anyone inside).

    The outcome holds the return, length, success (the environment's own rule) and the task and level seed the
    episode actually played, read from the environment's ``info`` rather than from what a teacher last sent.
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


def _factory(env_name: str, seed: int, env_kwargs: dict[str, Any]) -> Any:
    def build() -> gym.Env:
        env = Monitor(EpisodeOutcomeWrapper(make_env(env_name, **env_kwargs)))  # Monitor: SB3's rollout/ep_* logs
        env.reset(seed=seed)  # seeds the env's generator (level seeds, noise); later resets continue from it
        return env

    return build


def make_vec_env(
    env_name: str, n_envs: int, seed: int, subproc: bool = False, env_kwargs: dict[str, Any] | None = None
) -> VecEnv:
    """``n_envs`` copies of an environment, seeded ``seed, seed + 1, ...``, in this process or in subprocesses."""
    factories = [_factory(env_name, seed + i, dict(env_kwargs or {})) for i in range(n_envs)]
    return SubprocVecEnv(factories) if subproc else DummyVecEnv(factories)
