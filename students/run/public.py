"""A whole run from Python: ``students.train(RunConfig(...), out)`` returns a :class:`RunResult`.

The same run as ``cli.py run`` (it calls :func:`students.run.train.train`), with progress shown as a user's
session can show it (:class:`ProgressDisplay`) and the results as objects: the metrics, the evaluation table as a
pandas DataFrame, the trained model.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import pandas as pd
import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import BasePolicy

from students.loop.algorithms import algorithm_class
from students.policies import load_policy
from students.run import layout
from students.run.train import ResolvedRun, RunConfig
from students.run.train import train as train_run

#: a plain progress line every this share of the budget (where no live bar can be drawn)
PLAIN_EVERY = 0.1


@dataclass(frozen=True)
class RunResult:
    """A finished run: its folder and what it measured (``metrics.json``)."""

    out: Path
    metrics: dict[str, Any]

    @classmethod
    def load(cls, out: Path | str) -> RunResult:
        """The result of a finished run folder.

        :raises FileNotFoundError: the folder has no ``metrics.json`` (the run has not finished)
        """
        out = Path(out)
        path = out / layout.METRICS
        if not path.is_file():
            raise FileNotFoundError(f"'{out}' has no {layout.METRICS}: the run has not finished")
        return cls(out, json.loads(path.read_text()))

    @property
    def mastered_pct(self) -> float:
        """The final evaluation's share of test tasks mastered, in %."""
        return float(self.metrics["final_eval"]["mastered_pct"])

    @property
    def mean_return(self) -> float:
        """The final evaluation's mean return over the test set."""
        return float(self.metrics["final_eval"]["mean_return"])

    def evaluations(self) -> pd.DataFrame:
        """Every test-set evaluation of the run (``eval.csv``): one row per evaluation and test task."""
        return pd.read_csv(self.out / layout.EVAL)

    def load_model(self, device: str = "cpu") -> BaseAlgorithm:
        """The trained student (``model.zip``), on ``device``, as its algorithm's class loads it."""
        config = yaml.safe_load((self.out / layout.CONFIG).read_text())
        return algorithm_class(config.get("algo") or config["student"]).load(self.out / layout.MODEL, device=device)

    def policy(self) -> BasePolicy:
        """The trained student's frozen policy, on the CPU (:func:`students.policies.load_policy`)."""
        return load_policy(self.out, role="run")


class ProgressDisplay:
    """Progress of one run: a live rich bar where the console draws one (a terminal, a notebook), else a plain line
    at every tenth of the budget (a log file, a CI job)."""

    def __init__(self, label: str, total: int, stream: TextIO | None = None) -> None:
        self.label, self.total = label, total
        self.stream = stream if stream is not None else sys.stderr
        console = Console(file=self.stream)
        self.live = console.is_terminal or console.is_jupyter
        self._bar: Progress | None = None
        self._task: Any = None
        self._next_line = PLAIN_EVERY
        if self.live:
            columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
            self._bar = Progress(*columns, TimeRemainingColumn(), console=console)
            self._task = self._bar.add_task(label, total=total)
            self._bar.start()

    def __call__(self, steps: int, episodes: int, mastered: float | None) -> None:
        shown = "-" if mastered is None else f"{mastered:.1f}%"
        if self._bar is not None:
            self._bar.update(self._task, completed=min(steps, self.total), description=f"{self.label} mastered {shown}")
            return
        share = steps / max(self.total, 1)
        if share >= self._next_line or steps >= self.total:
            print(f"{self.label}: {steps}/{self.total} steps, {episodes} episodes, mastered {shown}", file=self.stream)
            while self._next_line <= share:
                self._next_line += PLAIN_EVERY

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def train(
    run: RunConfig | ResolvedRun,
    out: Path | str,
    resume: bool = False,
    progress: bool | Callable[[int, int, float | None], None] = True,
    notify: Callable[[str], None] | None = print,
) -> RunResult:
    """Train (or ``resume``) a run into ``out`` and return its result; the run ``cli.py run`` makes.

    :param run: the run's settings (:class:`students.run.train.RunConfig`), or the same resolved
    :param progress: ``True``: a bar (or plain lines, :class:`ProgressDisplay`); ``False``: nothing; or a function
        called with (steps, episodes, last mastered %) every 1,000 steps
    :param notify: called with messages a user should see (a restart, a run already finished); ``None``: silent
    :raises students.run.train.RunError: bad settings, or a folder that holds another run
    """
    config = run.config if isinstance(run, ResolvedRun) else run
    display = ProgressDisplay(f"{config.teacher} -> {config.student}", config.steps) if progress is True else None
    report = display if display is not None else (progress if callable(progress) else None)
    try:
        metrics = train_run(run, Path(out), resume=resume, progress=report, notify=notify)
    finally:
        if display is not None:
            display.close()
    return RunResult(Path(out), metrics)
