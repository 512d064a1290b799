"""One training run: a teacher drives an SB3 student's tasks; evaluation, TensorBoard, checkpoints, resume.

Run folder (``out``, by default ``results/<experiment>/<env>/<teacher>/<student>/seed<k>/``)::

    config.yaml        resolved settings (hyperparameters included); a resume must match them
    tb/                TensorBoard events (SB3's scalars, eval/*, curriculum/*)
    eval.csv           per-task evaluation rows, appended (kept across resumes)
    checkpoint/        model.zip, teacher.pkl, rng.pkl, progress.json (and replay_buffer.pkl when asked), swapped in
                       whole at every save so that a crash never leaves a half-written checkpoint
    model.zip, teacher.pkl, metrics.json   at the end
"""

from __future__ import annotations

import json
import pickle
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
import yaml
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.utils import set_random_seed

from curriculum.registry import make_teacher
from environments.registry import env_entry, make_env
from curriculum.base import Teacher
from students.algorithms import algorithm_class, masked_algorithm_class, resolve_hyperparams
from students.curriculum import STUDENT_SCORES, CurriculumCallback
from students.evaluation import EvalCallback
from students.vec_env import make_vec_env


class RunError(ValueError):
    """A run that cannot start as asked (bad resume, mismatched settings...)."""


@dataclass
class RunConfig:
    """Everything that defines a run (saved as ``config.yaml``)."""

    env: str
    teacher: str
    student: str
    steps: int
    seed: int = 0
    n_envs: int = 4
    subproc: bool = False
    device: str = "auto"
    teacher_params: dict[str, Any] = field(default_factory=dict)
    hp_overrides: dict[str, str] = field(default_factory=dict)
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    eval_every: int = 10000
    test_set: str = "default"
    checkpoint_every: int = 50000
    save_replay_buffer: bool = False
    hyperparams: dict[str, Any] = field(default_factory=dict)  # resolved at start

    def resolve(self) -> RunConfig:
        """Validate names and parameters (raising clear errors) and resolve hyperparameters."""
        entry = env_entry(self.env)
        if not entry.trainable:
            raise RunError(f"environment '{self.env}' cannot train an RL student (it is a teacher benchmark)")
        algorithm_class(self.student)
        self.hyperparams = resolve_hyperparams(self.student, self.env, self.hp_overrides)
        if self.steps < 1 or self.n_envs < 1:
            raise RunError("steps and n_envs must be >= 1")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise RunError(f"unknown device '{self.device}'; valid: auto, cpu, cuda")
        if self.device.startswith("cuda") and not th.cuda.is_available():
            raise RunError(f"--device {self.device}: CUDA is not available on this machine; use --device auto or cpu")
        return self


class _ProgressCallback(BaseCallback):
    def __init__(
        self,
        report: Callable[[int, int, float | None], None],
        curriculum: CurriculumCallback,
        evaluator: EvalCallback,
        every: int = 1000,
    ) -> None:
        super().__init__()
        self.report, self.every, self._next = report, every, every
        self.curriculum, self.evaluator = curriculum, evaluator

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next:
            self._next += self.every
            self._emit()
        return True

    def _emit(self) -> None:
        last = self.evaluator.last
        self.report(self.num_timesteps, self.curriculum.episodes_finished, last.mastered_pct if last else None)


class _CheckpointCallback(BaseCallback):
    def __init__(self, save: Callable[[], None], every: int) -> None:
        super().__init__()
        self.save, self.every, self._next = save, every, every

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next:
            self._next += self.every
            self.save()
        return True


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    tmp.replace(path)  # atomic: a crash never leaves half a file


def settings_diff(config_path: Path, config: RunConfig, keys: tuple[str, ...]) -> str | None:
    """Where a saved ``config.yaml`` differs from ``config`` in ``keys``, e.g. ``"steps (e.g. steps: saved 64,
    asked 96)"``; ``None`` when it does not."""
    saved, mine = yaml.safe_load(config_path.read_text()), asdict(config)
    diff = [k for k in keys if saved.get(k) != mine[k]]
    if not diff:
        return None
    return f"{', '.join(diff)} (e.g. {diff[0]}: saved {saved.get(diff[0])!r}, asked {mine[diff[0]]!r})"


def check_run_dir(config: RunConfig, out: Path, resume: bool) -> None:
    """Refuse, before anything is written, to resume a folder without a run (or with other settings), or to start
    a new run over an existing one."""
    checkpoint, config_path = out / "checkpoint", out / "config.yaml"
    if resume and not checkpoint.exists() and (out / "checkpoint.old").exists():
        (out / "checkpoint.old").rename(checkpoint)  # killed between the two renames of a checkpoint swap
    if resume:
        if not (config_path.exists() and (checkpoint / "progress.json").exists()):
            raise RunError(f"--resume: '{out}' holds no run with a checkpoint to resume")
        keys = ("env", "teacher", "student", "seed", "n_envs", "teacher_params", "hp_overrides", "env_kwargs")
        diff = settings_diff(config_path, config, keys)
        if diff:
            raise RunError(f"--resume: settings differ from the saved run in {diff}")
    elif config_path.exists():
        raise RunError(f"'{out}' already holds a run; use --resume to continue it or another --out")


def student_class_for(teacher: Teacher, student: str) -> type[BaseAlgorithm]:
    """The student class a teacher needs: one that can mask updates for Robust PLR/ACCEL, else the plain one.

    :raises RunError: the teacher needs scores the students do not provide, or masking the student lacks
    """
    missing = [s for s in teacher.required_scores if s not in STUDENT_SCORES]
    if missing:
        raise RunError(
            f"teacher {type(teacher).__name__} needs the score(s) {', '.join(missing)}, which SB3 students do not "
            f"provide; they provide {', '.join(STUDENT_SCORES)}"
        )
    if not teacher.masks_updates:
        return algorithm_class(student)
    try:
        return masked_algorithm_class(student)
    except ValueError as exc:
        raise RunError(f"teacher {type(teacher).__name__} trains only on some episodes: {exc}") from exc


def train(
    config: RunConfig,
    out: Path,
    resume: bool = False,
    progress: Callable[[int, int, float | None], None] | None = None,
) -> dict[str, Any]:
    """Train (or resume) a run into ``out``; return its metrics (also written to ``metrics.json``).

    :raises RunError: resuming a folder without a run, or with other settings; starting over a finished run
    """
    config.resolve()
    out = Path(out)
    check_run_dir(config, out, resume)
    checkpoint = out / "checkpoint"
    config_path = out / "config.yaml"
    set_random_seed(config.seed)
    env_for_tasks = make_env(config.env, **config.env_kwargs)
    task_space, return_bounds = env_for_tasks.task_space, env_for_tasks.return_bounds
    test_tasks = env_for_tasks.test_set(config.test_set)
    easy_space = env_for_tasks.easy_task_space
    env_for_tasks.close()
    teacher = make_teacher(config.teacher, task_space, seed=config.seed, return_bounds=return_bounds, **config.teacher_params)
    if hasattr(teacher, "set_start_space"):  # ACCEL: new levels from the env's easy region
        teacher.set_start_space(easy_space)
    algo = student_class_for(teacher, config.student)
    vec_env = make_vec_env(config.env, config.n_envs, config.seed, config.subproc, config.env_kwargs)
    out.mkdir(parents=True, exist_ok=True)
    if resume:
        model = algo.load(checkpoint / "model.zip", env=vec_env, device=config.device)
        with (checkpoint / "rng.pkl").open("rb") as handle:
            rng_states = pickle.load(handle)
        np.random.set_state(rng_states["numpy"])
        th.set_rng_state(rng_states["torch"])
        with (checkpoint / "teacher.pkl").open("rb") as handle:
            teacher.load_state_dict(pickle.load(handle))
        if (checkpoint / "replay_buffer.pkl").exists() and hasattr(model, "load_replay_buffer"):
            model.load_replay_buffer(checkpoint / "replay_buffer.pkl")
    else:
        config_path.write_text(yaml.safe_dump(asdict(config), sort_keys=False))
        hp = dict(config.hyperparams)
        policy = hp.pop("policy", "MlpPolicy")
        model = algo(policy, vec_env, seed=config.seed, device=config.device, tensorboard_log=str(out / "tb"), verbose=0, **hp)

    curriculum = CurriculumCallback(teacher)
    evaluator = EvalCallback(config.env, test_tasks, config.eval_every, out / "eval.csv", config.env_kwargs, seed=config.seed)

    def save_checkpoint() -> None:
        # Written whole into a side folder, then swapped in: a crash (even kill -9) leaves either the previous
        # checkpoint or the new one, never a mix.
        staging, previous = out / "checkpoint.next", out / "checkpoint.old"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        model.save(staging / "model.zip")
        with (staging / "teacher.pkl").open("wb") as handle:
            pickle.dump(teacher.state_dict(), handle)
        with (staging / "rng.pkl").open("wb") as handle:
            pickle.dump({"numpy": np.random.get_state(), "torch": th.get_rng_state()}, handle)
        if config.save_replay_buffer and hasattr(model, "save_replay_buffer"):
            model.save_replay_buffer(staging / "replay_buffer.pkl")
        _write_json(staging / "progress.json", {"timesteps": model.num_timesteps, "episodes": curriculum.stats.episodes})
        if checkpoint.exists():
            checkpoint.rename(previous)
        staging.rename(checkpoint)
        shutil.rmtree(previous, ignore_errors=True)

    callbacks: list[BaseCallback] = [curriculum, evaluator, _CheckpointCallback(save_checkpoint, config.checkpoint_every)]
    if progress is not None:
        callbacks.append(_ProgressCallback(progress, curriculum, evaluator))
    remaining = config.steps - model.num_timesteps
    curriculum.prime(vec_env)
    interrupted = False
    try:
        # called even with nothing left (a resume of a run killed after its last checkpoint): learn() sets up the logger
        model.learn(max(remaining, 0), callback=CallbackList(callbacks), reset_num_timesteps=not resume, tb_log_name="run")
    except KeyboardInterrupt:
        interrupted = True
    finally:
        save_checkpoint()
        vec_env.close()
    if interrupted:
        raise KeyboardInterrupt
    final = evaluator.last if evaluator.last is not None and evaluator.num_timesteps == model.num_timesteps else None
    if final is None:
        evaluator.num_timesteps = model.num_timesteps
        final = evaluator.run_evaluation()
    model.save(out / "model.zip")
    with (out / "teacher.pkl").open("wb") as handle:
        pickle.dump(teacher.state_dict(), handle)
    metrics = {
        "timesteps": int(model.num_timesteps),
        "episodes_reported": curriculum.stats.episodes,
        "final_eval": {"mastered_pct": final.mastered_pct, "mean_return": final.mean_return, "tasks": len(final.results)},
        "teacher_updates": teacher.n_updates,
        "teacher_stats": teacher.stats(),
    }
    _write_json(out / "metrics.json", metrics)
    return metrics


def load_run(run_dir: Path) -> tuple[RunConfig, BaseAlgorithm]:
    """The config and final (or last checkpointed) model of a run folder."""
    run_dir = Path(run_dir)
    config_path = run_dir / "config.yaml"
    if not config_path.exists():
        raise RunError(f"'{run_dir}' holds no run (no config.yaml)")
    config = RunConfig(**yaml.safe_load(config_path.read_text()))
    model_path = run_dir / "model.zip"
    if not model_path.exists():
        model_path = run_dir / "checkpoint" / "model.zip"
    if not model_path.exists():
        raise RunError(f"'{run_dir}' has no saved model yet")
    return config, algorithm_class(config.student).load(model_path, device="cpu")


def run_subpath(config: RunConfig) -> Path:
    """``<env>/<teacher>/<student>/seed<k>`` (``module:Class`` paths made folder-safe)."""
    env, teacher = (name.replace(":", "_").replace("/", "_") for name in (config.env, config.teacher))
    return Path(env) / teacher / config.student / f"seed{config.seed}"


def default_run_dir(config: RunConfig, experiment: str = "default", root: Path = Path("results")) -> Path:
    return root / experiment / run_subpath(config)
