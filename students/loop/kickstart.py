"""Kickstarting (Schmitt et al., 2018): the student does RL while an expert's policy pulls it along.

Loss = RL loss + lambda_e(t) * H(pi_e(.|s) || pi_student(.|s)) on the states of the student's *own* experience, i.e.
the forward KL(expert || student) (equal in gradient to the cross-entropy), in closed form: Gaussian policies summed
over action dimensions (SAC/TQC's squashed Gaussians compare their Gaussians before the tanh, a bijection, so the
KL is the same), categorical policies over actions. When the two policies are not of one family (a PPO expert and
a SAC student, a TD3 student, gSDE), the term is the mean squared distance between their deterministic actions,
in the action space scaled to [-1, 1]. On-policy students (PPO, A2C) can add a value-distillation term,
``value_coef * (V_student(s) - V_expert(s))^2``, when the expert has a value head.

How the term joins SB3's update: through the student's own forward pass (:mod:`students.loop.auxiliary`). The student is
built with a policy whose update-time method (PPO/A2C: ``evaluate_actions``; SAC/TQC: the actor's
``action_log_prob``; TD3: the actor) hands what it just computed for the minibatch to :meth:`KickstartCallback.term`,
and joins the term to the output SB3's loss reads, so that SB3's one backward pass, gradient clipping and optimiser
step take the RL loss plus the term. Its buffer records which rows the minibatch holds, for each row's expert. The
experts' outputs are computed once per rollout for on-policy students (every state of the rollout, before the
update's epochs), per sampled batch for off-policy ones. With every coefficient at 0 no term is joined, so the
update is bit-identical to SB3's (tested). TRPO takes no term: its policy step is a trust-region solve, not a
gradient step on a loss.

Experts:

- any SB3 model (a run folder, whose ``model.zip`` is used, or a ``model.zip``) whose action space is the
  student's; only its policy is loaded (the policy class is in the zip: no guessing), frozen (eval mode, no
  gradient), on the student's device, held by :class:`KickstartCallback` and so never part of the student's
  saved parameters;
- it reads its own observation: the student's, or, for an expert trained on an environment's privileged dict
  (``observation_mode=privileged``) and a student that reads observations without it, the full dict while the
  student reads its ``student`` part (asymmetric kickstarting; the environment runs in privileged mode and
  :class:`StudentView` hands the student its part);
- each covers a region of the task space (``PATH@gate_width=4:8,friction=0:1``; none: all of it): a state takes
  the term of the expert covering the task of its episode (the first that does), one coefficient per expert;
  states of tasks no expert covers get no term.

Schedules multiply each expert's coefficient: ``constant``; ``linear:STEPS`` (1 to 0 over STEPS steps);
``exp:HALF_LIFE`` (halves every HALF_LIFE steps); ``until-expert[:WINDOW]`` (1 until the run's own evaluation
finds the student at the expert's level on the test tasks of the expert's region, mastered % or, when the expert
masters none, mean return; then 1 to 0 over WINDOW steps, 50,000 by default). The expert's level is measured once,
at the start, on the run's test set with the run's evaluation episodes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.distributions import CategoricalDistribution, DiagGaussianDistribution, Distribution
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.sac.policies import SACPolicy
from stable_baselines3.td3.policies import TD3Policy
from sb3_contrib.tqc.policies import TQCPolicy

from curriculum.spaces import BoxTaskSpace
from students.loop.algorithms import algorithm_of
from students.policies import PolicyFileError, load_policy
from students.loop.auxiliary import GaussianKL, StudentPass, actor_critic_pass, deterministic_action, set_term

#: the dict key of the observation a student of an asymmetric expert reads
STUDENT_KEY = "student"
SCHEDULES = ("constant", "linear:STEPS", "exp:HALF_LIFE_STEPS", "until-expert[:WINDOW_STEPS]")
DEFAULT_UNTIL_EXPERT_WINDOW = 50_000


class KickstartError(ValueError):
    """An expert, region or schedule that cannot be used (one line naming the problem)."""


# -- regions and schedules -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Region:
    """A box of the task space: ``{dimension name: (low, high)}``; dimensions not named are unbounded."""

    bounds: dict[str, tuple[float, float]]
    indices: dict[str, int]

    @classmethod
    def parse(cls, text: str, space: BoxTaskSpace) -> Region:
        """``"gate_width=4:8,friction=0:1"`` (empty: the whole space).

        :raises KickstartError: unknown dimension, malformed range, or a range outside the task space
        """
        bounds: dict[str, tuple[float, float]] = {}
        names = list(space.names)
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, sep, interval = part.partition("=")
            low_text, colon, high_text = interval.partition(":")
            if not (sep and colon) or name not in names:
                raise KickstartError(
                    f"region '{part}': expected NAME=LOW:HIGH with NAME one of {', '.join(names)} (e.g. {names[0]}=0:1)"
                )
            try:
                low, high = float(low_text), float(high_text)
            except ValueError:
                raise KickstartError(f"region '{part}': LOW and HIGH must be numbers") from None
            d = names.index(name)
            if not (space.low[d] <= low <= high <= space.high[d]):
                raise KickstartError(
                    f"region '{part}' is not inside the task space: {name} lies in [{space.low[d]:g}, {space.high[d]:g}]"
                )
            bounds[name] = (low, high)
        return cls(bounds, {name: names.index(name) for name in bounds})

    def contains(self, task: Any) -> bool:
        task = np.asarray(task, dtype=np.float64)
        return all(low <= task[self.indices[name]] <= high for name, (low, high) in self.bounds.items())

    def covers(self, tasks: np.ndarray) -> np.ndarray:
        """:meth:`contains` of each row of a (tasks, dimensions) array."""
        inside = np.ones(len(tasks), dtype=bool)
        for name, (low, high) in self.bounds.items():
            column = tasks[:, self.indices[name]]
            inside &= (low <= column) & (column <= high)
        return inside

    def __str__(self) -> str:
        return ",".join(f"{n}={lo:g}:{hi:g}" for n, (lo, hi) in self.bounds.items()) or "all tasks"


@dataclass
class Schedule:
    """A coefficient multiplier over training steps (see the module docstring for the forms)."""

    kind: str
    steps: int = 0

    @classmethod
    def parse(cls, text: str) -> Schedule:
        """:raises KickstartError: unknown form or a non-positive step count"""
        kind, _, value = str(text).partition(":")
        if kind == "constant" and not value:
            return cls("constant")
        if kind in ("linear", "exp", "until-expert"):
            if kind == "until-expert" and not value:
                return cls(kind, DEFAULT_UNTIL_EXPERT_WINDOW)
            try:
                steps = int(float(value))
            except ValueError:
                steps = 0
            if steps > 0:
                return cls(kind, steps)
        raise KickstartError(f"unknown kickstart schedule '{text}'; valid: {', '.join(SCHEDULES)} (steps > 0)")

    def value(self, timesteps: int, reached_at: int | None = None) -> float:
        """The multiplier at ``timesteps`` (``reached_at``: when the student reached the expert, for until-expert)."""
        if self.kind == "constant":
            return 1.0
        if self.kind == "linear":
            return max(0.0, 1.0 - timesteps / self.steps)
        if self.kind == "exp":
            return 0.5 ** (timesteps / self.steps)
        if reached_at is None:
            return 1.0
        return max(0.0, 1.0 - (timesteps - reached_at) / self.steps)


# -- experts ---------------------------------------------------------------------------------------------------------
@dataclass
class ExpertSpec:
    """An expert as a user names it: ``PATH[@REGION]`` and its coefficient."""

    path: str
    region: str = ""
    coef: float = 1.0

    @classmethod
    def parse(cls, text: str, coef: float = 1.0) -> ExpertSpec:
        path, _, region = str(text).partition("@")
        return cls(path, region, float(coef))


@dataclass
class Expert:
    """A loaded expert (see the module docstring)."""

    name: str
    policy: BasePolicy
    region: Region
    coef: float
    asymmetric: bool  # reads the full privileged dict while the student reads its ``student`` part
    reached_at: int | None = None  # step at which the student reached the expert's level (until-expert)
    level: tuple[float, float] | None = None  # the expert's (mastered %, mean return) on its region's test tasks


def observation_route(expert_obs: spaces.Space, student_obs: spaces.Space, privileged: spaces.Space | None) -> bool:
    """Whether the expert reads the privileged dict while the student reads its ``student`` part (else both read
    the same observation).

    :raises KickstartError: neither
    """
    if expert_obs == student_obs:
        return False
    if (
        privileged is not None
        and expert_obs == privileged
        and isinstance(privileged, spaces.Dict)
        and privileged.spaces.get(STUDENT_KEY) == student_obs
    ):
        return True
    raise KickstartError(
        f"the expert reads {expert_obs} but the student reads {student_obs}: an expert must read the student's "
        f"observation, or the environment's privileged dict (observation_mode=privileged) for a student reading its "
        f"'{STUDENT_KEY}' part"
    )


#: the policies an expert may have: a Gaussian or categorical actor-critic, a squashed Gaussian actor, a deterministic one
EXPERT_POLICIES = (ActorCriticPolicy, SACPolicy, TQCPolicy, TD3Policy)


def load_experts(
    specs: list[ExpertSpec],
    task_space: BoxTaskSpace,
    student_obs: spaces.Space,
    action_space: spaces.Space,
    privileged_obs: spaces.Space | None,
) -> tuple[list[BasePolicy], bool]:
    """Load every expert (on the CPU) and check it against the run before anything is written; return the
    policies and whether they read the privileged dict.

    :raises KickstartError: a bad path, region, coefficient, action space or observation; experts that disagree on
        the observation they read
    """
    routes: set[bool] = set()
    policies: list[BasePolicy] = []
    for spec in specs:
        if not (math.isfinite(spec.coef) and spec.coef >= 0):
            raise KickstartError(f"kickstart coefficient of '{spec.path}' must be a number >= 0, got {spec.coef}")
        Region.parse(spec.region, task_space)
        try:
            policy = load_policy(Path(spec.path))
        except PolicyFileError as exc:
            raise KickstartError(str(exc)) from None
        if not isinstance(policy, EXPERT_POLICIES):
            raise KickstartError(
                f"expert '{spec.path}' has a {type(policy).__name__}; kickstarting reads actor-critic (PPO, A2C, TRPO), "
                "SAC, TQC and TD3 policies"
            )
        if policy.action_space != action_space:
            raise KickstartError(
                f"expert '{spec.path}' acts in {policy.action_space}, the student in {action_space}: they must match"
            )
        routes.add(observation_route(policy.observation_space, student_obs, privileged_obs))
        policies.append(policy)
    if len(routes) > 1:
        raise KickstartError("all experts must read the same observation (all the student's, or all the privileged dict)")
    return policies, bool(routes and routes.pop())


# -- the student's view of a privileged environment --------------------------------------------------------------------
class StudentView(VecEnvWrapper):
    """Hands the student the ``student`` part of a privileged dict observation and keeps the full dict for an
    asymmetric expert: ``full`` (the observation the student's last observation came from) and ``previous`` (the one
    before it, which the step just taken acted on)."""

    def __init__(self, venv: VecEnv, key: str = STUDENT_KEY) -> None:
        if not isinstance(venv.observation_space, spaces.Dict):
            raise TypeError(f"a student view needs a privileged dict observation, got {venv.observation_space}")
        super().__init__(venv, observation_space=venv.observation_space[key])
        self.key = key
        self.full: dict[str, np.ndarray] | None = None
        self.previous: dict[str, np.ndarray] | None = None

    def reset(self) -> np.ndarray:
        full = self.full = cast(dict[str, np.ndarray], self.venv.reset())
        self.previous = None
        return full[self.key]

    def restart(self, index: int, full: dict[str, np.ndarray]) -> np.ndarray:
        """Sub-environment ``index`` restarted (a resume) on the privileged observation ``full``: keep it as that
        sub-environment's ``full`` and return the student's part."""
        if self.full is not None:
            for key, value in full.items():
                self.full[key][index] = value
        return full[self.key]

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        obs, rewards, dones, infos = self.venv.step_wait()
        for info in infos:
            if "terminal_observation" in info:
                info["terminal_observation"] = info["terminal_observation"][self.key]
        self.previous, self.full = self.full, cast(dict[str, np.ndarray], obs)
        return self.full[self.key], rewards, dones, infos


# -- distributions -------------------------------------------------------------------------------------------------
def policy_distribution(policy: BasePolicy, obs: Any) -> Distribution | None:
    """The action distribution of a policy at ``obs`` (``None`` for a deterministic policy, e.g. TD3)."""
    if isinstance(policy, ActorCriticPolicy):
        return policy.get_distribution(obs)
    if isinstance(policy, SACPolicy | TQCPolicy):
        mean, log_std, kwargs = policy.actor.get_action_dist_params(obs)
        return policy.actor.action_dist.proba_distribution(mean, log_std, **kwargs)
    if isinstance(policy, TD3Policy):
        return None
    raise KickstartError(f"a {type(policy).__name__} has no action distribution kickstarting can read")


def scaled_action(policy: BasePolicy, obs: Any, distribution: Distribution | None) -> th.Tensor:
    """The policy's deterministic action in the action space scaled to [-1, 1] (differentiable)."""
    if distribution is None:
        assert isinstance(policy, TD3Policy)
        return policy.actor(obs)  # TD3's actor: already in [-1, 1]
    return deterministic_action(policy, distribution)


def same_family(expert: type[Distribution] | None, student: type[Distribution] | None) -> bool:
    """Whether the closed-form KL applies to two distribution classes (one Gaussian or categorical family, gSDE
    excluded)."""
    closed = (DiagGaussianDistribution, CategoricalDistribution)
    return expert is not None and expert is student and issubclass(expert, closed)


def closed_form_kl(expert: th.distributions.Distribution, student: th.distributions.Distribution) -> th.Tensor:
    """Per-state KL(expert || student) of two torch distributions of one family (summed over action dimensions)."""
    kl = th.distributions.kl_divergence(expert, student)
    return kl.sum(dim=-1) if kl.dim() > 1 else kl


def _parameters(distribution: th.distributions.Distribution) -> tuple[th.Tensor, ...]:
    """A Gaussian's (mean, std) or a categorical's (log-probabilities,)."""
    if isinstance(distribution, th.distributions.Normal):
        return distribution.loc, distribution.scale
    if isinstance(distribution, th.distributions.Categorical):
        return (distribution.logits,)  # torch's Categorical keeps normalised logits: log-probabilities
    raise TypeError(f"no closed-form KL for {type(distribution).__name__}")


def _student_parameters(student: StudentPass) -> tuple[th.Tensor, ...]:
    """:func:`_parameters` of the torch distribution of a student's pass (a stochastic student)."""
    assert student.distribution is not None
    return _parameters(cast(th.distributions.Distribution, student.distribution.distribution))


def parametric_kl(expert: tuple[th.Tensor, ...], student: tuple[th.Tensor, ...]) -> th.Tensor:
    """:func:`closed_form_kl` on distributions' parameters (:func:`_parameters`), torch's formulas without building
    distribution objects (their argument checks cost more than the KL on small minibatches)."""
    if len(expert) == 2:  # torch's _kl_normal_normal, summed over action dimensions
        var_ratio = (expert[1] / student[1]).pow(2)
        t1 = ((expert[0] - student[0]) / student[1]).pow(2)
        return (0.5 * (var_ratio + t1 - 1 - var_ratio.log())).sum(dim=-1)
    log_p, log_q = expert[0], student[0]  # torch's _kl_categorical_categorical
    p = log_p.exp()
    t = p * (log_p - log_q)
    return th.where(p == 0, th.zeros_like(t), t).sum(dim=-1)


@dataclass
class ExpertOutputs:
    """Experts' outputs on a batch of states, each state's from the expert that teaches it.

    :param slot: the teaching expert of each state (the number of experts where none teaches)
    :param weight: each state's coefficient (0: no term), or one for every state
    :param closed: whether the closed-form KL applies to the state (its expert is of the student's family);
        ``None``: to every taught state
    :param parameters: the experts' distributions' parameters (:func:`_parameters`) where ``closed``, else
        placeholders (a standard Gaussian, uniform logits) that a 0 weight or ``closed`` leaves unused; ``None``: no
        state is closed
    :param action: the experts' deterministic actions, scaled to [-1, 1] (0 where no expert teaches)
    :param value: the experts' V(s) where ``has_value`` (an actor-critic expert), else 0; ``None``: not asked for
    """

    slot: th.Tensor
    weight: th.Tensor
    closed: th.Tensor | None
    parameters: tuple[th.Tensor, ...] | None
    action: th.Tensor
    value: th.Tensor | None
    has_value: th.Tensor | None

    def at(self, index: th.Tensor) -> ExpertOutputs:
        """What the term needs of some of the states (not ``slot``, nor the actions where every state is closed)."""

        def pick(value: Any) -> Any:
            if value is None:
                return None
            return tuple(p[index] for p in value) if isinstance(value, tuple) else value[index]

        weight = self.weight if self.weight.dim() == 0 else self.weight[index]
        action = self.action if self.closed is None else self.action[index]
        return ExpertOutputs(
            self.slot, weight, pick(self.closed), pick(self.parameters), action, pick(self.value), pick(self.has_value)
        )


def expert_outputs(
    experts: list[Expert], obs: Any, owners: np.ndarray, coefs: np.ndarray, student_family: type | None, values: bool
) -> ExpertOutputs:
    """Every teaching expert's outputs on the states it teaches, merged into one batch (no gradient)."""
    device = (next(iter(obs.values())) if isinstance(obs, dict) else obs).device
    n, weights = len(owners), _weights(owners, coefs)
    slots = np.where(weights > 0, owners, len(experts))
    closed, action = np.zeros(n, dtype=bool), None
    value, has_value = (th.zeros(n, device=device), np.zeros(n, dtype=bool)) if values else (None, None)
    parameters: tuple[th.Tensor, ...] | None = None
    with th.no_grad():
        for k in np.unique(slots[slots < len(experts)]):
            policy, mine_np = experts[k].policy, slots == k
            mine = th.as_tensor(mine_np, device=device)
            dist = policy_distribution(policy, obs)
            act = scaled_action(policy, obs, dist)
            action = th.zeros_like(act) if action is None else action
            action[mine] = act[mine]
            if value is not None and has_value is not None and isinstance(policy, ActorCriticPolicy):
                value[mine], has_value[mine_np] = policy.predict_values(obs).flatten()[mine], True
            if dist is not None and same_family(type(dist), student_family):
                own = _parameters(dist.distribution)  # type: ignore[arg-type]
                if parameters is None:
                    parameters = tuple(th.ones_like(q) if i else th.zeros_like(q) for i, q in enumerate(own))
                for target, source in zip(parameters, own, strict=True):
                    target[mine] = source[mine]
                closed |= mine_np
    assert action is not None, "expert_outputs needs a teaching expert"
    every = closed[slots < len(experts)].all()

    def tensor(array: np.ndarray | None, dtype: th.dtype) -> th.Tensor | None:
        return None if array is None else th.as_tensor(array, dtype=dtype, device=device)

    return ExpertOutputs(
        slot=th.as_tensor(slots, dtype=th.int64, device=device),
        weight=th.as_tensor(weights[0] if (weights == weights[0]).all() else weights, dtype=th.float32, device=device),
        closed=None if every else tensor(closed, th.bool),
        parameters=parameters,
        action=action,
        value=value,
        has_value=tensor(has_value, th.bool),
    )


# -- the callback ----------------------------------------------------------------------------------------------------
@dataclass
class _Stats:
    """Sums over the states the term was taken on since the last rollout: of each expert's term, of its states, of
    the states whose actions agreed with their expert's (every action dimension within 0.1)."""

    terms: np.ndarray
    states: np.ndarray
    agreed: float = 0.0

    @classmethod
    def empty(cls, n_experts: int) -> _Stats:
        return cls(np.zeros(n_experts), np.zeros(n_experts))


class KickstartCallback(BaseCallback):
    """Adds the kickstarting term to the student's updates (see the module docstring).

    Put it before the curriculum callback: each step it records, for the buffer row SB3 fills, which expert covers
    every sub-environment's episode (and, for asymmetric experts, the privileged observation).

    :param experts: the loaded experts
    :param schedule: the coefficient schedule
    :param current_tasks: returns the task each sub-environment is playing (the curriculum callback's)
    :param value_coef: weight of the value-distillation term (PPO/A2C students, experts with a value head)
    :param evaluator: the run's evaluator (until-expert reads its evaluations)
    """

    def __init__(
        self,
        experts: list[Expert],
        schedule: Schedule,
        current_tasks: Any,
        value_coef: float = 0.0,
        evaluator: Any = None,
    ) -> None:
        super().__init__()
        self.experts, self.schedule, self.current_tasks = experts, schedule, current_tasks
        self.value_coef, self.evaluator = value_coef, evaluator
        self._expert_of = np.full((0, 0), -1, dtype=np.int16)  # (buffer rows, envs): the covering expert, -1 none
        self._privileged: dict[str, np.ndarray] | None = None  # (rows, envs, ...) what else an asymmetric expert reads
        self._seen_evaluation: int | None = None
        self._rollout_outputs: ExpertOutputs | None = None  # on-policy: the experts', on the rollout's states
        self._rollout_taught = np.zeros(0, dtype=bool)  # on-policy: whether each of its states takes a term
        self._stats = _Stats.empty(len(experts))
        self._on_policy = True  # the student's: set when training starts
        self._buffer: Any = None  # the student's indexed rollout or replay buffer: set when training starts

    # -- wiring ----------------------------------------------------------------------------------------------------
    def _on_training_start(self) -> None:
        self._on_policy = algorithm_of(self.model).on_policy
        self._buffer = buffer = getattr(self.model, "rollout_buffer" if self._on_policy else "replay_buffer")
        n_envs = self.training_env.num_envs
        if self._expert_of.shape != (buffer.buffer_size, n_envs):
            self._expert_of = np.full((buffer.buffer_size, n_envs), -1, dtype=np.int16)
        set_term(self.model, self.term)

    def coefficients(self) -> np.ndarray:
        """Every expert's coefficient now (its own coefficient times the schedule)."""
        t = self.model.num_timesteps
        return np.array([e.coef * self.schedule.value(t, e.reached_at) for e in self.experts])

    # -- collection ------------------------------------------------------------------------------------------------
    def _on_step(self) -> bool:
        row = self._buffer.pos  # the row SB3 stores this step's transition in
        owners = self._expert_of[row]
        if not self.experts[0].region.bounds:  # the first expert covers every task
            owners[:] = 0
        else:
            tasks = np.asarray(self.current_tasks(), dtype=np.float64)
            owners[:] = -1
            for k in reversed(range(len(self.experts))):  # the first expert that covers a task teaches it
                owners[self.experts[k].region.covers(tasks)] = k
        if self.experts[0].asymmetric:  # the parts of the dict the student does not read (its own is in the buffer)
            view = _student_view(self.training_env)
            source = view.previous if view.previous is not None else view.full
            assert source is not None, "the student view has not been reset"
            if self._privileged is None:
                self._privileged = {
                    k: np.zeros((self._buffer.buffer_size, *v.shape), dtype=v.dtype)
                    for k, v in source.items()
                    if k != view.key
                }
            for key, store in self._privileged.items():
                store[row] = source[key]
        self._check_until_expert()
        return True

    def _check_until_expert(self) -> None:
        evaluator = self.evaluator
        if self.schedule.kind != "until-expert" or evaluator is None or evaluator.last is None:
            return
        if evaluator.last_step == self._seen_evaluation:
            return
        self._seen_evaluation = evaluator.last_step
        for expert in self.experts:
            if expert.reached_at is None and expert.level is not None:
                mastered, mean_return = region_level(evaluator.last, expert.region)
                target_mastered, target_return = expert.level
                reached = mastered >= target_mastered if target_mastered > 0 else mean_return >= target_return
                if reached:
                    expert.reached_at = int(evaluator.last_step)

    def _on_rollout_end(self) -> None:
        """On-policy: the experts' outputs on every state of the rollout, once, before the update's epochs."""
        if not self._on_policy:
            return
        owners = _env_major(self._expert_of)
        self._rollout_taught = _weights(owners, self.coefficients()) > 0
        if not self._rollout_taught.any():
            self._rollout_outputs = None
            return
        obs = _tensor(self._buffer.observations, self.model.device, flatten=True)
        policy = self.model.policy
        assert isinstance(policy, ActorCriticPolicy)  # on-policy students
        outputs = self._rollout_outputs = self._outputs(obs, owners, slice(None), slice(None), type(policy.action_dist))
        with th.no_grad():  # the statistics: the term on the rollout's states, of the policy that collected them
            values = policy.predict_values(obs).flatten() if outputs.value is not None else None
            student = actor_critic_pass(policy, obs, policy.get_distribution(obs), values)
            self._record(outputs, self._per_state(outputs, student), student.action)

    def _on_rollout_start(self) -> None:
        stats, coefs = self._stats, self.coefficients()
        for k, expert in enumerate(self.experts):
            self.logger.record(f"kickstart/coef/{expert.name}", float(coefs[k]))
            if stats.states[k]:
                self.logger.record(f"kickstart/kl/{expert.name}", float(stats.terms[k] / stats.states[k]))
        if stats.states.sum():
            self.logger.record("kickstart/expert_agreement", float(stats.agreed / stats.states.sum()))
        self._stats = _Stats.empty(len(self.experts))

    # -- the term ----------------------------------------------------------------------------------------------------
    def _privileged_parts(self, rows: Any, envs: Any) -> dict[str, np.ndarray] | None:
        """What an asymmetric expert reads besides the student's observation, at ``rows``, ``envs`` (``slice(None)``
        both: the whole buffer, env-major)."""
        if not self.experts[0].asymmetric:
            return None
        privileged = self._privileged
        assert privileged is not None, "no privileged observation recorded yet"
        if isinstance(rows, slice):
            return {key: _env_major(v) for key, v in privileged.items()}
        return {key: v[rows, envs] for key, v in privileged.items()}

    def _outputs(self, obs: Any, owners: np.ndarray, rows: Any, envs: Any, family: type | None) -> ExpertOutputs:
        """The experts' outputs on states of the buffer; ``family``: the student's distribution class."""
        hidden = self._privileged_parts(rows, envs)
        if hidden is not None:
            obs = {STUDENT_KEY: obs, **_tensor(hidden, self.model.device)}
        return expert_outputs(self.experts, obs, owners, self.coefficients(), family, bool(self.value_coef))

    def term(self, student: StudentPass) -> th.Tensor | GaussianKL | None:
        """The kickstarting term of the minibatch SB3 is updating on, from the student's own pass over it (``None``
        when every coefficient of it is 0)."""
        if self._on_policy:  # the experts' outputs were computed at the rollout's end
            flat = self._buffer.last_indices  # into the env-major flattened rollout
            if self._rollout_outputs is None or not self._rollout_taught[flat].any():
                return None
            outputs = self._rollout_outputs.at(th.as_tensor(flat, device=self.model.device))
        else:
            rows, envs = self._buffer.last_sample
            owners = self._expert_of[rows, envs]
            if not (_weights(owners, self.coefficients()) > 0).any():
                return None
            family = None if student.distribution is None else type(student.distribution)
            outputs = self._outputs(student.obs, owners, rows, envs, family)
            self._record(outputs, self._per_state(outputs, student).detach(), student.action.detach())
        if outputs.closed is None and outputs.value is None and isinstance(student.distribution, DiagGaussianDistribution):
            mean, std = _student_parameters(student)
            assert outputs.parameters is not None
            expert_mean, expert_std = outputs.parameters
            return GaussianKL(mean, std, expert_mean, expert_std.pow(2), outputs.weight / len(mean))
        term = self._per_state(outputs, student)
        return (outputs.weight * term).sum() / len(term)

    def _per_state(self, outputs: ExpertOutputs, student: StudentPass) -> th.Tensor:
        """The term of each state before its coefficient: the closed-form KL where it applies, the squared distance
        of the actions elsewhere, plus the value term."""
        if outputs.closed is None:  # the closed-form KL for every taught state
            assert outputs.parameters is not None
            term = parametric_kl(outputs.parameters, _student_parameters(student))
        else:
            term = ((student.action - outputs.action) ** 2).sum(dim=-1)
            if outputs.parameters is not None:
                kl = parametric_kl(outputs.parameters, _student_parameters(student))
                term = th.where(outputs.closed, kl, term)
        if student.values is not None and outputs.value is not None:
            term = term + self.value_coef * th.where(outputs.has_value, (student.values - outputs.value) ** 2, 0.0)  # type: ignore[arg-type]
        return term

    def _record(self, outputs: ExpertOutputs, term: th.Tensor, action: th.Tensor) -> None:
        n = len(self.experts) + 1  # the untaught states counted apart, then dropped
        self._stats.terms += th.bincount(outputs.slot, weights=term, minlength=n)[:-1].cpu().numpy()
        self._stats.states += th.bincount(outputs.slot, minlength=n)[:-1].cpu().numpy()
        close = ((action - outputs.action).abs() <= 0.1).flatten(1).all(dim=1)
        self._stats.agreed += float((close & (outputs.slot < n - 1)).sum())

    # -- state -------------------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        view = _student_view(self.training_env) if self.experts[0].asymmetric else None
        return {
            "reached_at": [e.reached_at for e in self.experts],
            "levels": [e.level for e in self.experts],
            "expert_of": None if self._expert_of is None else self._expert_of.copy(),
            "privileged": None if self._privileged is None else {k: v.copy() for k, v in self._privileged.items()},
            "seen_evaluation": self._seen_evaluation,
            "view": None if view is None else (view.full, view.previous),
        }

    def load_state_dict(self, state: dict[str, Any], env: VecEnv) -> None:
        for expert, reached, level in zip(self.experts, state["reached_at"], state["levels"], strict=True):
            expert.reached_at, expert.level = reached, level
        self._expert_of, self._privileged = state["expert_of"], state["privileged"]
        self._seen_evaluation = state["seen_evaluation"]
        if state["view"] is not None:
            view = _student_view(env)
            view.full, view.previous = state["view"]


def region_level(evaluation: Any, region: Region) -> tuple[float, float]:
    """(mastered %, mean return) of an evaluation over its test tasks inside ``region`` (0, -inf when none is)."""
    inside = [r for r in evaluation.results if region.contains(r.task)]
    if not inside:
        return 0.0, -math.inf
    return 100.0 * float(np.mean([r.success for r in inside])), float(np.mean([r.episode_return for r in inside]))


def _weights(owners: np.ndarray, coefs: np.ndarray) -> np.ndarray:
    """Each state's coefficient: its teaching expert's (0 where none teaches)."""
    return np.where(owners >= 0, coefs[np.maximum(owners, 0)], 0.0)


def _student_view(env: VecEnv) -> StudentView:
    while not isinstance(env, StudentView):
        env = env.venv  # type: ignore[attr-defined]
    return env


def _env_major(data: np.ndarray) -> np.ndarray:
    """A buffer's (rows, envs, ...) array flattened env-major, as SB3 flattens a rollout."""
    return data.swapaxes(0, 1).reshape(-1, *data.shape[2:])


def _tensor(data: Any, device: th.device, flatten: bool = False) -> Any:
    """Tensors of an array or a dict of arrays (``flatten``: of a buffer's (rows, envs, ...) arrays, env-major)."""
    if isinstance(data, dict):
        return {k: _tensor(v, device, flatten) for k, v in data.items()}
    return th.as_tensor(_env_major(data) if flatten else data, device=device)
