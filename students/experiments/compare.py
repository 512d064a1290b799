"""Teacher comparisons: every teacher x student x seed as an independent run, in parallel, resumable.

Experiment folder (``out``, e.g. ``results/NAME``)::

    compare.yaml                                  the comparison's settings
    <env>/<teacher>/<student>/seed<k>/            one run folder each (see students.run.train), plus
        request.yaml                              the run's settings, as the worker reads them
        run.log                                   the worker's output
        status.json                               steps done so far (for the overall progress display)
        error.txt                                 when the run failed: the error and the end of its log
    report.md, summary.csv, <env>_curves.png      written by students.analysis.report

Each run is a separate process (``python -m students.experiments.compare RUN_DIR``), so a crash or an error in one run never
stops the others; its torch/BLAS threads are limited to its share of the cores. Re-running the same comparison
skips finished runs (``metrics.json`` present), resumes interrupted ones from their checkpoints, and retries failed
ones (from their checkpoint when they have one). A finished run is never recomputed or overwritten.

Backends: ``local`` (subprocesses on this machine, ``workers`` at a time) and ``ray`` (one Ray task per run with
its CPU/GPU needs; the experiment folder must be on a filesystem every node sees, and teachrl installed there).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from students.run.checkpoints import disk_full
from students.config import ConfigError, load_settings, parse_seeds, setting, split_names
from students.run.lock import FolderLock, check_unlocked
from students.run.train import (
    IDENTITY,
    NAMED_EPISODES_HELP,
    TARGET_EPISODES_HELP,
    RunConfig,
    RunError,
    finished_steps,
    run_subpath,
    settings_diff,
    settings_error,
)
from students.run import layout

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BACKENDS = ("local", "ray")


#: what a named student variant may set (``hp`` adds to the comparison's hyperparameter overrides)
VARIANT_KEYS = ("algo", "n_envs", "kickstart", "kick_coef", "kick_schedule", "kick_value_coef", "hp")


class CompareError(ConfigError):
    """A comparison that cannot start as asked (bad seeds, teachers, config keys, mismatched folder...)."""


@dataclass
class CompareConfig:
    """Everything that defines a comparison (the keys of a ``--config`` YAML file)."""

    env: str = setting(help="Environment name or module:Factory path (here or in --config).", optional=True)
    teachers: list[str] = setting(help="Comma-separated teacher names, e.g. random,plr (here or in --config).", optional=True)
    #: algorithm names, or named variants: ``{ppo: {}, ppo-kick: {algo: ppo, kickstart: PATH, ...}}``
    students: list[str] | dict[str, dict[str, Any]] = setting(
        help="Comma-separated students.", factory=lambda: ["ppo"], aliases=("--student",)
    )
    seeds: list[int] = setting(help="Seeds: 0-4, 0,1,2 or 0-2,7.", factory=lambda: [0], shown="0")
    steps: int = setting(100_000, "Steps per run, in the budget's unit.")
    budget: str = setting(
        "env-steps",
        "What steps and eval_every count: env-steps (the student's), trained-steps (those it learned from) or "
        "all-steps (every learner's: PAIRED's antagonist and adversary too).",
    )
    n_envs: int = setting(0, "Sub-environments per run (0: the student's default for the env).")
    batched: bool = setting(True, "Step each run's sub-environments in one batched call when the env can.")
    eval_every: int = setting(10_000, "Steps between evaluations.")
    test_set: str = setting("default", "Test set to evaluate on.")
    target_episodes: int = setting(0, TARGET_EPISODES_HELP)
    named_episodes: int = setting(0, NAMED_EPISODES_HELP)
    device: str = setting("auto", "auto, cpu or cuda.")
    wandb: str = setting("", "Weights & Biases project every run logs to beside TensorBoard (the wandb extra); empty: none.")
    checkpoint_every: int = 50_000
    teacher_params: dict[str, dict[str, Any]] = field(default_factory=dict)  # per teacher name
    hp: dict[str, str] = field(default_factory=dict)
    env_kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Check each setting's type and range, as the command-line options are checked.

        :raises CompareError: the first bad setting, with what it should be
        """
        problem = settings_error(self)
        if problem:
            raise CompareError(problem)
        for key in ("env", "test_set"):
            if not isinstance(getattr(self, key), str):
                raise CompareError(f"{key} must be a name, got {getattr(self, key)!r}")
        if not isinstance(self.teachers, list) or not all(isinstance(t, str) for t in self.teachers):
            raise CompareError(f"teachers must be a list of names, got {self.teachers!r}")
        if not isinstance(self.students, list | dict):
            raise CompareError(f"students must be a list of names or a mapping of variants, got {self.students!r}")
        for key in ("teacher_params", "hp", "env_kwargs"):
            if not isinstance(getattr(self, key), dict):
                raise CompareError(f"{key} must be a mapping (KEY: VALUE), got {getattr(self, key)!r}")
        if any(not isinstance(v, dict) for v in self.teacher_params.values()):
            raise CompareError("teacher_params must map each teacher name to a mapping of its parameters")

    def run_configs(self) -> list[RunConfig]:
        """One resolved :class:`RunConfig` per teacher x student x seed (raises clear errors for bad names)."""
        unknown = sorted(set(self.teacher_params) - set(self.teachers))
        if unknown:
            raise CompareError(
                f"teacher parameters given for {', '.join(unknown)}, which is not among: {', '.join(self.teachers)}"
            )
        if not self.seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in self.seeds):
            raise CompareError(f"seeds must be a non-empty list of non-negative integers, got {self.seeds}")
        if not self.teachers or not self.students:
            raise CompareError("give at least one teacher and one student")
        for key, names in (("seeds", [str(s) for s in self.seeds]), ("teachers", list(self.teachers))):
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:  # two workers would share one run folder
                raise CompareError(f"{key} lists {', '.join(twice)} more than once; give each once")
        variants = self.student_variants()
        configs = []
        for seed in self.seeds:  # seed-major: a comparison cut short still has every teacher on the first seeds
            for teacher in self.teachers:
                for student, variant in variants.items():
                    settings = {
                        "env": self.env,
                        "teacher": teacher,
                        "student": student,
                        "steps": self.steps,
                        "budget": self.budget,
                        "seed": seed,
                        "n_envs": self.n_envs,
                        "batched": self.batched,
                        "device": self.device,
                        "teacher_params": dict(self.teacher_params.get(teacher, {})),
                        "hp_overrides": {**self.hp, **{str(k): str(v) for k, v in variant.get("hp", {}).items()}},
                        "env_kwargs": dict(self.env_kwargs),
                        "eval_every": self.eval_every,
                        "test_set": self.test_set,
                        "target_episodes": self.target_episodes,
                        "named_episodes": self.named_episodes,
                        "checkpoint_every": self.checkpoint_every,
                        "wandb": self.wandb,
                    }
                    config = RunConfig(**{**settings, **{k: v for k, v in variant.items() if k != "hp"}})
                    configs.append(config.resolve().config)
        return configs

    def student_variants(self) -> dict[str, dict[str, Any]]:
        """Every student by name with its settings: a list of algorithm names, or named variants.

        :raises CompareError: a variant with an unknown key (the message lists the valid ones)
        """
        if isinstance(self.students, list):
            return {name: {} for name in self.students}
        variants = {}
        for name, settings in self.students.items():
            settings = dict(settings or {})
            unknown = sorted(set(settings) - set(VARIANT_KEYS))
            if unknown:
                raise CompareError(f"student '{name}': unknown key(s) {', '.join(unknown)}; valid: {', '.join(VARIANT_KEYS)}")
            if isinstance(settings.get("kickstart"), str):
                settings["kickstart"] = [settings["kickstart"]]
            if isinstance(settings.get("kick_coef"), int | float):
                settings["kick_coef"] = [float(settings["kick_coef"])]
            variants[str(name)] = settings
        return variants


def load_compare_config(path: Path | None, overrides: dict[str, Any]) -> CompareConfig:
    """A comparison from a YAML file, with command-line values (not ``None``) taking precedence.

    :raises CompareError: missing file, unknown keys (the message lists the valid ones), missing required keys
    """
    try:
        data = load_settings(path, overrides, CompareConfig.__dataclass_fields__)
        for key in ("env", "teachers"):
            if not data.get(key):
                raise CompareError(f"no {key} given (option --{key} or key '{key}' in the config file)")
        if isinstance(data.get("seeds"), str | int):
            data["seeds"] = parse_seeds(data["seeds"])
        for key in ("teachers", "students"):
            if isinstance(data.get(key), str):
                data[key] = split_names(data[key])
        if path is not None:
            _narrow(data, load_settings(path, {}, CompareConfig.__dataclass_fields__), overrides)
    except ConfigError as exc:
        raise CompareError(str(exc)) from None
    return CompareConfig(**data)


def _narrow(data: dict[str, Any], file: dict[str, Any], overrides: dict[str, Any]) -> None:
    """``--teachers`` or ``--students`` naming part of a config file's: the file's parameters of the teachers
    left out are not used (rather than refused), and a student kept keeps its variant's settings from the file."""
    if overrides.get("teachers") is not None and isinstance(file.get("teacher_params"), dict):
        data["teacher_params"] = {k: v for k, v in file["teacher_params"].items() if k in data["teachers"]}
    variants = file.get("students")
    if overrides.get("students") is not None and isinstance(variants, dict) and set(data["students"]) <= set(variants):
        data["students"] = {name: variants[name] for name in data["students"]}


def run_state(folder: Path, config: RunConfig | None = None) -> str:
    """``finished``, ``resumable`` (a checkpoint to continue from: an interrupted run, or a finished one whose
    budget is below ``config``'s, which a larger budget extends), or ``new`` (nothing worth keeping)."""
    if (folder / layout.METRICS).exists() and (config is None or _done_steps(folder, config) >= config.steps):
        return "finished"
    if (folder / layout.CONFIG).exists() and (
        (folder / layout.CHECKPOINT / layout.PROGRESS).exists() or (folder / layout.PREVIOUS).exists()
    ):
        return "resumable"
    return "new"


def _done_steps(folder: Path, config: RunConfig) -> int:
    try:
        return finished_steps(json.loads((folder / layout.METRICS).read_text()), config.budget)
    except (OSError, ValueError, KeyError):
        return 0


def _check_same_run(folder: Path, config: RunConfig) -> None:
    config_path = folder / layout.CONFIG
    diff = settings_diff(config_path, config, IDENTITY) if config_path.exists() else None
    if diff:
        raise CompareError(f"'{folder}' holds a run with other settings in {diff}; use another --out")
    saved = yaml.safe_load(config_path.read_text()).get("steps") if config_path.exists() else None
    if isinstance(saved, int) and saved > config.steps:
        raise CompareError(
            f"'{folder}' holds a run of {saved} steps, more than the {config.steps} asked: a comparison can be "
            "extended to a larger budget, not cut to a smaller one; use another --out"
        )


@dataclass
class CompareResult:
    finished: list[Path] = field(default_factory=list)  # by this call
    skipped: list[Path] = field(default_factory=list)  # finished before
    failed: dict[Path, str] = field(default_factory=dict)  # folder -> one-line error


def plan(config: CompareConfig, out: Path) -> list[tuple[Path, RunConfig]]:
    """Every run's folder and settings, checked before anything is written.

    :raises CompareError: bad settings, or a folder holding a run with other settings
    :raises FolderInUseError: a run folder is in use by another process (e.g. a worker left by a killed compare)
    """
    runs = [(Path(out) / run_subpath(c), c) for c in config.run_configs()]
    for folder, run_config in runs:
        _check_same_run(folder, run_config)
        check_unlocked(folder)
    return runs


def prepare(
    config: CompareConfig, out: Path, runs: list[tuple[Path, RunConfig]]
) -> tuple[list[tuple[Path, RunConfig]], list[Path]]:
    """Write the comparison's settings and each pending run's ``request.yaml`` (the runs come from :func:`plan`).

    :return: (runs to execute, runs already finished)
    """
    Path(out).mkdir(parents=True, exist_ok=True)
    (Path(out) / "compare.yaml").write_text(yaml.safe_dump(asdict(config), sort_keys=False))
    pending, done = [], []
    for folder, run_config in runs:
        state = run_state(folder, run_config)
        if state == "finished":
            done.append(folder)
            continue
        if state == "new" and folder.exists():
            shutil.rmtree(folder)  # started but never checkpointed: nothing to keep
        folder.mkdir(parents=True, exist_ok=True)
        (folder / layout.ERROR).unlink(missing_ok=True)
        (folder / layout.REQUEST).write_text(yaml.safe_dump(asdict(run_config), sort_keys=False))
        pending.append((folder, run_config))
    return pending, done


def worker_command(folder: Path, threads: int, die_with_me: bool = False) -> list[str]:
    """The command of one run's process; with ``die_with_me`` it stops (with a checkpoint) when this process ends."""
    command = [sys.executable, "-m", "students.experiments.compare", str(Path(folder).resolve()), "--threads", str(threads)]
    return [*command, "--parent", str(os.getpid())] if die_with_me else command


def worker_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[name] = str(threads)
    # the project, then the user's PYTHONPATH, then the folder compare was started from (a user's env module there)
    paths = [str(PROJECT_ROOT), env.get("PYTHONPATH", ""), os.getcwd()]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, paths))
    return env


def _record_failure(folder: Path, returncode: int) -> str:
    """Keep the error in ``error.txt`` (the worker writes its traceback there; a crash leaves only the log)."""
    error = folder / layout.ERROR
    try:
        if not error.exists():
            log = (folder / layout.LOG).read_text(errors="replace").splitlines() if (folder / layout.LOG).exists() else []
            error.write_text(f"worker exited with code {returncode}\n" + "\n".join(log[-30:]) + "\n")
        lines = [line for line in error.read_text().splitlines() if line.strip()]
    except OSError as exc:  # a full disk: the comparison still finishes its bookkeeping
        return f"exit code {returncode}; its error could not be kept in {error} ({exc.strerror or exc})"
    return lines[-1] if lines else f"exit code {returncode}"


def steps_done(folder: Path, budget: str = "env-steps") -> int:
    """Steps a run has done so far, in its budget's unit (from its ``status.json``, or its metrics when finished)."""
    try:
        return finished_steps(json.loads((folder / layout.METRICS).read_text()), budget)
    except (OSError, ValueError, KeyError):
        pass
    try:
        return int(json.loads((folder / layout.STATUS).read_text())["timesteps"])  # the progress callback's count
    except (OSError, ValueError, KeyError):
        return 0


Progress = Callable[[int, int, int, int], None]  # (steps done, runs done, runs failed, runs running)


def _run_local(
    pending: Sequence[tuple[Path, RunConfig]], workers: int, threads: int, progress: Progress, result: CompareResult
) -> None:
    queue = list(pending)
    running: dict[Path, tuple[subprocess.Popen[bytes], Any]] = {}
    try:
        while queue or running:
            while queue and len(running) < workers:
                folder, _ = queue.pop(0)
                log = (folder / layout.LOG).open("ab")
                process = subprocess.Popen(
                    worker_command(folder, threads, die_with_me=True),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=worker_env(threads),
                )
                running[folder] = (process, log)
            for folder, (process, log) in list(running.items()):
                code = process.poll()
                if code is None:
                    continue
                log.close()
                del running[folder]
                if code == 0:
                    result.finished.append(folder)
                else:
                    result.failed[folder] = _record_failure(folder, code)
            _report(progress, pending, result, len(running))
            time.sleep(0.2)
    except KeyboardInterrupt:
        for process, _ in running.values():  # the workers got the same SIGINT: they save a checkpoint and exit
            process.wait()
        raise


def _run_ray(
    pending: Sequence[tuple[Path, RunConfig]],
    threads: int,
    gpus_per_run: float,
    address: str | None,
    workers: int,
    progress: Progress,
    result: CompareResult,
) -> None:
    try:
        import ray
    except ImportError:
        raise CompareError("--backend ray needs Ray: pip install 'teachrl[ray]'") from None
    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=workers * threads, log_to_driver=False, include_dashboard=False)

    @ray.remote
    def run_remote(command: list[str], env: dict[str, str], log_path: str) -> int:
        with open(log_path, "ab") as log:
            return subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(PROJECT_ROOT)).returncode

    futures = {}
    for folder, _ in pending:
        task = run_remote.options(num_cpus=threads, num_gpus=gpus_per_run)
        futures[task.remote(worker_command(folder, threads), worker_env(threads), str(folder / layout.LOG))] = folder
    remaining = list(futures)
    while remaining:
        ready, remaining = ray.wait(remaining, num_returns=len(remaining), timeout=0.5)
        for ref in ready:
            folder, code = futures[ref], ray.get(ref)
            if code == 0:
                result.finished.append(folder)
            else:
                result.failed[folder] = _record_failure(folder, code)
        _report(progress, pending, result, min(len(remaining), workers))


def _report(progress: Progress, pending: Sequence[tuple[Path, RunConfig]], result: CompareResult, running: int) -> None:
    steps = sum(min(steps_done(folder, config.budget), config.steps) for folder, config in pending)
    progress(steps, len(result.finished), len(result.failed), running)


def compare(
    config: CompareConfig,
    out: Path,
    workers: int | None = None,
    backend: str = "local",
    ray_address: str | None = None,
    gpus_per_run: float = 0.0,
    progress: Progress | None = None,
    on_start: Callable[[int, int, int], None] | None = None,
) -> CompareResult:
    """Run (or continue) a comparison into ``out``.

    :param workers: runs at a time (default: the number of CPU cores); each run gets ``cores // workers`` threads
    :param on_start: called with (runs to execute, runs already finished, total steps to execute) before they start
    :raises CompareError: bad settings, or a folder holding a run with other settings (nothing is started)
    """
    if backend not in BACKENDS:
        raise CompareError(f"unknown backend '{backend}'; valid: {', '.join(BACKENDS)}")
    cores = os.cpu_count() or 1
    workers = max(1, workers or cores)
    threads = max(1, cores // workers)
    try:
        runs = plan(config, Path(out))
    except RunError as exc:
        raise CompareError(str(exc)) from exc
    with FolderLock(Path(out)):  # a second compare (or run) on this folder is refused while this one lives
        pending, done = prepare(config, Path(out), runs)
        result = CompareResult(skipped=done)
        if on_start is not None:
            on_start(len(pending), len(done), sum(c.steps for _, c in pending))
        report = progress or (lambda *_: None)
        if backend == "local":
            _run_local(pending, workers, threads, report, result)
        else:
            _run_ray(pending, threads, gpus_per_run, ray_address, workers, report, result)
    return result


def _die_with_parent(parent: int) -> None:
    """Stop this worker (SIGTERM: a checkpoint, then exit) as soon as the comparison that started it is gone,
    however it died (``kill -9`` included)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def _worker_main(argv: Sequence[str] | None = None) -> int:
    """Entry of one run's process: train the run its folder's ``request.yaml`` describes."""
    parser = argparse.ArgumentParser(description="Execute one run of a comparison (used by cli.py compare).")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--parent", type=int, default=None, help="pid of the comparison; the worker stops without it")
    args = parser.parse_args(argv)
    if args.parent is not None:
        _die_with_parent(args.parent)
    import torch

    from students.run.train import train

    torch.set_num_threads(args.threads)
    folder: Path = args.folder
    status = folder / layout.STATUS
    last = [0.0]

    def report(timesteps: int, episodes: int, mastered: float | None) -> None:
        if time.monotonic() - last[0] > 2.0:
            last[0] = time.monotonic()
            status.write_text(json.dumps({"timesteps": timesteps, "episodes": episodes, "mastered_pct": mastered}))

    try:
        config = RunConfig(**yaml.safe_load((folder / layout.REQUEST).read_text()))
        resume = run_state(folder, config) == "resumable"
        print(f"{'resuming' if resume else 'starting'} {config.teacher} / {config.student} / seed {config.seed}", flush=True)
        metrics = train(config, folder, resume=resume, progress=report, notify=lambda line: print(line, flush=True))
    except KeyboardInterrupt:
        saved = (folder / layout.CHECKPOINT).is_dir()
        print("interrupted: checkpoint saved" if saved else "interrupted before the first checkpoint", flush=True)
        return 130
    except Exception as exc:  # recorded for the comparison; the other runs go on
        full = disk_full(exc, folder)
        text = full or traceback.format_exc()
        print(text, flush=True)
        try:
            (folder / layout.ERROR).write_text(f"{text}\n" if full else f"{text}\n{type(exc).__name__}: {exc}\n")
        except OSError:
            pass  # the disk is full: the parent records the exit code and this log's last line
        return 1
    done = finished_steps(metrics, config.budget)  # in the budget's unit, as the progress callback's
    status.write_text(json.dumps({"timesteps": done, "episodes": metrics["episodes_reported"]}))
    print(json.dumps(metrics["final_eval"]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_worker_main())
