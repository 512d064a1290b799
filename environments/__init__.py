"""Parametric environments: a task space (or structured levels) applied at the next reset, test sets, success
rules, a registry and plug-ins. Importing this package registers the gymnasium ids (``teachrl/PointMassGate-v0``,
...)::

    import gymnasium as gym
    import environments
    env = gym.make("teachrl/PointMassGate-v0")
    env = environments.make_env("point-mass")            # by registry name
    env = environments.make_env("experiments/envs/acrobot.yaml")  # any gymnasium env, from a YAML spec
"""

from environments.base import ContractError, ParametricEnv, check_contract
from environments.registry import (
    EnvDescription,
    EnvEntry,
    UnknownEnvironmentError,
    all_entries,
    describe_env,
    env_entry,
    make_env,
    register_env,
)

__all__ = [
    "ContractError",
    "EnvDescription",
    "EnvEntry",
    "ParametricEnv",
    "UnknownEnvironmentError",
    "all_entries",
    "check_contract",
    "describe_env",
    "env_entry",
    "make_env",
    "register_env",
]
