"""teachrl command line: ``python cli.py --help`` (also installed as ``teachrl``).

A thin shell over the library: options, friendly errors and printing; every loop and check lives in the library.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from curriculum.registry import TEACHERS, parse_teacher_params, teacher_class, teacher_params
from environments.registry import all_entries, describe_env, make_env
from students.run.checkpoints import disk_full
from students.experiments.compare import CompareConfig
from students.run.distill import DistillConfig
from students.config import check_writable_dir, check_writable_file, format_seeds, parse_key_values, parse_yaml_values
from students.run.train import ResolvedRun, RunConfig
from students.experiments.simulate import SimulateConfig
from students.run import layout

console = Console()
CONFIG_HELP = "YAML file of these settings, or a shipped config by name (demo, point_mass, ...: experiments/*.yaml)."


class UserError(click.ClickException):
    """Bad user input: one clear line, exit code 2, no traceback."""

    exit_code = 2


@contextmanager
def user_errors(prefix: str = "", also: tuple[type[Exception], ...] = ()) -> Iterator[None]:
    """Turn the library's input errors (all ``ValueError``/``KeyError``/``TypeError``) into one line, exit 2."""
    caught: tuple[type[Exception], ...] = (KeyError, ValueError, TypeError, *also)
    try:
        yield
    except caught as exc:
        text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)  # no quotes around a KeyError's
        raise UserError(prefix + " ".join(str(text).split())) from None


def progress_bar(transient: bool = False, count: bool = True) -> Progress:
    """A progress bar on stderr: description, bar, done/total, elapsed and remaining time."""
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    if not count:
        columns = [*columns[:2], TimeElapsedColumn(), TextColumn("ETA")]
    return Progress(*columns, TimeRemainingColumn(), console=Console(stderr=True), transient=transient)


def print_table(title: str, rows: list[dict[str, str]], headers: dict[str, str] | None = None) -> None:
    """Rows of strings as a table (``headers``: which keys to show, under which heading; ``**x**`` in bold)."""
    headers = headers or {key: key for key in rows[0]}
    table = Table(title=title)
    keys = [key for key in headers if key in rows[0]]
    for key in keys:
        table.add_column(headers[key], no_wrap=True, justify="left" if key == keys[0] else "right")
    for row in rows:
        table.add_row(*(f"[bold]{escape(row[k].strip('*'))}[/bold]" if "**" in row[k] else row[k] for k in keys))
    console.print(table)


def setting_options(settings_class: type) -> Any:
    """One option per setting of a settings dataclass that carries help (``students.config.setting``): one schema
    for options and config-file keys. An option not given is ``None`` (the dataclass's default, or a config file's
    value, stands); a setting without a default is a required option unless a config file may give it."""

    def decorate(command: Any) -> Any:
        for spec in reversed([f for f in fields(settings_class) if "help" in f.metadata]):
            meta, flag = spec.metadata, "--" + spec.name.replace("_", "-")
            default = None if spec.default is MISSING else spec.default
            shown = meta.get("shown", default if default not in (None, "") else None)
            kwargs: dict[str, Any] = {"help": meta["help"] + (f" [default: {shown}]" if shown is not None else "")}
            if isinstance(default, bool):  # default=None: a switch not given leaves the setting's own default
                flag, kwargs["default"] = f"{flag}/--no-{flag[2:]}", None
            elif meta.get("multiple"):
                kwargs.update(multiple=True, type=meta["type"], default=None)
            else:
                kwargs.update(type=meta.get("type", type(default) if default not in (None, "") else str))
            required = spec.default is MISSING and spec.default_factory is MISSING and not meta.get("optional")
            command = click.option(flag, *meta.get("aliases", ()), spec.name, required=required, **kwargs)(command)
        return command

    return decorate


def key_value_options(command: Any) -> Any:
    """``--teacher-param``, ``--hp`` and ``--env-kwarg``: repeatable ``KEY=VALUE`` options (YAML values)."""
    command = click.option("--env-kwarg", multiple=True, metavar="KEY=VALUE", help="Env argument, e.g. history=4.")(command)
    command = click.option("--hp", multiple=True, metavar="KEY=VALUE", help="Student hyperparameter: gamma=0.9.")(command)
    help_text = "Teacher parameter, e.g. alp-gmm.fit_rate=150 (repeatable)."
    return click.option("--teacher-param", multiple=True, metavar="[TEACHER.]PARAM=VALUE", help=help_text)(command)


def threads_option(command: Any) -> Any:
    """``--threads``: the torch and BLAS threads of this process (not a setting of the run)."""
    help_text = "Torch and BLAS threads of this process [default: 1 on the CPU, torch's own with CUDA]."
    return click.option("--threads", type=click.IntRange(min=1), default=None, help=help_text)(command)


def limit_threads(threads: int | None, device: str) -> None:
    """The CLI's rule for its own process (library code changes no global state): ``threads`` when given; else
    one thread for a student on the CPU (teachrl's small networks lose more to thread hand-offs than they gain:
    bench/threads.py), and torch's own choice when CUDA trains it."""
    import torch
    from threadpoolctl import threadpool_limits

    cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if threads is None and cuda:
        return
    torch.set_num_threads(threads or 1)
    threadpool_limits(limits=threads or 1)  # numpy's and scikit-learn's BLAS/OpenMP pools, in this process


def given(values: dict[str, Any]) -> dict[str, Any]:
    """The options a user gave (``None`` and empty repeatable options left out; repeatable ones as lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items() if v is not None and v != ()}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="teachrl", message="%(prog)s %(version)s")
def cli() -> None:
    """teachrl: automatic curriculum learning for Stable-Baselines3 students."""
    # a user's module:Attr (env, teacher) imports from the working folder, as with `python -m` (appended: a user's
    # file never shadows teachrl's own packages)
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())


@cli.group("list")
def list_group() -> None:
    """List what is available."""


@list_group.command("teachers")
def list_teachers() -> None:
    """Teacher algorithms with their parameters, defaults and help."""
    for name, cls in TEACHERS.items():
        first_line = (cls.__doc__ or "").strip().splitlines()[0]
        console.print(f"[bold]{name}[/bold]  ({cls.__name__}): {escape(first_line)}")
        kinds = " or ".join(kind.__name__.removesuffix("TaskSpace").lower() for kind in cls.supported_spaces)
        console.print(f"    learns from: {escape(cls.needs)}; task spaces: {kinds}", highlight=False)
        params = teacher_params(cls)
        for p in params:
            console.print(f"    {p.name} = {p.default!r}  {escape(p.help)}", highlight=False)
        if not params:
            console.print("    (no parameters)", highlight=False)
    console.print("A user's own teacher: pass 'package.module:ClassName' wherever a teacher name is expected.")


@list_group.command("envs")
@click.option("--include", multiple=True, metavar="MODULE:ATTR", help="Also describe a user's environment by path.")
def list_envs(include: tuple[str, ...]) -> None:
    """Environments: task dimensions with bounds, default task, test sets, success rule."""
    for name in [*include, *(entry.name for entry in all_entries())]:  # the user's first
        with user_errors(f"environment '{name}': ", also=(AttributeError,)):
            d = describe_env(name)
        kind = "RL environment" if d.trainable else "simulated student (teachers only)"
        console.print(f"[bold]{escape(d.name)}[/bold]  ({kind}{f', gymnasium id {d.gym_id}' if d.gym_id else ''})")
        sets = ", ".join(f"{n} ({k} tasks)" for n, k in d.test_sets.items()) or "-"
        lines = [("task", d.task_space), ("default task", d.default_task), ("test sets", sets), ("success", d.success_rule)]
        for label, text in [*lines, ("easy region (ACCEL's start)", d.easy_region)]:
            console.print(f"    {label}: {escape(text)}", highlight=False)
    console.print("A user's own environment: pass 'package.module:Factory' wherever an environment name is expected.")


@cli.command("simulate")
@click.option("--config", "config_path", type=click.Path(path_type=Path), help=CONFIG_HELP)
@setting_options(SimulateConfig)
@click.option("--teacher-param", multiple=True, metavar="TEACHER.PARAM=VALUE", help="A teacher's parameter (repeatable).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1), help="Parallel processes.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write the results here.")
def simulate_cmd(
    config_path: Path | None, teacher_param: tuple[str, ...], workers: int, json_path: Path | None, **options: Any
) -> None:
    """Compare teachers on the simulated student (no deep RL: seconds per run).

    Prints the % of cells mastered at 25/50/100% of the budget (mean ± std over seeds) and each teacher's own
    cost per episode (sample + update, in microseconds, excluding the student).
    """
    from students.config import add_teacher_param_options
    from students.experiments.simulate import run_simulations

    with user_errors():
        if json_path is not None:  # refuse an unwritable --json before the simulation, not after it
            check_writable_file(json_path, "--json")
        config = SimulateConfig.load(config_path, options)
        add_teacher_param_options(config, teacher_param).check()
    with progress_bar(transient=True) as bar:
        job = bar.add_task("simulating", total=len(config.jobs()))
        results = run_simulations(config, workers, lambda label, done, _: bar.update(job, completed=done, description=label))
    title = (
        f"Simulated student: {config.dims}-D, {config.cells} cells/dim, {config.episodes} episodes, seeds "
        f"{format_seeds(config.seeds)}: % cells mastered, mean ± std (ddof 1)"
    )
    print_table(title, results.rows())
    console.print("(teacher cost is wall time and varies between runs; mastered % is deterministic per seed)", style="dim")
    if json_path is not None:
        with user_errors():
            results.write_json(json_path)
        console.print(f"wrote {json_path}")


@cli.command()
@setting_options(RunConfig)
@key_value_options
@click.option("--obs", type=click.Choice(["plain", "privileged"]), help="privileged: the {student, privileged} dict.")
@click.option("--experiment", default="default", show_default=True, help="Experiment name under results/.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Run folder [default: results/EXPERIMENT/...].")
@click.option("--resume", is_flag=True, help="Continue the run in the folder from its last checkpoint.")
@threads_option
def run(
    teacher_param: tuple[str, ...],
    hp: tuple[str, ...],
    env_kwarg: tuple[str, ...],
    obs: str | None,
    experiment: str,
    out: Path | None,
    resume: bool,
    threads: int | None,
    **settings: Any,
) -> None:
    """Train an SB3 student while a teacher chooses the task of every episode.

    ``--resume --out DIR`` continues the run in DIR with the settings of its config.yaml; options given with it
    must match them (a larger --steps extends the run).
    """
    from students.run.train import check_run_dir, default_run_dir, saved_settings

    with user_errors():
        asked = given(settings)
        if teacher_param:
            asked["teacher_params"] = parse_key_values(teacher_param, "--teacher-param")
        if hp:
            asked["hp_overrides"] = parse_key_values(hp, "--hp")
        if env_kwarg or obs:
            env_kwargs = parse_yaml_values(env_kwarg, "--env-kwarg")
            asked["env_kwargs"] = {**env_kwargs, **({"observation_mode": obs} if obs else {})}
        saved = saved_settings(out) if resume and out is not None and (out / layout.CONFIG).exists() else {}
        asked = {**saved, **asked}
        missing = [f"--{key}" for key in ("env", "teacher") if key not in asked]
        if missing and resume and out is not None:
            raise click.UsageError(
                f"--resume: '{out}' holds no run to resume (no {layout.CONFIG}); start one with --env and --teacher"
            )
        if missing:
            raise click.UsageError(f"Missing option {' and '.join(repr(m) for m in missing)} (or --resume --out DIR of a run)")
        teacher_class(asked["teacher"])
        if teacher_param:  # typed against the teacher's parameters
            asked["teacher_params"] = parse_teacher_params(asked["teacher_params"], asked["teacher"])
        resolved = RunConfig(**asked).resolve()
        folder = out or default_run_dir(resolved.config, experiment)
        check_writable_dir(folder, "--out")
        check_run_dir(resolved.config, folder, resume)
    limit_threads(threads, resolved.config.device)
    _train(resolved, folder, resume)


def with_progress(label: str, total: int, folder: Path, work: Any) -> dict[str, Any]:
    """``work(report)`` under a progress bar; a Ctrl-C ends with how to resume. Prints and returns its metrics."""
    with progress_bar() as bar:
        task_id = bar.add_task(label, total=total)

        def report(steps: int, episodes: int, mastered: float | None) -> None:
            shown = "-" if mastered is None else f"{mastered:.1f}%"
            bar.update(task_id, completed=min(steps, total), description=f"{label}: {episodes} episodes, mastered {shown}")

        try:
            with user_errors():
                metrics = work(report)
        except OSError as exc:
            message = disk_full(exc, folder)
            if message is None:
                raise
            raise UserError(message) from None
        except KeyboardInterrupt:
            saved = folder / layout.CHECKPOINT
            if saved.is_dir():
                console.print(f"interrupted: checkpoint saved in {saved}; continue with --resume --out {folder}")
            else:  # stopped before its first rollout ended (CLUTR's pretraining): there was nothing to keep yet
                console.print(f"interrupted before the first checkpoint; --resume --out {folder} starts it again from step 0")
            raise SystemExit(130) from None
    final = metrics["final_eval"]
    console.print(
        f"done: {metrics['timesteps']} steps, {metrics['episodes_reported']} episodes; test set: "
        f"{final['mastered_pct']:.1f}% mastered, mean return {final['mean_return']:.2f} ({final['tasks']} tasks) -> {folder}",
        soft_wrap=True,
    )
    return metrics


def _train(resolved: ResolvedRun, folder: Path, resume: bool) -> None:
    from students.run.train import train

    config = resolved.config
    work = lambda report: train(resolved, folder, resume, report, console.print)  # noqa: E731
    with_progress(f"{config.teacher} -> {config.student}", config.steps, folder, work)


@cli.command("compare")
@click.option("--config", "config_path", type=click.Path(path_type=Path), help=CONFIG_HELP)
@setting_options(CompareConfig)
@key_value_options
@click.option("--workers", default=None, type=click.IntRange(min=1), help="Runs at a time [default: CPU cores].")
@click.option("--backend", default="local", show_default=True, type=click.Choice(["local", "ray"]))
@click.option("--ray-address", default=None, help="Ray cluster: auto or HOST:PORT (default: start a local Ray).")
@click.option("--gpus-per-run", default=0.0, show_default=True, type=click.FloatRange(min=0), help="GPUs per run (Ray).")
@click.option("--out", "out", default=None, type=click.Path(file_okay=False, path_type=Path), help="Experiment folder.")
def compare_cmd(
    config_path: Path | None,
    teacher_param: tuple[str, ...],
    hp: tuple[str, ...],
    env_kwarg: tuple[str, ...],
    workers: int | None,
    backend: str,
    ray_address: str | None,
    gpus_per_run: float,
    out: Path | None,
    **options: Any,
) -> None:
    """Compare teachers: every teacher x student x seed as an independent run, then a report.

    Re-running the same command skips finished runs and resumes interrupted ones. Exit status 1 when a run failed.
    """
    from students.experiments.compare import compare, load_compare_config
    from students.config import add_teacher_param_options

    with user_errors():
        options["hp"] = parse_key_values(hp, "--hp") or None
        options["env_kwargs"] = parse_yaml_values(env_kwarg, "--env-kwarg") or None
        config = load_compare_config(config_path, options)
        add_teacher_param_options(config, teacher_param)
        folder = out or Path("results") / f"compare_{config.env.replace(':', '_').replace('/', '_')}"
        check_writable_dir(folder, "--out")
        with progress_bar(count=False) as bar:
            task_id = bar.add_task("preparing", total=None)

            def started(pending: int, done: int, total_steps: int) -> None:
                bar.update(task_id, total=max(total_steps, 1))
                console.print(f"{pending} run(s) to execute, {done} already finished -> {folder}", soft_wrap=True)

            def progress(steps_done: int, finished: int, failed: int, running: int) -> None:
                description = f"runs: {finished} done, {failed} failed, {running} running"
                bar.update(task_id, completed=steps_done, description=description)

            try:
                result = compare(config, folder, workers, backend, ray_address, gpus_per_run, progress, started)
            except KeyboardInterrupt:
                console.print(f"interrupted: runs saved checkpoints; run the same command again to resume ({folder})")
                raise SystemExit(130) from None
    try:
        _report_folder(folder)
    except OSError as exc:  # a full disk: the runs' results are kept; say so and still list the failures
        console.print(f"[red]no report[/red]: {exc.strerror or exc} ({exc.filename or folder}); run `report {folder}` later")
        result.failed = result.failed or {folder: "the report could not be written"}
    if result.failed:
        for path, error in result.failed.items():
            console.print(f"[red]failed[/red] {path}: {escape(error)}", soft_wrap=True)
        console.print(f"{len(result.failed)} run(s) failed (error.txt and run.log in each folder); the others finished.")
        raise SystemExit(1)


def _report_folder(folder: Path, cvar_alpha: float = 0.1) -> None:
    from students.analysis.report import TERMINAL_COLUMNS, terminal_tables, write_report

    with user_errors():
        warn = lambda line: console.print(f"[yellow]warning[/yellow] {escape(line)}", soft_wrap=True)  # noqa: E731
        summary, _, _ = write_report(folder, cvar_alpha, warn)
    for title, shown in terminal_tables(summary):
        print_table(title, shown, TERMINAL_COLUMNS)
    console.print(
        f"report: {folder / 'report.md'}, {folder / 'summary.csv'}; TensorBoard: tensorboard --logdir {folder}", soft_wrap=True
    )


@cli.command("report")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--cvar-alpha", default=0.1, show_default=True, type=click.FloatRange(0, 1, min_open=True), help="Worst share.")
def report_cmd(folder: Path, cvar_alpha: float) -> None:
    """Statistics, plots and report.md of a comparison folder (also written at the end of compare)."""
    if not folder.is_dir():
        raise UserError(f"'{folder}' is not a folder")
    _report_folder(folder, cvar_alpha)


@cli.command("reproduce")
@click.argument("name", required=False)
@click.option("--list", "show_list", is_flag=True, help="Name every reproduction, with its claim, source and wall time.")
@click.option("--seeds", default=None, help="Seeds: 0-4, 0,1,2 or 0-2,7 [default: the reproduction's].")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(min=1), help="Runs at a time.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), help="[default: results/reproduce/NAME]")
@click.option("--check-only", is_flag=True, help="Compare a finished rerun in --out with the reference; run nothing.")
def reproduce_cmd(
    name: str | None, show_list: bool, seeds: str | None, workers: int, out: Path | None, check_only: bool
) -> None:
    """Rerun a published table of the project and set it beside the committed reference and the paper's claim.

    Resumable: the same command again skips finished runs. Prints, row by row, our mean against the reference's
    95% interval, and whether each claim holds on the rerun and on the reference.
    """
    from students.experiments.reproduce import REPRODUCTIONS, ReproduceError, check, reproduction, rerun

    if show_list or name is None:
        if name is not None:
            raise UserError("give a reproduction's name or --list, not both")
        for r in REPRODUCTIONS.values():
            console.print(f"[bold]{r.name}[/bold] (about {r.minutes} min on 2 cores): {r.claim}")
            console.print(f"    source: {r.source}", soft_wrap=True)
        return
    with user_errors(also=(ReproduceError,)):
        item = reproduction(name)
        folder = out or Path("results") / "reproduce" / item.name
        item.command(folder, workers, seeds)  # refuses options it does not take, before anything is written
        if not check_only:
            check_writable_dir(folder, "--out")
            console.print(f"{item.name}: {item.claim} (about {item.minutes} min on 2 cores) -> {folder}", soft_wrap=True)
            rerun(item, folder, workers, seeds)
        rows, claims = check(item, folder)

    def cell(stat: Any) -> str:
        if stat is None:
            return "-"
        return f"{stat.mean:.2f}" if math.isnan(stat.std) else f"{stat.mean:.1f} ± {stat.std:.1f}"  # a ratio: no std

    shown = [
        {
            "row": r.label,
            "ours": cell(r.ours),
            "reference": "-" if r.reference is None else f"{cell(r.reference)} (95% ± {r.reference.ci95:.1f})",
            "inside": {True: "inside", False: "OUTSIDE", None: "-"}[r.inside],
        }
        for r in rows
    ]
    print_table(f"{item.name}: {item.metric}, ours against the committed reference ({item.reference})", shown)
    verdict = {True: "agrees", False: "DISAGREES", None: "-"}
    print_table(
        f"{item.name}: the claim ({item.source})",
        [{"claim": c.text, "ours": verdict[o], "reference": verdict[r]} for c, o, r in claims],
    )


@cli.command("eval")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--test-set", default=None, help="Test set (default: the run's).")
@click.option(
    "--episodes",
    default=None,
    type=click.IntRange(min=1),
    help="Episodes per test task [default: 1], or per named level with --named [default: 100, as dcd's].",
)
@click.option("--seed", default=None, type=click.IntRange(min=0), help="Base seed of the episodes [default: the run's].")
@click.option("--named", is_flag=True, help="Zero-shot on the env's named test levels (the maze: dcd's), stochastic actions.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object instead of a sentence.")
def eval_cmd(
    run_dir: Path, test_set: str | None, episodes: int | None, seed: int | None, named: bool, as_json: bool
) -> None:
    """Evaluate a saved run's student on a test set (by default with the episodes its own evaluations play), or
    with --named on the environment's hand-designed levels, as dcd evaluates (its actions sampled, 100 episodes)."""
    from curriculum.seeding import Streams
    from students.loop.evaluation import evaluate
    from students.policies import space_mismatch
    from students.run.train import load_run

    with user_errors():
        config, model = load_run(run_dir)
        env = make_env(config.env, **config.env_kwargs)
        if named and test_set:
            raise ValueError("give --test-set or --named, not both")
        groups = env.unwrapped.named_levels() if named else {}
        if named and not groups:
            raise ValueError(f"--named: environment '{config.env}' has no named test levels (the maze has)")
        tasks = env.test_set(test_set or config.test_set)
        problem = space_mismatch(model, env, run_dir)
        if problem:
            raise UserError(f"{problem} (the run's config.yaml names env '{config.env}' with {config.env_kwargs})")
        env.close()
    seed = Streams(config.seed).evaluation if seed is None else seed
    if named:
        _eval_named(run_dir, model, config, episodes or 100, seed, as_json)
        return
    episodes = episodes or 1
    policy = lambda obs: model.predict(obs, deterministic=True)[0]  # noqa: E731
    result = evaluate(policy, config.env, tasks, seed, config.env_kwargs, episodes)
    if as_json:
        summary = {"run": str(run_dir), "test_set": test_set or config.test_set, "episodes_per_task": episodes, "seed": seed}
        summary.update(mastered_pct=result.mastered_pct, mean_return=result.mean_return, tasks=len(tasks))
        click.echo(json.dumps(summary))
        return
    console.print(
        f"{run_dir}: {result.mastered_pct:.1f}% of {len(result.results)} test episodes mastered, "
        f"mean return {result.mean_return:.2f} ({test_set or config.test_set} test set)",
        soft_wrap=True,
    )


def _eval_named(run_dir: Path, model: Any, config: Any, episodes: int, seed: int, as_json: bool) -> None:
    """``eval --named``: the solved rate and mean return per named group of levels, and their mean."""
    from students.run.train import named_evaluation

    results = named_evaluation(config, model, seed, episodes)
    mean_solved = sum(r.solved_rate for r in results.values()) / len(results)
    if as_json:
        named = {name: vars(result) for name, result in results.items()}  # solved_rate, mean_return, episodes
        click.echo(json.dumps({"run": str(run_dir), "named": named, "mean_solved_rate": mean_solved, "seed": seed}))
        return
    rows = [
        {"level": name, "solved %": f"{100 * r.solved_rate:.1f}", "mean return": f"{r.mean_return:.3f}"}
        | {"episodes": str(r.episodes)}
        for name, r in results.items()
    ]
    rows.append({"level": "**mean**", "solved %": f"{100 * mean_solved:.1f}", "mean return": "", "episodes": ""})
    title = f"{run_dir}: zero-shot on {config.env}'s named levels ({episodes} episodes per level, sampled actions)"
    print_table(title, rows)


@cli.command()
@click.option("--env", "env_name", required=True, help="Environment name or module:Factory path (see list envs).")
@click.option("--task", "task_text", default="", help="NAME=VALUE,... (missing dimensions keep the default task).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="A .png or .gif.")
@click.option("--policy", default="random", show_default=True, help="random, zero, or a saved Stable-Baselines3 model (.zip).")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the level, the episode and the random policy.")
@click.option("--steps", default=300, show_default=True, type=click.IntRange(min=1), help="Steps at most.")
@click.option("--every", default=4, show_default=True, type=click.IntRange(min=1), help="Keep one frame every N steps (GIF).")
@click.option("--env-kwarg", multiple=True, metavar="KEY=VALUE", help="Env argument [default: the policy's run's].")
@click.option("--level", "level_text", default="", help="A maze level to play: its text, or a named maze (NAME or NAME:K).")
def render(
    env_name: str,
    task_text: str,
    out: Path,
    policy: str,
    seed: int,
    steps: int,
    every: int,
    env_kwarg: tuple[str, ...],
    level_text: str,
) -> None:
    """Picture what a task means: play one episode on it and save a PNG or GIF.

    A policy from a run folder meets the environment its run trained on (the run's env_kwargs: a privileged view,
    a history); --env-kwarg adds to them or overrides them. --level plays a structured level itself (the maze:
    a level's text, or one of the named test mazes, in a maze of its size with its step limit).
    """
    from environments.render import parse_task, random_policy, rollout_frames, save_frames, zero_policy
    from students.policies import policy_for_env
    from students.run.train import model_env_kwargs

    if out.suffix.lower() not in (".png", ".gif"):
        raise UserError(f"--out must end in .png or .gif, got '{out.name}'")
    with user_errors():
        check_writable_file(out, "--out")
        level, level_kwargs = _render_level(env_name, level_text)
        env_kwargs = {
            **({} if policy in ("random", "zero") else model_env_kwargs(Path(policy))),
            **level_kwargs,
            **parse_yaml_values(env_kwarg, "--env-kwarg"),
        }
        try:
            env = make_env(env_name, render_mode="rgb_array", **env_kwargs)
        except TypeError as exc:
            raise ValueError(f"environment '{env_name}' cannot render: {exc}") from None
        if level is not None and task_text:
            raise ValueError("give --task or --level, not both (a level set itself holds its task)")
        task = parse_task(task_text, env) if level is None else None
        named = {"random": lambda: random_policy(env, seed), "zero": lambda: zero_policy(env)}
        try:
            act = named[policy]() if policy in named else policy_for_env(Path(policy), env)
        except ValueError as exc:
            raise ValueError(f"--policy: {exc}; or give random or zero") from None
    frames, episode_return, _ = rollout_frames(env, act, task, seed=seed, max_steps=steps, every=every, level=level)
    env.close()
    save_frames(frames, out)
    shown = f"level {level.text}" if level is not None else f"task {env.task_space.to_dict(task)}"
    console.print(f"wrote {out} ({len(frames)} frame(s); episode return {episode_return:.1f}; {shown})")


def _render_level(env_name: str, text: str) -> tuple[Any, dict[str, Any]]:
    """``--level``: the level (``None`` when not given) and the maze settings it needs (its size; a named maze's
    step limit).

    :raises ValueError: an env without structured levels, an unknown name or a bad level text
    """
    if not text:
        return None, {}
    from environments.maze import level_kwargs
    from environments.maze_levels import MazeLevel

    probe = make_env(env_name)
    structured, named = probe.unwrapped.structured_levels, probe.unwrapped.named_levels()
    probe.close()
    if not structured:
        raise ValueError(f"--level: environment '{env_name}' has no structured levels (the maze has)")
    name, _, index = text.partition(":")
    if name in named:
        levels, kwargs = named[name]
        if not (index or "0").isdigit() or int(index or 0) >= len(levels):
            raise ValueError(f"--level {text}: {name} has levels 0-{len(levels) - 1}")
        return levels[int(index or 0)], kwargs
    if "/" not in text:
        raise ValueError(f"--level {text}: not a level's text nor a named maze; valid names: {', '.join(named)}")
    level = MazeLevel.parse(text)
    return level, level_kwargs(level)


@cli.command("distill")
@click.option("--config", "config_path", type=click.Path(path_type=Path), help=CONFIG_HELP)
@setting_options(DistillConfig)
@key_value_options
@click.option("--experiment", default="default", show_default=True, help="Experiment name under results/.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Run folder [default: results/EXPERIMENT/...].")
@click.option("--resume", is_flag=True, help="Continue the distillation in the folder from its last checkpoint.")
@threads_option
def distill_cmd(
    config_path: Path | None,
    teacher_param: tuple[str, ...],
    hp: tuple[str, ...],
    env_kwarg: tuple[str, ...],
    experiment: str,
    out: Path | None,
    resume: bool,
    threads: int | None,
    **options: Any,
) -> None:
    """Distil a privileged expert into a student that reads its own sensors (DAgger; see students/run/distill.py).

    ``--resume --out DIR`` continues the distillation in DIR with the settings of its distill.yaml.
    """
    from students.run.distill import distill, finetune_plan, load_distill_config
    from students.run.train import default_run_dir

    if resume and out is not None and config_path is None and (out / layout.DISTILL).is_file():
        config_path = out / layout.DISTILL  # the run's own settings; options given must match them
    with user_errors():
        options["teacher_params"] = parse_key_values(teacher_param, "--teacher-param") or None
        options["hp"] = parse_yaml_values(hp, "--hp") or None
        options["env_kwargs"] = parse_yaml_values(env_kwarg, "--env-kwarg") or None
        resolved = load_distill_config(config_path, options)
        config = resolved.config
        folder = out or default_run_dir(resolved.run_config(), experiment)
        check_writable_dir(folder, "--out")
        tuned = finetune_plan(resolved, folder, out is None, resume) if config.finetune_steps else None
    limit_threads(threads, config.device)
    metrics = with_progress(
        "dagger", config.steps, folder, lambda report: distill(resolved, folder, resume, report, console.print)
    )
    console.print(f"{100 * metrics['distill']['expert_action_share']:.0f}% of the executed actions were the expert's")
    if tuned is not None:
        _train(tuned[0], tuned[1], resume and (tuned[1] / layout.CHECKPOINT).exists())


def main() -> None:
    """Entry point of the ``teachrl`` console script."""
    cli(prog_name=os.path.basename(sys.argv[0]) if sys.argv[0].endswith("teachrl") else "python cli.py")


if __name__ == "__main__":
    main()
