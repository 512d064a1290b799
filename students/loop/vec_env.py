"""Vector environments whose sub-environments report every finished episode with the task it played, and whose
state can be saved and restored for an exact resume."""

from __future__ import annotations

import copy
import multiprocessing
import signal
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

import gymnasium as gym
import numpy as np
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvStepReturn

from curriculum.seeding import Streams
from environments.base import ParametricEnv, batch_stepper
from environments.registry import make_env

#: Monitor's per-episode bookkeeping (its start time is wall clock and stays the new process's)
_MONITOR_STATE = ("rewards", "needs_reset", "episode_returns", "episode_lengths", "episode_times", "total_steps")


class EpisodeOutcomeWrapper(gym.Wrapper):
    """Adds ``info["episode_outcome"]`` on an episode's final step (terminated or truncated, by anyone inside).

    The outcome holds the return, length, success (the environment's own rule) and the task, level seed and (an
    env with structured levels) level text the episode actually played, read from the environment's ``info``
    rather than from what a teacher last sent.

    It also saves and restores the state of everything beneath it (:meth:`snapshot`, :meth:`restore`): its own
    counters, the :class:`~stable_baselines3.common.monitor.Monitor`'s and the environment's ``get_state()``.
    """

    @property
    def parametric(self) -> ParametricEnv:
        """The parametric environment at the bottom of the wrappers."""
        base = self.env.unwrapped
        assert isinstance(base, ParametricEnv), f"{type(base).__name__} is not a ParametricEnv"
        return base

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        self._return, self._length = 0.0, 0
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, float(reward), terminated, truncated, self.record(float(reward), terminated, truncated, info)

    def record(self, reward: float, terminated: bool, truncated: bool, info: dict[str, Any]) -> dict[str, Any]:
        """Count a step the environment took; on the episode's final step, return ``info`` with its outcome."""
        self._return += float(reward)
        self._length += 1
        if terminated or truncated:
            base = self.parametric
            info = dict(info)
            info["episode_outcome"] = {
                "return": self._return,
                "length": self._length,
                "success": bool(base.is_success(self._return, info)),
                "task": info["task"],
                "level_seed": info["level_seed"],
                "level": info.get("level"),  # the structured level's text, where the env has them
            }
        return info

    def snapshot(self) -> dict[str, Any]:
        """The state of this sub-environment: the level it plays and the one pending, and, when its environment
        can capture its state (``supports_state``), the environment's and the wrappers' state."""
        base = self.parametric
        task, seed = base.pending_level
        state: dict[str, Any] = {
            "playing": (copy.deepcopy(base.task), base.level_seed),
            "pending": (copy.deepcopy(task), seed),
            "env": None,
        }
        if base.supports_state:
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
        base = self.parametric
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


def _factory(env_name: str | Callable[..., Any], seed: int, env_kwargs: dict[str, Any]) -> Any:
    def build() -> gym.Env:
        if multiprocessing.parent_process() is not None:  # a SubprocVecEnv worker: Ctrl-C is the trainer's to handle
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        env = EpisodeOutcomeWrapper(Monitor(make_env(env_name, **env_kwargs)))  # Monitor: SB3's rollout/ep_* logs
        env.reset(seed=seed)  # seeds the env's generator (level seeds, noise); later resets continue from it
        return env

    return build


class BatchVecEnv(VecEnv):
    """Sub-environments stepped together by their class's ``step_batch(envs, actions)`` (one numpy call), with the
    contract of :func:`make_vec_env`'s other vector envs, transition for transition: SB3's auto-reset with
    ``info["terminal_observation"]`` and ``info["TimeLimit.truncated"]``, Monitor's ``info["episode"]``,
    ``info["episode_outcome"]``, and per-index ``env_method`` (``set_task``, ``snapshot``, ``restore``...).

    :param envs: parametric environments built with the same arguments
    :param seeds: each one's seed, for the first reset (as :func:`make_vec_env`'s one-by-one sub-environments)
    """

    def __init__(self, envs: list[gym.Env], seeds: list[int]) -> None:
        self.slots = [EpisodeOutcomeWrapper(env) for env in envs]
        stepper = batch_stepper(envs[0])
        if stepper is None:
            raise ValueError(f"{type(envs[0]).__name__} does not step batches (its class declares no step_batch)")
        self._step_batch = stepper
        super().__init__(len(envs), envs[0].observation_space, envs[0].action_space)
        self._obs: list[Any] = [None] * self.num_envs
        self._actions: np.ndarray | None = None
        self._start = time.time()
        for slot, seed in zip(self.slots, seeds, strict=True):
            slot.reset(seed=seed)  # seeds the env's generator, as make_vec_env's factories do

    def reset(self) -> Any:
        for i, slot in enumerate(self.slots):
            options = {"options": self._options[i]} if self._options[i] else {}
            self._obs[i], self.reset_infos[i] = slot.reset(seed=self._seeds[i], **options)
        self._reset_seeds()
        self._reset_options()
        return stack_observations(self._obs)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, terminated, truncated, infos = self._step_batch([s.env for s in self.slots], self._actions)
        dones = terminated | truncated
        for i, slot in enumerate(self.slots):
            info = infos[i] = slot.record(rewards[i], terminated[i], truncated[i], infos[i])
            info["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
            if dones[i]:
                outcome = info["episode_outcome"]  # and Monitor's record of the episode
                elapsed = round(time.time() - self._start, 6)
                info["episode"] = {"r": round(outcome["return"], 6), "l": outcome["length"], "t": elapsed}
                info["terminal_observation"] = _row(obs, i)
                first, self.reset_infos[i] = slot.reset()
                _set_row(obs, i, first)
        return obs, rewards.astype(np.float32), dones, infos

    def close(self) -> None:
        for slot in self.slots:
            slot.close()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [self.slots[i].get_wrapper_attr(attr_name) for i in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        for i in self._get_indices(indices):
            setattr(self.slots[i].unwrapped, attr_name, value)

    def env_method(self, method_name: str, *args: Any, indices: VecEnvIndices = None, **kwargs: Any) -> list[Any]:
        return [self.slots[i].get_wrapper_attr(method_name)(*args, **kwargs) for i in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        # Monitor's episode records are in every final info, as if each sub-environment were wrapped in one
        wrapped = issubclass(Monitor, wrapper_class) or issubclass(EpisodeOutcomeWrapper, wrapper_class)
        return [wrapped for _ in self._get_indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [cast("np.ndarray | None", slot.render()) for slot in self.slots]  # rgb_array mode


def stack_observations(observations: list[Any]) -> Any:
    """A batch of observations, arrays or dicts of arrays."""
    if isinstance(observations[0], dict):
        return {key: np.stack([o[key] for o in observations]) for key in observations[0]}
    return np.stack(observations)


def _row(batch: Any, i: int) -> Any:
    return {key: value[i].copy() for key, value in batch.items()} if isinstance(batch, dict) else batch[i].copy()


def _set_row(batch: Any, i: int, obs: Any) -> None:
    if isinstance(batch, dict):
        for key, value in batch.items():
            value[i] = obs[key]
    else:
        batch[i] = obs


def make_vec_env(
    env_name: str | Callable[..., Any],
    n_envs: int,
    seed: int,
    subproc: bool = False,
    env_kwargs: dict[str, Any] | None = None,
    batched: bool = True,
    antagonist: bool = False,
) -> VecEnv:
    """``n_envs`` copies of an environment (a registry name or path, or its class or factory): stepped together in
    one call when ``batched`` and the environment's class has a ``step_batch`` (:class:`BatchVecEnv`, same
    transitions, faster), else one by one in this process or in subprocesses (``subproc``).

    Sub-environment ``i`` is seeded from its own stream of ``seed`` (:meth:`curriculum.seeding.Streams.env`; PAIRED's
    antagonist's, ``antagonist``: :meth:`~curriculum.seeding.Streams.antagonist_env`).
    """
    streams = Streams(seed)
    env_seed = streams.antagonist_env if antagonist else streams.env
    if batched and not subproc:
        envs = [make_env(env_name, **dict(env_kwargs or {})) for _ in range(n_envs)]
        if batch_stepper(envs[0]) is not None:  # its class steps batches (not behind a wrapper: history)
            return BatchVecEnv(envs, [env_seed(i) for i in range(n_envs)])
        for env in envs:
            env.close()
    factories = [_factory(env_name, env_seed(i), dict(env_kwargs or {})) for i in range(n_envs)]
    return SubprocVecEnv(factories) if subproc else DummyVecEnv(factories)
