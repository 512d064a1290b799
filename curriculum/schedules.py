"""Hand-made curricula: a user's sequence of stages from YAML, and teachDeepRL's oracle (a moving window)."""

from __future__ import annotations

import math

from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from curriculum.base import Feedback, Teacher
from curriculum.spaces import BoxTaskSpace, Task

CONDITIONS = ("return", "success", "episodes", "steps")


class StagesTeacher(Teacher[BoxTaskSpace]):
    """Stages: a user's curriculum, a sequence of task boxes each played until its condition holds.

    The YAML file holds ``stages:``, a list of ``{box: {DIM: [LOW, HIGH], ...}, until: {...}}``; dimensions a box
    does not name keep the whole range, a value instead of a pair fixes the dimension. ``until`` is one of
    ``return: R`` (mean normalised return of the stage's last ``window`` episodes at least R, 0..1),
    ``success: S`` (their success rate at least S), ``episodes: N`` or ``steps: N`` (played in the stage), with
    an optional ``window`` (default 100). The last stage has no condition: it lasts. Example::

        stages:
          - {box: {gate_width: [4, 8]}, until: {success: 0.5}}
          - {box: {gate_width: [1, 8]}, until: {steps: 200000}}
          - {box: {}}

    :param stages: path of the YAML file
    """

    state_attrs = ("stage", "recent", "episodes", "steps")
    needs = "return, success or episode lengths (the stages' conditions)"

    def __init__(
        self, task_space: BoxTaskSpace, seed: int = 0, return_bounds: tuple[float, float] | None = None, stages: str = ""
    ) -> None:
        super().__init__(task_space, seed, return_bounds)
        self.boxes, self.conditions = self._load(stages)
        self.stage, self.episodes, self.steps = 0, 0, 0
        self.recent: deque[tuple[float, bool]] = deque(maxlen=self.conditions[0].get("window", 100))

    def _load(self, path: str) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[dict[str, Any]]]:
        space = self.task_space
        if not path or not Path(path).is_file():
            raise ValueError(f"stages needs the path of a YAML file of stages, got '{path}'")
        try:
            stages = (yaml.safe_load(Path(path).read_text()) or {}).get("stages")
        except (yaml.YAMLError, AttributeError) as exc:
            raise ValueError(f"stages file '{path}' is not a YAML mapping with a 'stages' list: {exc}") from None
        if not isinstance(stages, list) or not stages:
            raise ValueError(f"stages file '{path}' needs a non-empty 'stages' list")
        boxes, conditions = [], []
        for k, stage in enumerate(stages):
            if not isinstance(stage, dict) or set(stage) - {"box", "until"}:
                raise ValueError(f"stage {k + 1} of '{path}' must be a mapping with 'box' and 'until'")
            low, high = space.low.copy(), space.high.copy()
            for name, bounds in (stage.get("box") or {}).items():
                if name not in space.names:
                    raise ValueError(f"stage {k + 1}: unknown dimension '{name}'; valid: {', '.join(space.names)}")
                d = space.names.index(name)
                lo, hi = (bounds, bounds) if isinstance(bounds, int | float) else bounds
                if not space.low[d] <= lo <= hi <= space.high[d]:
                    raise ValueError(f"stage {k + 1}: {name} [{lo}, {hi}] is not inside [{space.low[d]}, {space.high[d]}]")
                low[d], high[d] = lo, hi
            until = dict(stage.get("until") or {})
            kinds = [key for key in until if key != "window"]
            if (k < len(stages) - 1 and len(kinds) != 1) or any(key not in CONDITIONS for key in kinds):
                raise ValueError(f"stage {k + 1}: 'until' needs one of {', '.join(CONDITIONS)} (and optionally window)")
            for key, value in until.items():
                problem = _condition_problem(key, value)
                if problem:
                    raise ValueError(f"stage {k + 1} of '{path}': until.{key} {problem}")
            boxes.append((low, high))
            conditions.append(until)
        return boxes, conditions

    def _sample(self) -> Task:
        low, high = self.boxes[self.stage]
        return low + self.rng.random(self.task_space.dim) * (high - low)

    def _update(self, task: Task, feedback: Feedback) -> None:
        self.recent.append((self.normalize_return(feedback.episode_return), bool(feedback.success)))
        self.episodes += 1
        self.steps += int(feedback.length)
        until = self.conditions[self.stage]
        if self.stage == len(self.boxes) - 1 or not until:
            return
        kind = next(key for key in until if key != "window")
        full = len(self.recent) == self.recent.maxlen
        done = {
            "return": full and np.mean([r for r, _ in self.recent]) >= until.get("return", np.inf),
            "success": full and np.mean([s for _, s in self.recent]) >= until.get("success", np.inf),
            "episodes": self.episodes >= until.get("episodes", np.inf),
            "steps": self.steps >= until.get("steps", np.inf),
        }[kind]
        if done:
            self.stage += 1
            self.episodes = self.steps = 0
            self.recent = deque(maxlen=self.conditions[self.stage].get("window", 100))

    def stats(self) -> dict[str, float]:
        return {"stage": float(self.stage)}


def _condition_problem(key: str, value: Any) -> str | None:
    """What is wrong with one ``until`` value (a count >= 1, or a share in [0, 1]), or ``None``."""
    number = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if key in ("window", "episodes", "steps"):
        ok = number and float(value).is_integer() and value >= 1
        return None if ok else f"must be a whole number >= 1, got {value!r}"
    return None if number and 0 <= value <= 1 else f"must be a number in [0, 1], got {value!r}"


class OracleTeacher(Teacher[BoxTaskSpace]):
    """Oracle: teachDeepRL's hand-made curriculum, a window moving from the easy region toward the target.

    A box of ``window`` of each range, centred first on the environment's easy region (else the low corner), moves
    by ``step_size`` of each range toward the environment's target task (SPDL's target mean when it declares one,
    else its default task) whenever the mean normalised return of the last ``every`` episodes reaches
    ``threshold``. teachDeepRL's oracle uses a window of a sixth of each range, checks every 50 episodes and a
    return of 230 on BipedalWalker (0.76 of TeachMyAgent's walker bounds [-150, 350]); its step is the
    environment's own, here ``step_size``.

    :param window: the window's width, share of each range
    :param step_size: the window's move, share of each range
    :param every: episodes between two checks
    :param threshold: mean normalised return that moves the window
    """

    supported_spaces = (BoxTaskSpace,)
    state_attrs = ("centre", "returns")

    def __init__(
        self,
        task_space: BoxTaskSpace,
        seed: int = 0,
        return_bounds: tuple[float, float] | None = None,
        window: float = 1 / 6,
        step_size: float = 0.05,
        every: int = 50,
        threshold: float = 0.76,
    ) -> None:
        super().__init__(task_space, seed, return_bounds)
        if not 0 < window <= 1 or not 0 < step_size <= 1 or every < 1:
            raise ValueError("need 0 < window <= 1, 0 < step_size <= 1 and every >= 1")
        self.width, self.step, self.every, self.threshold = window * task_space.span, step_size, every, threshold
        self.centre = task_space.low + self.width / 2
        self.target = task_space.high.copy()
        self.returns: list[float] = []

    def prepare(self, env: Any) -> None:
        easy = getattr(env, "easy_task_space", None)
        if easy is not None:
            self.centre = (easy.low + easy.high) / 2
        target = getattr(env, "spdl_target", None)
        self.target = np.asarray(target[0] if target is not None else getattr(env, "default_task", self.target), float)

    def _sample(self) -> Task:
        low = np.maximum(self.centre - self.width / 2, self.task_space.low)
        high = np.minimum(self.centre + self.width / 2, self.task_space.high)
        return low + self.rng.random(self.task_space.dim) * (high - low)

    def _update(self, task: Task, feedback: Feedback) -> None:
        self.returns.append(self.normalize_return(feedback.episode_return))
        if len(self.returns) < self.every:
            return
        if np.mean(self.returns) >= self.threshold:
            gap = self.target - self.centre
            move = np.clip(gap, -self.step * self.task_space.span, self.step * self.task_space.span)
            self.centre = self.centre + move
        self.returns = []

    def stats(self) -> dict[str, float]:
        gap = (self.target - self.centre) / self.task_space.span
        return {"distance_to_target": float(np.linalg.norm(gap))}
