"""An extra loss term joined to a student's own update (kickstarting's), through the forward pass SB3's update makes.

Each student's entry (:data:`students.loop.algorithms.STUDENTS`) names where its update reads the policy with gradients
(``Algorithm.auxiliary``):

- ``"evaluate_actions"`` (PPO, A2C): ``ActorCriticPolicy.evaluate_actions``, the minibatch's distribution and values;
- ``"action_log_prob"`` (SAC, TQC): the actor's ``action_log_prob``, the batch's squashed Gaussian;
- ``"actor"`` (TD3): the actor's forward, the batch's actions.

The policy classes here are SB3's with that one method extended. When a term is set (``auxiliary``, a callable of
:class:`StudentPass`), it is computed from what SB3's own forward pass has just built, with no second pass, and
joined to an output SB3's loss reads (the log-probabilities, or TD3's actions) by :func:`join`: an identity whose
backward also back-propagates the term with weight 1. So the update is exactly SB3's with the term added to its
loss: one backward, SB3's own gradient clipping and optimiser step. Without a term (or when it returns ``None``) the
classes compute exactly what SB3's do. The minibatch's place in the buffer is what the indexed buffers of
:mod:`students.loop.masked` record; :func:`auxiliary_kwargs` gives a student both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import torch as th
from gymnasium import spaces
from sb3_contrib.tqc import policies as tqc_policies
from stable_baselines3 import PPO, SAC, TD3
from sb3_contrib import TQC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.distributions import Distribution
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.sac import policies as sac_policies
from stable_baselines3.td3 import policies as td3_policies

from students.loop.masked import (
    IndexedDictReplayBuffer,
    IndexedDictRolloutBuffer,
    IndexedReplayBuffer,
    IndexedRolloutBuffer,
    MASKED_ALGORITHMS,
)


@dataclass
class StudentPass:
    """What the student's own forward pass built for the minibatch SB3 is updating on.

    :param obs: the observations (tensors)
    :param distribution: the action distribution (``None`` for a deterministic actor: TD3)
    :param deterministic: computes the deterministic action in the action space scaled to [-1, 1]
        (differentiable; :attr:`action`, computed when first read)
    :param values: V(s) (on-policy students), else ``None``
    """

    obs: Any
    distribution: Distribution | None
    deterministic: Callable[[], th.Tensor]
    values: th.Tensor | None = None

    @cached_property
    def action(self) -> th.Tensor:
        return self.deterministic()


def actor_critic_pass(
    policy: ActorCriticPolicy, obs: Any, distribution: Distribution, values: th.Tensor | None
) -> StudentPass:
    """The pass of an actor-critic policy (PPO, A2C): its Gaussian's mode clipped and scaled, or its action as is."""

    return StudentPass(obs, distribution, lambda: deterministic_action(policy, distribution), values)


def deterministic_action(policy: BasePolicy, distribution: Distribution) -> th.Tensor:
    """A policy's deterministic action in the action space scaled to [-1, 1]: a squashed Gaussian's (SAC, TQC) as
    it is, an actor-critic's clipped and scaled (:func:`scaled`)."""
    mode = distribution.mode()
    if policy.squash_output or not isinstance(policy, ActorCriticPolicy):
        return mode  # SAC/TQC: tanh-squashed, in [-1, 1]
    return scaled(mode, policy.action_space)


@dataclass
class GaussianKL:
    """The term ``sum_i weight_i * KL(N(expert_mean_i, expert_var_i) || N(mean_i, std_i))`` (summed over action
    dimensions) given by its parameters: :func:`join` adds it in one autograd node whose backward is the KL's
    gradient in closed form, ``w (m - m_e) / s^2`` for the mean and ``w (1 / s - (s_e^2 + (m - m_e)^2) / s^3)`` for
    the std. Equal to back-propagating the KL through autograd, in a fraction of the time on small minibatches.

    :param weight: a number, or one per state
    """

    mean: th.Tensor
    std: th.Tensor
    expert_mean: th.Tensor
    expert_var: th.Tensor
    weight: th.Tensor


#: the extra term of a minibatch, from the student's pass (``None``: no term for this minibatch)
Term = Callable[[StudentPass], "th.Tensor | GaussianKL | None"]


class _Join(th.autograd.Function):
    """Identity on ``carrier``; its backward also gives ``term`` the gradient 1, as if it were added to the loss."""

    @staticmethod
    def forward(ctx: Any, carrier: th.Tensor, term: th.Tensor) -> th.Tensor:
        return carrier.view_as(carrier)

    @staticmethod
    def backward(ctx: Any, grad: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        return grad, th.ones((), dtype=grad.dtype, device=grad.device)


class _JoinGaussianKL(th.autograd.Function):
    """Identity on ``carrier``; its backward also back-propagates a :class:`GaussianKL` term."""

    @staticmethod
    def forward(ctx: Any, carrier: th.Tensor, *parameters: th.Tensor) -> th.Tensor:
        ctx.save_for_backward(*parameters)  # mean, std, expert_mean, expert_var, weight
        return carrier.view_as(carrier)

    @staticmethod
    def backward(ctx: Any, grad: th.Tensor) -> tuple[th.Tensor | None, ...]:
        mean, std, expert_mean, expert_var, weight = ctx.saved_tensors
        w = weight.unsqueeze(-1) if weight.dim() else weight
        diff, inverse_var = mean - expert_mean, std.pow(-2)
        grad_mean = w * diff * inverse_var
        grad_std = w * (1.0 / std - (expert_var + diff * diff) * inverse_var / std)
        return grad, grad_mean, grad_std, None, None, None


def join(carrier: th.Tensor, term: th.Tensor | GaussianKL | None) -> th.Tensor:
    """``carrier`` unchanged, with the scalar ``term`` added to whatever loss is back-propagated through it."""
    if term is None:
        return carrier
    if isinstance(term, GaussianKL):
        return _JoinGaussianKL.apply(carrier, term.mean, term.std, term.expert_mean, term.expert_var, term.weight)
    return _Join.apply(carrier, term)


def scaled(action: th.Tensor, space: spaces.Space) -> th.Tensor:
    """An unsquashed Box action (a Gaussian's mode) clipped to the space and scaled to [-1, 1]; other spaces as is."""
    if not isinstance(space, spaces.Box):
        return action
    low, high = (th.as_tensor(b, dtype=action.dtype, device=action.device) for b in (space.low, space.high))
    return 2.0 * (th.clamp(action, low, high) - low) / (high - low) - 1.0


class _AuxiliaryActorCritic:
    """``evaluate_actions`` with the extra term joined to the log-probabilities (PPO's and A2C's losses read them)."""

    auxiliary: Term | None = None
    action_space: spaces.Space
    squash_output: bool

    def _get_action_dist_from_latent(self, latent_pi: th.Tensor) -> Distribution:
        self._last_distribution = super()._get_action_dist_from_latent(latent_pi)  # type: ignore[misc]
        return self._last_distribution

    def evaluate_actions(self, obs: Any, actions: th.Tensor) -> tuple[th.Tensor, th.Tensor, th.Tensor | None]:
        values, log_prob, entropy = super().evaluate_actions(obs, actions)  # type: ignore[misc]
        if self.auxiliary is not None and th.is_grad_enabled():
            student = actor_critic_pass(self, obs, self._last_distribution, values.flatten())  # type: ignore[arg-type]
            log_prob = join(log_prob, self.auxiliary(student))
        return values, log_prob, entropy


class _AuxiliarySquashedActor:
    """SAC's and TQC's actor: ``action_log_prob`` with the extra term joined to the log-probabilities (the actor
    loss reads them; the entropy coefficient's loss reads them detached)."""

    auxiliary: Term | None = None
    action_dist: Distribution

    def action_log_prob(self, obs: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        actions, log_prob = super().action_log_prob(obs)  # type: ignore[misc]
        if self.auxiliary is not None and th.is_grad_enabled():  # not the target's pass on the next observations
            distribution = self.action_dist  # SB3's distributions hold the parameters they were last given
            log_prob = join(log_prob, self.auxiliary(StudentPass(obs, distribution, distribution.mode)))
        return actions, log_prob


class _AuxiliaryDeterministicActor:
    """TD3's actor: its forward with the extra term joined to the actions (the actor loss reads them)."""

    auxiliary: Term | None = None

    def forward(self, obs: th.Tensor) -> th.Tensor:
        actions = super().forward(obs)  # type: ignore[misc]
        if self.auxiliary is not None and th.is_grad_enabled():  # not the target actor, not predict()
            actions = join(actions, self.auxiliary(StudentPass(obs, None, lambda: actions)))
        return actions


class _WithActor:
    """An off-policy policy whose actor is the extended one (as SB3's ``make_actor``, with another class)."""

    actor_class: type
    actor_kwargs: dict[str, Any]
    device: th.device

    def make_actor(self, features_extractor: Any = None) -> Any:
        kwargs = self._update_features_extractor(self.actor_kwargs, features_extractor)  # type: ignore[attr-defined]
        return self.actor_class(**kwargs).to(self.device)


def _named(name: str, bases: tuple[type, ...], **attributes: Any) -> type:
    """A class of this module (so that SB3's saved models name it, and load it, by reference)."""
    cls = type(name, bases, {"__module__": __name__, "__qualname__": name, **attributes})
    globals()[name] = cls
    return cls


def _extended() -> dict[type[BasePolicy], type[BasePolicy]]:
    policies: dict[type[BasePolicy], type[BasePolicy]] = {
        base: _named(f"Auxiliary{base.__name__}", (_AuxiliaryActorCritic, base)) for base in PPO.policy_aliases.values()
    }
    for algorithm, actor in ((SAC, sac_policies.Actor), (TQC, tqc_policies.Actor), (TD3, td3_policies.Actor)):
        mixin = _AuxiliaryDeterministicActor if algorithm is TD3 else _AuxiliarySquashedActor
        extended_actor = _named(f"Auxiliary{algorithm.__name__}Actor", (mixin, actor))
        for alias, base in algorithm.policy_aliases.items():
            name = f"Auxiliary{algorithm.__name__}{alias}"
            policies[base] = _named(name, (_WithActor, base), actor_class=extended_actor)
    return policies


#: SB3's policy classes (PPO's and A2C's, SAC's, TQC's, TD3's) -> the extended ones
POLICIES = _extended()


def auxiliary_kwargs(cls: type[BaseAlgorithm], policy: str | type[BasePolicy], dict_obs: bool) -> dict[str, Any]:
    """The constructor arguments that give an SB3 student of class ``cls`` a policy that takes an extra term and a
    buffer that records its minibatches: ``{"policy": ..., "rollout_buffer_class" or "replay_buffer_class": ...}``
    (no buffer for a masked student: its buffers record them already).

    :raises ValueError: a policy class without an extended version
    """
    base = cls.policy_aliases.get(policy, policy) if isinstance(policy, str) else policy
    if base in POLICIES.values():
        extended = base
    elif base in POLICIES:
        extended = POLICIES[base]
    else:
        raise ValueError(f"policy {policy!r} of {cls.__name__} cannot take an extra loss term (extended: SB3's own)")
    kwargs: dict[str, Any] = {"policy": extended}
    if cls not in MASKED_ALGORITHMS.values():
        if issubclass(cls, OffPolicyAlgorithm):
            kwargs["replay_buffer_class"] = IndexedDictReplayBuffer if dict_obs else IndexedReplayBuffer
        else:
            kwargs["rollout_buffer_class"] = IndexedDictRolloutBuffer if dict_obs else IndexedRolloutBuffer
    return kwargs


def set_term(model: BaseAlgorithm, term: Term | None) -> None:
    """Join ``term`` to the student's updates from now on (``None``: no more)."""
    module = getattr(model, "actor", None) if isinstance(model, OffPolicyAlgorithm) else model.policy
    if not isinstance(module, _AuxiliaryActorCritic | _AuxiliarySquashedActor | _AuxiliaryDeterministicActor):
        raise ValueError(f"the {type(model).__name__} student was not built to take an extra term (see auxiliary_kwargs)")
    module.auxiliary = term
