"""Student algorithms by name, and their per-environment default hyperparameters (YAML files beside this one)."""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import stable_baselines3 as sb3
import torch as th
import yaml
from sb3_contrib import TQC, TRPO, RecurrentPPO
from stable_baselines3.common.base_class import BaseAlgorithm

from curriculum.registry import range_problem

HYPERPARAMS_DIR = Path(__file__).with_name("hyperparams")


def discount_factor(model: BaseAlgorithm) -> float:
    """The student's gamma (every SB3 and sb3-contrib algorithm has one)."""
    gamma = getattr(model, "gamma", None)
    if gamma is None:
        raise StudentConfigError(f"{type(model).__name__} has no discount factor (gamma)")
    return float(gamma)


def restart_episodes(model: BaseAlgorithm, obs: Any, index: int | None = None) -> None:
    """Make ``obs`` what the student acts on next, as the first observation of a new episode, in every
    sub-environment (``index`` None: ``obs`` is the vec env's reset) or in sub-environment ``index`` alone.

    SB3 keeps these in ``_last_obs`` and ``_last_episode_starts`` and offers no setter; the loop writes them here
    only: dcd's cycle resets every sub-environment between rollouts, and a resume restarts the level of a
    sub-environment that cannot restore its state.
    """
    if index is None:
        model._last_obs = obs
        model._last_episode_starts = np.ones(model.n_envs, dtype=bool)
        return
    last, starts = model._last_obs, model._last_episode_starts
    assert last is not None and starts is not None, "the student has not been set up on its environment yet"
    if isinstance(last, dict):
        for key, value in obs.items():
            last[key][index] = value
    else:
        last[index] = obs
    starts[index] = True


def critic_values(model: BaseAlgorithm, observations: np.ndarray) -> np.ndarray:
    """V(s) = Q(s, pi(s)) of an actor-critic off-policy student (SAC, TD3, TQC), for a batch of observations."""
    policy = model.policy
    with th.no_grad():
        obs, _ = policy.obs_to_tensor(observations)
        actions = policy._predict(obs, deterministic=True)
        q = model.critic(obs, actions)  # type: ignore[attr-defined]
        if isinstance(q, tuple):  # SAC/TD3: one (batch, 1) tensor per critic
            values = th.cat(q, dim=1).min(dim=1).values
        else:  # TQC: (batch, critics, quantiles)
            values = q.mean(dim=(1, 2))
    return values.cpu().numpy().reshape(-1)


@dataclass(frozen=True)
class Algorithm:
    """A student algorithm as the curriculum loop sees it: a new SB3 or sb3-contrib algorithm is one entry of
    :data:`STUDENTS` plus its hyperparameter file (``hyperparams/<name>.yml``).

    :param cls: the SB3 class
    :param on_policy: it learns from a rollout buffer refilled every rollout: the value scores come from the
        buffer's GAE advantages, and dcd's replay cycle can run on it
    :param values: off-policy: ``values(model, observations)``, V(s) of a batch of states, from which the loop
        computes the value scores of each episode (``None``: the student gives no value scores)
    :param auxiliary: where its update reads the policy with gradients, through which an extra loss term
        (kickstarting's) joins it (:mod:`students.loop.auxiliary`); ``None``: it takes none
    :param masks: what its masked variant can leave out of an update: ``transitions`` (any episode's steps) or
        ``rollouts`` (a whole rollout or nothing: a recurrent student learns from sequences, so Robust PLR and
        ACCEL need dcd's cycle, where a rollout is all replay or all new levels)
    """

    cls: type[BaseAlgorithm]
    on_policy: bool
    values: Callable[[BaseAlgorithm, np.ndarray], np.ndarray] | None = None
    auxiliary: str | None = None
    masks: str = "transitions"

    @property
    def scores(self) -> bool:
        """Whether the student gives value scores (:data:`curriculum.base.STUDENT_SCORES`)."""
        return self.on_policy or self.values is not None


#: SB3's algorithms and sb3-contrib's TRPO (the SPDL paper's learner), TQC and RecurrentPPO (dcd's maze agent has
#: memory: ``hyperparams/recurrent-ppo.yml``)
STUDENTS: dict[str, Algorithm] = {
    "ppo": Algorithm(sb3.PPO, on_policy=True, auxiliary="evaluate_actions"),
    "a2c": Algorithm(sb3.A2C, on_policy=True, auxiliary="evaluate_actions"),
    "trpo": Algorithm(TRPO, on_policy=True),  # its policy step is a trust-region solve, not a loss's gradient step
    "sac": Algorithm(sb3.SAC, on_policy=False, values=critic_values, auxiliary="action_log_prob"),
    "td3": Algorithm(sb3.TD3, on_policy=False, values=critic_values, auxiliary="actor"),
    "tqc": Algorithm(TQC, on_policy=False, values=critic_values, auxiliary="action_log_prob"),
    "recurrent-ppo": Algorithm(RecurrentPPO, on_policy=True, masks="rollouts"),
}
ALGORITHMS: dict[str, type[BaseAlgorithm]] = {name: entry.cls for name, entry in STUDENTS.items()}
ON_POLICY = tuple(name for name, entry in STUDENTS.items() if entry.on_policy)


def algorithm_of(model: BaseAlgorithm) -> Algorithm:
    """The entry of a model's algorithm (its class, or a subclass of it: the masked students).

    :raises StudentConfigError: a class no entry declares (the loop would not know how to score its episodes)
    """
    for entry in STUDENTS.values():
        if isinstance(model, entry.cls):
            return entry
    raise StudentConfigError(
        f"the curriculum loop does not know a {type(model).__name__} student: declare it in students.loop.algorithms.STUDENTS "
        f"(on- or off-policy, how to get its values); declared: {', '.join(e.cls.__name__ for e in STUDENTS.values())}"
    )


class StudentConfigError(ValueError):
    """Unknown algorithm or a hyperparameter the algorithm does not take."""


def algorithm_class(name: str) -> type[BaseAlgorithm]:
    if name not in ALGORITHMS:
        raise StudentConfigError(f"unknown student '{name}'; valid: {', '.join(ALGORITHMS)}")
    return ALGORITHMS[name]


def masked_algorithm_class(name: str) -> type[BaseAlgorithm]:
    """The variant of a student that can leave chosen episodes out of its updates (for Robust PLR and ACCEL)."""
    from students.loop.masked import MASKED_ALGORITHMS

    algorithm_class(name)
    if name not in MASKED_ALGORITHMS:
        raise StudentConfigError(
            f"student '{name}' cannot leave episodes out of its updates; valid: {', '.join(MASKED_ALGORITHMS)}"
        )
    return MASKED_ALGORITHMS[name]


def accepted_hyperparams(name: str) -> list[str]:
    """Constructor arguments of the algorithm a user may set (``policy`` included)."""
    params = inspect.signature(algorithm_class(name).__init__).parameters
    return sorted(
        p for p in params if p not in ("self", "env", "seed", "device", "tensorboard_log", "verbose", "_init_setup_model")
    )


#: sub-environments of a run whose environment's entry in the hyperparameter files names none
DEFAULT_N_ENVS = 4


def _defaults(name: str, env_name: str) -> dict[str, Any]:
    """The tuned settings of ``name`` for ``env_name``; a missing or unreadable file is an error, never a silent
    fall-back to SB3's own defaults.

    :raises StudentConfigError: the hyperparameter file is missing, not YAML, or not a mapping of environments
    """
    path = HYPERPARAMS_DIR / f"{name}.yml"
    try:
        table = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise StudentConfigError(
            f"hyperparameter file {path} cannot be read ({exc.strerror or exc}): an incomplete installation; reinstall teachrl"
        ) from None
    except yaml.YAMLError as exc:
        raise StudentConfigError(f"hyperparameter file {path} is not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(table, dict):
        raise StudentConfigError(f"hyperparameter file {path} must map environment names to settings")
    base = env_name.split("-infeasible")[0].split("-trivial")[0]
    return dict(table.get(env_name) or table.get(base) or table.get("default") or {"policy": "MlpPolicy"})


def default_hyperparams(name: str, env_name: str) -> dict[str, Any]:
    """The YAML defaults of ``name`` for ``env_name`` (or its ``default`` entry): the algorithm's arguments."""
    hyperparams = _defaults(name, env_name)
    hyperparams.pop("n_envs", None)
    return hyperparams


def default_n_envs(name: str, env_name: str) -> int:
    """How many sub-environments the YAML defaults of ``name`` for ``env_name`` were tuned with (``n_envs``, as
    rl-baselines3-zoo's files; :data:`DEFAULT_N_ENVS` where they name none)."""
    return int(_defaults(name, env_name).get("n_envs", DEFAULT_N_ENVS))


def parse_value(text: Any) -> Any:
    """A command-line value as a user means it: YAML (numbers, lists, dicts...), and numbers YAML 1.1 reads as
    strings (``1e-3``, ``5E4``) as numbers.

    :raises ValueError: not YAML
    """
    if not isinstance(text, str):
        return text
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"not a value ({str(exc).splitlines()[0]})") from None
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def resolve_hyperparams(name: str, env_name: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """Defaults overridden by ``--hp key=value`` options (values parsed by :func:`parse_value`)."""
    valid = accepted_hyperparams(name)
    resolved = default_hyperparams(name, env_name)
    for key, text in overrides.items():
        if key not in valid:
            raise StudentConfigError(f"student '{name}' takes no hyperparameter '{key}'; valid: {', '.join(valid)}")
        try:
            resolved[key] = parse_value(text)
        except ValueError as exc:
            raise StudentConfigError(f"--hp {key}={text}: {exc}") from None
        problem = _type_problem(name, key, resolved[key])
        if problem:
            raise StudentConfigError(f"--hp {key}={text}: {problem}")
    return resolved


#: the ranges of SB3's numeric hyperparameters, by name: (low, high, low excluded)
HYPERPARAM_RANGES: dict[str, tuple[float, float, bool]] = {
    **dict.fromkeys(("n_steps", "n_epochs", "batch_size", "buffer_size", "train_freq"), (1, math.inf, False)),
    **dict.fromkeys(("gamma", "gae_lambda"), (0, 1, False)),
    **dict.fromkeys(("clip_range", "max_grad_norm"), (0, math.inf, True)),
    **dict.fromkeys(("learning_rate", "ent_coef", "vf_coef", "learning_starts", "target_kl"), (0, math.inf, False)),
    "tau": (0, 1, True),
}


def _type_problem(name: str, key: str, value: Any) -> str | None:
    """What is wrong with the type of a hyperparameter, judged by the algorithm's default for it (an integer, a
    number or a switch), or ``None``; a parameter whose default is ``None`` (policy_kwargs...) is not judged."""
    parameter = inspect.signature(algorithm_class(name).__init__).parameters[key]
    default, annotation = parameter.default, str(parameter.annotation)
    if isinstance(value, list | tuple) and "tuple" in annotation:  # train_freq=[1, episode]
        return None
    if isinstance(default, bool):
        need, ok = "true or false", isinstance(value, bool)
    elif isinstance(default, int):
        need, ok = "an integer", isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        need, ok = "a number", isinstance(value, int | float) and not isinstance(value, bool)
    else:
        return None
    if not ok:
        return f"{key} must be {need} ({algorithm_class(name).__name__}'s default: {default!r}), got {value!r}"
    if isinstance(default, bool):
        return None
    problem = range_problem(value, HYPERPARAM_RANGES.get(key, (-math.inf, math.inf, False)))
    return f"{key} {problem}" if problem else None


def feature_extractors() -> dict[str, type]:
    """Features extractors a hyperparameter file names in ``policy_kwargs.features_extractor_class`` (YAML holds
    no classes)."""
    from students.loop.features import MazeViewCNN

    return {"maze-view-cnn": MazeViewCNN}


def model_arguments(hyperparams: dict[str, Any]) -> dict[str, Any]:
    """The algorithm's keyword arguments from resolved hyperparameters (``policy`` kept): a features extractor
    named in ``policy_kwargs`` becomes its class.

    :raises StudentConfigError: an unknown features extractor name
    """
    arguments = dict(hyperparams)
    kwargs = arguments.get("policy_kwargs")
    if not isinstance(kwargs, dict):
        return arguments
    name = kwargs.get("features_extractor_class")
    if isinstance(name, str):
        known = feature_extractors()
        if name not in known:
            raise StudentConfigError(f"unknown features_extractor_class '{name}'; valid: {', '.join(known)}")
        arguments["policy_kwargs"] = {**kwargs, "features_extractor_class": known[name]}
    return arguments


def check_hyperparams(name: str, env_factory: Callable[[], Any], n_envs: int, hyperparams: dict[str, Any]) -> None:
    """Build the student once on ``n_envs`` copies of the environment (a small replay buffer, on the CPU) so that a
    bad hyperparameter (``batch_size=0``, ``policy_kwargs={net_arch: foo}``...) fails before anything is written.

    :raises StudentConfigError: the algorithm refuses them (the message is SB3's, on one line)
    """
    from stable_baselines3.common.vec_env import DummyVecEnv

    hp = model_arguments(hyperparams)
    policy = hp.pop("policy", "MlpPolicy")
    env = DummyVecEnv([env_factory] * n_envs)
    try:
        if "buffer_size" in accepted_hyperparams(name):
            hp["buffer_size"] = min(int(hp.get("buffer_size", 1000)), 1000)
        with warnings.catch_warnings(), th.random.fork_rng():  # a probe: no warnings twice, no random draws taken
            warnings.simplefilter("ignore")
            algorithm_class(name)(policy, env, device="cpu", **hp)
    except Exception as exc:  # SB3 raises assertions, ValueError, TypeError, KeyError... for bad settings
        message = " ".join(str(exc).split()) or type(exc).__name__
        raise StudentConfigError(f"student '{name}' refuses its hyperparameters: {message}") from None
    finally:
        env.close()
