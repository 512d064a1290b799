"""Environment registry: names to factories, user environments by ``module:attribute`` path or entry point.

Each entry says whether it can train an RL student (a gymnasium :class:`~environments.base.ParametricEnv`)
or is the simulated student (teacher benchmarks only). The RL environments are also registered with
gymnasium as ``teachrl/<Name>-v0``. A user's package can expose environments under the
``teachrl.environments`` entry-point group (``name = "package.module:Factory"``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

import gymnasium as gym

from curriculum.objects import load_object

ENTRY_POINT_GROUP = "teachrl.environments"


class UnknownEnvironmentError(ValueError):
    """An environment name or path that does not resolve."""


@dataclass(frozen=True)
class EnvEntry:
    """One registered environment.

    :param name: registry name (``cli.py --env NAME``)
    :param entry_point: ``module:attribute`` of the class or factory
    :param kwargs: keyword arguments given to the factory
    :param trainable: a gymnasium env an RL student can train on (False: the simulated student)
    :param gym_id: gymnasium id, if registered there
    """

    name: str
    entry_point: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    trainable: bool = True
    gym_id: str | None = None


ENVIRONMENTS: dict[str, EnvEntry] = {}


class GymEntryPoint:
    """What ``gymnasium.make(gym_id, **kwargs)`` builds for a teachrl id: ``make_env(name, **kwargs)``, so that
    every teachrl keyword (``history=k`` included) works there too, with the environment's ``metadata`` (its
    render modes, read once from an instance) for gymnasium's checks."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, **kwargs: Any) -> Any:
        return make_env(self.name, **kwargs)

    def __getattr__(self, attribute: str) -> Any:
        if attribute != "metadata":
            raise AttributeError(attribute)
        env = make_env(self.name)
        self.metadata: dict[str, Any] = dict(env.metadata)
        env.close()
        return self.metadata


def register_env(entry: EnvEntry) -> None:
    """Add an environment to the registry (and to gymnasium when it has a ``gym_id``).

    ``gymnasium.make(gym_id)`` wraps the env in gymnasium's checker and order wrappers, which do not pass
    ``set_task`` through: call ``env.unwrapped.set_task(...)`` (or ``env.get_wrapper_attr("set_task")(...)``), or
    build it with :func:`make_env`, which adds no wrapper.
    """
    ENVIRONMENTS[entry.name] = entry
    if entry.gym_id is not None and entry.gym_id not in gym.registry:
        gym.register(id=entry.gym_id, entry_point=GymEntryPoint(entry.name))


for _entry in (
    EnvEntry("point-mass", "environments.point_mass:PointMassGateEnv", gym_id="teachrl/PointMassGate-v0"),
    EnvEntry(
        "point-mass-infeasible", "environments.point_mass:PointMassInfeasibleEnv", gym_id="teachrl/PointMassGateInfeasible-v0"
    ),
    EnvEntry(
        "lunar-lander-infeasible",
        "environments.lunar_lander:LunarLanderInfeasibleEnv",
        gym_id="teachrl/ContextualLunarLanderInfeasible-v0",
    ),
    EnvEntry("stump-tracks", "environments.walkers.stump_tracks:StumpTracksEnv", gym_id="teachrl/StumpTracks-v0"),
    EnvEntry(
        "stump-tracks-infeasible",
        "environments.walkers.stump_tracks:StumpTracksEnv",
        {"variant": "infeasible"},
        gym_id="teachrl/StumpTracksInfeasible-v0",
    ),
    EnvEntry(
        "stump-tracks-trivial",
        "environments.walkers.stump_tracks:StumpTracksEnv",
        {"variant": "trivial"},
        gym_id="teachrl/StumpTracksTrivial-v0",
    ),
    EnvEntry("hexagon-tracks", "environments.walkers.hexagon_tracks:HexagonTracksEnv", gym_id="teachrl/HexagonTracks-v0"),
    EnvEntry("maze", "environments.maze:MazeEnv", gym_id="teachrl/Maze-v0"),
    EnvEntry("simulated-student", "environments.simulated_student:SimulatedStudent", trainable=False),
    *(
        EnvEntry(
            name,
            "environments.contextual:ContextualEnv",
            {"spec": f"environments.classics:{attr}"},
            gym_id=f"teachrl/Contextual{gym_name}-v0",
        )
        for name, attr, gym_name in (
            ("cartpole", "CARTPOLE", "CartPole"),
            ("pendulum", "PENDULUM", "Pendulum"),
            ("acrobot", "ACROBOT", "Acrobot"),
            ("lunar-lander", "LUNAR_LANDER", "LunarLander"),
        )
    ),
):
    register_env(_entry)


def _load(path: str) -> Callable[..., Any]:
    try:
        obj = load_object(path)
    except LookupError as exc:
        raise UnknownEnvironmentError(f"cannot load environment '{path}': {exc}") from exc
    if not callable(obj):
        raise UnknownEnvironmentError(f"'{path}' is not a class or factory")
    return obj


def _plugin_entries() -> dict[str, EnvEntry]:
    return {ep.name: EnvEntry(ep.name, ep.value) for ep in entry_points(group=ENTRY_POINT_GROUP)}


def env_entry(name: str) -> EnvEntry:
    """Resolve a registry name, an installed plug-in's name, or a ``module:attribute`` path."""
    if name in ENVIRONMENTS:
        return ENVIRONMENTS[name]
    plugins = _plugin_entries()
    if name in plugins:
        return plugins[name]
    if name.endswith((".yaml", ".yml")):  # a contextual spec (environments.contextual)
        return EnvEntry(name, "environments.contextual:ContextualEnv", {"spec": name})
    if ":" in name:
        try:
            obj = load_object(name)
        except LookupError as exc:
            raise UnknownEnvironmentError(f"cannot load environment '{name}': {exc}") from exc
        if isinstance(obj, dict):  # a contextual spec as a mapping
            return EnvEntry(name, "environments.contextual:ContextualEnv", {"spec": obj})
        _load(name)  # fail now, with a clear message, if it is not a class or factory
        return EnvEntry(name, name)
    valid = sorted({*ENVIRONMENTS, *plugins})
    raise UnknownEnvironmentError(
        f"unknown environment '{name}'; valid: {', '.join(valid)} (or a module:attribute path, or a spec.yaml)"
    )


def all_entries() -> list[EnvEntry]:
    """Built-in and plug-in environments."""
    return [*ENVIRONMENTS.values(), *(e for n, e in _plugin_entries().items() if n not in ENVIRONMENTS)]


def make_env(name: str | Callable[..., Any], **kwargs: Any) -> Any:
    """Build an environment by name or path (or from its class or factory itself); ``kwargs`` override the
    registered ones.

    ``history=k`` (k >= 1) is every environment's: it observes its last ``k`` observations with the actions
    between them (:class:`environments.history.HistoryEnv`); ``history=0`` is the environment itself.
    """
    history = kwargs.pop("history", 0)
    if callable(name):
        env = name(**kwargs)
    else:
        entry = env_entry(name)
        env = _load(entry.entry_point)(**{**entry.kwargs, **kwargs})
    if history:
        from environments.history import HistoryEnv

        env = HistoryEnv(env, history)
    return env


@dataclass(frozen=True)
class EnvDescription:
    """What ``cli.py list envs`` shows of one environment."""

    name: str
    trainable: bool
    gym_id: str | None
    task_space: str
    default_task: str
    test_sets: dict[str, int]
    success_rule: str
    easy_region: str = "-"


def describe_env(name: str) -> EnvDescription:
    """Build the environment once and read its task space, default task, test sets and success rule."""
    entry = env_entry(name)
    env = make_env(name)
    try:
        space = env.task_space
        default = getattr(env, "default_task", None)
        names = env.test_set_names() if hasattr(env, "test_set_names") else []
        return EnvDescription(
            name=entry.name,
            trainable=entry.trainable,
            gym_id=entry.gym_id,
            task_space=space.describe(),
            default_task="-"
            if default is None
            else ", ".join(f"{n}={v:g}" for n, v in zip(space.names, default, strict=True)),
            test_sets={n: len(env.test_set(n)) for n in names},
            success_rule=getattr(env, "success_rule", "") or "-",
            easy_region=env.easy_task_space.describe() if getattr(env, "easy_task_space", None) is not None else "-",
        )
    finally:
        if hasattr(env, "close"):
            env.close()
