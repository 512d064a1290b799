"""teachrl command line: ``python cli.py --help`` (also installed as ``teachrl``).

A thin shell over the library: options, validation and friendly errors; no algorithm lives here.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import click
import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from curriculum.registry import (
    TEACHERS,
    UnknownTeacherError,
    make_teacher,
    parse_teacher_params,
    teacher_class,
    teacher_params,
)
from environments.registry import UnknownEnvironmentError, all_entries, describe_env, make_env
from environments.simulated_student import SimulatedStudent, SimulationResult, simulate

console = Console()


class UserError(click.ClickException):
    """Bad user input: one clear line, exit code 2, no traceback."""

    exit_code = 2


def _message(exc: BaseException) -> str:
    """An exception's message on one line (a KeyError's without the quotes ``str`` adds around it)."""
    text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    return " ".join(str(text).split())


def _split_names(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise UserError("no name given; expected a comma-separated list")
    return names


def _parse_teacher_param_options(options: Iterable[str], teachers: list[str]) -> dict[str, dict[str, Any]]:
    """``NAME.param=value`` options to typed per-teacher parameters (each checked against the teacher)."""
    raw: dict[str, dict[str, str]] = defaultdict(dict)
    for option in options:
        key, sep, value = option.partition("=")
        name, dot, param = key.rpartition(".")
        if not sep or not dot or not name or not param:
            raise UserError(f"--teacher-param '{option}' must look like TEACHER.PARAM=VALUE (e.g. alp-gmm.fit_rate=150)")
        if name not in teachers:
            raise UserError(f"--teacher-param '{option}' names teacher '{name}', which is not among: {', '.join(teachers)}")
        raw[name][param] = value
    try:
        return {name: parse_teacher_params(raw.get(name, {}), name) for name in teachers}
    except UnknownTeacherError as exc:
        raise UserError(str(exc)) from exc


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """teachrl: automatic curriculum learning for Stable-Baselines3 students."""


@cli.group("list")
def list_group() -> None:
    """List what is available."""


@list_group.command("teachers")
def list_teachers() -> None:
    """Teacher algorithms with their parameters, defaults and help."""
    for name, cls in TEACHERS.items():
        first_line = (cls.__doc__ or "").strip().splitlines()[0]
        console.print(f"[bold]{name}[/bold]  ({cls.__name__}): {escape(first_line)}")
        params = teacher_params(cls)
        if not params:
            console.print("    (no parameters)")
        for p in params:
            console.print(f"    {p.name} = {p.default!r}  {escape(p.help)}", highlight=False)
    console.print("A user's own teacher: pass 'package.module:ClassName' wherever a teacher name is expected.")


@list_group.command("envs")
@click.option("--include", multiple=True, metavar="MODULE:ATTR", help="Also describe a user's environment by path.")
def list_envs(include: tuple[str, ...]) -> None:
    """Environments: task dimensions with bounds, default task, test sets, success rule."""
    names = [entry.name for entry in all_entries()] + list(include)
    for name in names:
        try:
            d = describe_env(name)
        except (UnknownEnvironmentError, AttributeError, TypeError) as exc:
            raise UserError(f"environment '{name}': {exc}") from exc
        kind = "RL environment" if d.trainable else "simulated student (teachers only)"
        gym_id = f", gymnasium id {d.gym_id}" if d.gym_id else ""
        console.print(f"[bold]{escape(d.name)}[/bold]  ({kind}{gym_id})", highlight=False)
        console.print(f"    task: {escape(d.task_space)}", highlight=False)
        console.print(f"    default task: {escape(d.default_task)}", highlight=False)
        sets = ", ".join(f"{n} ({k} tasks)" for n, k in d.test_sets.items()) or "-"
        console.print(f"    test sets: {sets}", highlight=False)
        console.print(f"    success: {escape(d.success_rule)}", highlight=False)
        console.print(f"    easy region (ACCEL's start): {escape(d.easy_region)}", highlight=False)
    console.print("A user's own environment: pass 'package.module:Factory' wherever an environment name is expected.")


def _run_simulation(job: dict[str, Any]) -> SimulationResult:
    return simulate(**job)


def _mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and std with ddof 1 (the convention of every table teachrl prints; 0 for one value)."""
    mean = sum(values) / len(values)
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1) if len(values) > 1 else 0.0
    return mean, math.sqrt(var)


def _execute(jobs: list[dict[str, Any]], workers: int, label: Callable[[dict[str, Any]], str]) -> list[SimulationResult]:
    results: list[SimulationResult] = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        bar = progress.add_task("simulating", total=len(jobs))
        if workers <= 1:
            for job in jobs:
                progress.update(bar, description=f"simulating {label(job)}")
                results.append(_run_simulation(job))
                progress.advance(bar)
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                futures = {pool.submit(_run_simulation, job): job for job in jobs}
                for future in as_completed(futures):
                    results.append(future.result())
                    progress.update(bar, description=f"done {label(futures[future])}")
                    progress.advance(bar)
    return results


def _config_defaults(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    """``--config FILE``: a YAML mapping of this command's options (by parameter name); options given override it."""
    if value is None:
        return
    if not value.is_file():
        raise UserError(f"config file '{value}' does not exist")
    import yaml

    try:
        data = yaml.safe_load(value.read_text()) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"config file '{value}' is not valid YAML: {' '.join(str(exc).split())}") from None
    valid = [p.name for p in ctx.command.params if p.name and p.expose_value]
    unknown = sorted(set(data) - set(valid)) if isinstance(data, dict) else ["(not a mapping)"]
    if unknown:
        raise UserError(f"unknown key(s) in '{value}': {', '.join(unknown)}; valid: {', '.join(valid)}")
    data = {k: ",".join(map(str, v)) if isinstance(v, list) and k == "teachers" else v for k, v in data.items()}
    ctx.default_map = {**(ctx.default_map or {}), **data}


@cli.command()
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    is_eager=True,
    expose_value=False,
    callback=_config_defaults,
    help="YAML file of these options (e.g. experiments/simulated_student.yaml); options given override it.",
)
@click.option(
    "--teachers",
    default="random,alp-gmm,covar-gmm,riac",
    show_default=True,
    help="Comma-separated teacher names or module:Class paths.",
)
@click.option("--episodes", default=20000, show_default=True, type=click.IntRange(min=1), help="Episodes per run.")
@click.option("--seeds", default="0-2", show_default=True, help="Seeds: 0-4, 0,1,2 or 0-2,7 (as in compare).")
@click.option("--dims", default=2, show_default=True, type=click.IntRange(min=1), help="Relevant task dimensions.")
@click.option("--cells", default=10, show_default=True, type=click.IntRange(min=1), help="Bins per relevant dimension.")
@click.option(
    "--distractors",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    help="Extra task dimensions that change nothing.",
)
@click.option(
    "--unlearnable",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0.0, 1.0, max_open=True),
    help="Share of dimension 0's bins (high end) that never learn.",
)
@click.option(
    "--noise", default=0.0, show_default=True, type=click.FloatRange(min=0.0), help="Std of Gaussian noise on returns."
)
@click.option(
    "--forgetting",
    default=0.0,
    show_default=True,
    type=click.FloatRange(min=0.0),
    help="Competence lost per episode by unpractised cells.",
)
@click.option(
    "--teacher-param",
    "teacher_param",
    multiple=True,
    metavar="TEACHER.PARAM=VALUE",
    help="Override a teacher parameter (repeatable).",
)
@click.option(
    "--workers", default=1, show_default=True, type=click.IntRange(min=1), help="Parallel processes (runs are independent)."
)
@click.option(
    "--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write the results as JSON here."
)
def simulate_cmd(
    teachers: str,
    episodes: int,
    seeds: str,
    dims: int,
    cells: int,
    distractors: int,
    unlearnable: float,
    noise: float,
    forgetting: float,
    teacher_param: tuple[str, ...],
    workers: int,
    json_path: Path | None,
) -> None:
    """Compare teachers on the simulated student (no deep RL: seconds per run).

    Prints the % of cells mastered at 25/50/100% of the budget (mean ± std over seeds) and each teacher's own
    cost per episode (sample + update, in microseconds, excluding the student).
    """
    names = _split_names(teachers)
    for name in names:
        try:
            teacher_class(name)
        except UnknownTeacherError as exc:
            raise UserError(str(exc)) from exc
    seed_list = _seed_list(seeds)
    if json_path is not None:  # refuse an unwritable --json before the simulation, not after it
        _check_writable(json_path, "--json")
    params = _parse_teacher_param_options(teacher_param, names)
    student = {
        "dims": dims,
        "cells": cells,
        "distractors": distractors,
        "unlearnable_share": unlearnable,
        "return_noise": noise,
        "forgetting": forgetting,
    }
    checkpoints = sorted({max(1, episodes // 4), max(1, episodes // 2), episodes})
    jobs = [
        {
            "teacher": name,
            "episodes": episodes,
            "seed": seed,
            "checkpoints": checkpoints,
            "teacher_params": params[name],
            "student_params": student,
        }
        for name in names
        for seed in seed_list
    ]
    _check_simulation(names, params, student)
    results = _execute(jobs, min(workers, len(jobs)), lambda job: f"{job['teacher']} seed {job['seed']}")
    by_teacher: dict[str, list[SimulationResult]] = defaultdict(list)
    for result in sorted(results, key=lambda r: (names.index(r.teacher), r.seed)):
        by_teacher[result.teacher].append(result)

    title = (
        f"Simulated student: {dims}-D, {cells} cells/dim, {episodes} episodes, seeds {seeds}: % cells mastered, "
        "mean ± std (ddof 1)"
    )
    table = Table(title=title)
    table.add_column("teacher")
    for c in checkpoints:
        table.add_column(f"@{c}", justify="right")
    table.add_column("teacher µs/episode", justify="right")
    if unlearnable:
        table.add_column("% played unlearnable", justify="right")
    for name in names:
        runs = by_teacher[name]
        row = [name]
        for c in checkpoints:
            mean, std = _mean_std([r.mastered[c] for r in runs])
            row.append(f"{mean:.1f} ± {std:.1f}")
        row.append(f"{_mean_std([r.teacher_us_per_episode for r in runs])[0]:.0f}")
        if unlearnable:
            row.append(f"{100 * _mean_std([r.unlearnable_share_played for r in runs])[0]:.1f}")
        table.add_row(*row)
    console.print(table)
    console.print(
        "(teacher cost is wall time and varies between machines and runs; mastered % is deterministic per seed)", style="dim"
    )

    if json_path is not None:
        payload = {
            "teachers": {
                name: {
                    "mastered": {str(c): [r.mastered[c] for r in by_teacher[name]] for c in checkpoints},
                    "teacher_us_per_episode": _mean_std([r.teacher_us_per_episode for r in by_teacher[name]])[0],
                    "params": params[name],
                }
                for name in names
            },
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
            "config": {"episodes": episodes, "seeds": seed_list, "checkpoints": checkpoints, "student": student},
        }
        try:
            json_path.parent.mkdir(parents=True, exist_ok=True)
            json_path.write_text(json.dumps(payload, indent=2))
        except OSError as exc:
            raise UserError(f"cannot write --json file {json_path}: {exc.strerror or exc}") from exc
        console.print(f"wrote {json_path}")


cli.add_command(simulate_cmd, "simulate")


def _check_simulation(names: list[str], params: dict[str, dict[str, Any]], student: dict[str, Any]) -> None:
    """Build the student and every teacher once, so that bad options fail now with one message, not in a worker."""
    try:
        space = SimulatedStudent(**student).task_space
    except ValueError as exc:
        raise UserError(f"simulated student: {exc}") from exc
    for name in names:
        try:
            needs = make_teacher(name, space, **params[name]).required_scores
        except (ValueError, TypeError) as exc:
            raise UserError(f"teacher '{name}': {exc}") from exc
        if needs:
            raise UserError(
                f"teacher '{name}' needs the student's {', '.join(needs)} score, which the simulated student does not "
                "provide; train an RL student with 'cli.py run' instead"
            )


def _check_writable_dir(path: Path, flag: str) -> None:
    """Refuse, before any work, a folder that cannot be created or written (nothing is created)."""
    existing = next((p for p in [path, *path.parents] if p.exists()), Path("."))
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        problem = "is a file" if existing == path else f"'{existing}' is not a writable folder"
        raise UserError(f"{flag} {path}: cannot write there ({problem})")


def _seed_list(text: str) -> list[int]:
    """``--seeds`` as everywhere: ``0-4``, ``0,1,2`` or ``0-2,7``."""
    from students.compare import CompareError, parse_seeds

    try:
        return parse_seeds(str(text))
    except CompareError as exc:
        raise UserError(str(exc)) from None


def _check_writable(path: Path, flag: str) -> None:
    """Refuse, before any work, a path that cannot be written (nothing is created)."""
    parent = next((p for p in [path.parent, *path.parent.parents] if p.exists()), Path("."))
    blocked = path.is_dir() or not parent.is_dir() or not os.access(parent, os.W_OK)
    if blocked or (path.exists() and not os.access(path, os.W_OK)):
        raise UserError(f"{flag} {path}: cannot write there (not a writable file path)")


def _yaml_values(options: Iterable[str], flag: str) -> dict[str, Any]:
    """``KEY=VALUE`` options with YAML values (``observation_mode=privileged``, ``horizon=50``)."""

    parsed: dict[str, Any] = {}
    from students.algorithms import parse_value

    for key, text in _key_values(options, flag).items():
        try:
            parsed[key] = parse_value(text)
        except ValueError as exc:
            raise UserError(f"{flag} {key}={text}: {exc}") from None
    return parsed


def _key_values(options: Iterable[str], flag: str) -> dict[str, str]:
    parsed = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or not key.strip():
            raise UserError(f"{flag} '{option}' must look like KEY=VALUE")
        if key.strip() in parsed:
            raise UserError(f"{flag} gives '{key.strip()}' twice; give each key once")
        parsed[key.strip()] = value.strip()
    return parsed


@cli.command()
@click.option("--env", "env_name", required=True, help="Environment name or module:Factory path (see list envs).")
@click.option("--teacher", required=True, help="Teacher name or module:Class path (see list teachers).")
@click.option("--student", default="ppo", show_default=True, help="SB3 algorithm: ppo, a2c, sac, td3 (tqc with sb3-contrib).")
@click.option("--steps", default=200000, show_default=True, type=click.IntRange(min=1), help="Environment steps.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0), help="The run's seed (every stream).")
@click.option("--n-envs", default=4, show_default=True, type=click.IntRange(min=1), help="Parallel sub-environments.")
@click.option("--subproc/--dummy", default=False, show_default=True, help="Sub-environments in subprocesses or in this one.")
@click.option(
    "--device",
    default="auto",
    show_default=True,
    type=click.Choice(["auto", "cpu", "cuda"]),
    help="Where the student trains (auto: CUDA when present).",
)
@click.option(
    "--teacher-param",
    "teacher_param",
    multiple=True,
    metavar="PARAM=VALUE",
    help="Teacher parameter, PARAM=VALUE or TEACHER.PARAM=VALUE.",
)
@click.option("--hp", multiple=True, metavar="KEY=VALUE", help="Student hyperparameter override, YAML value (repeatable).")
@click.option(
    "--eval-every", default=10000, show_default=True, type=click.IntRange(min=1), help="Steps between test-set evaluations."
)
@click.option("--test-set", default="default", show_default=True, help="Test set to evaluate on.")
@click.option(
    "--checkpoint-every", default=50000, show_default=True, type=click.IntRange(min=1), help="Steps between checkpoints."
)
@click.option(
    "--save-replay-buffer/--no-save-replay-buffer",
    default=True,
    show_default=True,
    help="Checkpoint the replay buffer (off-policy students); without it a resume starts with an empty buffer.",
)
@click.option("--env-kwarg", multiple=True, metavar="KEY=VALUE", help="Environment argument, YAML value (repeatable).")
@click.option(
    "--kickstart",
    multiple=True,
    metavar="PATH[@REGION]",
    help="Expert to kickstart from: a run folder or model.zip, optionally covering a task region "
    "(e.g. runs/narrow@gate_width=0.5:4). Repeatable.",
)
@click.option(
    "--kick-coef",
    multiple=True,
    type=click.FloatRange(min=0),
    help="Kickstarting coefficient: one for all experts, or one each [default: 1].",
)
@click.option(
    "--kick-schedule",
    default="constant",
    show_default=True,
    help="constant, linear:STEPS, exp:HALF_LIFE_STEPS or until-expert[:WINDOW_STEPS].",
)
@click.option(
    "--kick-value-coef",
    default=0.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Value-distillation weight (PPO/A2C students).",
)
@click.option("--experiment", default="default", show_default=True, help="Experiment name under results/.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Run folder (default results/EXPERIMENT/ENV/TEACHER/STUDENT/seedK).",
)
@click.option("--resume", is_flag=True, help="Continue the run in the folder from its last checkpoint.")
def run(
    env_name: str,
    teacher: str,
    student: str,
    steps: int,
    seed: int,
    n_envs: int,
    subproc: bool,
    device: str,
    teacher_param: tuple[str, ...],
    hp: tuple[str, ...],
    eval_every: int,
    test_set: str,
    checkpoint_every: int,
    save_replay_buffer: bool,
    env_kwarg: tuple[str, ...],
    kickstart: tuple[str, ...],
    kick_coef: tuple[float, ...],
    kick_schedule: str,
    kick_value_coef: float,
    experiment: str,
    out: Path | None,
    resume: bool,
) -> None:
    """Train an SB3 student while a teacher chooses the task of every episode."""
    from students.algorithms import StudentConfigError
    from students.lock import FolderInUseError
    from students.run import RunConfig, RunError, check_run_dir, default_run_dir, train

    try:
        teacher_class(teacher)
        raw = _key_values(teacher_param, "--teacher-param")
        params = parse_teacher_params({k.removeprefix(f"{teacher}."): v for k, v in raw.items()}, teacher)
        config = RunConfig(
            env=env_name,
            teacher=teacher,
            student=student,
            steps=steps,
            seed=seed,
            n_envs=n_envs,
            subproc=subproc,
            device=device,
            teacher_params=params,
            hp_overrides=_key_values(hp, "--hp"),
            eval_every=eval_every,
            test_set=test_set,
            checkpoint_every=checkpoint_every,
            save_replay_buffer=save_replay_buffer,
            env_kwargs=_yaml_values(env_kwarg, "--env-kwarg"),
            kickstart=list(kickstart),
            kick_coef=list(kick_coef) or [1.0],
            kick_schedule=kick_schedule,
            kick_value_coef=kick_value_coef,
        ).resolve()
        probe = make_env(env_name, **config.env_kwargs)
        probe.test_set(test_set)
        make_teacher(teacher, probe.task_space, **params)
    except (
        UnknownTeacherError,
        UnknownEnvironmentError,
        StudentConfigError,
        RunError,
        KeyError,
        ValueError,
        TypeError,
    ) as exc:
        raise UserError(_message(exc)) from exc
    folder = out or default_run_dir(config, experiment)
    _check_writable_dir(folder, "--out")
    try:
        check_run_dir(config, folder, resume)
    except RunError as exc:
        raise UserError(str(exc)) from exc
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task_id = bar.add_task(f"{teacher} -> {student} on {env_name}", total=steps)

        def report(timesteps: int, episodes: int, mastered: float | None) -> None:
            shown = "-" if mastered is None else f"{mastered:.1f}%"
            bar.update(
                task_id,
                completed=min(timesteps, steps),
                description=f"{teacher} -> {student}: {episodes} episodes, mastered {shown}",
            )

        try:
            metrics = train(config, folder, resume=resume, progress=report, notify=console.print)
        except (RunError, FolderInUseError) as exc:
            raise UserError(str(exc)) from exc
        except KeyboardInterrupt:
            console.print(
                f"interrupted: checkpoint saved in {folder / 'checkpoint'}; continue with --resume --out {folder}",
                soft_wrap=True,
            )
            raise SystemExit(130) from None
    final = metrics["final_eval"]
    console.print(
        f"done: {metrics['timesteps']} steps, {metrics['episodes_reported']} episodes; test set: "
        f"{final['mastered_pct']:.1f}% mastered, mean return {final['mean_return']:.2f} ({final['tasks']} tasks) -> {folder}",
        soft_wrap=True,
    )


def _print_summary(rows: list[dict[str, str]]) -> None:
    """One compact table per environment and student (best means in bold)."""
    # the main columns fit 80 characters; report.md has them all
    short = {
        "teacher": "teacher",
        "seeds": "seeds",
        "mastered %": "mastered %",
        "mastered 95% CI": "95% CI",
        "mean return": "mean return",
        "AUC mastered %": "AUC %",
        "p mastered vs random": "p",
    }
    groups: dict[tuple[str, str, str], list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        groups[(row["env"], row["student"], row["group"])].append(row)
    for (env, student, label), shown in groups.items():
        table = Table(title=f"{env}, {student} ({label}): final test set, mean ± std (ddof 1) over seeds; p: Welch vs random")
        headers = [h for h in shown[0] if h in short]
        for header in headers:
            table.add_column(short[header], no_wrap=True)
        for row in shown:
            table.add_row(*(f"[bold]{escape(row[h].strip('*'))}[/bold]" if "**" in row[h] else row[h] for h in headers))
        console.print(table)


@cli.command("compare")
@click.option(
    "--config", "config_path", type=click.Path(path_type=Path), help="YAML file with the same keys; options override it."
)
@click.option("--env", "env_name", default=None, help="Environment name or module:Factory path.")
@click.option("--teachers", default=None, help="Comma-separated teacher names (e.g. random,alp-gmm,plr).")
@click.option("--students", "--student", "students", default=None, help="Comma-separated students [default: ppo].")
@click.option("--seeds", default=None, help="Seeds: 0-4, 0,1,2 or 0-2,7 [default: 0].")
@click.option("--steps", default=None, type=click.IntRange(min=1), help="Steps per run [default: 100000].")
@click.option("--n-envs", default=None, type=click.IntRange(min=1), help="Sub-environments per run [default: 4].")
@click.option("--eval-every", default=None, type=click.IntRange(min=1), help="Steps between evaluations [default: 10000].")
@click.option("--test-set", default=None, help="Test set to evaluate on [default: default].")
@click.option("--device", default=None, help="auto, cpu or cuda [default: auto].")
@click.option("--teacher-param", multiple=True, metavar="TEACHER.PARAM=VALUE", help="A teacher's parameter (repeatable).")
@click.option("--hp", multiple=True, metavar="KEY=VALUE", help="Student hyperparameter override for every run (repeatable).")
@click.option("--env-kwarg", multiple=True, metavar="KEY=VALUE", help="Environment argument, YAML value (repeatable).")
@click.option("--workers", default=None, type=click.IntRange(min=1), help="Runs at a time [default: CPU cores].")
@click.option("--backend", default="local", show_default=True, type=click.Choice(["local", "ray"]))
@click.option("--ray-address", default=None, help="Ray cluster: auto or HOST:PORT (default: start a local Ray).")
@click.option("--gpus-per-run", default=0.0, show_default=True, type=click.FloatRange(min=0), help="GPUs per run (Ray).")
@click.option("--out", "out", default=None, type=click.Path(file_okay=False, path_type=Path), help="Experiment folder.")
def compare_cmd(
    config_path: Path | None,
    env_name: str | None,
    teachers: str | None,
    students: str | None,
    seeds: str | None,
    steps: int | None,
    n_envs: int | None,
    eval_every: int | None,
    test_set: str | None,
    device: str | None,
    teacher_param: tuple[str, ...],
    hp: tuple[str, ...],
    env_kwarg: tuple[str, ...],
    workers: int | None,
    backend: str,
    ray_address: str | None,
    gpus_per_run: float,
    out: Path | None,
) -> None:
    """Compare teachers: every teacher x student x seed as an independent run, then a report.

    Re-running the same command skips finished runs and resumes interrupted ones. Exit status 1 when a run failed.
    """
    from students.algorithms import StudentConfigError
    from students.compare import CompareError, compare, load_compare_config, parse_seeds
    from students.lock import FolderInUseError
    from students.run import RunError

    try:
        overrides: dict[str, Any] = {
            "env": env_name,
            "teachers": _split_names(teachers) if teachers is not None else None,
            "students": _split_names(students) if students is not None else None,
            "seeds": parse_seeds(seeds) if seeds is not None else None,
            "steps": steps,
            "n_envs": n_envs,
            "eval_every": eval_every,
            "test_set": test_set,
            "device": device,
            "hp": _key_values(hp, "--hp") or None,
            "env_kwargs": _yaml_values(env_kwarg, "--env-kwarg") or None,
        }
        config = load_compare_config(config_path, overrides)
        if teacher_param:
            for name in config.teachers:
                teacher_class(name)
            parsed = _parse_teacher_param_options(teacher_param, config.teachers)
            config.teacher_params = {**config.teacher_params, **{k: v for k, v in parsed.items() if v}}
        folder = out or Path("results") / f"compare_{config.env.replace(':', '_').replace('/', '_')}"
        _check_writable_dir(folder, "--out")
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=Console(stderr=True)) as bar:
            task_id = bar.add_task("preparing", total=None)

            def started(pending: int, done: int, total_steps: int) -> None:
                bar.update(task_id, total=max(total_steps, 1))
                console.print(f"{pending} run(s) to execute, {done} already finished -> {folder}", soft_wrap=True)

            def progress(steps_done: int, finished: int, failed: int, running: int) -> None:
                bar.update(
                    task_id, completed=steps_done, description=f"runs: {finished} done, {failed} failed, {running} running"
                )

            try:
                result = compare(config, folder, workers, backend, ray_address, gpus_per_run, progress, started)
            except KeyboardInterrupt:
                console.print(f"interrupted: runs saved checkpoints; run the same command again to resume ({folder})")
                raise SystemExit(130) from None
    except (
        CompareError,
        FolderInUseError,
        UnknownTeacherError,
        UnknownEnvironmentError,
        StudentConfigError,
        RunError,
        KeyError,
        ValueError,
        TypeError,
    ) as exc:
        raise UserError(_message(exc)) from exc
    _report_folder(folder)
    if result.failed:
        for path, error in result.failed.items():
            console.print(f"[red]failed[/red] {path}: {escape(error)}", soft_wrap=True)
        console.print(f"{len(result.failed)} run(s) failed (error.txt and run.log in each folder); the others finished.")
        raise SystemExit(1)


def _report_folder(folder: Path) -> None:
    from students.report import ReportError, write_report

    try:
        _, rows, _ = write_report(folder)
    except ReportError as exc:
        raise UserError(str(exc)) from exc
    _print_summary(rows)
    console.print(
        f"report: {folder / 'report.md'}, {folder / 'summary.csv'}; TensorBoard: tensorboard --logdir {folder}", soft_wrap=True
    )


@cli.command("report")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
def report_cmd(folder: Path) -> None:
    """Statistics, plots and report.md of a comparison folder (also written at the end of compare)."""
    if not folder.is_dir():
        raise UserError(f"'{folder}' is not a folder")
    _report_folder(folder)


@cli.command("eval")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--test-set", default=None, help="Test set (default: the run's).")
@click.option("--episodes", default=1, show_default=True, type=click.IntRange(min=1), help="Episodes per test task.")
@click.option("--seed", default=None, type=click.IntRange(min=0), help="Base seed of the episodes [default: the run's].")
def eval_cmd(run_dir: Path, test_set: str | None, episodes: int, seed: int | None) -> None:
    """Evaluate a saved run's student on a test set (by default with the episodes its own evaluations play)."""
    from curriculum.seeding import Streams
    from students.evaluation import evaluate
    from students.run import RunError, load_run

    try:
        config, model = load_run(run_dir)
        tasks = make_env(config.env, **config.env_kwargs).test_set(test_set or config.test_set)
    except (RunError, KeyError) as exc:
        raise UserError(_message(exc)) from exc
    seed = Streams(config.seed).evaluation if seed is None else seed
    result = evaluate(
        lambda obs: model.predict(obs, deterministic=True)[0], config.env, tasks, seed, config.env_kwargs, episodes
    )
    console.print(
        f"{run_dir}: {result.mastered_pct:.1f}% of {len(result.results)} test episodes mastered, "
        f"mean return {result.mean_return:.2f} ({test_set or config.test_set} test set)",
        soft_wrap=True,
    )


def _parse_task_option(text: str, env: Any) -> Any:
    """``name=value,...`` to a task vector; dimensions not given keep the environment's default task."""
    values = dict(zip(env.task_space.names, np.asarray(env.default_task, dtype=float).tolist(), strict=True))
    given: set[str] = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep:
            raise UserError(f"--task '{part}' must look like NAME=VALUE; dimensions: {', '.join(env.task_space.names)}")
        if key.strip() not in values:
            raise UserError(f"--task: unknown dimension '{key.strip()}'; valid: {', '.join(env.task_space.names)}")
        if key.strip() in given:
            raise UserError(f"--task gives '{key.strip()}' twice; give each dimension once")
        given.add(key.strip())
        try:
            values[key.strip()] = float(value)
        except ValueError as exc:
            raise UserError(f"--task: '{value}' is not a number (dimension {key.strip()})") from exc
    try:
        return env.task_space.validate(values)
    except ValueError as exc:
        raise UserError(f"--task: {exc}") from exc


@cli.command()
@click.option("--env", "env_name", required=True, help="Environment name or module:Factory path (see list envs).")
@click.option("--task", "task_text", default="", help="NAME=VALUE,... (missing dimensions keep the default task).")
@click.option(
    "--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Output .png (last frame) or .gif."
)
@click.option("--policy", default="random", show_default=True, help="random, zero, or a saved Stable-Baselines3 model (.zip).")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the level, the episode and the random policy.")
@click.option("--steps", default=300, show_default=True, type=click.IntRange(min=1), help="Steps at most.")
@click.option("--every", default=4, show_default=True, type=click.IntRange(min=1), help="Keep one frame every N steps (GIF).")
def render(env_name: str, task_text: str, out: Path, policy: str, seed: int, steps: int, every: int) -> None:
    """Picture what a task means: play one episode on it and save a PNG or GIF."""
    from environments.render import random_policy, rollout_frames, save_frames, zero_policy

    if out.suffix.lower() not in (".png", ".gif"):
        raise UserError(f"--out must end in .png or .gif, got '{out.name}'")
    _check_writable(out, "--out")
    try:
        env = make_env(env_name, render_mode="rgb_array")
    except UnknownEnvironmentError as exc:
        raise UserError(str(exc)) from exc
    except TypeError as exc:
        raise UserError(f"environment '{env_name}' cannot render: {exc}") from exc
    task = _parse_task_option(task_text, env)
    if policy == "random":
        act = random_policy(env, seed)
    elif policy == "zero":
        act = zero_policy(env)
    else:
        act = _load_sb3_policy(Path(policy), env)
    frames, episode_return, _ = rollout_frames(env, act, task, seed=seed, max_steps=steps, every=every)
    env.close()
    save_frames(frames, out)
    console.print(
        f"wrote {out} ({len(frames)} frame(s); episode return {episode_return:.1f}; task {env.task_space.to_dict(task)})"
    )


def _load_sb3_policy(path: Path, env: Any) -> Callable[[Any], np.ndarray]:
    """The deterministic policy of a saved SB3 model (or run folder) that reads and acts in ``env``'s spaces."""
    from students.kickstart import KickstartError, load_policy

    try:
        policy = load_policy(path, role="model")
    except KickstartError as exc:
        raise UserError(f"--policy: {exc}; or give random or zero") from None
    if policy.observation_space != env.observation_space or policy.action_space != env.action_space:
        raise UserError(
            f"--policy '{path}' reads {policy.observation_space} and acts in {policy.action_space}; this environment "
            f"gives {env.observation_space} and takes {env.action_space}"
        )
    return lambda obs: policy.predict(obs, deterministic=True)[0]


def main() -> None:
    """Entry point of the ``teachrl`` console script."""
    cli(prog_name=os.path.basename(sys.argv[0]) if sys.argv[0].endswith("teachrl") else "python cli.py")


if __name__ == "__main__":
    main()
