"""The teacher interface: sample a task, learn from one finished episode, save and restore state.

Teachers never import the student's libraries; a teacher is testable on a simulated student in milliseconds.
"""

from __future__ import annotations

import copy
import functools
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np

from curriculum.spaces import BoxTaskSpace, Task, TaskSpace


#: the per-episode scores an RL student gives in ``Feedback.scores`` (``students.loop.curriculum`` computes them; a
#: teacher names the ones it needs in ``required_scores``)
POSITIVE_VALUE_LOSS = "positive_value_loss"  # mean over the episode's steps of max(GAE advantage, 0)
VALUE_L1 = "value_l1"  # mean |GAE advantage|
MEAN_VALUE = "mean_value"  # mean value estimate V(s_t)
INITIAL_VALUE = "initial_value"  # V(s_0)
DISCOUNTED_RETURN = "discounted_return"  # sum of gamma^t r_t at the student's gamma
STUDENT_SCORES = (POSITIVE_VALUE_LOSS, VALUE_L1, MEAN_VALUE, INITIAL_VALUE, DISCOUNTED_RETURN)


class TeacherStopped(Exception):
    """A teacher's own long work (CLUTR's VAE pretraining) ended early because the run was asked to stop; it left
    the teacher as it was before that work began."""


def _never() -> bool:
    return False


class FeedbackError(ValueError):
    """A teacher was given feedback it cannot use (NaN return, task outside its space, ...)."""


@dataclass(frozen=True)
class Feedback:
    """What a teacher learns from one finished episode.

    :param episode_return: the episode's undiscounted return
    :param success: whether the episode met the environment's success rule
    :param length: number of steps of the episode
    :param scores: optional extra per-episode scores computed by the student (e.g. ``positive_value_loss``)
    :param level_seed: the environment's level seed of the episode (level-based teachers need it)
    :param level: the text of the level played, where the environment has structured levels and reports it (the
        maze: :attr:`environments.maze_levels.MazeLevel.text`); ``None`` otherwise
    :param cut: the episode did not end: dcd's cycle cut it at a rollout's end (its return is what it had so far)
    """

    episode_return: float
    success: bool = False
    length: int = 1
    scores: Mapping[str, float] = field(default_factory=dict)
    level_seed: int | None = None
    level: str | None = None
    cut: bool = False

    def __post_init__(self) -> None:
        try:
            ret = float(self.episode_return)
        except (TypeError, ValueError) as exc:
            raise FeedbackError(f"episode return must be a number, got {self.episode_return!r}") from exc
        if not math.isfinite(ret):
            raise FeedbackError(f"episode return must be finite, got {ret}")
        object.__setattr__(self, "episode_return", ret)
        if int(self.length) < 1:
            raise FeedbackError(f"episode length must be >= 1, got {self.length}")
        for key, value in self.scores.items():
            if not math.isfinite(float(value)):
                raise FeedbackError(f"score '{key}' must be finite, got {value}")


@dataclass(frozen=True)
class Level:
    """What a teacher asks the next episode to play.

    :param task: the task vector (or index)
    :param seed: the environment's level seed; ``None`` lets the environment draw one
    :param train: ``False`` asks the student to play and score the episode without learning from it (Robust PLR)
    :param structure: the level itself, for an environment with structured levels (its ``level_type``, e.g. a
        :class:`~environments.maze_levels.MazeLevel`): the environment plays it as it is (``set_level``) and ``task``
        is what it counts in it; ``None``: the environment builds the level from ``task`` and ``seed``
    """

    task: Task
    seed: int | None = None
    train: bool = True
    structure: Any = None


#: the kind of task space a teacher works on (``Teacher[BoxTaskSpace]``: it reads the box's bounds)
SpaceT = TypeVar("SpaceT", bound=TaskSpace)


class Teacher(ABC, Generic[SpaceT]):
    """Base class of teacher algorithms, typed by the kind of task space they work on (``Teacher[BoxTaskSpace]``,
    the default kind, ``Teacher[DiscreteTaskSpace]``, or ``Teacher[TaskSpace]`` for both).

    Subclasses implement :meth:`_sample` and :meth:`_update`, and name the attributes that make up their
    state in ``state_attrs`` (the RNG and update count are saved by this class). Constructor keyword
    arguments after ``return_bounds`` are the teacher's parameters: document each with a ``:param name:``
    line in the class docstring, which ``cli.py list teachers`` shows.

    :param task_space: the space tasks are drawn from
    :param seed: seed of the teacher's own random generator; every random choice comes from it
    :param return_bounds: ``(low, high)`` episodic returns of the environment, used to normalise returns into
        [0, 1] (clipped); ``None`` uses raw returns
    """

    #: task-space types this teacher supports
    supported_spaces: ClassVar[tuple[type[TaskSpace], ...]] = (BoxTaskSpace,)
    #: attribute names (besides the RNG and update count) saved by :meth:`state_dict`
    state_attrs: ClassVar[tuple[str, ...]] = ()
    #: attributes with ``state_dict()`` / ``load_state_dict()`` (a network teacher's modules and optimisers), saved
    #: through those so that optimisers stay bound to their modules' parameters
    module_attrs: ClassVar[tuple[str, ...]] = ()
    #: whether some levels come with ``train=False`` (the student must be able to mask its updates)
    masks_updates: ClassVar[bool] = False
    #: what the teacher learns from, as ``list teachers`` shows it (``required_scores`` are checked before a run)
    needs: ClassVar[str] = "return"
    #: named parameter sets (``preset=NAME``), applied under the parameters given with them
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {}
    #: whether :meth:`prepare` has read the environment (``curriculum.registry.teacher_for`` calls it)
    prepared: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A subclass's own :meth:`prepare` also records that it ran (:attr:`prepared`)."""
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("prepare")
        if own is not None:

            @functools.wraps(own)
            def prepare(self: Teacher, env: Any) -> None:
                own(self, env)
                self.prepared = True

            cls.prepare = prepare  # type: ignore[method-assign]

    @property
    def reads_env(self) -> bool:
        """Whether this teacher reads what it needs from its environment (:meth:`prepare` is its own), so that it
        must be prepared before a run samples from it."""
        return type(self).prepare is not Teacher.prepare

    def __init__(
        self,
        task_space: SpaceT,
        seed: int = 0,
        return_bounds: tuple[float, float] | None = None,
    ) -> None:
        if not isinstance(task_space, self.supported_spaces):
            kinds = ", ".join(t.__name__ for t in self.supported_spaces)
            raise TypeError(f"{type(self).__name__} works on {kinds} task spaces, not {type(task_space).__name__}")
        if return_bounds is not None:
            lo, hi = (float(b) for b in return_bounds)
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise ValueError(f"return bounds must be finite with low < high, got {return_bounds}")
            return_bounds = (lo, hi)
        self.task_space = task_space
        self.seed = seed
        self.return_bounds = return_bounds
        self.rng = np.random.default_rng(seed)
        self.n_updates = 0
        #: whether the run training with this teacher was asked to stop (Ctrl-C, SIGTERM): a teacher's own long work
        #: (CLUTR's pretraining) polls it and raises :class:`TeacherStopped` (a run sets it while it learns)
        self.stop_requested: Callable[[], bool] = _never

    # -- public API ---------------------------------------------------------------------------------------
    def sample(self) -> Task:
        """Choose the task of the next episode.

        :return: a task vector (box spaces) or task index (discrete spaces)
        """
        return self._sample()

    def sample_level(self) -> Level:
        """Choose the next episode's level: task, level seed (``None``: the env's choice) and whether to train on it.

        Teachers that do not pick level seeds need not override this.
        """
        return Level(self.sample())

    def prepare(self, env: Any) -> None:
        """Read what this teacher needs from the environment (or simulated student) before its first sample: its
        easy region (``easy_task_space``), its initial and target task distributions... Nothing by default."""
        return None

    @property
    def required_scores(self) -> tuple[str, ...]:
        """Names of the :attr:`Feedback.scores` entries this teacher needs from the student (none by default)."""
        return ()

    def plot_levels(self) -> tuple[np.ndarray, np.ndarray, str] | None:
        """Points worth a scatter plot (tasks, one value per task, the value's name), e.g. a level buffer."""
        return None

    def update(self, task: Any, feedback: Feedback) -> None:
        """Learn from one finished episode.

        Episodes may be reported in any order (parallel environments); each episode exactly once.

        :param task: the task the episode actually played
        :param feedback: what happened in it
        :raises FeedbackError: the task is not in the space, or the feedback is not usable
        """
        if not isinstance(feedback, Feedback):
            raise FeedbackError(f"feedback must be a Feedback, got {type(feedback).__name__}")
        try:
            task = self.task_space.validate(task)
        except ValueError as exc:
            raise FeedbackError(f"feedback for a task outside the teacher's space: {exc}") from exc
        self._update(task, feedback)
        self.n_updates += 1

    def normalize_return(self, episode_return: float) -> float:
        """Map a return into [0, 1] with the environment's bounds (clipped); identity without bounds."""
        if self.return_bounds is None:
            return float(episode_return)
        lo, hi = self.return_bounds
        return min(1.0, max(0.0, (episode_return - lo) / (hi - lo)))

    def stats(self) -> dict[str, float]:
        """Teacher internals worth logging (e.g. number of GMM components); empty by default."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly where this teacher is (a deep copy, picklable)."""
        state = {name: copy.deepcopy(getattr(self, name)) for name in self.state_attrs}
        state["rng"] = copy.deepcopy(self.rng.bit_generator.state)
        state["n_updates"] = self.n_updates
        state["modules"] = copy.deepcopy({name: getattr(self, name).state_dict() for name in self.module_attrs})
        state["teacher_class"] = type(self).__qualname__
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a state made by :meth:`state_dict` of a teacher built with the same arguments."""
        saved_by = state.get("teacher_class", type(self).__qualname__)
        if saved_by != type(self).__qualname__:
            raise ValueError(f"this teacher state was saved by {saved_by}, not {type(self).__qualname__}")
        missing = [k for k in (*self.state_attrs, "rng", "n_updates") if k not in state]
        if missing:
            raise KeyError(f"teacher state lacks {', '.join(missing)}: was it saved by {type(self).__name__}?")
        for name in self.state_attrs:
            setattr(self, name, copy.deepcopy(state[name]))
        self.rng.bit_generator.state = copy.deepcopy(state["rng"])
        self.n_updates = int(state["n_updates"])
        for name in self.module_attrs:
            getattr(self, name).load_state_dict(copy.deepcopy(state["modules"][name]))

    # -- to implement --------------------------------------------------------------------------------------
    @abstractmethod
    def _sample(self) -> Task: ...

    @abstractmethod
    def _update(self, task: Task, feedback: Feedback) -> None: ...
