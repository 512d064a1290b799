"""One training run: a teacher drives an SB3 student's tasks; evaluation, TensorBoard, checkpoints, resume.

The run folder's files and what each holds: :mod:`students.run.layout`. A checkpoint is saved after the first
rollout, then every ``checkpoint_every`` steps, always between two rollouts (nothing half-collected), on
Ctrl-C/SIGTERM and at the end.
"""

from __future__ import annotations

import copy
import io
import json
import math
import pickle
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
import yaml
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.utils import set_random_seed
from stable_baselines3.common.vec_env import VecEnv

from curriculum.base import STUDENT_SCORES, Teacher, TeacherStopped
from curriculum.registry import teacher_for
from curriculum.seeding import Streams
from environments.base import ParametricEnv, check_contract
from environments.registry import env_entry, make_env
from students.loop.algorithms import (
    ON_POLICY,
    STUDENTS,
    StudentConfigError,
    discount_factor,
    algorithm_class,
    check_hyperparams,
    model_arguments,
    default_n_envs,
    masked_algorithm_class,
    resolve_hyperparams,
    restart_episodes,
)
from students.loop.curriculum import CurriculumCallback, cycle_problem
from students.loop.paired import Antagonist, global_streams, set_global_streams
from students.loop.curriculum_log import CurriculumStats
from students.loop.auxiliary import auxiliary_kwargs
from students.loop.callbacks import PeriodicCallback
from students.loop.evaluation import EvalCallback, Evaluation, LevelsResult, TargetProtocol, evaluate, evaluate_levels
from students.loop.kickstart import (
    Expert,
    ExpertSpec,
    KickstartCallback,
    KickstartError,
    Region,
    Schedule,
    StudentView,
    load_experts,
    region_level,
)
from students.run import checkpoints
from students.config import range_error, setting
from students.run.lock import FolderLock
from students.run.wandb_log import wandb_problem, wandb_run
from students.loop.vec_env import make_vec_env
from students.run import layout
from students.policies import Actor


class RunError(ValueError):
    """A run that cannot start as asked (bad resume, mismatched settings...)."""


#: what a run's step budget counts: every environment step of the student; the steps the student learns from (a
#: teacher's scoring-only episodes, ``Level.train=False``, are played but not trained on); or every environment step
#: of every learner (a regret teacher's antagonist's and adversary's too: PAIRED's three learners; for a teacher
#: without them, the student's environment steps)
BUDGETS = ("env-steps", "trained-steps", "all-steps")
#: with a trained-steps budget, a run stops anyway after this many times its budget in environment steps
TRAINED_BUDGET_CAP = 20
TARGET_EPISODES_HELP = (
    "Also play this many episodes on tasks drawn from the env's target distribution at every evaluation (SPDL's "
    "protocol: stochastic actions, discounted return; eval_target.csv); 0: none."
)
NAMED_EPISODES_HELP = (
    "At the end, play each of the env's named test levels this many times, zero-shot with sampled actions (the maze: "
    "dcd's named mazes; metrics.json's named_eval); 0: none."
)


def settings_error(settings: Any) -> str | None:
    """What is wrong with the counts and device of a run or comparison (``steps``, ``n_envs``, ``eval_every``,
    ``checkpoint_every``, ``device`` attributes), or ``None``; shared by :class:`RunConfig` and compare's config."""
    problem = range_error(settings, {"steps": 1, "n_envs": 0, "eval_every": 1, "checkpoint_every": 1})
    if problem:
        return problem
    if getattr(settings, "budget", BUDGETS[0]) not in BUDGETS:
        return f"unknown budget {settings.budget!r}; valid: {', '.join(BUDGETS)}"
    device = settings.device
    if not isinstance(device, str) or (device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:")):
        return f"unknown device {device!r}; valid: auto, cpu, cuda"
    return None


@dataclass
class RunConfig:
    """Everything that defines a run (saved as ``config.yaml``)."""

    env: str = setting(help="Environment name or module:Factory path (see list envs).", optional=True)
    teacher: str = setting(help="Teacher name or module:Class path (see list teachers).", optional=True)
    student: str = setting("ppo", "Algorithm: ppo, a2c, trpo, sac, td3, tqc (trpo, tqc: sb3-contrib), or a variant's name.")
    steps: int = setting(200_000, "Steps, in the budget's unit.")
    budget: str = setting(
        "env-steps",
        "What --steps, --eval-every and --checkpoint-every count: env-steps (the student's), trained-steps (those it "
        "learned from) or all-steps (every learner's: PAIRED's antagonist and adversary too).",
    )
    seed: int = setting(0, "The run's seed (every stream).")
    n_envs: int = setting(
        0, "Parallel sub-environments (0: the student's default for the env, see students/loop/hyperparams)."
    )
    subproc: bool = setting(False, "Sub-environments in subprocesses (or in this one).")
    batched: bool = setting(True, "Step the sub-environments in one batched call when the env can (same results).")
    device: str = setting("auto", "auto (CUDA when present), cpu or cuda.")
    teacher_params: dict[str, Any] = field(default_factory=dict)
    hp_overrides: dict[str, str] = field(default_factory=dict)
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    eval_every: int = setting(10_000, "Steps between test-set evaluations.")
    test_set: str = setting("default", "Test set to evaluate on.")
    target_episodes: int = setting(0, TARGET_EPISODES_HELP)
    named_episodes: int = setting(0, NAMED_EPISODES_HELP)
    checkpoint_every: int = setting(50_000, "Steps between checkpoints.")
    save_replay_buffer: bool = setting(True, "Checkpoint the replay buffer (off-policy; else a resume starts empty).")
    algo: str = ""  # the SB3 algorithm when ``student`` names a variant (compare's ``ppo-kick: {algo: ppo, ...}``)
    kickstart: list[str] = setting(
        help="Expert to kickstart from: a run folder or model.zip, optionally @REGION (runs/x@gate_width=0.5:4).",
        factory=list,
        multiple=True,
        type=str,
    )
    kick_coef: list[float] = setting(
        help="Kickstarting coefficient: one, or one per expert [default: 1].",
        factory=lambda: [1.0],
        multiple=True,
        type=float,
    )
    kick_schedule: str = setting("constant", "constant, linear:STEPS, exp:HALF_LIFE or until-expert[:WINDOW].")
    kick_value_coef: float = setting(0.0, "Value-distillation weight (PPO/A2C students).")
    wandb: str = setting("", "Weights & Biases project to log to beside TensorBoard (the wandb extra); empty: none.")
    init_model: str = ""  # a model.zip whose parameters the student starts from (a distilled student's fine-tuning)
    hyperparams: dict[str, Any] = field(default_factory=dict)  # resolved at start

    @property
    def algorithm(self) -> str:
        """The SB3 algorithm's name (``algo``, else ``student``)."""
        return self.algo or self.student

    def expert_specs(self) -> list[ExpertSpec]:
        """The kickstarting experts with their coefficients.

        :raises KickstartError: as many coefficients as neither 1 nor the experts
        """
        coefs = [float(c) for c in (self.kick_coef if isinstance(self.kick_coef, list) else [self.kick_coef])]
        if len(coefs) not in (1, len(self.kickstart)):
            raise KickstartError(f"give one --kick-coef for every expert or one for each of the {len(self.kickstart)}")
        return [ExpertSpec.parse(text, coefs[0] if len(coefs) == 1 else coefs[k]) for k, text in enumerate(self.kickstart)]

    def _experts(self) -> tuple[list[BasePolicy], bool]:
        """The kickstarting experts, loaded on the CPU and checked, and whether they read the environment's
        privileged dict while the student reads its ``student`` part.

        :raises KickstartError: an expert, region, coefficient or schedule that cannot be used
        """
        Schedule.parse(self.kick_schedule)
        if not (math.isfinite(self.kick_value_coef) and self.kick_value_coef >= 0):
            raise KickstartError(f"kick_value_coef must be a number >= 0, got {self.kick_value_coef}")
        env = make_env(self.env, **self.env_kwargs)
        try:
            privileged = make_env(self.env, **{**self.env_kwargs, "observation_mode": "privileged"}).observation_space
        except (TypeError, ValueError):
            privileged = None
        try:
            return load_experts(self.expert_specs(), env.task_space, env.observation_space, env.action_space, privileged)
        finally:
            env.close()

    def resolve(self) -> ResolvedRun:
        """Validate names and parameters (raising clear errors, before anything is written) and resolve them once:
        the settings with their hyperparameters and ``n_envs`` filled in, the teacher, the test set, the student
        class and the loaded experts (:class:`ResolvedRun`). The config itself is left as given.

        :raises RunError: the first problem, in one line (``StudentConfigError`` for the student's settings)
        """
        problem = settings_error(self) or range_error(self, {"seed": 0, "target_episodes": 0, "named_episodes": 0})
        problem = problem or wandb_problem(self.wandb)
        if problem:
            raise RunError(problem)
        entry = env_entry(self.env)
        if not entry.trainable:
            raise RunError(f"environment '{self.env}' cannot train an RL student (it is a teacher benchmark)")
        algorithm_class(self.algorithm)
        hyperparams = resolve_hyperparams(self.algorithm, self.env, self.hp_overrides)
        n_envs = self.n_envs or default_n_envs(self.algorithm, self.env)
        try:
            probe = make_env(self.env, **self.env_kwargs)
        except TypeError as exc:  # an env keyword it does not take
            raise RunError(f"environment '{self.env}' refuses --env-kwarg {self.env_kwargs}: {exc}") from exc
        try:
            check_contract(probe, self.env)
            if self.target_episodes and probe.unwrapped.target_distribution is None:
                raise RunError(f"environment '{self.env}' names no target distribution, which --target-episodes samples")
            if self.named_episodes and not probe.unwrapped.named_levels():
                raise RunError(f"environment '{self.env}' has no named test levels for --named-episodes (the maze has)")
        finally:
            probe.close()
        dict_obs = isinstance(probe.observation_space, gym.spaces.Dict)
        if dict_obs and "policy" not in self.hp_overrides and hyperparams.get("policy") == "MlpPolicy":
            hyperparams["policy"] = "MultiInputPolicy"  # dict observations (observation_mode=privileged)
        try:
            check_hyperparams(self.algorithm, lambda: make_env(self.env, **self.env_kwargs), n_envs, hyperparams)
        except StudentConfigError as exc:
            given = ", ".join(f"{k}={v}" for k, v in self.hp_overrides.items())
            raise StudentConfigError(f"{exc}{f' (overrides: {given})' if given else ''}") from None
        if self.device.startswith("cuda") and not th.cuda.is_available():
            raise RunError(f"--device {self.device}: CUDA is not available on this machine; use --device auto or cpu")
        kick_settings = {"kick_coef": [1.0], "kick_schedule": "constant", "kick_value_coef": 0.0}
        changed = [f"--{key.replace('_', '-')}" for key, default in kick_settings.items() if getattr(self, key) != default]
        if changed and not self.kickstart:
            raise RunError(f"{', '.join(changed)} without --kickstart: give an expert to kickstart from, or leave them out")
        try:
            experts, privileged = self._experts() if self.kickstart else ([], False)
        except KickstartError as exc:
            raise RunError(str(exc)) from exc
        teacher, test_tasks = _build_teacher(self)
        algo = student_class_for(teacher, self.algorithm, kickstart=bool(self.kickstart))
        config = replace(self, hyperparams=hyperparams, n_envs=n_envs)
        return ResolvedRun(config, teacher, test_tasks, algo, experts, privileged)


@dataclass
class ResolvedRun:
    """A run checked and resolved once (:meth:`RunConfig.resolve`), for one :func:`train` call.

    ``config`` is what ``config.yaml`` records (the hyperparameters and ``n_envs`` filled in); the rest is what
    checking it built: the teacher (it learns during the run, so a resolved run trains once), the test set, the
    student class, the experts (on the CPU) and whether they read the privileged dict (the student then reads its
    ``student`` part).
    """

    config: RunConfig
    teacher: Teacher
    test_tasks: np.ndarray
    algo: type[BaseAlgorithm]
    experts: list[BasePolicy] = field(default_factory=list)
    reads_privileged: bool = False
    trained: bool = False  # set by train(): the teacher has learned since


class _ProgressCallback(PeriodicCallback):
    def __init__(
        self,
        report: Callable[[int, int, float | None], None],
        curriculum: CurriculumCallback,
        evaluator: EvalCallback,
        every: int = 1000,
        clock: Callable[[], int] | None = None,
    ) -> None:
        super().__init__(every, clock)
        self.report, self.curriculum, self.evaluator = report, curriculum, evaluator

    def _on_training_start(self) -> None:
        super()._on_training_start()
        self._on_period()

    def _on_period(self) -> None:
        last = self.evaluator.last
        self.report(self.steps, self.curriculum.episodes_finished, last.mastered_pct if last else None)


class _CheckpointCallback(PeriodicCallback):
    """Saves a checkpoint at the first rollout start at or past each multiple of ``every`` steps, and at the first
    rollout start of a run that has none yet (so little is lost when a run dies early).

    Checkpoints are taken between rollouts, where nothing is half-collected, so a resume continues exactly. A stop
    request (Ctrl-C, SIGTERM) is served at the same point: checkpoint, then end training.
    """

    def __init__(
        self,
        save: Callable[[], None],
        every: int,
        has_checkpoint: bool,
        stop: checkpoints.StopRequest,
        clock: Callable[[], int] | None = None,
    ) -> None:
        super().__init__(every, clock)
        self.save, self.has_checkpoint, self.stop = save, has_checkpoint, stop
        self._due = False
        self.stopped = False

    def _on_period(self) -> None:
        self._due = True

    def _on_rollout_start(self) -> None:
        if self.num_timesteps > 0 and (self._due or not self.has_checkpoint or self.stop.requested):
            self.save()
            self._due, self.has_checkpoint = False, True
            self.stopped = self.stop.requested

    def _on_step(self) -> bool:
        super()._on_step()
        return not self.stopped


class _RolloutCycle(BaseCallback):
    """Starts each rollout of dcd's cycle (:meth:`CurriculumCallback.start_rollout`), after the checkpoint."""

    def __init__(self, curriculum: CurriculumCallback) -> None:
        super().__init__()
        self.curriculum = curriculum

    def _on_rollout_start(self) -> None:
        self.curriculum.start_rollout()

    def _on_step(self) -> bool:
        return True


class _BudgetStop(BaseCallback):
    """Ends training at the first rollout boundary at which ``clock()`` (trained steps) has reached ``steps``."""

    def __init__(self, clock: Callable[[], int], steps: int) -> None:
        super().__init__()
        self.clock, self.steps, self.reached = clock, steps, False

    def _on_rollout_start(self) -> None:
        self.reached = self.clock() >= self.steps

    def _on_step(self) -> bool:
        return not self.reached


def _shares(stats: CurriculumStats) -> dict[str, float]:
    """The shares of the training episodes, and of their steps, played on tasks the env declares unsolvable."""
    return {
        "infeasible_share": stats.infeasible / stats.episodes if stats.episodes else 0.0,
        "infeasible_step_share": stats.infeasible_steps / stats.steps if stats.steps else 0.0,
    }


def _read_config(path: Path) -> dict[str, Any]:
    """A run folder's ``config.yaml`` as a mapping.

    :raises RunError: not YAML, or not a mapping (a damaged file)
    """
    try:
        recorded = yaml.safe_load(path.read_text())
    except yaml.YAMLError:
        recorded = None
    if not isinstance(recorded, dict):
        raise RunError(f"'{path}' is not a run's config.yaml (damaged?); restart the run in another --out")
    return recorded


def settings_diff(config_path: Path, config: RunConfig, keys: tuple[str, ...]) -> str | None:
    """Where a saved ``config.yaml`` differs from ``config`` in ``keys``, e.g. ``"steps (e.g. steps: saved 64,
    asked 96)"``; ``None`` when it does not."""
    defaults = asdict(RunConfig(config.env, config.teacher, config.student, config.steps))
    saved = {**defaults, **_read_config(config_path)}  # a key an older config.yaml lacks: its default
    mine = asdict(config)
    diff = [k for k in keys if saved.get(k) != mine[k]]
    if not diff:
        return None
    return f"{', '.join(diff)} (e.g. {diff[0]}: saved {saved.get(diff[0])!r}, asked {mine[diff[0]]!r})"


#: the settings that make a run what it is: a resume (``run --resume``, a comparison run again) must match them
#: all. ``steps`` is not among them: a larger budget extends a run (a comparison refuses a smaller one).
IDENTITY = (
    "env",
    "teacher",
    "student",
    "algo",
    "seed",
    "budget",
    "n_envs",
    "teacher_params",
    "hp_overrides",
    "env_kwargs",
    "test_set",
    "eval_every",
    "target_episodes",
    "named_episodes",
    "kickstart",
    "kick_coef",
    "kick_schedule",
    "kick_value_coef",
    "init_model",
)


def check_run_dir(config: RunConfig, out: Path, resume: bool) -> str:
    """Refuse, before anything is written, to resume a folder without a run (or with other settings), or to start
    a new run over an existing one.

    :return: ``"new"``, ``"resume"`` (from the checkpoint: ``checkpoint/``, or one a kill mid-save left beside
        it) or ``"restart"`` (a run that died before its first checkpoint: it starts again from step 0)
    :raises RunError: the folder cannot be used as asked
    """
    config_path = out / layout.CONFIG
    if not resume:
        if config_path.exists() and checkpoints.has_progress(out):
            raise RunError(f"'{out}' already holds a run; use --resume to continue it or another --out")
        return "restart" if config_path.exists() else "new"  # a run that died before its first checkpoint: nothing lost
    if not config_path.exists():
        raise RunError(f"--resume: '{out}' holds no run to resume")
    diff = settings_diff(config_path, config, IDENTITY)
    if diff:
        raise RunError(f"--resume: settings differ from the saved run in {diff}")
    if checkpoints.saved_checkpoint(out):  # checkpoint/, or one a kill mid-save left in checkpoint.next/.old
        return "resume"
    problem = checkpoints.resume_problem(out) if (out / layout.CHECKPOINT).exists() else None
    if problem:
        raise RunError(problem)
    return "restart"


def student_class_for(teacher: Teacher, student: str, kickstart: bool = False) -> type[BaseAlgorithm]:
    """The student class a teacher needs: one that can mask updates for Robust PLR/ACCEL, else the plain one.

    :raises RunError: the teacher needs scores the students do not provide, or masking the student lacks; a
        kickstarted student that takes no extra loss term
    """
    missing = [s for s in teacher.required_scores if s not in STUDENT_SCORES]
    if missing:
        raise RunError(
            f"teacher {type(teacher).__name__} needs the score(s) {', '.join(missing)}, which SB3 students do not "
            f"provide; they provide {', '.join(STUDENT_SCORES)}"
        )
    if getattr(teacher, "antagonist", False):
        if student not in ON_POLICY:
            raise RunError(
                f"teacher {type(teacher).__name__} trains an antagonist beside the student in dcd's rollout cycle, "
                f"which needs an on-policy student ({', '.join(ON_POLICY)}), not {student}"
            )
        if kickstart:
            name = type(teacher).__name__
            raise RunError(f"teacher {name} does not take a kickstarted student (its antagonist would not be kickstarted)")
    if getattr(teacher, "cycle", "episode") == "rollout" and student not in ON_POLICY:
        raise RunError(cycle_problem(teacher, student))
    if kickstart and STUDENTS[student].auxiliary is None:
        takers = ", ".join(name for name, entry in STUDENTS.items() if entry.auxiliary)
        why = "its policy step is no gradient step on a loss"
        raise RunError(f"student '{student}' takes no kickstarting term ({why}); valid: {takers}")
    if not teacher.masks_updates:
        return algorithm_class(student)
    if STUDENTS[student].masks == "rollouts" and getattr(teacher, "cycle", "episode") != "rollout":
        raise RunError(
            f"student '{student}' learns from whole sequences and cannot leave some episodes of a rollout out of its "
            f"update, which teacher {type(teacher).__name__} asks with cycle=episode: give it cycle=rollout (dcd's cycle)"
        )
    try:
        return masked_algorithm_class(student)
    except ValueError as exc:
        raise RunError(f"teacher {type(teacher).__name__} trains only on some episodes: {exc}") from exc


def _memory(model: BaseAlgorithm) -> Any:
    """A recurrent student's hidden states for its next step (sb3-contrib's ``_last_lstm_states``, which its
    ``save`` excludes), on the CPU; ``None`` for a student without memory."""
    states = getattr(model, "_last_lstm_states", None)
    return None if states is None else _to_device(states, th.device("cpu"))


def _to_device(states: Any, device: th.device) -> Any:
    """Nested tuples (named or not) of tensors, copied onto ``device``."""
    if isinstance(states, th.Tensor):
        return states.detach().to(device).clone()
    moved = [_to_device(s, device) for s in states]
    return type(states)(*moved) if hasattr(states, "_fields") else type(states)(moved)


def _rng_states(model: BaseAlgorithm) -> dict[str, Any]:
    """The student's random generators: SB3 draws from the global python, numpy and torch ones (CPU and CUDA) and
    from its action space's (SAC/TD3 warm-up actions)."""
    return {**global_streams(), "action_space": copy.deepcopy(model.action_space.np_random.bit_generator.state)}


def _set_rng_states(model: BaseAlgorithm, states: dict[str, Any]) -> None:
    set_global_streams(states)
    model.action_space.np_random.bit_generator.state = states["action_space"]


def train(
    run: RunConfig | ResolvedRun,
    out: Path,
    resume: bool = False,
    progress: Callable[[int, int, float | None], None] | None = None,
    notify: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train (or resume) a run into ``out``; return its metrics (also written to ``metrics.json``).

    Every random stream (teacher, student, evaluation, each sub-environment) is spawned from ``config.seed``
    (:class:`curriculum.seeding.Streams`). A resume continues from the checkpoint exactly where the environment can
    capture its state (``ParametricEnv.get_state``); where it cannot (the Box2D walkers), each sub-environment
    restarts the level it was playing. The final result is an evaluation of the final model.

    While training, the first Ctrl-C (or SIGTERM) stops at the next rollout boundary with a checkpoint and raises
    ``KeyboardInterrupt``; a second Ctrl-C stops at once, with a checkpoint that resumes correctly but not exactly.

    :param run: the run's settings, or the same already resolved (:meth:`RunConfig.resolve`, once per run)
    :param progress: called with (steps, episodes, last mastered %) every 1,000 steps
    :param notify: called with messages a user should see (a restart from zero, a run already finished)
    :raises RunError: resuming a folder without a run, or with other settings; starting over a finished run; a
        resolved run trained before
    :raises FolderInUseError: another process is using ``out``
    """
    resolved = run if isinstance(run, ResolvedRun) else run.resolve()
    if resolved.trained:
        raise RunError("this resolved run has trained already (its teacher learned): resolve its config again")
    config, out = resolved.config, Path(out)
    say = notify or (lambda _message: None)
    mode = check_run_dir(config, out, resume)
    note = _layout_note(config) if mode == "new" else ""
    if note:
        say(note)
    with FolderLock(out):
        if mode == "resume":
            checkpoints.recover(out)  # under the lock: the newest complete checkpoint, the leftovers removed
        if mode == "restart":
            say(f"'{out}' has no checkpoint (the run stopped before its first one): restarting it from step 0")
            checkpoints.remove_outputs(out)
            mode = "new"
        if mode == "resume":
            finished = _finished_metrics(out, config)
            if finished is not None:
                say(f"'{out}' already finished its {finished['timesteps']} steps: nothing to do")
                return finished
            _record_extension(out / layout.CONFIG, config.steps, say)
        resolved.trained = True
        metrics = _train(resolved, out, mode == "resume", progress, say)
    if progress is not None:  # the progress line ends on the result the run reports
        progress(finished_steps(metrics, config.budget), metrics["episodes_reported"], metrics["final_eval"]["mastered_pct"])
    return metrics


#: the metrics.json key of a run's progress in its budget's unit
BUDGET_METRIC = {"env-steps": "timesteps", "trained-steps": "trained_steps", "all-steps": "all_steps"}


def _layout_note(config: RunConfig) -> str:
    """What a run whose first on-policy rollout exceeds its budget will do (``""`` when it does not)."""
    rollout = config.n_envs * int(config.hyperparams.get("n_steps", 0) or 0)
    if config.budget != "env-steps" or rollout <= config.steps:
        return ""
    return (
        f"the first rollout alone is {rollout} steps ({config.n_envs} envs x n_steps {rollout // config.n_envs}), "
        f"more than the budget of {config.steps}: the run will take {rollout} steps (lower --n-envs or --hp n_steps)"
    )


def _record_extension(config_path: Path, steps: int, say: Callable[[str], None]) -> None:
    """A resume asked for more steps than the run's budget: say so and record the new budget in config.yaml."""
    saved = _read_config(config_path)
    if steps > saved["steps"]:
        say(f"extending the run from its budget of {saved['steps']} steps to {steps}")
        tmp = config_path.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump({**saved, "steps": steps}, sort_keys=False))
        tmp.replace(config_path)


def _finished_metrics(out: Path, config: RunConfig) -> dict[str, Any] | None:
    """The metrics of a run that already reached ``config.steps``; a finished run asked to go further keeps its
    final outputs until the new ones replace them."""
    path = out / layout.METRICS
    if not path.exists():
        return None
    metrics = json.loads(path.read_text())
    return metrics if finished_steps(metrics, config.budget) >= config.steps else None


def finished_steps(metrics: dict[str, Any], budget: str) -> int:
    """How far a finished run's ``metrics.json`` went, in its budget's unit."""
    return int(metrics[BUDGET_METRIC[budget]])


def _build_teacher(config: RunConfig) -> tuple[Teacher, np.ndarray]:
    """The run's teacher and test set (raising clear errors before anything is written)."""
    env = make_env(config.env, **config.env_kwargs)
    try:
        test_tasks = env.test_set(config.test_set)
        teacher = teacher_for(config.teacher, env, Streams(config.seed).teacher, **config.teacher_params)
    finally:
        env.close()
    return teacher, test_tasks


@dataclass
class _Session:
    """What the phases of one training session of a run folder share (:func:`_train`)."""

    config: RunConfig
    out: Path
    streams: Streams
    teacher: Teacher
    vec_env: VecEnv
    curriculum: CurriculumCallback
    evaluator: EvalCallback
    clock: Callable[[], int] | None  # the trained-steps or all-steps budget's clock; None: SB3's step counter
    model: BaseAlgorithm | None = None
    kick: KickstartCallback | None = None
    exact: bool = True  # every resume so far continued exactly
    antagonist_env: VecEnv | None = None  # PAIRED's antagonist's sub-environments
    antagonist: Antagonist | None = None

    @property
    def student(self) -> BaseAlgorithm:
        assert self.model is not None, "the student is built by _start or _resume"
        return self.model

    def all_steps(self) -> int:
        """Every environment step of the run's learners so far: the student's, and a regret teacher's antagonist's
        and adversary's (its construction steps)."""
        steps = int(self.student.num_timesteps)
        if self.antagonist is not None:
            steps += int(self.antagonist.model.num_timesteps) + int(self.teacher.adversary_steps)  # type: ignore[attr-defined]
        return steps

    def save_checkpoint(self, exact: bool = True) -> None:
        """Written whole into a side folder, then swapped in: a crash (even kill -9) leaves either the previous
        checkpoint or the new one, never a mix (:mod:`students.run.checkpoints`)."""
        model, staging = self.student, checkpoints.stage(self.out)
        model.save(staging / layout.MODEL)
        if self.config.save_replay_buffer and isinstance(model, OffPolicyAlgorithm):
            model.save_replay_buffer(staging / layout.REPLAY_BUFFER)
        state = {
            "teacher": self.teacher.state_dict(),
            "curriculum": self.curriculum.state_dict(),
            "evaluator": self.evaluator.state_dict(),
            "envs": self.vec_env.env_method("snapshot"),
            "rng": _rng_states(model),
            "memory": _memory(model),
            "kickstart": None if self.kick is None else self.kick.state_dict(),
            "exact": exact and self.exact,
        }
        if self.antagonist is not None:
            self.antagonist.model.save(staging / layout.ANTAGONIST)
            state["antagonist"] = {
                "streams": self.antagonist.streams,
                "envs": self.antagonist.vec_env.env_method("snapshot"),
                "memory": _memory(self.antagonist.model),
                "action_space": copy.deepcopy(self.antagonist.model.action_space.np_random.bit_generator.state),
            }
        with (staging / layout.STATE).open("wb") as handle:
            pickle.dump(state, handle)
        with (staging / layout.TEACHER).open("wb") as handle:  # the teacher alone, for a user to inspect
            pickle.dump(state["teacher"], handle)
        record = {"timesteps": model.num_timesteps, "episodes": self.curriculum.stats.episodes, "exact": state["exact"]}
        checkpoints.write_json(staging / layout.PROGRESS, record)  # last: the staged checkpoint is complete
        checkpoints.swap_in(self.out)


def _train(
    resolved: ResolvedRun,
    out: Path,
    resume: bool,
    progress: Callable[[int, int, float | None], None] | None,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """The phases of one session: open the environments and callbacks, start or resume the student, learn, and
    the final evaluation; the sub-environments are closed whatever happens."""
    config, teacher, algo = resolved.config, resolved.teacher, resolved.algo
    session = _open(resolved, out)
    try:
        state = _resume(session, algo, say) if resume else None
        if state is None:
            _start(session, algo)
        session.kick = _kickstart_callback(resolved, session, resume)
        if state is not None:
            _restore(session, state)
        _learn(session, resume, progress)
        final = session.evaluator.evaluation_at(session.student.num_timesteps) or session.evaluator.run_evaluation()
        target_eval = _target_evaluation(config, session.student, session.streams.evaluation)
        named_eval = _named_evaluation(config, session.student, session.streams.evaluation)
        session.save_checkpoint()  # after the final evaluation, so that a resume after a crash here does not repeat it
    finally:  # always, so that subprocess sub-environments never outlive the run
        session.vec_env.close()
        if session.antagonist_env is not None:
            session.antagonist_env.close()
    metrics = {**_metrics(session, final, target_eval), **({"named_eval": named_eval} if named_eval else {})}
    if session.antagonist is not None:  # before metrics.json, the mark of a finished run
        session.antagonist.model.save(out / "antagonist.next.zip")
        (out / "antagonist.next.zip").replace(out / layout.ANTAGONIST)
        th.save(teacher.adversary.state_dict(), out / "adversary.next.pt")  # type: ignore[attr-defined]
        (out / "adversary.next.pt").replace(out / layout.ADVERSARY)
        if hasattr(teacher, "vae"):  # CLUTR's task VAE, which vae=PATH reuses in another run
            th.save(teacher.vae.state_dict(), out / "vae.next.pt")
            (out / "vae.next.pt").replace(out / layout.VAE)
    checkpoints.write_outputs(out, session.student, teacher.state_dict(), metrics)
    return metrics


def _open(resolved: ResolvedRun, out: Path) -> _Session:
    """The run's sub-environments (the student's view of the privileged dict when its experts read it), the
    curriculum and the evaluation callbacks."""
    config, teacher, test_tasks = resolved.config, resolved.teacher, resolved.test_tasks
    streams, privileged = Streams(config.seed), resolved.reads_privileged
    train_kwargs = {**config.env_kwargs, "observation_mode": "privileged"} if privileged else config.env_kwargs
    vec_env: VecEnv = make_vec_env(config.env, config.n_envs, config.seed, config.subproc, train_kwargs, config.batched)
    if privileged:  # the experts read the privileged dict, the student its "student" part
        vec_env = StudentView(vec_env)
    try:
        probe = make_env(config.env, **config.env_kwargs)  # what the env declares: feasibility, target distribution
        try:
            feasible, target = probe.unwrapped.feasible, _target_protocol(config, probe.unwrapped, out, streams)
        finally:
            probe.close()
    except BaseException:
        vec_env.close()
        raise
    curriculum = CurriculumCallback(teacher, feasible=feasible)
    antagonist_env = None
    if getattr(teacher, "antagonist", False):  # PAIRED: a second student's sub-environments, its own streams
        antagonist_env = make_vec_env(
            config.env, config.n_envs, config.seed, config.subproc, config.env_kwargs, config.batched, antagonist=True
        )
    clock = (lambda: curriculum.trained_steps) if config.budget == "trained-steps" else None
    evaluator = EvalCallback(
        config.env,
        test_tasks,
        config.eval_every,
        out / layout.EVAL,
        config.env_kwargs,
        seed=streams.evaluation,
        clock=clock,
        trained=lambda: curriculum.trained_steps_now,
        target=target,
    )
    session = _Session(config, out, streams, teacher, vec_env, curriculum, evaluator, clock, antagonist_env=antagonist_env)
    if config.budget == "all-steps":  # the session counts every learner's steps, once they are built
        session.clock = evaluator.clock = evaluator.all_steps = session.all_steps
    return session


def _start(session: _Session, algo: type[BaseAlgorithm]) -> None:
    """A new run: its ``config.yaml``, a new student (or one from ``init_model``), the first levels sent."""
    config = session.config
    (session.out / layout.CONFIG).write_text(yaml.safe_dump(asdict(config), sort_keys=False))
    cuda = th.device(config.device).type == "cuda" if config.device != "auto" else th.cuda.is_available()
    session.model = _new_student(config, algo, session.vec_env, session.out, session.streams.student, cuda)
    if config.init_model:
        try:
            session.model.set_parameters(config.init_model, exact_match=True, device=session.model.device)
        except (OSError, ValueError, RuntimeError) as exc:
            raise RunError(f"cannot start from '{config.init_model}': {' '.join(str(exc).split())}") from None
    if session.antagonist_env is not None:
        session.antagonist = Antagonist.build(
            lambda env: _new_student(config, algo, env, session.out, session.streams.antagonist, cuda, tensorboard=False),
            session.antagonist_env,
            session.streams.antagonist,
        )
        session.curriculum.antagonist = session.antagonist
    session.curriculum.prime(session.vec_env)


def _resume(session: _Session, algo: type[BaseAlgorithm], say: Callable[[str], None]) -> dict[str, Any]:
    """The checkpointed student and the teacher's and callbacks' states; returns the checkpoint's state for
    :func:`_restore`."""
    session.model, state = _load_checkpoint(session.out / layout.CHECKPOINT, algo, session.vec_env, session.config, say)
    session.exact = state["exact"]
    try:
        session.teacher.load_state_dict(state["teacher"])
    except (KeyError, ValueError) as exc:  # a state saved by another teacher, or by an earlier teachrl
        raise RunError(f"cannot resume '{session.out}': {exc.args[0] if exc.args else exc}; start it again") from None
    session.curriculum.load_state_dict(state["curriculum"])
    session.evaluator.load_state_dict(state["evaluator"])
    if session.antagonist_env is not None:
        session.antagonist = _load_antagonist(session, algo, state)
        session.curriculum.antagonist = session.antagonist
    return state


def _load_antagonist(session: _Session, algo: type[BaseAlgorithm], state: dict[str, Any]) -> Antagonist:
    """PAIRED's antagonist as the checkpoint left it: its student, sub-environments, memory and streams."""
    path, env = session.out / layout.CHECKPOINT / layout.ANTAGONIST, session.antagonist_env
    assert env is not None
    if "antagonist" not in state:
        raise RunError(f"cannot resume '{session.out}': its checkpoint holds no antagonist; start it again")
    try:
        model = algo.load(path, env=env, device=session.config.device, force_reset=False)
    except Exception as exc:
        raise RunError(checkpoints.damaged(path, exc)) from None
    model.tensorboard_log = None
    saved = state["antagonist"]
    for i, env_state in enumerate(saved["envs"]):
        obs = env.env_method("restore", env_state, session.streams.antagonist_env(i, model.num_timesteps), indices=[i])[0]
        if obs is not None:  # an env that cannot capture its state restarts its level
            restart_episodes(model, obs, i)
    if saved["memory"] is not None:
        model._last_lstm_states = _to_device(saved["memory"], model.device)  # type: ignore[attr-defined]
    model.action_space.np_random.bit_generator.state = saved["action_space"]
    return Antagonist(model, env, saved["streams"])


def _restore(session: _Session, state: dict[str, Any]) -> None:
    """A resume's last phase before learning: the kickstarting state, the sub-environments, the generators (last:
    nothing after it draws from them before ``learn()``), and the evaluation rows past the checkpoint dropped."""
    model = session.student
    if session.kick is not None:
        session.kick.load_state_dict(state["kickstart"], session.vec_env)
    _restore_envs(model, session.vec_env, state["envs"], session.curriculum, session.streams)
    _set_rng_states(model, state["rng"])
    if state.get("memory") is not None:  # a recurrent student's hidden states, which its model.zip leaves out
        model._last_lstm_states = _to_device(state["memory"], model.device)  # type: ignore[attr-defined]
    checkpoints.truncate_rows_after(session.out / layout.EVAL, model.num_timesteps)
    checkpoints.truncate_rows_after(session.out / layout.EVAL_TARGET, model.num_timesteps)


def _learn(session: _Session, resume: bool, progress: Callable[[int, int, float | None], None] | None) -> None:
    """SB3's ``learn()`` with the run's callbacks, up to the budget; a stop request ends it with a checkpoint and
    ``KeyboardInterrupt``."""
    config, curriculum, clock = session.config, session.curriculum, session.clock
    with checkpoints.StopRequest() as stop, _teacher_polls(session.teacher, stop):
        saver = _CheckpointCallback(session.save_checkpoint, config.checkpoint_every, resume, stop, clock)
        # the kickstart callback first: it reads the level each sub-env played before the curriculum moves on
        callbacks: list[BaseCallback] = [*([session.kick] if session.kick else []), curriculum, session.evaluator, saver]
        if curriculum.cycle:  # dcd's cycle starts each rollout after the checkpoint: a resume takes the same step
            curriculum.cycle_on_rollout_start = False
            callbacks.append(_RolloutCycle(curriculum))
        if clock is not None:
            callbacks.append(_BudgetStop(clock, config.steps))
        if progress is not None:
            callbacks.append(_ProgressCallback(progress, curriculum, session.evaluator, clock=clock))
        with wandb_run(config, session.out) as wandb_callbacks:
            _learn_until_budget(session, resume, [*callbacks, *wandb_callbacks])
    if saver.stopped:  # checkpoint saved at the rollout boundary
        raise KeyboardInterrupt


@contextmanager
def _teacher_polls(teacher: Teacher, stop: checkpoints.StopRequest) -> Iterator[None]:
    """While learning, the teacher's own long work (CLUTR's pretraining) sees a stop request."""
    before, teacher.stop_requested = teacher.stop_requested, lambda: stop.requested
    try:
        yield
    finally:
        teacher.stop_requested = before


def _learn_until_budget(session: _Session, resume: bool, callbacks: list[BaseCallback]) -> None:
    """``learn()`` up to the budget; a second Ctrl-C (mid-rollout) saves a checkpoint that resumes, not exactly."""
    config, model, curriculum = session.config, session.student, session.curriculum
    try:
        # called even with nothing left (a resume of a run killed after its last checkpoint): learn() sets up the logger
        cap = config.steps * (TRAINED_BUDGET_CAP if config.budget == "trained-steps" else 1)
        remaining = max(cap - model.num_timesteps, 0)
        model.learn(remaining, callback=CallbackList(callbacks), reset_num_timesteps=not resume, tb_log_name="run")
    except TeacherStopped:  # before the first cycle (CLUTR's pretraining): no checkpoint yet, a resume restarts it
        raise KeyboardInterrupt from None
    except KeyboardInterrupt:  # a second Ctrl-C: mid-rollout; episodes of the cut rollout go unscored
        curriculum.flush_unscored()
        session.save_checkpoint(exact=False)
        raise


def _metrics(session: _Session, final: Evaluation, target_eval: dict[str, Any] | None) -> dict[str, Any]:
    """The run's ``metrics.json``."""
    model, curriculum, teacher, evaluator = session.student, session.curriculum, session.teacher, session.evaluator
    return {
        "budget": session.config.budget,
        "timesteps": int(model.num_timesteps),
        "trained_steps": int(curriculum.trained_steps),
        **({"all_steps": session.all_steps()} if session.config.budget == "all-steps" else {}),
        "episodes_reported": curriculum.stats.episodes,
        **({"episodes_cut": curriculum.episodes_cut} if curriculum.cycle else {}),
        **({"paired": _paired_steps(session)} if session.antagonist is not None else {}),
        **(_shares(curriculum.stats) if curriculum.feasible is not None else {}),
        "final_eval": {"mastered_pct": final.mastered_pct, "mean_return": final.mean_return, "tasks": len(final.results)},
        **({"target_eval": target_eval} if target_eval else {}),
        **({"target_protocol": _protocol_metrics(evaluator, discount_factor(model))} if evaluator.target else {}),
        "teacher_updates": teacher.n_updates,
        "teacher_stats": teacher.stats(),
    }


def _paired_steps(session: _Session) -> dict[str, int]:
    """The environment steps of PAIRED's three learners (the env-steps budget counts the student's, dcd's ``steps``;
    all-steps counts them all)."""
    assert session.antagonist is not None
    student, antagonist = int(session.student.num_timesteps), int(session.antagonist.model.num_timesteps)
    adversary = int(session.teacher.adversary_steps)  # type: ignore[attr-defined]
    return {
        "student_steps": student,
        "antagonist_steps": antagonist,
        "adversary_steps": adversary,
        "all_steps": student + antagonist + adversary,
    }


def _new_student(
    config: RunConfig, algo: type[BaseAlgorithm], vec_env: VecEnv, out: Path, seed: int, cuda: bool, tensorboard: bool = True
) -> BaseAlgorithm:
    """A new student on the run's sub-environments, its draws seeded from the student stream; a kickstarted one with
    a policy that takes the term and a buffer that records its minibatches (:mod:`students.loop.auxiliary`)."""
    hp = model_arguments(config.hyperparams)
    policy = hp.pop("policy", "MlpPolicy")
    if config.kickstart:
        hp.update(auxiliary_kwargs(algo, policy, isinstance(vec_env.observation_space, gym.spaces.Dict)))
        policy = hp.pop("policy")
    set_random_seed(seed, using_cuda=cuda)  # SB3 draws from the global generators
    # no seed= here: SB3 would also reseed every sub-environment with seed + i at the first reset
    tb = str(out / layout.TB) if tensorboard else None
    model = algo(policy, vec_env, device=config.device, tensorboard_log=tb, verbose=0, **hp)
    model.action_space.seed(seed)
    return model


def _load_checkpoint(
    checkpoint: Path, algo: type[BaseAlgorithm], vec_env: VecEnv, config: RunConfig, say: Callable[[str], None]
) -> tuple[BaseAlgorithm, dict[str, Any]]:
    """The checkpointed student (logging into its own folder's ``tb/``), its replay buffer, and the loop's state,
    whose ``exact`` says whether the run has continued exactly so far.

    :raises RunError: a damaged file, in one line naming it
    """
    try:
        # force_reset=False: keep the saved last observations, which the restored sub-environments continue from
        model = algo.load(checkpoint / layout.MODEL, env=vec_env, device=config.device, force_reset=False)
    except Exception as exc:  # SB3 raises zip, pickle, assertion and key errors for a damaged zip
        raise RunError(checkpoints.damaged(checkpoint / layout.MODEL, exc)) from None
    # SB3 saved the folder's absolute path: a run folder moved or copied elsewhere logs into its own tb/
    model.tensorboard_log = str(checkpoint.parent / layout.TB)
    buffer, exact = checkpoint / layout.REPLAY_BUFFER, True
    if isinstance(model, OffPolicyAlgorithm) and config.save_replay_buffer:
        if buffer.exists():
            try:
                _load_replay_buffer(model, buffer)
            except Exception as exc:
                raise RunError(checkpoints.damaged(buffer, exc)) from None
        else:
            say(f"'{buffer}' is missing: resuming with an empty replay buffer, so the run no longer continues exactly")
            exact = False
    try:
        state = checkpoints.load_pickle(checkpoint / layout.STATE)
        state["exact"] = bool(state.get("exact", True)) and exact
    except Exception as exc:  # truncated, empty or garbage: EOFError, UnpicklingError, ...
        raise RunError(checkpoints.damaged(checkpoint / layout.STATE, exc)) from None
    return model, state


def _load_replay_buffer(model: OffPolicyAlgorithm, path: Path) -> None:
    """SB3's ``load_replay_buffer``; a buffer pickled under a module's old name (before the rooms) is read with
    :func:`checkpoints.load_pickle` and handed to SB3 re-pickled, so SB3's own after-load steps still run."""
    try:
        model.load_replay_buffer(path)
    except ModuleNotFoundError:
        model.load_replay_buffer(io.BytesIO(pickle.dumps(checkpoints.load_pickle(path))))


def _target_evaluation(config: RunConfig, model: BaseAlgorithm, seed: int) -> dict[str, Any] | None:
    """The final model on the environment's held-out target set (``ParametricEnv.target_set``), when it has one
    other than the run's test set: ``{"set", "mastered_pct", "mean_return", "tasks"}``."""
    env = make_env(config.env, **config.env_kwargs)
    try:
        name = getattr(env, "target_set", None)
        if not name or name == config.test_set:
            return None
        tasks = env.test_set(name)
    finally:
        env.close()
    result = evaluate(Actor(model), config.env, tasks, seed, config.env_kwargs)
    return {"set": name, "mastered_pct": result.mastered_pct, "mean_return": result.mean_return, "tasks": len(tasks)}


def named_evaluation(config: RunConfig, model: BaseAlgorithm, seed: int, episodes: int) -> dict[str, LevelsResult]:
    """A run's model zero-shot on its env's named test levels, ``episodes`` per level with sampled actions (as dcd
    evaluates), by name (``cli.py eval --named`` and a run's ``named_eval``)."""
    env = make_env(config.env, **config.env_kwargs)
    groups = env.unwrapped.named_levels()
    env.close()
    act = Actor(model, deterministic=False)
    return evaluate_levels(act, config.env, groups, episodes, seed, config.env_kwargs)


def _named_evaluation(config: RunConfig, model: BaseAlgorithm, seed: int) -> dict[str, Any] | None:
    """The final model's :func:`named_evaluation` for ``metrics.json`` (``named_episodes`` per level): ``{"episodes",
    "solved_rate": {name: rate}, "mean_return": {name: return}, "mean_solved_rate"}``."""
    if not config.named_episodes:
        return None
    results = named_evaluation(config, model, seed, config.named_episodes)
    return {
        "episodes": config.named_episodes,
        "solved_rate": {name: r.solved_rate for name, r in results.items()},
        "mean_return": {name: r.mean_return for name, r in results.items()},
        "mean_solved_rate": sum(r.solved_rate for r in results.values()) / len(results),
    }


def _target_protocol(config: RunConfig, env: ParametricEnv, out: Path, streams: Streams) -> TargetProtocol | None:
    """SPDL's target-distribution protocol for the run's evaluations, when ``target_episodes`` asks for it."""
    if not config.target_episodes:
        return None
    assert env.target_distribution is not None  # RunConfig.resolve() checked
    (mean, std), low, high = env.target_distribution, env.task_space.low, env.task_space.high
    return TargetProtocol(config.target_episodes, mean, std, low, high, streams.target, out / layout.EVAL_TARGET)


def _protocol_metrics(evaluator: EvalCallback, gamma: float) -> dict[str, Any]:
    """The target protocol at the final evaluation, for ``metrics.json``."""
    result = evaluator.last_target
    assert result is not None
    return {
        "episodes": len(result.results),
        "gamma": gamma,
        "discounted_return": result.mean_discounted_return,
        "mean_return": result.mean_return,
        "success_pct": result.mastered_pct,
    }


def _kickstart_callback(resolved: ResolvedRun, session: _Session, resume: bool) -> KickstartCallback | None:
    """The run's kickstarting, with its experts moved to the student's device (``None`` without experts). A new run
    with the until-expert schedule first measures each expert on the run's test set, with the run's evaluation
    episodes."""
    config, privileged, evaluator = resolved.config, resolved.reads_privileged, session.evaluator
    if not config.kickstart:
        return None
    schedule = Schedule.parse(config.kick_schedule)
    experts = [
        Expert(
            name=f"expert{k}",
            policy=policy.to(session.student.device),
            region=Region.parse(spec.region, resolved.teacher.task_space),
            coef=spec.coef,
            asymmetric=privileged,
        )
        for k, (spec, policy) in enumerate(zip(config.expert_specs(), resolved.experts, strict=True))
    ]
    if schedule.kind == "until-expert" and not resume:
        kwargs = {**config.env_kwargs, "observation_mode": "privileged"} if privileged else config.env_kwargs
        for expert in experts:
            result = evaluate(
                Actor(expert.policy),
                config.env,
                evaluator.tasks,
                evaluator.seed,
                kwargs,
            )
            expert.level = region_level(result, expert.region)
    return KickstartCallback(experts, schedule, session.curriculum.current_tasks, config.kick_value_coef, evaluator)


def _restore_envs(
    model: BaseAlgorithm, vec_env: VecEnv, states: list[dict[str, Any]], curriculum: CurriculumCallback, streams: Streams
) -> None:
    """Put every sub-environment back where the checkpoint left it; one that cannot capture its state restarts
    the level it was playing (its first observation replaces the saved one, and the abandoned episode is dropped)."""
    if len(states) != vec_env.num_envs:
        raise RunError(f"the checkpoint holds {len(states)} sub-environments, not {vec_env.num_envs}")
    for i, state in enumerate(states):
        try:
            obs = vec_env.env_method("restore", state, streams.env_restart(i, model.num_timesteps), indices=[i])[0]
        except ValueError as exc:  # a state saved by an earlier teachrl
            raise RunError(f"cannot resume: {exc}; start the run again") from None
        if obs is None:
            continue
        if isinstance(vec_env, StudentView):  # the env gives the privileged dict; the student reads its part
            obs = vec_env.restart(i, obs)
        restart_episodes(model, obs, i)
        curriculum.forget_episode(i)


def saved_settings(out: Path, command: str = "--resume") -> dict[str, Any]:
    """The settings a run folder's ``config.yaml`` records (what ``--resume --out DIR`` continues with; the
    resolved hyperparameters are left out: they are resolved again from the same overrides).

    :raises RunError: the folder holds no run, or its config.yaml is not a run's
    """
    path = Path(out) / layout.CONFIG
    if not path.is_file():
        raise RunError(f"{command}: '{out}' holds no run (no config.yaml)")
    saved = _read_config(path)
    if not {"env", "teacher"} <= set(saved) or set(saved) - set(RunConfig.__dataclass_fields__):
        raise RunError(f"'{path}' is not a run's config.yaml; restart the run in another --out")
    saved.pop("hyperparams", None)
    return saved


def model_env_kwargs(path: Path) -> dict[str, Any]:
    """The ``env_kwargs`` of the run a model belongs to (a run folder, its ``model.zip`` or its checkpoint's), so
    that the model meets the environment it was trained on (a privileged view, a history); ``{}`` for a model
    outside a run folder."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    folder = folder.parent if folder.name == layout.CHECKPOINT else folder
    config = folder / layout.CONFIG
    if not config.is_file():
        return {}
    try:
        saved = yaml.safe_load(config.read_text())
    except yaml.YAMLError:
        raise RunError(f"'{config}' is not valid YAML; give --env-kwarg yourself and a model.zip outside it") from None
    kwargs = saved.get("env_kwargs") if isinstance(saved, dict) else None
    return dict(kwargs) if isinstance(kwargs, dict) else {}


def load_run(run_dir: Path) -> tuple[RunConfig, BaseAlgorithm]:
    """The config and final (or last checkpointed) model of a run folder."""
    run_dir = Path(run_dir)
    if not (run_dir / layout.CONFIG).exists():
        raise RunError(f"'{run_dir}' holds no run (no config.yaml)")
    config = RunConfig(**saved_settings(run_dir, "eval"))
    model_path = run_dir / layout.MODEL
    if not model_path.exists():
        model_path = run_dir / layout.CHECKPOINT / layout.MODEL
    if not model_path.exists():
        raise RunError(f"'{run_dir}' has no saved model yet")
    try:
        return config, algorithm_class(config.algorithm).load(model_path, device="cpu")
    except Exception as exc:  # a truncated or garbage zip
        raise RunError(checkpoints.damaged(model_path, exc, "re-run the run, or restart it in another --out")) from None


def run_subpath(config: RunConfig) -> Path:
    """``<env>/<teacher>/<student>/seed<k>`` (``module:Class`` paths made folder-safe)."""
    env, teacher = (name.replace(":", "_").replace("/", "_") for name in (config.env, config.teacher))
    return Path(env) / teacher / config.student / f"seed{config.seed}"


def default_run_dir(config: RunConfig, experiment: str = "default", root: Path = Path("results")) -> Path:
    return root / experiment / run_subpath(config)
