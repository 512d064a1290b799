"""Task spaces: what a task is, independent of how it is chosen or played.

A *task* is the parameter vector of one episode. :class:`BoxTaskSpace` is a box of named continuous
dimensions (tasks are float vectors); :class:`DiscreteTaskSpace` is a finite list of named tasks (tasks are
integer indices).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


class TaskSpaceError(ValueError):
    """A task space was defined badly, or a task does not belong to its space."""


Task = np.ndarray | int


class TaskSpace:
    """Base class of task spaces."""

    #: number of entries of a task vector (1 for discrete spaces: the task index)
    dim: int

    def sample(self, rng: np.random.Generator) -> Task:
        """Draw a task uniformly at random.

        :param rng: the generator every random choice comes from
        :return: a task of this space
        """
        raise NotImplementedError

    def validate(self, task: Any) -> Task:
        """Check that ``task`` belongs to this space and return it in canonical form.

        :raises TaskSpaceError: naming what is wrong with the task
        """
        raise NotImplementedError

    def describe(self) -> str:
        """One line that a user reads in ``list`` outputs."""
        raise NotImplementedError


class BoxTaskSpace(TaskSpace):
    """A box of named continuous dimensions.

    :param names: one unique name per dimension
    :param low: lower bound per dimension (finite)
    :param high: upper bound per dimension (finite, strictly above ``low``)
    """

    names: tuple[str, ...]
    low: np.ndarray
    high: np.ndarray

    def __init__(self, names: Sequence[str], low: Sequence[float], high: Sequence[float]) -> None:
        names = tuple(str(n) for n in names)
        low_arr = np.asarray(low, dtype=np.float64).reshape(-1)
        high_arr = np.asarray(high, dtype=np.float64).reshape(-1)
        if not names:
            raise TaskSpaceError("a box task space needs at least one dimension")
        if len({*names}) != len(names):
            dupes = sorted({n for n in names if names.count(n) > 1})
            raise TaskSpaceError(f"dimension names must be unique; repeated: {', '.join(dupes)}")
        if any(not n for n in names):
            raise TaskSpaceError("dimension names must be non-empty")
        if low_arr.shape != (len(names),) or high_arr.shape != (len(names),):
            raise TaskSpaceError(f"{len(names)} dimension names but {low_arr.size} lower and {high_arr.size} upper bounds")
        for name, lo, hi in zip(names, low_arr, high_arr, strict=True):
            if not (math.isfinite(lo) and math.isfinite(hi)):
                raise TaskSpaceError(f"bounds of '{name}' must be finite, got [{lo}, {hi}]")
            if not lo < hi:
                raise TaskSpaceError(f"lower bound of '{name}' must be below its upper bound, got [{lo}, {hi}]")
        span = high_arr - low_arr
        for arr in (low_arr, high_arr, span):
            arr.setflags(write=False)
        self.names = names
        self.low = low_arr
        self.high = high_arr
        self.span = span

    @classmethod
    def from_dict(cls, bounds: Mapping[str, tuple[float, float]]) -> BoxTaskSpace:
        """Build from ``{name: (low, high)}``, keeping the mapping's order."""
        return cls(list(bounds), [b[0] for b in bounds.values()], [b[1] for b in bounds.values()])

    @property
    def dim(self) -> int:  # type: ignore[override]
        return len(self.names)

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        return self.low + rng.random(self.dim) * self.span

    def clip(self, task: np.ndarray) -> np.ndarray:
        """Clip a vector into the box."""
        return np.clip(task, self.low, self.high)

    def normalize(self, task: np.ndarray) -> np.ndarray:
        """Map tasks (one vector or rows of vectors) from the box to [0, 1] per dimension."""
        return (np.asarray(task, dtype=np.float64) - self.low) / self.span

    def denormalize(self, unit: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`normalize`."""
        return self.low + np.asarray(unit, dtype=np.float64) * self.span

    def to_dict(self, task: np.ndarray) -> dict[str, float]:
        """``{name: value}`` of a task vector."""
        task = self.validate(task)
        return {n: float(v) for n, v in zip(self.names, task, strict=True)}

    def from_mapping(self, values: Mapping[str, float]) -> np.ndarray:
        """Task vector from ``{name: value}``; every dimension must be given, and no other."""
        unknown = sorted(set(values) - set(self.names))
        if unknown:
            raise TaskSpaceError(f"unknown dimension(s) {', '.join(unknown)}; valid: {', '.join(self.names)}")
        missing = [n for n in self.names if n not in values]
        if missing:
            raise TaskSpaceError(f"missing dimension(s) {', '.join(missing)}; a task sets all of: {', '.join(self.names)}")
        return self.validate([values[n] for n in self.names])

    def validate(self, task: Any, tolerance: float = 1e-9) -> np.ndarray:
        if isinstance(task, Mapping):
            return self.from_mapping(task)
        if (
            type(task) is np.ndarray
            and task.shape == (self.dim,)
            and task.dtype == np.float64
            and np.logical_and(self.low <= task, task <= self.high).all()
        ):
            return task  # fast path: already a valid vector (NaN fails the comparisons)
        try:
            vec = np.asarray(task, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise TaskSpaceError(f"a task must be a vector of {self.dim} numbers, got {task!r}") from exc
        if vec.shape != (self.dim,):
            raise TaskSpaceError(f"a task of this space has {self.dim} values ({', '.join(self.names)}), got {vec.size}")
        if not np.all(np.isfinite(vec)):
            raise TaskSpaceError(f"task values must be finite, got {vec.tolist()}")
        slack = tolerance * self.span
        outside = (vec < self.low - slack) | (vec > self.high + slack)
        if outside.any():
            i = int(np.argmax(outside))
            raise TaskSpaceError(f"'{self.names[i]}' = {vec[i]:g} is outside its bounds [{self.low[i]:g}, {self.high[i]:g}]")
        return np.clip(vec, self.low, self.high)

    def describe(self) -> str:
        return ", ".join(f"{n} in [{lo:g}, {hi:g}]" for n, lo, hi in zip(self.names, self.low, self.high, strict=True))

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, BoxTaskSpace)
            and self.names == other.names
            and np.array_equal(self.low, other.low)
            and np.array_equal(self.high, other.high)
        )

    def __hash__(self) -> int:
        return hash((self.names, self.low.tobytes(), self.high.tobytes()))

    def __repr__(self) -> str:
        return f"BoxTaskSpace({self.describe()})"


class DiscreteTaskSpace(TaskSpace):
    """A finite list of named tasks; a task is its index in :attr:`names`.

    :param names: unique task names
    """

    names: tuple[str, ...]

    def __init__(self, names: Sequence[str]) -> None:
        names = tuple(str(n) for n in names)
        if not names:
            raise TaskSpaceError("a discrete task space needs at least one task")
        if len({*names}) != len(names):
            dupes = sorted({n for n in names if names.count(n) > 1})
            raise TaskSpaceError(f"task names must be unique; repeated: {', '.join(dupes)}")
        self.names = names

    @property
    def dim(self) -> int:  # type: ignore[override]
        return 1

    @property
    def n(self) -> int:
        """Number of tasks."""
        return len(self.names)

    def sample(self, rng: np.random.Generator) -> int:
        return int(rng.integers(self.n))

    def validate(self, task: Any) -> int:
        if isinstance(task, str):
            if task not in self.names:
                raise TaskSpaceError(f"unknown task '{task}'; valid: {', '.join(self.names)}")
            return self.names.index(task)
        arr = np.asarray(task)
        if arr.size != 1 or not np.issubdtype(arr.dtype, np.number):
            raise TaskSpaceError(f"a task of this space is one index in [0, {self.n - 1}], got {task!r}")
        value = float(arr.reshape(-1)[0])
        if not value.is_integer() or not 0 <= value < self.n:
            raise TaskSpaceError(f"task index must be an integer in [0, {self.n - 1}], got {value:g}")
        return int(value)

    def describe(self) -> str:
        return f"{self.n} tasks: {', '.join(self.names[:8])}{', ...' if self.n > 8 else ''}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DiscreteTaskSpace) and self.names == other.names

    def __hash__(self) -> int:
        return hash(self.names)

    def __repr__(self) -> str:
        return f"DiscreteTaskSpace({self.describe()})"
