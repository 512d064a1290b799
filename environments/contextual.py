"""Any gymnasium environment as a parametric one, from a short spec (a YAML file or a mapping).

Example (``experiments/envs/acrobot.yaml``)::

    env: Acrobot-v1                 # a gymnasium id
    dims:                           # the task: each dimension's bounds and how the next reset applies it
      link_length_1: {low: 0.5, high: 1.5, attr: LINK_LENGTH_1}   # an attribute of the unwrapped env
      link_mass_1: {low: 0.5, high: 2.0, attr: LINK_MASS_1}
    default: {link_length_1: 1.0, link_mass_1: 1.0}
    test_set: {grid: 3}             # or {uniform: 20, seed: 0}
    success: {return_at_least: -100} # or {info_key: is_success}
    return_bounds: [-500, 0]

A dimension is applied at the next reset by exactly one of: ``kwarg: NAME`` (a constructor keyword: the env is
re-made when such a value changes), ``attr: NAME`` (set on the unwrapped env before reset) or
``call: module:function`` (called as ``function(unwrapped_env, value)``, for parameters with derived values).
Every reset passes the level seed to the env, so a task and a level seed give the same episode. A bad spec (unknown
attribute or keyword, bounds that are not a box, a default outside them) fails when the env is built, in one line.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import yaml

from curriculum.spaces import BoxTaskSpace
from environments.base import ParametricEnv, ReplayCopies, check_observation_mode

KINDS = ("kwarg", "attr", "call")
SPEC_KEYS = ("env", "make_kwargs", "dims", "default", "test_set", "success", "return_bounds")


def load_spec(spec: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """A spec from a YAML file or a mapping, with its keys checked.

    :raises ValueError: a missing file, invalid YAML, unknown or missing keys
    """
    if isinstance(spec, str) and ":" in spec and not spec.endswith((".yaml", ".yml")):  # module:attribute
        from curriculum.objects import load_object

        spec = load_object(spec)
    if not isinstance(spec, Mapping):
        path = Path(spec)
        if not path.is_file():
            raise ValueError(f"contextual env spec '{spec}' does not exist")
        try:
            spec = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ValueError(f"contextual env spec '{path}' is not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(spec, Mapping):
        raise ValueError("a contextual env spec must be a mapping")
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    missing = [key for key in ("env", "dims", "return_bounds") if key not in spec]
    if unknown or missing:
        raise ValueError(f"contextual env spec: unknown key(s) {unknown}, missing {missing}; valid: {', '.join(SPEC_KEYS)}")
    return dict(spec)


class ContextualEnv(ReplayCopies, ParametricEnv):
    """A gymnasium environment whose parameters are the task (see the module docstring).

    :param spec: the spec: a YAML path or a mapping
    :param observation_mode: ``plain`` or ``privileged`` (``{"student": obs, "privileged": task}``)
    :param render_mode: passed to the env
    """

    def __init__(self, spec: str | Path | Mapping[str, Any], observation_mode: str = "plain", render_mode: str | None = None):
        self._arguments = {"spec": spec, "observation_mode": observation_mode, "render_mode": render_mode}
        self.spec_ = load_spec(spec)
        self.observation_mode = check_observation_mode(observation_mode)
        self.render_mode = render_mode
        dims = self.spec_["dims"]
        if not isinstance(dims, Mapping) or not dims:
            raise ValueError("contextual env spec: 'dims' must map dimension names to {low, high, kwarg|attr|call}")
        self.apply: dict[str, tuple[str, Any]] = {}
        for name, dim in dims.items():
            kinds = [kind for kind in KINDS if kind in dim]
            if len(kinds) != 1 or set(dim) - {"low", "high", *KINDS}:
                raise ValueError(f"dimension '{name}' needs low, high and exactly one of {', '.join(KINDS)}; got {dim}")
            target = dim[kinds[0]]
            if kinds[0] == "call":
                from curriculum.objects import load_object

                target = load_object(str(target))
            self.apply[name] = (kinds[0], target)
        self.task_space = BoxTaskSpace(list(dims), [d["low"] for d in dims.values()], [d["high"] for d in dims.values()])
        centre = (self.task_space.low + self.task_space.high) / 2
        default = self.spec_.get("default") or dict(zip(self.task_space.names, centre.tolist(), strict=True))
        self.default_task = self.task_space.validate({**dict(zip(self.task_space.names, centre, strict=True)), **default})
        bounds = [float(b) for b in self.spec_["return_bounds"]]
        if len(bounds) != 2:
            raise ValueError(f"contextual env spec: return_bounds must be [low, high], got {self.spec_['return_bounds']}")
        self.return_bounds = (bounds[0], bounds[1])
        success = dict(self.spec_.get("success") or {})
        self.success_threshold = float(success.get("return_at_least", np.inf))
        self.info_key = success.get("info_key")
        self.success_rule = f"info['{self.info_key}']" if self.info_key else f"return >= {self.success_threshold:g}"
        self._kwargs: dict[str, Any] | None = None
        self.env = self._make(self._kwarg_values(self.default_task))
        for name, (kind, target) in self.apply.items():
            if kind == "attr" and not hasattr(self.env.unwrapped, target):
                raise ValueError(f"dimension '{name}': {self.spec_['env']} has no attribute '{target}'")
        self._apply(self.default_task)
        self.metadata = dict(self.env.metadata)  # the env's render modes and frame rate
        self.action_space = self.env.action_space
        plain = self.env.observation_space
        task_box = gym.spaces.Box(self.task_space.low.astype(np.float32), self.task_space.high.astype(np.float32))
        self.observation_space = (
            gym.spaces.Dict({"student": plain, "privileged": task_box}) if observation_mode == "privileged" else plain
        )

    def _kwarg_values(self, task: np.ndarray) -> dict[str, Any]:
        return {
            target: float(value) for (kind, target), value in zip(self.apply.values(), task, strict=True) if kind == "kwarg"
        }

    def _make(self, kwargs: dict[str, Any]) -> gym.Env:
        make_kwargs = {**dict(self.spec_.get("make_kwargs") or {}), **kwargs}
        try:
            env = gym.make(self.spec_["env"], render_mode=self.render_mode, **make_kwargs)
        except TypeError as exc:
            raise ValueError(f"{self.spec_['env']} refuses {sorted(make_kwargs)}: {' '.join(str(exc).split())}") from None
        except gym.error.Error as exc:
            raise ValueError(f"cannot make '{self.spec_['env']}': {exc}") from None
        self._kwargs = kwargs
        return env

    def _apply(self, task: np.ndarray) -> None:
        kwargs = self._kwarg_values(task)
        if kwargs != self._kwargs:  # a constructor value changed: a new env
            self.env.close()
            self.env = self._make(kwargs)
        for (kind, target), value in zip(self.apply.values(), task, strict=True):
            if kind == "attr":
                setattr(self.env.unwrapped, target, type(getattr(self.env.unwrapped, target))(value))
            elif kind == "call":
                target(self.env.unwrapped, float(value))

    def _observe(self, obs: Any) -> Any:
        if self.observation_mode == "privileged":
            return {"student": obs, "privileged": self.task.astype(np.float32)}
        return obs

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        self._begin_episode()
        self._apply(self.task)
        obs, info = self.env.reset(seed=self.level_seed, options=options)
        return self._observe(obs), {**info, **self.task_info()}

    def _copy_arguments(self) -> dict[str, Any]:
        return dict(self._arguments)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        self._record_action(action)
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._observe(obs), float(reward), terminated, truncated, {**info, **self.task_info()}

    def is_success(self, episode_return: float, final_info: dict[str, Any] | None = None) -> bool:
        if self.info_key:
            return bool((final_info or {}).get(self.info_key, False))
        return bool(episode_return >= self.success_threshold)

    def _test_sets(self) -> dict[str, np.ndarray]:
        """``default``: a grid of ``grid`` values per dimension, or ``uniform`` tasks drawn with ``seed``."""
        rule = dict(self.spec_.get("test_set") or {"grid": 3})
        space = self.task_space
        if "uniform" in rule:
            rng = np.random.default_rng(int(rule.get("seed", 0)))
            tasks = space.low + rng.random((int(rule["uniform"]), space.dim)) * space.span
        else:
            axes = [np.linspace(lo, hi, int(rule.get("grid", 3))) for lo, hi in zip(space.low, space.high, strict=True)]
            tasks = np.array(list(itertools.product(*axes)))
        return {"default": tasks}

    def render(self) -> Any:
        return self.env.render()

    def close(self) -> None:
        self.env.close()
