"""PAIRED's antagonist: a second student that plays each cycle's levels after the student, so that a teacher can
measure regret (:mod:`curriculum.paired`).

The antagonist is a student of the run's algorithm and hyperparameters with its own sub-environments and its own
random streams (:meth:`curriculum.seeding.Streams.antagonist`): SB3 draws from the global python, numpy and torch
generators, so while the antagonist plays, those hold its streams and the student's are put back after. After every
rollout of the student (``CurriculumCallback._on_rollout_end``, before the student's update) it plays one rollout of
its own on the cycle's levels, each sub-environment replaying its level after every episode, and takes its own
update (SB3's ``learn()`` for one rollout); the first rollout of a cycle starts from a reset onto the new levels, as
dcd's ``reset_agent``. It reports the returns of the episodes it completed, per level.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.utils import set_random_seed
from stable_baselines3.common.vec_env import VecEnv

from curriculum.base import Level
from students.loop.algorithms import restart_episodes


def global_streams() -> dict[str, Any]:
    """The global python, numpy and torch (CPU and CUDA) generators' states, which SB3 draws from."""
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": th.get_rng_state(),
        "cuda": th.cuda.get_rng_state_all() if th.cuda.is_available() else None,
    }


def set_global_streams(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    th.set_rng_state(states["torch"])
    if states["cuda"] is not None and th.cuda.is_available():
        th.cuda.set_rng_state_all(states["cuda"])


class _Replay(BaseCallback):
    """Keeps every sub-environment on its level of the cycle and records the returns of the episodes it ends."""

    def __init__(self, antagonist: Antagonist) -> None:
        super().__init__()
        self.antagonist = antagonist

    def _on_step(self) -> bool:
        for i, (done, info) in enumerate(zip(self.locals["dones"], self.locals["infos"], strict=True)):
            if done:
                self.antagonist.returns[i].append(float(info["episode_outcome"]["return"]))
                self.antagonist.send(i)
        return True


class Antagonist:
    """PAIRED's second student (see the module docstring).

    :param model: the antagonist student, built on ``vec_env``
    :param vec_env: its sub-environments (one per sub-environment of the student)
    :param streams: the global generators' states it draws from (:func:`global_streams`)
    """

    def __init__(self, model: BaseAlgorithm, vec_env: VecEnv, streams: dict[str, Any]) -> None:
        self.model, self.vec_env, self.streams = model, vec_env, streams
        self.levels: list[Level] = []
        self.returns: list[list[float]] = []
        #: what its last update logged (SB3's ``train/*``) and its mean completed return, as ``antagonist/*``
        self.log: dict[str, float] = {}

    @classmethod
    def build(cls, make: Callable[[VecEnv], BaseAlgorithm], vec_env: VecEnv, seed: int) -> Antagonist:
        """A new antagonist: ``make(vec_env)`` builds its student with the global generators seeded by ``seed``,
        then the caller's generators are put back."""
        caller = global_streams()
        try:
            set_random_seed(seed)
            model = make(vec_env)
            model.action_space.seed(seed)
            return cls(model, vec_env, global_streams())
        finally:
            set_global_streams(caller)

    @contextmanager
    def own_streams(self) -> Iterator[None]:
        """The antagonist's generators in place of the caller's, for the duration."""
        caller = global_streams()
        set_global_streams(self.streams)
        try:
            yield
        finally:
            self.streams = global_streams()
            set_global_streams(caller)

    def send(self, index: int) -> None:
        """Sub-environment ``index``'s next reset plays its level of the cycle again."""
        level = self.levels[index]
        self.vec_env.env_method("set_next_level", level.task, level.seed, level.structure, indices=[index])

    def play(self, levels: list[Level], fresh: bool) -> list[list[float]]:
        """One rollout and update on ``levels`` (one per sub-environment; ``fresh``: the cycle's first, which starts
        with a reset onto them); the returns of the episodes completed, per level."""
        if len(levels) != self.vec_env.num_envs:
            raise ValueError(f"{len(levels)} levels for an antagonist with {self.vec_env.num_envs} sub-environments")
        with self.own_streams():
            self.levels = list(levels)
            if fresh:
                for i in range(len(levels)):
                    self.send(i)
                restart_episodes(self.model, self.vec_env.reset())
                for i in range(len(levels)):  # pending: the reset after each episode builds the level again
                    self.send(i)
            self.returns = [[] for _ in levels]
            steps = int(getattr(self.model, "n_steps", 1)) * self.vec_env.num_envs
            # one rollout and its update; log_interval past it: SB3 writes no logs of the antagonist's
            self.model.learn(steps, callback=_Replay(self), reset_num_timesteps=False, log_interval=2)
        completed = [r for level in self.returns for r in level]
        self.log = {f"antagonist/{key.split('/')[-1]}": value for key, value in self.model.logger.name_to_value.items()}
        if completed:
            self.log["antagonist/rollout_return"] = float(np.mean(completed))
        return self.returns
