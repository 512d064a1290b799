"""teachrl command line: ``python cli.py --help`` (also installed as ``teachrl``).

A thin shell over the library: options, friendly errors and printing; every loop and check lives in the library.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from curriculum.registry import TEACHERS, parse_teacher_params, teacher_class, teacher_params
from environments.registry import all_entries, describe_env, make_env
from students.config import (
    check_writable_dir,
    check_writable_file,
    format_seeds,
    parse_key_values,
    parse_seeds,
    parse_yaml_values,
    split_names,
)

console = Console()
HELP = {"help_option_names": ["-h", "--help"]}


class UserError(click.ClickException):
    """Bad user input: one clear line, exit code 2, no traceback."""

    exit_code = 2


@contextmanager
def user_errors(prefix: str = "", also: tuple[type[Exception], ...] = ()) -> Iterator[None]:
    """Turn the library's input errors (all ``ValueError``/``KeyError``/``TypeError``) into one line, exit 2."""
    try:
        yield
    except (KeyError, ValueError, TypeError, *also) as exc:
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


@click.group(context_settings=HELP)
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
        for p in teacher_params(cls) or [None]:
            console.print(f"    {p.name} = {p.default!r}  {escape(p.help)}" if p else "    (no parameters)", highlight=False)
    console.print("A user's own teacher: pass 'package.module:ClassName' wherever a teacher name is expected.")


@list_group.command("envs")
@click.option("--include", multiple=True, metavar="MODULE:ATTR", help="Also describe a user's environment by path.")
def list_envs(include: tuple[str, ...]) -> None:
    """Environments: task dimensions with bounds, default task, test sets, success rule."""
    for name in [entry.name for entry in all_entries()] + list(include):
        with user_errors(f"environment '{name}': ", also=(AttributeError,)):
            d = describe_env(name)
        kind = "RL environment" if d.trainable else "simulated student (teachers only)"
        console.print(f"[bold]{escape(d.name)}[/bold]  ({kind}{f', gymnasium id {d.gym_id}' if d.gym_id else ''})")
        sets = ", ".join(f"{n} ({k} tasks)" for n, k in d.test_sets.items()) or "-"
        for label, text in [("task", d.task_space), ("default task", d.default_task), ("test sets", sets)]:
            console.print(f"    {label}: {escape(text)}", highlight=False)
        console.print(f"    success: {escape(d.success_rule)}", highlight=False)
        console.print(f"    easy region (ACCEL's start): {escape(d.easy_region)}", highlight=False)
    console.print("A user's own environment: pass 'package.module:Factory' wherever an environment name is expected.")


@cli.command("simulate")
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="YAML file of these settings.")
@click.option("--teachers", help="Teacher names or module:Class paths [default: random,alp-gmm,covar-gmm,riac].")
@click.option("--episodes", type=click.IntRange(min=1), help="Episodes per run [default: 20000].")
@click.option("--seeds", help="Seeds: 0-4, 0,1,2 or 0-2,7 (as everywhere) [default: 0-2].")
@click.option("--dims", type=click.IntRange(min=1), help="Relevant task dimensions [default: 2].")
@click.option("--cells", type=click.IntRange(min=1), help="Bins per relevant dimension [default: 10].")
@click.option("--distractors", type=click.IntRange(min=0), help="Extra task dimensions that change nothing [default: 0].")
@click.option("--unlearnable", type=click.FloatRange(0.0, 1.0, max_open=True), help="Share of dim 0's bins that never learn.")
@click.option("--noise", type=click.FloatRange(min=0.0), help="Std of Gaussian noise on returns [default: 0].")
@click.option("--forgetting", type=click.FloatRange(min=0.0), help="Competence lost per episode by unpractised cells.")
@click.option("--teacher-param", multiple=True, metavar="TEACHER.PARAM=VALUE", help="A teacher's parameter (repeatable).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1), help="Parallel processes.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write the results here.")
def simulate_cmd(config_path: Path | None, teacher_param: tuple[str, ...], workers: int, json_path: Path | None, **given):
    """Compare teachers on the simulated student (no deep RL: seconds per run).

    Prints the % of cells mastered at 25/50/100% of the budget (mean ± std over seeds) and each teacher's own
    cost per episode (sample + update, in microseconds, excluding the student).
    """
    import json

    from students.simulate import SimulateConfig, parse_teacher_param_options, run_simulations

    with user_errors():
        if json_path is not None:  # refuse an unwritable --json before the simulation, not after it
            check_writable_file(json_path, "--json")
        config = SimulateConfig.load(config_path, given)
        if teacher_param:
            parsed = parse_teacher_param_options(teacher_param, config.teachers)
            config.teacher_params = {**config.teacher_params, **{k: v for k, v in parsed.items() if v}}
            config.check()
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
        try:
            json_path.parent.mkdir(parents=True, exist_ok=True)
            json_path.write_text(json.dumps(results.to_json(), indent=2))
        except OSError as exc:
            raise UserError(f"cannot write --json file {json_path}: {exc.strerror or exc}") from exc
        console.print(f"wrote {json_path}")


@cli.command()
@click.option("--env", "env_name", required=True, help="Environment name or module:Factory path (see list envs).")
@click.option("--teacher", required=True, help="Teacher name or module:Class path (see list teachers).")
@click.option("--student", default="ppo", show_default=True, help="SB3 algorithm: ppo, a2c, sac, td3 (tqc with sb3-contrib).")
@click.option("--steps", default=200000, show_default=True, type=click.IntRange(min=1), help="Environment steps.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0), help="The run's seed (every stream).")
@click.option("--n-envs", default=4, show_default=True, type=click.IntRange(min=1), help="Parallel sub-environments.")
@click.option("--subproc/--dummy", default=False, show_default=True, help="Sub-environments in subprocesses or in this one.")
@click.option("--device", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda"]))
@click.option("--teacher-param", multiple=True, metavar="PARAM=VALUE", help="Teacher parameter (repeatable).")
@click.option("--hp", multiple=True, metavar="KEY=VALUE", help="Student hyperparameter override, YAML value (repeatable).")
@click.option("--eval-every", default=10000, show_default=True, type=click.IntRange(min=1), help="Steps between evaluations.")
@click.option("--test-set", default="default", show_default=True, help="Test set to evaluate on.")
@click.option("--checkpoint-every", default=50000, show_default=True, type=click.IntRange(min=1), help="Checkpoint period.")
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
@click.option("--kick-coef", multiple=True, type=click.FloatRange(min=0), help="One, or one per expert [default: 1].")
@click.option("--kick-schedule", default="constant", show_default=True, help="constant, linear:N, exp:N, until-expert[:W].")
@click.option("--kick-value-coef", default=0.0, show_default=True, type=click.FloatRange(min=0), help="PPO/A2C value term.")
@click.option("--experiment", default="default", show_default=True, help="Experiment name under results/.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Run folder [default: results/EXPERIMENT/...].")
@click.option("--resume", is_flag=True, help="Continue the run in the folder from its last checkpoint.")
def run(teacher_param, hp, env_kwarg, kickstart, kick_coef, experiment, out, resume, **settings) -> None:
    """Train an SB3 student while a teacher chooses the task of every episode."""
    from students.run import RunConfig, check_run_dir, default_run_dir

    teacher = settings["teacher"]
    with user_errors():
        teacher_class(teacher)
        raw = parse_key_values(teacher_param, "--teacher-param")
        config = RunConfig(
            env=settings.pop("env_name"),
            teacher_params=parse_teacher_params({k.removeprefix(f"{teacher}."): v for k, v in raw.items()}, teacher),
            hp_overrides=parse_key_values(hp, "--hp"),
            env_kwargs=parse_yaml_values(env_kwarg, "--env-kwarg"),
            kickstart=list(kickstart),
            kick_coef=list(kick_coef) or [1.0],
            **settings,
        ).resolve()
        folder = out or default_run_dir(config, experiment)
        check_writable_dir(folder, "--out")
        check_run_dir(config, folder, resume)
    _train(config, folder, resume)


def _train(config, folder: Path, resume: bool) -> None:
    from students.run import train

    with progress_bar() as bar:
        task_id = bar.add_task(f"{config.teacher} -> {config.student} on {config.env}", total=config.steps)

        def report(timesteps: int, episodes: int, mastered: float | None) -> None:
            shown = "-" if mastered is None else f"{mastered:.1f}%"
            description = f"{config.teacher} -> {config.student}: {episodes} episodes, mastered {shown}"
            bar.update(task_id, completed=min(timesteps, config.steps), description=description)

        try:
            with user_errors():
                metrics = train(config, folder, resume=resume, progress=report, notify=console.print)
        except KeyboardInterrupt:
            console.print(f"interrupted: checkpoint saved in {folder / 'checkpoint'}; continue with --resume --out {folder}")
            raise SystemExit(130) from None
    final = metrics["final_eval"]
    console.print(
        f"done: {metrics['timesteps']} steps, {metrics['episodes_reported']} episodes; test set: "
        f"{final['mastered_pct']:.1f}% mastered, mean return {final['mean_return']:.2f} ({final['tasks']} tasks) -> {folder}",
        soft_wrap=True,
    )


@cli.command("compare")
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="YAML file of these settings.")
@click.option("--env", "env", default=None, help="Environment name or module:Factory path.")
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
def compare_cmd(config_path, teacher_param, hp, env_kwarg, workers, backend, ray_address, gpus_per_run, out, **given):
    """Compare teachers: every teacher x student x seed as an independent run, then a report.

    Re-running the same command skips finished runs and resumes interrupted ones. Exit status 1 when a run failed.
    """
    from students.compare import compare, load_compare_config
    from students.simulate import parse_teacher_param_options

    with user_errors():
        for key, parse in (("teachers", split_names), ("students", split_names), ("seeds", parse_seeds)):
            given[key] = parse(given[key]) if given[key] is not None else None
        given["hp"] = parse_key_values(hp, "--hp") or None
        given["env_kwargs"] = parse_yaml_values(env_kwarg, "--env-kwarg") or None
        config = load_compare_config(config_path, given)
        if teacher_param:
            parsed = parse_teacher_param_options(teacher_param, config.teachers)
            config.teacher_params = {**config.teacher_params, **{k: v for k, v in parsed.items() if v}}
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
    _report_folder(folder)
    if result.failed:
        for path, error in result.failed.items():
            console.print(f"[red]failed[/red] {path}: {escape(error)}", soft_wrap=True)
        console.print(f"{len(result.failed)} run(s) failed (error.txt and run.log in each folder); the others finished.")
        raise SystemExit(1)


def _report_folder(folder: Path) -> None:
    from students.report import TERMINAL_COLUMNS, terminal_tables, write_report

    with user_errors():
        _, rows, _ = write_report(folder)
    for title, shown in terminal_tables(rows):
        print_table(title, shown, TERMINAL_COLUMNS)
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
    from students.run import load_run

    with user_errors():
        config, model = load_run(run_dir)
        tasks = make_env(config.env, **config.env_kwargs).test_set(test_set or config.test_set)
    seed = Streams(config.seed).evaluation if seed is None else seed
    policy = lambda obs: model.predict(obs, deterministic=True)[0]  # noqa: E731
    result = evaluate(policy, config.env, tasks, seed, config.env_kwargs, episodes)
    console.print(
        f"{run_dir}: {result.mastered_pct:.1f}% of {len(result.results)} test episodes mastered, "
        f"mean return {result.mean_return:.2f} ({test_set or config.test_set} test set)",
        soft_wrap=True,
    )


@cli.command()
@click.option("--env", "env_name", required=True, help="Environment name or module:Factory path (see list envs).")
@click.option("--task", "task_text", default="", help="NAME=VALUE,... (missing dimensions keep the default task).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="A .png or .gif.")
@click.option("--policy", default="random", show_default=True, help="random, zero, or a saved Stable-Baselines3 model (.zip).")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the level, the episode and the random policy.")
@click.option("--steps", default=300, show_default=True, type=click.IntRange(min=1), help="Steps at most.")
@click.option("--every", default=4, show_default=True, type=click.IntRange(min=1), help="Keep one frame every N steps (GIF).")
def render(env_name: str, task_text: str, out: Path, policy: str, seed: int, steps: int, every: int) -> None:
    """Picture what a task means: play one episode on it and save a PNG or GIF."""
    from environments.render import parse_task, random_policy, rollout_frames, save_frames, zero_policy
    from students.kickstart import policy_for_env

    if out.suffix.lower() not in (".png", ".gif"):
        raise UserError(f"--out must end in .png or .gif, got '{out.name}'")
    with user_errors():
        check_writable_file(out, "--out")
        try:
            env = make_env(env_name, render_mode="rgb_array")
        except TypeError as exc:
            raise ValueError(f"environment '{env_name}' cannot render: {exc}") from None
        task = parse_task(task_text, env)
        named = {"random": lambda: random_policy(env, seed), "zero": lambda: zero_policy(env)}
        try:
            act = named[policy]() if policy in named else policy_for_env(Path(policy), env)
        except ValueError as exc:
            raise ValueError(f"--policy: {exc}; or give random or zero") from None
    frames, episode_return, _ = rollout_frames(env, act, task, seed=seed, max_steps=steps, every=every)
    env.close()
    save_frames(frames, out)
    console.print(
        f"wrote {out} ({len(frames)} frame(s); episode return {episode_return:.1f}; task {env.task_space.to_dict(task)})"
    )


def main() -> None:
    """Entry point of the ``teachrl`` console script."""
    cli(prog_name=os.path.basename(sys.argv[0]) if sys.argv[0].endswith("teachrl") else "python cli.py")


if __name__ == "__main__":
    main()
