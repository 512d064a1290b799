"""gymnasium's classic environments as parametric ones (specs for :mod:`environments.contextual`).

Ranges follow CARL's context features where they fit (Benjamins et al. 2023); CARL itself pins gymnasium < 1.0,
so it is not a dependency. Each spec is registered by name (``cartpole``, ``pendulum``, ``acrobot``,
``lunar-lander``) and takes every contextual option (``observation_mode``, ``history``).
"""

from __future__ import annotations

from typing import Any


def set_pole_length(env: Any, value: float) -> None:
    """CartPole's pole half-length, with the quantities CartPole derives from it at construction."""
    env.length = value
    env.polemass_length = env.masspole * env.length


def set_pole_mass(env: Any, value: float) -> None:
    """CartPole's pole mass, with the quantities CartPole derives from it at construction."""
    env.masspole = value
    env.total_mass = env.masspole + env.masscart
    env.polemass_length = env.masspole * env.length


CARTPOLE = {
    "env": "CartPole-v1",
    "dims": {
        "pole_length": {"low": 0.25, "high": 2.0, "call": "environments.classics:set_pole_length"},
        "pole_mass": {"low": 0.05, "high": 0.5, "call": "environments.classics:set_pole_mass"},
        "force_mag": {"low": 5.0, "high": 20.0, "attr": "force_mag"},
    },
    "default": {"pole_length": 0.5, "pole_mass": 0.1, "force_mag": 10.0},
    "test_set": {"grid": 3},
    "success": {"return_at_least": 500},  # the full 500 steps
    "return_bounds": [0, 500],
}

PENDULUM = {
    "env": "Pendulum-v1",
    "dims": {
        "g": {"low": 5.0, "high": 15.0, "kwarg": "g"},
        "mass": {"low": 0.5, "high": 2.0, "attr": "m"},
        "length": {"low": 0.5, "high": 2.0, "attr": "l"},
    },
    "default": {"g": 10.0, "mass": 1.0, "length": 1.0},
    "test_set": {"grid": 3},
    "success": {"return_at_least": -200},
    "return_bounds": [-1700, 0],
}

ACROBOT = {
    "env": "Acrobot-v1",
    "dims": {
        "link_length_1": {"low": 0.5, "high": 1.5, "attr": "LINK_LENGTH_1"},
        "link_mass_1": {"low": 0.5, "high": 2.0, "attr": "LINK_MASS_1"},
    },
    "default": {"link_length_1": 1.0, "link_mass_1": 1.0},
    "test_set": {"grid": 3},
    "success": {"return_at_least": -100},
    "return_bounds": [-500, 0],
}

LUNAR_LANDER: dict[str, Any] = {
    "env": "LunarLander-v3",
    "make_kwargs": {"enable_wind": True},
    "dims": {
        "gravity": {"low": -11.99, "high": -2.0, "kwarg": "gravity"},
        "wind_power": {"low": 0.0, "high": 20.0, "kwarg": "wind_power"},
        "turbulence_power": {"low": 0.0, "high": 2.0, "kwarg": "turbulence_power"},
    },
    "default": {"gravity": -10.0, "wind_power": 0.0, "turbulence_power": 0.0},
    "test_set": {"grid": 3},
    "success": {"return_at_least": 200},
    "return_bounds": [-500, 300],
}
