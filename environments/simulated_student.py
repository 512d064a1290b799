"""The simulated student ("toy" benchmark of teachDeepRL): test teachers in seconds, without deep RL.

The task space is [0, 1]^(dims + distractors). Each of the first ``dims`` dimensions is cut into ``cells``
equal bins; each cell holds a competence in [0, 100], starting at 0. An episode on a task finds its cell;
the origin cell always learns (+1), any other cell learns only if at least one of its *previous neighbours*
(each index equal or one less, clamped at 0, diagonals included, the cell itself excluded) has competence
>= ``mastery``. Competence is capped at 100. The episode's return is the cell's competence after the update
divided by 100 (plus optional Gaussian noise). Score: % of all cells with competence > ``mastery``. An episode
succeeds when its cell's competence (after it) is above ``mastery``, so success-based teachers run here too.
"""

from __future__ import annotations

import copy
import itertools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from curriculum.base import Feedback
from curriculum.registry import teacher_for
from curriculum.spaces import BoxTaskSpace, DiscreteTaskSpace, Task, TaskSpace


class SimulatedStudent:
    """A grid of cells whose competence grows when practised next to a mastered cell.

    :param dims: relevant task dimensions
    :param cells: bins per relevant dimension
    :param distractors: extra task dimensions that change nothing
    :param unlearnable_share: share of dimension 0's bins, taken from its high end, whose cells never learn
        (a contiguous unlearnable region: a good teacher stops sampling it)
    :param return_noise: std of Gaussian noise added to each returned competence
    :param forgetting: competence every unpractised cell loses per episode (0: no forgetting)
    :param mastery: competence a neighbour needs to unlock a cell; a cell counts as mastered above it
    :param seed: seed of the return noise
    :param discrete: tasks are the cells themselves (a discrete task space of ``cells^dims`` tasks, row-major), for
        teachers of discrete task sets (the learning-progress bandit); no distractors then
    """

    def __init__(
        self,
        dims: int = 2,
        cells: int = 10,
        distractors: int = 0,
        unlearnable_share: float = 0.0,
        return_noise: float = 0.0,
        forgetting: float = 0.0,
        mastery: float = 75.0,
        seed: int = 0,
        discrete: bool = False,
    ) -> None:
        if dims < 1 or cells < 1 or distractors < 0:
            raise ValueError(f"need dims >= 1, cells >= 1, distractors >= 0; got {dims}, {cells}, {distractors}")
        if not 0.0 <= unlearnable_share < 1.0:
            raise ValueError(f"unlearnable_share must be in [0, 1), got {unlearnable_share}")
        if cells**dims > 1_000_000:
            raise ValueError(
                f"{cells}^{dims} = {cells**dims:,} cells is too many (at most 1,000,000); use fewer dims or cells"
            )
        if return_noise < 0 or forgetting < 0:
            raise ValueError("return_noise and forgetting must be >= 0")
        if discrete and distractors:
            raise ValueError("a discrete simulated student has no distractor dimensions (its tasks are its cells)")
        self.dims, self.cells, self.distractors = dims, cells, distractors
        self.mastery = mastery
        self.return_noise = return_noise
        self.forgetting = forgetting
        self.rng = np.random.default_rng(seed)
        names = [f"x{i}" for i in range(dims)] + [f"distractor{i}" for i in range(distractors)]
        self.task_space: TaskSpace = BoxTaskSpace(names, [0.0] * len(names), [1.0] * len(names))
        self.return_bounds = (0.0, 1.0)
        #: the origin cell, which always learns (where ADR and ACCEL start)
        easy_high = [1.0 / cells] * dims + [1.0] * distractors
        self.easy_task_space: BoxTaskSpace | None = BoxTaskSpace(names, [0.0] * len(names), easy_high)
        self.discrete = discrete
        if discrete:
            cell_names = ["cell" + "_".join(map(str, index)) for index in itertools.product(range(cells), repeat=dims)]
            self.task_space, self.easy_task_space = DiscreteTaskSpace(cell_names), None
        self.success_rule = f"not an RL env: teacher benchmark; score = % cells with competence > {mastery:g}"
        n_cells = cells**dims
        self.competence = np.zeros(n_cells)
        self._strides = [cells ** (dims - 1 - i) for i in range(dims)]
        grid = list(itertools.product(range(cells), repeat=dims))  # flat index order = row-major
        # previous neighbours of every cell, as flat indices (empty for the origin: it always learns)
        self._previous: list[tuple[int, ...]] = []
        for index in grid:
            options = [sorted({i, max(i - 1, 0)}) for i in index]
            flat = {self._flat(n) for n in itertools.product(*options)} - {self._flat(index)}
            self._previous.append(tuple(sorted(flat)))
        n_unlearnable = round(unlearnable_share * cells)
        self.learnable = np.array([index[0] < cells - n_unlearnable for index in grid])
        self.learnable[0] = True

    def _flat(self, index: Sequence[int]) -> int:
        return sum(i * s for i, s in zip(index, self._strides, strict=True))

    def cell_of(self, task: Task) -> int:
        """Flat index of the cell a task falls in (distractor dimensions ignored; a discrete task is its cell)."""
        if self.discrete:
            return int(task)
        task, c = np.asarray(task), self.cells
        return sum(min(int(task[i] * c), c - 1) * s for i, s in enumerate(self._strides))

    def episode(self, task: Task, learn: bool = True) -> float:
        """Play one episode on ``task`` and return its return; ``learn=False`` only measures (no practice, no
        forgetting: a masked student's scoring episode)."""
        cell = self.cell_of(task)
        comp = self.competence
        if not learn:
            return float(comp[cell] / 100.0 + (self.rng.normal(0.0, self.return_noise) if self.return_noise else 0.0))
        if self.forgetting:
            practised = comp[cell]
            np.maximum(comp - self.forgetting, 0.0, out=comp)
            comp[cell] = practised
        if self.learnable[cell] and (cell == 0 or any(comp[n] >= self.mastery for n in self._previous[cell])):
            comp[cell] = min(comp[cell] + 1.0, 100.0)
        value = comp[cell] / 100.0
        if self.return_noise:
            value += self.rng.normal(0.0, self.return_noise)
        return float(value)

    def is_mastered(self, task: Task) -> bool:
        """The success flag of an episode on ``task``: its cell's competence is above ``mastery``."""
        return bool(self.competence[self.cell_of(task)] > self.mastery)

    def get_state(self) -> dict[str, Any]:
        """Everything the student's future depends on: competences and the noise generator (a deep copy)."""
        return {"competence": self.competence.copy(), "rng": copy.deepcopy(self.rng.bit_generator.state)}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore a state made by :meth:`get_state` of a student built with the same arguments."""
        if np.shape(state["competence"]) != self.competence.shape:
            raise ValueError(f"state of a student with {np.size(state['competence'])} cells, not {self.competence.size}")
        self.competence = np.array(state["competence"], dtype=np.float64)
        self.rng.bit_generator.state = copy.deepcopy(state["rng"])

    def score(self) -> float:
        """% of all cells whose competence is above ``mastery``."""
        return float(100.0 * np.mean(self.competence > self.mastery))


@dataclass
class SimulationResult:
    """Outcome of one teacher on one simulated student."""

    teacher: str
    seed: int
    #: % of cells mastered after each checkpoint's number of episodes
    mastered: dict[int, float]
    #: teacher time (sample + update) per episode, in microseconds
    teacher_us_per_episode: float
    #: share of the episodes played on unlearnable cells (0 when every cell can learn)
    unlearnable_share_played: float = 0.0
    stats: dict[str, float] = field(default_factory=dict)


def simulate(
    teacher: str,
    episodes: int,
    seed: int = 0,
    checkpoints: Sequence[int] | None = None,
    teacher_params: Mapping[str, Any] | None = None,
    student_params: Mapping[str, Any] | None = None,
) -> SimulationResult:
    """Let a teacher train a simulated student for ``episodes`` episodes.

    :param teacher: a registered teacher name or ``module:Class`` path
    :param episodes: episode budget
    :param seed: seed of the teacher and of the student's noise
    :param checkpoints: episode counts at which the score is recorded (default: the end only)
    :param teacher_params: the teacher's keyword parameters
    :param student_params: :class:`SimulatedStudent` keyword parameters
    """
    student = SimulatedStudent(**dict(student_params or {}), seed=seed)
    agent = teacher_for(teacher, student, seed, **dict(teacher_params or {}))
    marks = sorted({int(c) for c in (checkpoints or [episodes]) if 0 < c <= episodes})
    mastered: dict[int, float] = {}
    teacher_seconds = 0.0
    unlearnable_plays = 0
    clock = time.perf_counter
    for episode in range(1, episodes + 1):
        start = clock()
        level = agent.sample_level()
        teacher_seconds += clock() - start
        task, cell = level.task, student.cell_of(level.task)
        episode_return = student.episode(task, learn=level.train)
        unlearnable_plays += not student.learnable[cell]
        feedback = Feedback(episode_return, success=student.is_mastered(task), level_seed=level.seed)
        start = clock()
        agent.update(task, feedback)
        teacher_seconds += clock() - start
        if marks and episode == marks[0]:
            mastered[marks.pop(0)] = student.score()
    return SimulationResult(
        teacher=teacher,
        seed=seed,
        mastered=mastered,
        teacher_us_per_episode=1e6 * teacher_seconds / max(episodes, 1),
        unlearnable_share_played=unlearnable_plays / max(episodes, 1),
        stats=agent.stats(),
    )
