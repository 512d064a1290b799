"""The parametric-environment contract: a gymnasium env whose *next* reset builds a task a teacher chose.

- ``task_space``: a :class:`~curriculum.spaces.BoxTaskSpace` of named dimensions with bounds;
- ``set_task(task, level_seed=None)``: what the next ``reset()`` builds (a vector or ``{name: value}``); without
  a call, reset builds ``default_task``; without a level seed, one is drawn from the env's own generator. An
  episode's randomness (layout, noise, initial state) comes from the generator :meth:`ParametricEnv._begin_episode`
  returns, seeded by the level seed, so that a task and a level seed replay the same episode under the same
  actions (what PLR's "replay this level" means);
- every step's ``info`` carries ``task`` (the vector being played) and ``level_seed``, so whichever step ends the
  episode (termination, the env's own time limit, or an outer wrapper's truncation) reports what was played;
- ``return_bounds`` (for teachers' normalisation), ``is_success(episode_return, final_info)``, and
  ``test_set(name)``: fixed, documented task lists (``test_set_names`` lists them);
- optionally ``easy_task_space``: an easy region where ACCEL starts (documented per environment), and
  ``target_set``: the name of a held-out test set that runs also report apart (point-mass: SPDL's target gate),
  and ``target_distribution``: the task distribution a curriculum aims at, which ``--target-episodes`` samples at
  every evaluation (SPDL's protocol);
- optionally, declared as class attributes with their defaults here (:data:`DECLARED` lists what an env declares
  about itself, which a wrapper of one env takes from it): ``fixed_test_levels`` (the test levels do not depend on
  the run's evaluation seed: the maze's held-out mazes), ``feasible(tasks)`` (which tasks can be solved at all, for
  the infeasible share a run reports), and ``step_batch(envs, actions)`` (a class that steps many of its envs in one
  call: the batched vector env and evaluation use it, :func:`batch_stepper`);
- optionally, structured levels (``structured_levels = True``: the maze): ``set_level(level, level_seed=None)``
  makes the next reset play that level itself (a structure or its text) rather than one a task and level seed
  generate (its task is then what the level holds, clipped to the task space), every episode's first and last
  ``info`` carry ``level``, the played level's text, :meth:`ParametricEnv.played_level` gives it between,
  ``named_levels()`` gives the env's hand-designed test levels (the maze: dcd's named mazes), and ``level_type``
  is the class of its levels: ``parse(text)``, ``.text``, ``.task`` (the task vector it counts), and for editable
  levels ``mutate(rng, num_edits, editor)`` (a child level, or ``None`` when the edit is refused: ACCEL's edits).
  An env whose levels an adversary can build offers ``level_builder(n_blocks, goal_last)`` (PAIRED's step-by-step
  adversary: :class:`~environments.maze_levels.MazeBuilder`).
  :meth:`ParametricEnv.set_next_level` sets either kind of level, the way a curriculum's loop does;
- optionally ``get_state()`` / ``set_state(state)``: everything the env's future depends on (the episode being
  played, the pending task, its random generator), so that a run resumed from a checkpoint continues exactly.
  An env opts in by naming its own attributes in ``state_attrs``; ``supports_state`` tells whether it did. An env
  that cannot capture its state (the Box2D walkers: a physics world does not pickle) restarts, on resume, the level
  each sub-environment was playing.

Environments that can also emit ``{"student": ..., "privileged": ...}`` observations take
``observation_mode="privileged"``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from curriculum.spaces import BoxTaskSpace, TaskSpaceError

OBSERVATION_MODES = ("plain", "privileged")


class ParametricEnv(gym.Env):
    """Base class of parametric environments (see the module docstring for the contract).

    Subclasses set ``task_space``, ``default_task``, ``return_bounds`` and ``success_threshold`` (an episode
    succeeds when its return exceeds it, unless :meth:`is_success` is overridden), implement
    :meth:`_test_sets`, and call :meth:`_begin_episode` at the start of ``reset`` and add :meth:`task_info`
    to every step's ``info``.
    """

    task_space: BoxTaskSpace
    default_task: np.ndarray
    return_bounds: tuple[float, float]
    success_threshold: float
    #: one line a user reads in ``cli.py list envs``
    success_rule: str = ""
    #: an easy region of the task space where ACCEL starts its new levels (``None``: the whole space)
    easy_task_space: BoxTaskSpace | None = None
    #: a test set a run also plays once at its end and reports apart from its test set (a held-out target, e.g.
    #: point-mass's SPDL gate), or ``None``
    target_set: ClassVar[str | None] = None
    #: the task distribution a curriculum aims at, as (mean, std) per dimension of independent normals clipped to the
    #: bounds (point-mass: SPDL's target), or ``None``; runs with ``--target-episodes`` sample it at every evaluation
    target_distribution: ClassVar[tuple[np.ndarray, np.ndarray] | None] = None
    #: whether the test levels are the same whatever the run's evaluation seed (the maze's held-out mazes)
    fixed_test_levels: ClassVar[bool] = False
    #: which rows of a task array can be solved at all (``None``: every task can); a run reports the share of its
    #: episodes played on the others
    feasible: ClassVar[Callable[[np.ndarray], np.ndarray] | None] = None
    #: a classmethod ``step_batch(envs, actions) -> (obs, rewards, terminated, truncated, infos)`` stepping many envs
    #: of the class in one call with the same transitions as their own ``step`` (``None``: the class cannot)
    step_batch: ClassVar[Callable[..., Any] | None] = None
    #: whether the env's levels are structures a caller can set (:meth:`set_level`) and its infos report (``level``)
    structured_levels: ClassVar[bool] = False
    #: the class of its structured levels (see the module docstring), or ``None``
    level_type: ClassVar[type | None] = None
    #: attributes that, with the base class's own, make up the env's state (``None``: no :meth:`get_state`)
    state_attrs: tuple[str, ...] | None = None

    _pending_task: np.ndarray | None = None
    _pending_seed: int | None = None
    _pending_level: Any = None  # a structured level set for the next reset (set_level)
    task: np.ndarray
    level_seed: int = 0

    def set_task(self, task: Any, level_seed: int | None = None) -> None:
        """Choose the task (and optionally the level seed) that the next ``reset()`` builds.

        :raises TaskSpaceError: wrong length, out of bounds, NaN, or unknown dimension name
        """
        validated = self.task_space.validate(task).copy()
        # both checked before either is stored: a refused call leaves nothing pending
        level_seed = self._checked_seed(level_seed)
        self._pending_task, self._pending_seed = validated, level_seed

    @classmethod
    def named_levels(cls) -> dict[str, tuple[tuple[Any, ...], dict[str, Any]]]:
        """Hand-designed test levels by name (an env with ``structured_levels``): each name's levels and the env
        keywords that play them (a size, a step limit); empty for an env without."""
        return {}

    def set_level(self, level: Any, level_seed: int | None = None) -> None:
        """Make the next ``reset()`` play ``level`` itself (an env with ``structured_levels``), under ``level_seed``
        (``None``: one drawn as for a task).

        :raises NotImplementedError: the env's levels are generated from tasks only
        """
        raise NotImplementedError(f"{type(self).__name__} has no structured levels: set a task (set_task) instead")

    def set_next_level(self, task: Any, level_seed: int | None = None, structure: Any = None) -> None:
        """What the next ``reset()`` plays, as a teacher's :class:`~curriculum.base.Level` gives it: the level
        ``structure`` itself when there is one (:meth:`set_level`), else the level ``task`` and ``level_seed``
        generate (:meth:`set_task`)."""
        if structure is not None:
            self.set_level(structure, level_seed)
        else:
            self.set_task(task, level_seed)

    def played_level(self) -> str | None:
        """The text of the structured level being played (``None``: the env has no structured levels)."""
        return None

    @staticmethod
    def _checked_seed(level_seed: Any) -> int | None:
        if level_seed is None:
            return None
        if isinstance(level_seed, bool) or not isinstance(level_seed, int | np.integer) or level_seed < 0:
            raise TaskSpaceError(f"level_seed must be a non-negative integer, got {level_seed!r}")
        return int(level_seed)

    def _begin_episode(self) -> np.random.Generator:
        """Take the pending task (or the default) for the episode starting now; return the level's generator."""
        self.task = self._pending_task if self._pending_task is not None else np.array(self.default_task, dtype=np.float64)
        if self._pending_seed is not None:
            self.level_seed = self._pending_seed
        else:
            self.level_seed = int(self.np_random.integers(2**31 - 1))
        self._pending_task, self._pending_seed = None, None
        self._task_info = {"task": self.task, "level_seed": self.level_seed}
        return np.random.default_rng(self.level_seed)

    def task_info(self) -> dict[str, Any]:
        """``{"task": vector, "level_seed": int}`` of the episode being played (a fresh array on every call: a
        consumer that writes into an ``info`` never changes the env's task)."""
        return {"task": np.array(self._task_info["task"], dtype=np.float64), "level_seed": self._task_info["level_seed"]}

    def has_pending_task(self) -> bool:
        """Whether a task (:meth:`set_task`) or a level (:meth:`set_level`) still waits for the next reset."""
        return self._pending_task is not None or self._pending_level is not None

    @property
    def pending_level(self) -> tuple[np.ndarray | None, int | None]:
        """The ``(task, level_seed)`` set with :meth:`set_task` for the next reset (``None``: not set)."""
        return self._pending_task, self._pending_seed

    @property
    def supports_state(self) -> bool:
        """Whether :meth:`get_state` can capture this env (it declares ``state_attrs``)."""
        return self.state_attrs is not None

    def get_state(self) -> dict[str, Any]:
        """Everything this env's future depends on (a deep copy, picklable): the episode being played, the pending
        task and level seed, the env's random generator, and the subclass's ``state_attrs``.

        :raises NotImplementedError: the env does not declare ``state_attrs``
        """
        if self.state_attrs is None:
            raise NotImplementedError(f"{type(self).__name__} cannot capture its state (no state_attrs)")
        names = ("task", "level_seed", "_task_info", "_pending_task", "_pending_seed", *self.state_attrs)
        state = {name: copy.deepcopy(self.__dict__[name]) for name in names if name in self.__dict__}
        state["np_random"] = copy.deepcopy(self.np_random.bit_generator.state)
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore a state made by :meth:`get_state` of an env built with the same arguments."""
        if self.state_attrs is None:
            raise NotImplementedError(f"{type(self).__name__} cannot restore a state (no state_attrs)")
        state = copy.deepcopy(state)
        self.np_random.bit_generator.state = state.pop("np_random")
        self.__dict__.update(state)

    def is_success(self, episode_return: float, final_info: dict[str, Any] | None = None) -> bool:
        """Whether an episode met the success rule (default: return above ``success_threshold``)."""
        return bool(episode_return > self.success_threshold)

    def test_set_names(self) -> list[str]:
        return list(self._test_sets())

    def test_set(self, name: str = "default") -> np.ndarray:
        """A fixed, documented list of tasks, one per row.

        :raises KeyError: unknown test-set name (the message lists the valid ones)
        """
        sets = self._test_sets()
        if name not in sets:
            raise KeyError(f"unknown test set '{name}'; valid: {', '.join(sets)}")
        return np.array(sets[name], dtype=np.float64)

    def _test_sets(self) -> dict[str, np.ndarray]:
        """Named test sets (may depend on the instance, e.g. a variant's bounds)."""
        raise NotImplementedError


def check_observation_mode(mode: str) -> str:
    if mode not in OBSERVATION_MODES:
        raise ValueError(f"unknown observation_mode '{mode}'; valid: {', '.join(OBSERVATION_MODES)}")
    return mode


class ReplayCopies:
    """For a :class:`ParametricEnv` whose simulator cannot be copied (a Box2D world): a deep copy, or a pickle, is
    a new env built from the same constructor arguments that replays the episode in progress (the generator's
    state when it began, its task and level seed, then its actions), so that the copy continues exactly as the
    original would. A pending task carries over too.

    The env implements :meth:`_copy_arguments` and calls :meth:`_record_action` in every ``step``; its ``reset``
    must draw nothing from ``np_random`` before :meth:`ParametricEnv._begin_episode`, and its episodes must be a
    function of that start and the actions (true of Box2D and of gymnasium's classic-control envs).
    """

    _episode_start: tuple[np.random.Generator, np.ndarray | None, int | None] | None = None
    _episode_actions: list[Any]

    def _copy_arguments(self) -> dict[str, Any]:
        raise NotImplementedError

    def _begin_episode(self) -> np.random.Generator:
        env: Any = self
        self._episode_start = (copy.deepcopy(env.np_random), env._pending_task, env._pending_seed)  # the replay's start
        self._episode_actions = []
        return super()._begin_episode()  # type: ignore[misc]

    def _record_action(self, action: Any) -> None:
        if self._episode_start is not None:
            self._episode_actions.append(np.array(action, copy=True))

    def _replay_record(self) -> dict[str, Any]:
        env: Any = self
        episode = None if self._episode_start is None else (self._episode_start, list(self._episode_actions))
        return {"episode": episode, "pending": (env._pending_task, env._pending_seed)}

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return _replayed(type(self), self._copy_arguments(), copy.deepcopy(self._replay_record(), memo))

    def __reduce__(self) -> tuple[Any, ...]:
        return (_replayed, (type(self), self._copy_arguments(), self._replay_record()))


def _replayed(cls: type, arguments: dict[str, Any], record: dict[str, Any]) -> Any:
    """A new ``cls(**arguments)`` that has replayed ``record`` (see :class:`ReplayCopies`)."""
    env = cls(**arguments)
    if record["episode"] is not None:
        (generator, task, seed), actions = record["episode"]
        env._np_random = copy.deepcopy(generator)
        env._pending_task, env._pending_seed = task, seed
        env.reset()
        for action in actions:
            env.step(action)
    env._pending_task, env._pending_seed = record["pending"]
    return env


#: what an environment declares about itself as class attributes: a wrapper of one environment takes them all from it
DECLARED = (
    "task_space",
    "default_task",
    "return_bounds",
    "success_threshold",
    "success_rule",
    "easy_task_space",
    "target_set",
    "target_distribution",
    "fixed_test_levels",
    "feasible",
    "structured_levels",
    "level_type",
)


def batch_stepper(env: Any) -> Callable[..., Any] | None:
    """The ``step_batch`` of ``env``'s class when ``env`` itself (not a wrapper of it) steps batches, else ``None``."""
    return type(env).step_batch if isinstance(env, ParametricEnv) else None


class ContractError(ValueError):
    """An environment that does not keep the :class:`ParametricEnv` contract."""


def check_contract(env: Any, name: str) -> None:
    """Build-time check of the contract a run relies on: ``set_task`` then ``reset`` builds the task, and the
    reset's and one step's ``info`` carry ``task`` and ``level_seed``. The env is reset and stepped once (seed 0).

    :raises ContractError: one line naming what is missing and how to add it
    """
    base = getattr(env, "unwrapped", env)
    if not isinstance(base, ParametricEnv):
        raise ContractError(f"environment '{name}' is a {type(base).__name__}, not a ParametricEnv (environments.base)")
    hint = "call self._begin_episode() at the start of reset() and add self.task_info() to every info"
    env.set_task(base.default_task)
    try:
        _, info = env.reset(seed=0)
    except AttributeError as exc:
        if "_task_info" in str(exc):
            raise ContractError(f"environment '{name}': reset() never calls self._begin_episode(); {hint}") from None
        raise
    if base.has_pending_task():
        raise ContractError(
            f"environment '{name}': reset() never calls self._begin_episode() (the task set_task() chose is still "
            f"pending); {hint}"
        )
    for where, payload in [("reset()", info), ("step()", _one_step(env))]:
        missing = [key for key in ("task", "level_seed") if key not in payload]
        if missing:
            raise ContractError(f"environment '{name}': the info {where} returns lacks {' and '.join(missing)}; {hint}")


def _one_step(env: Any) -> dict[str, Any]:
    env.action_space.seed(0)
    return env.step(env.action_space.sample())[4]
