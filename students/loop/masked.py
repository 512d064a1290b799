"""Students that can leave chosen episodes out of their updates (Robust PLR and ACCEL score some levels only).

The curriculum callback sets ``step_mask`` (one flag per sub-environment: learn from this step or not) on the
student's buffer before each step is stored; the buffer records it beside the transition.

- On-policy (PPO, A2C, TRPO): :class:`MaskedRolloutBuffer` (:class:`MaskedDictRolloutBuffer` for dict observations)
  keeps the whole rollout (values and advantages of masked episodes are still computed, their scores need them)
  but its minibatches hold only unmasked transitions, so masked ones take no part in any loss, advantage
  normalisation included. With nothing masked, the minibatches are exactly SB3's (same permutation). A rollout
  with nothing to learn from skips the update.
- Off-policy (SAC, TD3, TQC): :class:`MaskedReplayBuffer` (:class:`MaskedDictReplayBuffer`) stores masked
  transitions but never samples them; updates wait until the buffer holds an unmasked transition.

Both record the indices of the minibatch they last gave out (``last_indices``, ``last_sample``), as the indexed
buffers do for a plain student (:class:`IndexedRolloutBuffer`, :class:`IndexedReplayBuffer`: SB3's buffers, same
draws), so that an extra loss term can read the same states (:mod:`students.loop.auxiliary`, :mod:`students.loop.kickstart`).

We mask inside the update rather than discarding rollouts: a rollout mixes episodes of both kinds, and
discarding it would also throw away the replayed levels' transitions.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from stable_baselines3 import A2C, PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from gymnasium import spaces
from sb3_contrib import TQC, TRPO, RecurrentPPO
from sb3_contrib.common.recurrent.buffers import RecurrentDictRolloutBuffer, RecurrentRolloutBuffer
from stable_baselines3.common.buffers import DictReplayBuffer, DictRolloutBuffer, ReplayBuffer, RolloutBuffer
from stable_baselines3.common.type_aliases import DictReplayBufferSamples, ReplayBufferSamples
from stable_baselines3.common.vec_env import VecNormalize

if TYPE_CHECKING:  # the mixins below are used only with these bases
    from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm as _OffPolicyBase
    from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm as _OnPolicyBase
else:
    _OffPolicyBase = _OnPolicyBase = object


class StepMasked:
    """What a masked student's buffer declares: ``step_mask``, one flag per sub-environment (learn from the step
    being added or not), which the curriculum callback sets at every step."""

    step_mask: np.ndarray


class _IndexedRollout:
    """Rollout-buffer mixin: records the indices of the minibatch it gives out last (``last_indices``, into the
    env-major flattened rollout), SB3's minibatches unchanged."""

    last_indices: np.ndarray

    def _get_samples(self, batch_inds: np.ndarray, env: VecNormalize | None = None) -> Any:
        self.last_indices = batch_inds
        return super()._get_samples(batch_inds, env)  # type: ignore[misc]


class IndexedRolloutBuffer(_IndexedRollout, RolloutBuffer):
    """SB3's rollout buffer, recording the minibatch it gave out last."""


class IndexedDictRolloutBuffer(_IndexedRollout, DictRolloutBuffer):
    """:class:`IndexedRolloutBuffer` for dict observations."""


class _RolloutMasked(StepMasked):
    """Rollout-buffer mixin: records each transition's ``step_mask`` flag (``train_mask``) as it is added."""

    buffer_size: int
    n_envs: int
    pos: int

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.step_mask = np.ones(self.n_envs, dtype=bool)

    def reset(self) -> None:
        self.train_mask = np.ones((self.buffer_size, self.n_envs), dtype=bool)
        super().reset()  # type: ignore[misc]

    def add(self, *args: Any, **kwargs: Any) -> None:
        self.train_mask[self.pos] = self.step_mask
        super().add(*args, **kwargs)  # type: ignore[misc]

    @property
    def n_unmasked(self) -> int:
        return int(self.train_mask.sum())


class _MaskedRollout(_IndexedRollout, _RolloutMasked):
    """Rollout-buffer mixin: minibatches leave out the transitions whose ``step_mask`` flag was off."""

    full: bool
    generator_ready: bool
    observations: Any

    def get(self, batch_size: int | None = None) -> Generator[Any, None, None]:
        assert self.full, "the rollout buffer is not full"
        total = self.buffer_size * self.n_envs
        indices = np.random.permutation(total)  # as SB3 does, so that an all-true mask gives its minibatches
        indices = indices[self.train_mask.swapaxes(0, 1).reshape(-1)[indices]]  # SB3 flattens env-major
        if not self.generator_ready:
            flatten = self.swap_and_flatten  # type: ignore[attr-defined]
            if isinstance(self.observations, dict):
                self.observations = {key: flatten(obs) for key, obs in self.observations.items()}
            else:
                self.observations = flatten(self.observations)
            for name in ("actions", "values", "log_probs", "advantages", "returns"):
                self.__dict__[name] = flatten(self.__dict__[name])
            self.generator_ready = True
        batch_size = batch_size or total
        for start in range(0, len(indices), batch_size):
            yield self._get_samples(indices[start : start + batch_size])


class MaskedRolloutBuffer(_MaskedRollout, RolloutBuffer):
    """A rollout buffer whose minibatches leave out the transitions whose ``step_mask`` flag was off."""


class MaskedDictRolloutBuffer(_MaskedRollout, DictRolloutBuffer):
    """:class:`MaskedRolloutBuffer` for dict observations."""


class _MaskedOnPolicy(_OnPolicyBase):
    """Skips the update of a rollout in which every transition is masked."""

    def _setup_model(self) -> None:
        dict_obs = isinstance(self.observation_space, spaces.Dict)
        self.rollout_buffer_class = MaskedDictRolloutBuffer if dict_obs else MaskedRolloutBuffer
        super()._setup_model()

    def train(self) -> None:
        buffer = cast(_MaskedRollout, self.rollout_buffer)
        self.logger.record("train/masked_share", 1.0 - buffer.n_unmasked / buffer.train_mask.size)
        if buffer.n_unmasked:
            super().train()


class MaskedPPO(_MaskedOnPolicy, PPO):
    """PPO whose losses ignore masked transitions (see the module docstring)."""


class MaskedA2C(_MaskedOnPolicy, A2C):
    """A2C whose losses ignore masked transitions (see the module docstring)."""


class MaskedTRPO(_MaskedOnPolicy, TRPO):
    """TRPO (sb3-contrib) whose losses, the policy step's included, ignore masked transitions."""


class MaskedRecurrentRolloutBuffer(_RolloutMasked, RecurrentRolloutBuffer):
    """sb3-contrib's recurrent rollout buffer, recording which transitions may be learnt from (its student
    trains on a whole rollout or skips it: :class:`MaskedRecurrentPPO`)."""


class MaskedRecurrentDictRolloutBuffer(_RolloutMasked, RecurrentDictRolloutBuffer):
    """:class:`MaskedRecurrentRolloutBuffer` for dict observations."""


class MaskedRecurrentPPO(RecurrentPPO):
    """RecurrentPPO (sb3-contrib) that skips the update of a rollout in which every transition is masked. Its
    minibatches are sequences, so it cannot leave some episodes of a rollout out: a partly masked rollout is an
    error (the run refuses the combination before it starts: Robust PLR and ACCEL need dcd's cycle with it)."""

    def _setup_model(self) -> None:
        super()._setup_model()
        plain = cast(RecurrentRolloutBuffer, self.rollout_buffer)
        dict_obs = isinstance(plain, RecurrentDictRolloutBuffer)
        cls = MaskedRecurrentDictRolloutBuffer if dict_obs else MaskedRecurrentRolloutBuffer
        self.rollout_buffer = cls(
            self.n_steps,
            self.observation_space,
            self.action_space,
            plain.hidden_state_shape,
            self.device,
            gamma=self.gamma,
            gae_lambda=self.gae_lambda,
            n_envs=self.n_envs,
        )

    def train(self) -> None:
        buffer = cast(_RolloutMasked, self.rollout_buffer)
        self.logger.record("train/masked_share", 1.0 - buffer.n_unmasked / buffer.train_mask.size)
        if buffer.n_unmasked == buffer.train_mask.size:
            super().train()
        elif buffer.n_unmasked:
            raise RuntimeError(
                "a recurrent student was asked to learn from part of a rollout (it learns from whole sequences): "
                "use dcd's cycle (cycle=rollout)"
            )


def _take(data: Any, rows: np.ndarray, envs: np.ndarray) -> Any:
    if isinstance(data, dict):
        return {key: value[rows, envs, :] for key, value in data.items()}
    return data[rows, envs, :]


class _IndexedReplay:
    """Replay-buffer mixin: records the (rows, envs) of the batch it gives out last (``last_sample``), drawn as SB3
    draws them (``optimize_memory_usage`` is not supported)."""

    n_envs: int
    optimize_memory_usage: bool
    last_sample: tuple[np.ndarray, np.ndarray]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.optimize_memory_usage:
            raise ValueError(f"{type(self).__name__} does not support optimize_memory_usage")

    def _get_samples(self, batch_inds: np.ndarray, env: VecNormalize | None = None) -> Any:
        return self._samples_at(batch_inds, np.random.randint(0, high=self.n_envs, size=(len(batch_inds),)), env)

    def _samples_at(self, rows: np.ndarray, envs: np.ndarray, env: VecNormalize | None = None) -> Any:
        """SB3's samples of the transitions at ``rows``, ``envs``."""
        self.last_sample = (rows, envs)  # for a loss term of the same batch (kickstart)
        buffer: Any = self
        obs = buffer._normalize_obs(_take(buffer.observations, rows, envs), env)
        next_obs = buffer._normalize_obs(_take(buffer.next_observations, rows, envs), env)
        actions = buffer.actions[rows, envs, :]
        dones = (buffer.dones[rows, envs] * (1 - buffer.timeouts[rows, envs])).reshape(-1, 1)
        rewards = buffer._normalize_reward(buffer.rewards[rows, envs].reshape(-1, 1), env)
        if isinstance(obs, dict):
            return DictReplayBufferSamples(
                {k: buffer.to_torch(v) for k, v in obs.items()},
                buffer.to_torch(actions),
                {k: buffer.to_torch(v) for k, v in next_obs.items()},
                buffer.to_torch(dones),
                buffer.to_torch(rewards),
            )
        return ReplayBufferSamples(*map(buffer.to_torch, (obs, actions, next_obs, dones, rewards)))


class IndexedReplayBuffer(_IndexedReplay, ReplayBuffer):
    """SB3's replay buffer, recording the batch it gave out last."""


class IndexedDictReplayBuffer(_IndexedReplay, DictReplayBuffer):
    """:class:`IndexedReplayBuffer` for dict observations."""


class _MaskedReplay(_IndexedReplay, StepMasked):
    """Replay-buffer mixin that never samples the transitions whose ``step_mask`` flag was off."""

    buffer_size: int
    pos: int
    full: bool

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.step_mask = np.ones(self.n_envs, dtype=bool)
        self.valid = np.zeros((self.buffer_size, self.n_envs), dtype=bool)

    def add(self, *args: Any, **kwargs: Any) -> None:
        self.valid[self.pos] = self.step_mask
        super().add(*args, **kwargs)  # type: ignore[misc]

    @property
    def n_unmasked(self) -> int:
        return int(self.valid.sum())  # slots not written yet are False

    def sample(self, batch_size: int, env: VecNormalize | None = None) -> Any:
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
        return self._samples_at(rows[:batch_size], envs[:batch_size], env)


class MaskedReplayBuffer(_MaskedReplay, ReplayBuffer):
    """A replay buffer that never samples the transitions whose ``step_mask`` flag was off."""


class MaskedDictReplayBuffer(_MaskedReplay, DictReplayBuffer):
    """:class:`MaskedReplayBuffer` for dict observations."""


class _MaskedOffPolicy(_OffPolicyBase):
    """Uses a masked replay buffer and waits for an unmasked transition before updating."""

    def _setup_model(self) -> None:
        dict_obs = isinstance(self.observation_space, spaces.Dict)
        self.replay_buffer_class = MaskedDictReplayBuffer if dict_obs else MaskedReplayBuffer
        super()._setup_model()

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        if cast(_MaskedReplay, self.replay_buffer).n_unmasked:
            super().train(gradient_steps, batch_size)


class MaskedSAC(_MaskedOffPolicy, SAC):
    """SAC that never learns from masked transitions (see the module docstring)."""


class MaskedTD3(_MaskedOffPolicy, TD3):
    """TD3 that never learns from masked transitions (see the module docstring)."""


class MaskedTQC(_MaskedOffPolicy, TQC):
    """TQC that never learns from masked transitions (see the module docstring)."""


MASKED_ALGORITHMS: dict[str, type[BaseAlgorithm]] = {
    "ppo": MaskedPPO,
    "a2c": MaskedA2C,
    "trpo": MaskedTRPO,
    "sac": MaskedSAC,
    "td3": MaskedTD3,
    "tqc": MaskedTQC,
    "recurrent-ppo": MaskedRecurrentPPO,
}
