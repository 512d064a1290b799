"""Evaluation of a student on an environment's test set: deterministic actions, a separate env, no teacher."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch as th
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.type_aliases import TrainFreq

from environments.base import batch_stepper
from environments.registry import make_env
from students.loop.algorithms import discount_factor
from students.loop.callbacks import PeriodicCallback
from students.loop.vec_env import stack_observations
from students.policies import Actor


@dataclass(frozen=True)
class TaskResult:
    task: tuple[float, ...]
    episode_return: float
    success: bool
    #: the return discounted at the evaluation's ``gamma`` (the return itself at ``gamma = 1``)
    discounted_return: float = math.nan


@dataclass(frozen=True)
class Evaluation:
    results: list[TaskResult]

    @property
    def mastered_pct(self) -> float:
        """% of test tasks whose episode succeeded."""
        return 100.0 * float(np.mean([r.success for r in self.results])) if self.results else 0.0

    @property
    def mean_return(self) -> float:
        return float(np.mean([r.episode_return for r in self.results])) if self.results else 0.0

    @property
    def mean_discounted_return(self) -> float:
        return float(np.mean([r.discounted_return for r in self.results])) if self.results else 0.0


def evaluate(
    predict: Any,
    env_name: str,
    tasks: np.ndarray,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    episodes_per_task: int = 1,
    gamma: float = 1.0,
) -> Evaluation:
    """Play every task (``episodes_per_task`` times, level seeds ``seed + k``) with ``predict(obs) -> action``;
    each result also holds its return discounted at ``gamma``.

    An environment whose test levels are fixed (``fixed_test_levels``: the maze's held-out mazes) plays level seeds
    ``k`` whatever ``seed``, so that every run meets the same levels.

    :param predict: the policy, e.g. ``lambda obs: model.predict(obs, deterministic=True)[0]``, or an
        :class:`~students.policies.Actor` (reset at each episode's start: a recurrent student's memory)
    """
    tasks = np.asarray(tasks, dtype=np.float64)
    envs = [make_env(env_name, **dict(env_kwargs or {}))]
    seed = 0 if envs[0].unwrapped.fixed_test_levels else seed
    plays = [(task, seed + k) for task in tasks for k in range(episodes_per_task)]
    try:
        stepper = batch_stepper(envs[0])
        if stepper is not None:  # all episodes at once, the same transitions
            envs += [make_env(env_name, **dict(env_kwargs or {})) for _ in plays[1:]]
            return Evaluation(_play_batch(predict, envs, plays, gamma, stepper))
        env, results = envs[0], []
        for task, level_seed in plays:
            env.set_task(task, level_seed=level_seed)
            total, discounted, success = _play_episode(env, predict, level_seed, gamma)
            results.append(TaskResult(tuple(float(v) for v in task), total, success, discounted))
        return Evaluation(results)
    finally:
        for env in envs:
            env.close()


def _play_episode(env: Any, predict: Any, seed: int, gamma: float = 1.0) -> tuple[float, float, bool]:
    """One episode of what the env has pending, reset with ``seed``: its return, its return discounted at
    ``gamma``, and whether it succeeded."""
    obs, info = env.reset(seed=seed)
    if isinstance(predict, Actor):
        predict.reset()
    total, discounted, discount, done = 0.0, 0.0, 1.0, False
    while not done:
        obs, reward, terminated, truncated, info = env.step(predict(obs))
        total += float(reward)
        discounted += discount * float(reward)
        discount *= gamma
        done = terminated or truncated
    return total, discounted, bool(env.is_success(total, info))


@dataclass(frozen=True)
class LevelsResult:
    """One named group of levels (a named maze) played ``episodes`` times per level."""

    solved_rate: float  # the share of episodes that succeeded
    mean_return: float
    episodes: int


def evaluate_levels(
    predict: Any,
    env_name: str,
    groups: dict[str, tuple[tuple[Any, ...], dict[str, Any]]],
    episodes: int,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
) -> dict[str, LevelsResult]:
    """Play every level of every group itself (``set_level``; an env with structured levels) ``episodes`` times,
    in an env made with the run's ``env_kwargs`` and the group's own (its size, its step limit); episode ``k`` of a
    level resets with seed ``seed + k``. ``predict`` may draw (a stochastic policy): its draws come from torch's
    generators (CPU and CUDA) seeded with ``seed`` inside :func:`torch.random.fork_rng`, so a rerun gives the same
    figures and the caller's generators are left as they were.

    :param groups: ``{name: (levels, env keywords)}``, e.g. ``MazeEnv.named_levels()``
    """
    results = {}
    with th.random.fork_rng(devices=list(range(th.cuda.device_count()))):  # a student on CUDA draws there
        th.manual_seed(seed)
        for name, (levels, kwargs) in groups.items():
            env = make_env(env_name, **{**dict(env_kwargs or {}), **kwargs})
            returns, solved = [], 0
            try:
                for level in levels:
                    for k in range(episodes):
                        env.unwrapped.set_level(level)
                        total, _, success = _play_episode(env, predict, seed + k)
                        returns.append(total)
                        solved += success
            finally:
                env.close()
            results[name] = LevelsResult(solved / len(returns), float(np.mean(returns)), len(returns))
    return results


def _play_batch(
    predict: Any, envs: list[Any], plays: list[tuple[np.ndarray, int]], gamma: float, step_batch: Callable[..., Any]
) -> list[TaskResult]:
    """One episode per env, stepped together by the env class's ``step_batch`` (the policy sees a batch)."""
    observations = []
    for env, (task, level_seed) in zip(envs, plays, strict=True):
        env.set_task(task, level_seed=level_seed)
        observations.append(env.reset(seed=level_seed)[0])
    obs = stack_observations(observations)
    if isinstance(predict, Actor):
        predict.reset(len(envs))
    totals, success = np.zeros(len(envs)), np.zeros(len(envs), dtype=bool)
    discounted, discount = np.zeros(len(envs)), 1.0  # every active episode is at the same step
    active = np.arange(len(envs))
    while len(active):
        actions = np.asarray(predict(obs))
        obs, rewards, terminated, truncated, infos = step_batch([envs[i] for i in active], actions)
        totals[active] += rewards
        discounted[active] += discount * np.asarray(rewards, dtype=np.float64)
        discount *= gamma
        done = terminated | truncated
        for j in np.flatnonzero(done):
            i = active[j]
            success[i] = envs[i].is_success(float(totals[i]), infos[j])
        keep = ~done
        active = active[keep]
        if isinstance(predict, Actor):
            predict.keep(keep)
        obs = {k: v[keep] for k, v in obs.items()} if isinstance(obs, dict) else obs[keep]
    return [
        TaskResult(tuple(float(v) for v in task), float(totals[i]), bool(success[i]), float(discounted[i]))
        for i, (task, _) in enumerate(plays)
    ]


@dataclass(frozen=True)
class TargetProtocol:
    """SPDL's evaluation (psclklnk/spdl, ``point_mass_experiment.evaluate_learner`` and ``BaseWrapper``), made
    beside the test set at every evaluation: ``episodes`` episodes on tasks drawn afresh from the environment's
    ``target_distribution`` (independent normals per dimension, clipped to the bounds, as psclklnk's
    ``GaussianSampler``), played with the policy's stochastic actions (``deterministic=False``, as psclklnk), and
    scored by their mean return discounted at the student's gamma (0.95 in the paper) and by the share that
    succeeded (ours; the paper shows the discounted return).

    The draws of an evaluation come from ``seed`` and its step alone (tasks, action noise in a forked torch
    generator, level seeds), so that they neither depend on nor move the training's streams, and a resumed run
    draws the same ones.

    :param csv_path: where one row per evaluation is appended (``eval_target.csv``)
    """

    episodes: int
    mean: np.ndarray
    std: np.ndarray
    low: np.ndarray
    high: np.ndarray
    seed: int
    csv_path: Path

    def draws(self, timesteps: int) -> tuple[np.ndarray, int]:
        """The tasks of the evaluation at ``timesteps`` and the seed of its episodes and action noise."""
        tasks_seed, play_seed = np.random.SeedSequence([self.seed, timesteps]).generate_state(2)
        normal = np.random.default_rng(int(tasks_seed)).normal(self.mean, self.std, (self.episodes, len(self.mean)))
        return np.clip(normal, self.low, self.high), int(play_seed)


class EvalCallback(PeriodicCallback):
    """Every ``eval_every`` steps of the step counter, evaluate on the test set; log ``eval/*`` and append per-task
    rows to a CSV.

    An evaluation is of the policy acting at its step: the one collecting the rollout in progress. One exception
    keeps the last result honest: an evaluation due at the very last step of ``learn()`` (the end of its last
    rollout, e.g. a budget that is a multiple of both the rollout and ``eval_every``) waits for the update that
    follows, and is made at the end of ``learn()``, at the same step, of the final model. TensorBoard's ``eval/*``
    points are written at once, at the evaluation's step (not at SB3's next log dump), so ``eval.csv``,
    TensorBoard and ``metrics.json`` tell of the same evaluations at the same steps.

    :param env_name: environment to evaluate on (a fresh instance, not the training env)
    :param tasks: the test set
    :param eval_every: steps between evaluations
    :param csv_path: where per-task rows (timesteps, task index, task values, return, success) are appended
    :param seed: base seed of the evaluation episodes (the run's evaluation stream)
    :param clock: the step counter of the schedule (see :class:`~students.loop.callbacks.PeriodicCallback`)
    :param trained: the student's trained steps so far, for ``eval.csv`` (default: every step)
    :param target: SPDL's target-distribution protocol, also run at every evaluation (default: none)
    """

    def __init__(
        self,
        env_name: str,
        tasks: np.ndarray,
        eval_every: int,
        csv_path: Path,
        env_kwargs: dict[str, Any] | None = None,
        seed: int = 0,
        clock: Callable[[], int] | None = None,
        trained: Callable[[], int] | None = None,
        target: TargetProtocol | None = None,
    ) -> None:
        super().__init__(eval_every, clock)
        self.deferred = False  # an evaluation due at learn()'s last step, made after its last update
        self.env_name, self.tasks = env_name, tasks
        self.csv_path, self.env_kwargs, self.seed = csv_path, dict(env_kwargs or {}), seed
        self.last: Evaluation | None = None
        self.last_step: int | None = None  # the step counter at the last evaluation
        self.trained = trained  # the student's trained steps so far (default: every step)
        self.target = target
        self.last_target: Evaluation | None = None
        #: every learner's environment steps so far (a run on an all-steps budget): an ``all_steps`` column
        self.all_steps: Callable[[], int] | None = None  # the target protocol's episodes at the last evaluation

    def _on_period(self) -> None:
        if self._last_step_of_learning():
            self.deferred = True
        else:
            self.run_evaluation()

    def _on_training_end(self) -> None:
        if self.deferred:  # after learn()'s last update: the final model
            self.deferred = False
            self.run_evaluation()

    def _last_step_of_learning(self) -> bool:
        """Whether this step ends learn()'s last rollout (an update of the policy follows it)."""
        model = self.model
        if model.num_timesteps < model._total_timesteps:
            return False
        if "n_rollout_steps" in self.locals:  # on-policy: the rollout's last step
            return self.locals["n_steps"] == self.locals["n_rollout_steps"] - 1
        if not isinstance(model, OffPolicyAlgorithm):
            return False
        # off-policy, collecting train_freq steps per rollout (SB3 makes it a TrainFreq in _setup_model)
        train_freq = cast(TrainFreq, model.train_freq)
        return self.locals.get("num_collected_steps", 0) >= train_freq.frequency

    def evaluation_at(self, timesteps: int) -> Evaluation | None:
        """The last evaluation if it was made at exactly ``timesteps`` steps, else ``None``."""
        return self.last if self.last_step == timesteps else None

    def state_dict(self) -> dict[str, Any]:
        return {"last": self.last, "last_step": self.last_step, "deferred": self.deferred, "last_target": self.last_target}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.last, self.last_step, self.deferred = state["last"], state["last_step"], state.get("deferred", False)
        self.last_target = state.get("last_target")

    def run_evaluation(self) -> Evaluation:
        """Evaluate the model now (at ``model.num_timesteps``), log it and append its rows to the CSV."""
        timesteps = int(self.model.num_timesteps)
        evaluation = evaluate(Actor(self.model), self.env_name, self.tasks, self.seed, self.env_kwargs)
        self.last, self.last_step = evaluation, timesteps
        scalars = {"eval/mastered_pct": evaluation.mastered_pct, "eval/mean_return": evaluation.mean_return}
        trained = self.trained() if self.trained else timesteps
        extra = [self.all_steps()] if self.all_steps else []
        if self.target is not None:
            self.last_target = self._run_target(timesteps, trained, extra)
            scalars["eval/target_discounted_return"] = self.last_target.mean_discounted_return
            scalars["eval/target_success_pct"] = self.last_target.mastered_pct
        for output in self.logger.output_formats:  # at this step, not at SB3's next dump
            output.write(scalars, {key: () for key in scalars}, timesteps)
        append_eval_rows(self.csv_path, timesteps, evaluation, trained, *extra)
        return evaluation

    def _run_target(self, timesteps: int, trained: int, extra: list[int]) -> Evaluation:
        """The target protocol's episodes at this step (see :class:`TargetProtocol`), appended to its CSV."""
        protocol, device = self.target, self.model.device
        assert protocol is not None
        tasks, seed = protocol.draws(timesteps)
        with th.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
            th.manual_seed(seed)  # the actions' noise, without touching the training's generator
            result = evaluate(
                Actor(self.model, deterministic=False),
                self.env_name,
                tasks,
                seed,
                self.env_kwargs,
                gamma=discount_factor(self.model),
            )
        header = ["timesteps", "episodes", "discounted_return", "return", "success_pct", "trained_steps"]
        header += ["all_steps"] if extra else []
        row = [timesteps, len(result.results), f"{result.mean_discounted_return:.4f}", f"{result.mean_return:.4f}"]
        _append_rows(protocol.csv_path, header, [[*row, f"{result.mastered_pct:.2f}", trained, *extra]])
        return result


def append_eval_rows(
    path: Path, timesteps: int, evaluation: Evaluation, trained_steps: int, all_steps: int | None = None
) -> None:
    """Append an evaluation's per-task rows (the student's environment steps, task index, task values, return,
    success, steps the student trained on, and every learner's environment steps when given) to ``eval.csv``."""
    extra = [] if all_steps is None else [all_steps]
    rows = [
        [timesteps, i, " ".join(f"{v:g}" for v in r.task), f"{r.episode_return:.4f}", int(r.success), trained_steps, *extra]
        for i, r in enumerate(evaluation.results)
    ]
    header = ["timesteps", "task_index", "task", "return", "success", "trained_steps", *(["all_steps"] if extra else [])]
    _append_rows(path, header, rows)


def _append_rows(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    """Append rows to a CSV file, writing ``header`` first when the file is new."""
    new_file = not path.exists()
    with path.open("a", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")  # one line ending, before and after a resume
        if new_file:
            writer.writerow(header)
        writer.writerows(rows)
