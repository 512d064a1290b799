"""Students that can leave chosen episodes out of their updates (Robust PLR and ACCEL score some levels only).

The curriculum callback sets ``step_mask`` (one flag per sub-environment: learn from this step or not) on the
student's buffer before each step is stored; the buffer records it beside the transition.

- On-policy (PPO, A2C): :class:`MaskedRolloutBuffer` keeps the whole rollout (values and advantages of masked
  episodes are still computed, their scores need them) but its minibatches hold only unmasked transitions, so
  masked ones take no part in any loss, advantage normalisation included. With nothing masked, the minibatches
  are exactly SB3's (same permutation). A rollout with nothing to learn from skips the update.
- Off-policy (SAC, TD3, TQC): :class:`MaskedReplayBuffer` stores masked transitions but never samples them;
  updates wait until the buffer holds an unmasked transition.

We mask inside the update rather than discarding rollouts: a rollout mixes episodes of both kinds, and
discarding it would also throw away the replayed levels' transitions.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np
from stable_baselines3 import A2C, PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.buffers import ReplayBuffer, RolloutBuffer
from stable_baselines3.common.type_aliases import ReplayBufferSamples, RolloutBufferSamples
from stable_baselines3.common.vec_env import VecNormalize


class MaskedRolloutBuffer(RolloutBuffer):
    """A rollout buffer whose minibatches leave out the transitions whose ``step_mask`` flag was off."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.step_mask = np.ones(self.n_envs, dtype=bool)

    def reset(self) -> None:
        self.train_mask = np.ones((self.buffer_size, self.n_envs), dtype=bool)
        super().reset()

    def add(self, *args: Any, **kwargs: Any) -> None:
        self.train_mask[self.pos] = self.step_mask
        super().add(*args, **kwargs)

    @property
    def n_unmasked(self) -> int:
        return int(self.train_mask.sum())

    def get(self, batch_size: int | None = None) -> Generator[RolloutBufferSamples, None, None]:
        assert self.full, "the rollout buffer is not full"
        total = self.buffer_size * self.n_envs
        indices = np.random.permutation(total)  # as SB3 does, so that an all-true mask gives its minibatches
        indices = indices[self.train_mask.swapaxes(0, 1).reshape(-1)[indices]]  # SB3 flattens env-major
        if not self.generator_ready:
            for name in ("observations", "actions", "values", "log_probs", "advantages", "returns"):
                self.__dict__[name] = self.swap_and_flatten(self.__dict__[name])
            self.generator_ready = True
        batch_size = batch_size or total
        for start in range(0, len(indices), batch_size):
            yield self._get_samples(indices[start : start + batch_size])


class _MaskedOnPolicy:
    """Skips the update of a rollout in which every transition is masked."""

    rollout_buffer: MaskedRolloutBuffer

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("rollout_buffer_class", MaskedRolloutBuffer)
        super().__init__(*args, **kwargs)

    def train(self) -> None:
        self.logger.record("train/masked_share", 1.0 - self.rollout_buffer.n_unmasked / self.rollout_buffer.train_mask.size)
        if self.rollout_buffer.n_unmasked:
            super().train()  # type: ignore[misc]


class MaskedPPO(_MaskedOnPolicy, PPO):
    """PPO whose losses ignore masked transitions (see the module docstring)."""


class MaskedA2C(_MaskedOnPolicy, A2C):
    """A2C whose losses ignore masked transitions (see the module docstring)."""


class MaskedReplayBuffer(ReplayBuffer):
    """A replay buffer that never samples the transitions whose ``step_mask`` flag was off."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.optimize_memory_usage:
            raise ValueError("masked replay buffers do not support optimize_memory_usage")
        self.step_mask = np.ones(self.n_envs, dtype=bool)
        self.valid = np.zeros((self.buffer_size, self.n_envs), dtype=bool)
        self._env_indices: np.ndarray | None = None

    def add(self, *args: Any, **kwargs: Any) -> None:
        self.valid[self.pos] = self.step_mask
        super().add(*args, **kwargs)

    @property
    def n_unmasked(self) -> int:
        return int(self.valid.sum())  # slots not written yet are False

    def sample(self, batch_size: int, env: VecNormalize | None = None) -> ReplayBufferSamples:
        """Uniform over the unmasked transitions (rejection sampling over the filled slots)."""
        if not self.n_unmasked:
            raise ValueError("the replay buffer holds no unmasked transition yet")
        upper = self.buffer_size if self.full else self.pos
        rows, envs = np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        while len(rows) < batch_size:
            r = np.random.randint(0, upper, size=batch_size)
            e = np.random.randint(0, self.n_envs, size=batch_size)
            keep = self.valid[r, e]
            rows, envs = np.concatenate([rows, r[keep]]), np.concatenate([envs, e[keep]])
        self._env_indices = envs[:batch_size]
        try:
            return self._get_samples(rows[:batch_size], env)
        finally:
            self._env_indices = None

    def _get_samples(self, batch_inds: np.ndarray, env: VecNormalize | None = None) -> ReplayBufferSamples:
        envs = self._env_indices if self._env_indices is not None else np.random.randint(0, self.n_envs, len(batch_inds))
        data = (
            self._normalize_obs(self.observations[batch_inds, envs, :], env),
            self.actions[batch_inds, envs, :],
            self._normalize_obs(self.next_observations[batch_inds, envs, :], env),
            (self.dones[batch_inds, envs] * (1 - self.timeouts[batch_inds, envs])).reshape(-1, 1),
            self._normalize_reward(self.rewards[batch_inds, envs].reshape(-1, 1), env),
        )
        return ReplayBufferSamples(*tuple(map(self.to_torch, data)))


class _MaskedOffPolicy:
    """Uses a :class:`MaskedReplayBuffer` and waits for an unmasked transition before updating."""

    replay_buffer: MaskedReplayBuffer

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("replay_buffer_class", MaskedReplayBuffer)
        super().__init__(*args, **kwargs)

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        if self.replay_buffer.n_unmasked:
            super().train(gradient_steps, batch_size)  # type: ignore[misc]


class MaskedSAC(_MaskedOffPolicy, SAC):
    """SAC that never learns from masked transitions (see the module docstring)."""


class MaskedTD3(_MaskedOffPolicy, TD3):
    """TD3 that never learns from masked transitions (see the module docstring)."""


MASKED_ALGORITHMS: dict[str, type[BaseAlgorithm]] = {"ppo": MaskedPPO, "a2c": MaskedA2C, "sac": MaskedSAC, "td3": MaskedTD3}
try:  # sb3-contrib is optional
    from sb3_contrib import TQC

    class MaskedTQC(_MaskedOffPolicy, TQC):
        """TQC that never learns from masked transitions (see the module docstring)."""

    MASKED_ALGORITHMS["tqc"] = MaskedTQC
except ImportError:  # pragma: no cover - depends on the installation
    pass
