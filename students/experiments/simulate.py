"""Teacher comparisons on the simulated student (no deep RL: seconds per run).

:class:`SimulateConfig` holds the settings (the keys of ``experiments/simulated_student.yaml``), checks them and
every teacher before any work; :func:`run_simulations` plays every teacher x seed in a process pool and
:class:`SimulateResults` aggregates them into table rows and a JSON record. ``cli.py simulate`` only prints.
"""

from __future__ import annotations

import json
import math
import os
import platform
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curriculum.registry import make_teacher, teacher_class
from environments.simulated_student import SimulatedStudent, SimulationResult, simulate
from students.config import ConfigError, load_settings, parse_seeds, range_error, setting, split_names


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and std with ddof 1 (the convention of every table teachrl prints; 0 for one value)."""
    mean = sum(values) / len(values)
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1) if len(values) > 1 else 0.0
    return mean, math.sqrt(var)


@dataclass
class SimulateConfig:
    """A simulated-student comparison: teachers x seeds on one student."""

    teachers: list[str] = setting(
        help="Teacher names or module:Class paths.",
        factory=lambda: ["random", "alp-gmm", "covar-gmm", "riac"],
        shown="random,alp-gmm,covar-gmm,riac",
    )
    episodes: int = setting(20_000, "Episodes per run.")
    seeds: list[int] = setting(help="Seeds: 0-4, 0,1,2 or 0-2,7 (as everywhere).", factory=lambda: [0, 1, 2], shown="0-2")
    dims: int = setting(2, "Relevant task dimensions.")
    cells: int = setting(10, "Bins per relevant dimension.")
    distractors: int = setting(0, "Extra task dimensions that change nothing.")
    unlearnable: float = setting(0.0, "Share of dimension 0's bins (high end) that never learn.")
    noise: float = setting(0.0, "Std of Gaussian noise on returns.")
    forgetting: float = setting(0.0, "Competence lost per episode by unpractised cells.")
    discrete: bool = setting(False, "Tasks are the cells (a discrete task set, e.g. for lp-bandit).")
    teacher_params: dict[str, dict[str, Any]] = field(default_factory=dict)  # per teacher name

    @classmethod
    def load(cls, path: Path | None, overrides: Mapping[str, Any]) -> SimulateConfig:
        """Settings from a YAML file (optional) and command-line values (not ``None``), checked.

        :raises ConfigError, UnknownTeacherError: the first bad setting or teacher, in one line
        """
        data = load_settings(path, overrides, cls.__dataclass_fields__)
        if "teachers" in data:
            data["teachers"] = split_names(data["teachers"])
        if "seeds" in data:
            data["seeds"] = data["seeds"] if isinstance(data["seeds"], list) else parse_seeds(data["seeds"])
        return cls(**data).check()

    @property
    def student(self) -> dict[str, Any]:
        """The :class:`SimulatedStudent` keyword arguments."""
        return {
            "dims": self.dims,
            "cells": self.cells,
            "distractors": self.distractors,
            "unlearnable_share": self.unlearnable,
            "return_noise": self.noise,
            "forgetting": self.forgetting,
            "discrete": self.discrete,
        }

    @property
    def checkpoints(self) -> list[int]:
        """Episode counts at which mastery is recorded: 25, 50 and 100% of the budget."""
        return sorted({max(1, self.episodes // 4), max(1, self.episodes // 2), self.episodes})

    def check(self) -> SimulateConfig:
        """Ranges of the settings, then the student and every teacher built once, so that bad settings fail here
        with one message rather than in a worker.

        :raises ConfigError, UnknownTeacherError: the first problem
        """
        integers = {"episodes": 1, "dims": 1, "cells": 1, "distractors": 0}
        problem = range_error(self, integers, dict.fromkeys(("unlearnable", "noise", "forgetting"), 0))
        if problem:
            raise ConfigError(problem)
        if self.unlearnable >= 1:
            raise ConfigError(f"unlearnable must be below 1, got {self.unlearnable}")
        self.seeds = [int(s) for s in self.seeds]
        if not self.seeds or min(self.seeds) < 0:
            raise ConfigError(f"seeds must be non-negative integers, got {self.seeds}")
        unknown = sorted(set(self.teacher_params) - set(self.teachers))
        if unknown:
            raise ConfigError(f"teacher parameters given for {', '.join(unknown)}, which is not among the teachers")
        for name in self.teachers:
            teacher_class(name)
        try:
            student = SimulatedStudent(**self.student)
        except ValueError as exc:
            raise ConfigError(f"simulated student: {exc}") from exc
        for name in self.teachers:
            try:
                params = self.teacher_params.get(name, {})
                teacher = make_teacher(name, student.task_space, return_bounds=student.return_bounds, **params)
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"teacher '{name}': {exc}") from exc
            if getattr(teacher, "antagonist", False):
                raise ConfigError(
                    f"teacher '{name}' measures regret against an antagonist student, which the simulated student "
                    "cannot be; train an RL student with 'cli.py run' instead"
                )
            needs = teacher.required_scores
            if needs:
                raise ConfigError(
                    f"teacher '{name}' needs the student's {', '.join(needs)} score, which the simulated student does "
                    "not provide; train an RL student with 'cli.py run' instead"
                )
        return self

    def jobs(self) -> list[dict[str, Any]]:
        """One :func:`simulate` call's keyword arguments per teacher x seed."""
        return [
            {
                "teacher": name,
                "episodes": self.episodes,
                "seed": seed,
                "checkpoints": self.checkpoints,
                "teacher_params": self.teacher_params.get(name, {}),
                "student_params": self.student,
            }
            for name in self.teachers
            for seed in self.seeds
        ]


@dataclass
class SimulateResults:
    """Every run of a comparison, by teacher in the configured order and by seed."""

    config: SimulateConfig
    runs: dict[str, list[SimulationResult]]

    def rows(self) -> list[dict[str, str]]:
        """Table rows: mastered % (mean ± std, ddof 1) at each checkpoint and the teacher's cost per episode."""
        rows = []
        for name, runs in self.runs.items():
            row = {"teacher": name}
            for c in self.config.checkpoints:
                mean, std = mean_std([r.mastered[c] for r in runs])
                row[f"@{c}"] = f"{mean:.1f} ± {std:.1f}"
            row["teacher µs/episode"] = f"{mean_std([r.teacher_us_per_episode for r in runs])[0]:.0f}"
            if self.config.unlearnable:
                row["% played unlearnable"] = f"{100 * mean_std([r.unlearnable_share_played for r in runs])[0]:.1f}"
            rows.append(row)
        return rows

    def write_json(self, path: Path) -> None:
        """Write :meth:`to_json` to ``path``.

        :raises ConfigError: the file cannot be written
        """
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(self.to_json(), indent=2))
        except OSError as exc:
            raise ConfigError(f"cannot write --json file {path}: {exc.strerror or exc}") from None

    def to_json(self) -> dict[str, Any]:
        """Per-seed mastery at each checkpoint, mean teacher cost, parameters, machine and settings."""
        config = self.config
        return {
            "teachers": {
                name: {
                    "mastered": {str(c): [r.mastered[c] for r in runs] for c in config.checkpoints},
                    "teacher_us_per_episode": mean_std([r.teacher_us_per_episode for r in runs])[0],
                    "unlearnable_share_played": mean_std([r.unlearnable_share_played for r in runs])[0],
                    "params": config.teacher_params.get(name, {}),
                }
                for name, runs in self.runs.items()
            },
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
            "config": {
                "episodes": config.episodes,
                "seeds": config.seeds,
                "checkpoints": config.checkpoints,
                "student": config.student,
            },
        }


def _run(job: dict[str, Any]) -> SimulationResult:
    return simulate(**job)


def _one_thread() -> None:
    """A worker process's initializer: one torch thread each, so that parallel network teachers (GoalGAN,
    Setter-Solver) do not fight over the cores (measured: 15x slower per episode with 2 x 2 threads on 2 cores)."""
    import torch

    torch.set_num_threads(1)


def run_simulations(
    config: SimulateConfig, workers: int = 1, progress: Callable[[str, int, int], None] | None = None
) -> SimulateResults:
    """Play every teacher x seed in ``workers`` processes (one torch thread each); results do not depend on
    ``workers``.

    :param progress: called with a label of the last job, the jobs done and their total
    """
    jobs = config.jobs()
    workers = max(1, min(workers, len(jobs)))
    done: list[SimulationResult] = []

    def finished(result: SimulationResult) -> None:
        done.append(result)
        if progress:
            progress(f"{result.teacher} seed {result.seed}", len(done), len(jobs))

    # always in worker processes of one torch thread: network teachers' floats then do not depend on --workers
    with ProcessPoolExecutor(max_workers=workers, initializer=_one_thread) as pool:
        for future in as_completed([pool.submit(_run, job) for job in jobs]):
            finished(future.result())
    order = {name: k for k, name in enumerate(config.teachers)}
    runs: dict[str, list[SimulationResult]] = {name: [] for name in config.teachers}
    for result in sorted(done, key=lambda r: (order[r.teacher], r.seed)):
        runs[result.teacher].append(result)
    return SimulateResults(config, runs)
