"""Reports of a comparison folder: statistics over seeds, significance against ``random``, learning curves.

For each environment and student, per teacher over its seeds: final test-set mastered % and mean return (mean, std
with ddof 1, and the half-width of a 95% t confidence interval), the area under the mastered-% curve (as the mean
mastered % over the evaluated part of training, trapezoidal rule), and Welch's t-test p-value of the final mastered %
and return against the ``random`` teacher. Written as ``report.md``, ``summary.csv``, ``runs.csv`` (one row per
run: the seeds behind each mean) and one ``<env>_<student>_curves.png`` per environment and student.

Runs are pooled over seeds only when they are comparable: same experiment folder and same settings (steps, sub-
environments, evaluation period, test set, hyperparameter overrides, environment arguments). Runs that differ in any
of these form separate groups, each reported on its own under a heading that names its settings.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from scipy import integrate, stats
from students.run import layout

BASELINE = "random"
PER_TASK = ("returns", "successes", "named", "tasks")  # a run's per-task lists, kept out of runs.csv


class ReportError(ValueError):
    """A folder with no finished run to report on."""


#: the key of one table: runs in it are comparable (see the module docstring)
GROUP = ["env", "student", "group"]


@dataclass
class Collected:
    runs: pd.DataFrame  # one row per finished run: env, teacher, student, group, seed, mastered_pct, mean_return, auc
    curves: pd.DataFrame  # one row per run and evaluation: env, teacher, student, group, seed, timesteps, mastered_pct, ...
    failed: dict[str, str]  # run folder -> last line of its error


def settings_label(config: dict[str, Any], experiment: str) -> str:
    """What makes runs comparable, in words: ``"demo: 60000 steps, 4 envs, eval every 10000"``."""
    unit = BUDGET_UNITS.get(config.get("budget", "env-steps"), "steps")
    parts = [f"{config['steps']} {unit}"] if "steps" in config else []
    parts += [f"{config['n_envs']} envs"] if "n_envs" in config else []
    parts += [f"eval every {config['eval_every']}"] if "eval_every" in config else []
    if config.get("test_set", "default") != "default":
        parts.append(f"test set {config['test_set']}")
    for key, name in (("hp_overrides", "hp"), ("env_kwargs", "env")):
        if config.get(key):
            parts.append(f"{name} " + " ".join(f"{k}={v}" for k, v in sorted(config[key].items())))
    return ": ".join(filter(None, [experiment, ", ".join(parts)])) or "runs"


def mean_ci(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, std with ddof 1, half-width of the t confidence interval); std and half-width are NaN for one value."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    if n == 0:
        return math.nan, math.nan, math.nan
    if n == 1:
        return float(values[0]), math.nan, math.nan
    std = float(values.std(ddof=1))
    return float(values.mean()), std, float(stats.t.ppf(0.5 + level / 2, n - 1) * std / math.sqrt(n))


def welch_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided Welch's t-test p-value (NaN with fewer than two values on a side, or no variance at all)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or len(b) < 2 or (a.std() == 0 and b.std() == 0):
        return math.nan
    with warnings.catch_warnings():  # scipy warns about precision when the values are nearly identical
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def curve_area(timesteps: np.ndarray, values: np.ndarray) -> float:
    """Mean of a curve over the evaluated steps (trapezoidal area / span); the value itself for one point."""
    if len(timesteps) == 1:
        return float(values[0])
    return float(integrate.trapezoid(values, timesteps) / (timesteps[-1] - timesteps[0]))


def collect(out: Path, warn: Callable[[str], None] | None = None) -> Collected:
    """Read every run folder under ``out`` (finished runs, their evaluation records, failures). A run whose files
    cannot be read is left out with one line naming the run and the file (``warn``, and the report's failed
    runs); the others are reported."""
    out = Path(out)
    rows, curves, failed = [], [], {}
    for config_path in sorted(out.rglob(layout.CONFIG)):
        folder = config_path.parent
        if (folder / layout.ERROR).exists() and not (folder / layout.METRICS).exists():
            lines = [line for line in (folder / layout.ERROR).read_text().splitlines() if line.strip()]
            failed[str(folder.relative_to(out))] = lines[-1] if lines else "failed"
        if not (folder / layout.METRICS).exists():
            continue
        reading = [layout.CONFIG]  # the file being read, for the message
        try:
            row, curve = _read_run(out, folder, reading)
        except (OSError, ValueError, KeyError, TypeError, AttributeError, yaml.YAMLError) as exc:
            problem = f"left out of the report: {reading[0]} cannot be read ({' '.join(str(exc).split())[:120]})"
            failed[str(folder.relative_to(out))] = problem
            if warn is not None:
                warn(f"{folder}: {problem}")
            continue
        rows.append(row)
        curves.append(curve)
    if not rows:
        raise ReportError(f"no finished run under '{out}'")
    return Collected(pd.DataFrame(rows), pd.concat(curves, ignore_index=True), failed)


def _read_run(out: Path, folder: Path, reading: list[str]) -> tuple[dict[str, Any], pd.DataFrame]:
    """One finished run's row and curve (``reading[0]``: the file being read)."""
    config = yaml.safe_load((folder / layout.CONFIG).read_text())
    relative = folder.relative_to(out).parts
    experiment = "/".join(relative[:-4])  # the folders above <env>/<teacher>/<student>/seed<k>
    key = {
        "env": config["env"],
        "teacher": config["teacher"],
        "student": config["student"],
        "group": settings_label(config, experiment),
        "seed": int(config["seed"]),
    }
    reading[0] = layout.METRICS
    metrics = json.loads((folder / layout.METRICS).read_text())
    final, target = metrics["final_eval"], metrics.get("target_eval", {})
    reading[0] = layout.EVAL
    curve = eval_curve(folder / layout.EVAL, config.get("budget", "env-steps"))
    reading[0] = layout.EVAL_TARGET
    curve = _with_target_curve(curve, folder / layout.EVAL_TARGET, config.get("budget", "env-steps"))
    protocol = metrics.get("target_protocol", {})
    tasks, returns, successes = _final_tasks(folder / layout.EVAL)
    auc = curve_area(curve["timesteps"].to_numpy(), curve["mastered_pct"].to_numpy()) if len(curve) else math.nan
    row = {
        **key,
        "mastered_pct": float(final["mastered_pct"]),
        "mean_return": float(final["mean_return"]),
        "auc": auc,
        "target_mastered_pct": target.get("mastered_pct", math.nan),
        "target_return": target.get("mean_return", math.nan),
        "protocol_return": protocol.get("discounted_return", math.nan),  # SPDL's protocol (--target-episodes)
        "protocol_success_pct": protocol.get("success_pct", math.nan),
        "infeasible_pct": 100.0 * metrics.get("infeasible_share", math.nan),  # envs that declare unsolvable tasks
        "infeasible_steps_pct": 100.0 * metrics.get("infeasible_step_share", math.nan),  # and those episodes' steps
        # zero-shot on the env's named test levels (--named-episodes): the mean over them, and each one's
        "named_solved_pct": 100.0 * metrics.get("named_eval", {}).get("mean_solved_rate", math.nan),
        "named": metrics.get("named_eval", {}).get("solved_rate", {}),
        # PAIRED: the environment steps of its three learners (the budget counts the student's)
        "all_steps": metrics.get("paired", {}).get("all_steps", math.nan),
        "budget": config.get("budget", "env-steps"),
        "student_steps": float(metrics.get("timesteps", math.nan)),
        "returns": returns,
        "successes": successes,
        "tasks": tasks,
    }
    return row, curve.assign(**key, budget=config.get("budget", "env-steps"))


def _final_tasks(csv_path: Path) -> tuple[tuple[tuple[float, ...], ...], tuple[float, ...], tuple[bool, ...]]:
    """The last evaluation's tasks, returns and successes (by task index); empty without ``eval.csv``."""
    if not csv_path.exists():
        return (), (), ()
    rows = pd.read_csv(csv_path).drop_duplicates(["timesteps", "task_index"], keep="last")
    last = rows[rows["timesteps"] == rows["timesteps"].max()].sort_values("task_index")
    tasks = tuple(tuple(float(v) for v in str(task).split()) for task in last["task"])
    return tasks, tuple(float(v) for v in last["return"]), tuple(bool(v) for v in last["success"])


def _robust(own: pd.DataFrame, baseline: pd.DataFrame, cvar_alpha: float = 0.1) -> dict[str, float]:
    """IQM of the final per-task returns with its stratified-bootstrap 95% interval, CVaR over the worst
    ``cvar_alpha`` of tasks, and the probability of improvement over ``random`` (:mod:`students.analysis.stats`); NaN where
    runs disagree on the test tasks."""
    from students.analysis.stats import cvar, iqm, probability_of_improvement, stratified_bootstrap_ci

    nan = {"return_iqm": math.nan, "return_iqm_low": math.nan, "return_iqm_high": math.nan, "return_cvar": math.nan}
    lengths = {len(r) for r in own["returns"]}
    if len(lengths) != 1 or not lengths.pop():
        return {**nan, "p_improvement_vs_random": math.nan}
    scores = np.array(list(own["returns"]))
    low, high = stratified_bootstrap_ci(scores, iqm)
    result = {"return_iqm": iqm(scores), "return_iqm_low": low, "return_iqm_high": high}
    result["return_cvar"] = cvar(scores, cvar_alpha)
    base = [r for r in baseline["returns"] if len(r) == scores.shape[1]]
    result["p_improvement_vs_random"] = probability_of_improvement(scores, np.array(base)) if base else math.nan
    return result


#: the words for each budget's unit, in labels and on the curves' x-axis
BUDGET_UNITS = {"env-steps": "steps", "trained-steps": "trained steps", "all-steps": "steps of all learners"}
#: the eval.csv column each budget's curves are drawn against
BUDGET_COLUMNS = {"trained-steps": "trained_steps", "all-steps": "all_steps"}


def _in_budget_unit(rows: pd.DataFrame, budget: str) -> pd.DataFrame:
    """Rows whose ``timesteps`` column counts the budget's unit (the student's steps, trained steps, all steps)."""
    column = BUDGET_COLUMNS.get(budget)
    return rows.drop(columns="timesteps").rename(columns={column: "timesteps"}) if column else rows


def eval_curve(csv_path: Path, budget: str = "env-steps") -> pd.DataFrame:
    """Mastered % and mean return per evaluation, against the run's budget unit (column ``timesteps``: the
    student's environment steps, the steps it trained on, or every learner's environment steps)."""
    if not csv_path.exists():
        return pd.DataFrame(columns=["timesteps", "mastered_pct", "mean_return"])
    rows = pd.read_csv(csv_path).drop_duplicates(["timesteps", "task_index"], keep="last")  # a resume re-evaluates
    rows = _in_budget_unit(rows, budget)
    grouped = rows.groupby("timesteps")
    return pd.DataFrame(
        {"mastered_pct": 100.0 * grouped["success"].mean(), "mean_return": grouped["return"].mean()}
    ).reset_index()


#: the target-distribution protocol's curve columns (``eval_target.csv``), NaN for runs without it
PROTOCOL_CURVES = ("target_discounted_return", "target_success_pct")
#: the curve columns that are percentages (their bands are clipped to [0, 100])
PERCENTAGES = ("mastered_pct", "target_success_pct")


def _with_target_curve(curve: pd.DataFrame, csv_path: Path, budget: str) -> pd.DataFrame:
    """The curve with the target-distribution protocol's columns, by evaluation (NaN without ``eval_target.csv``)."""
    if not csv_path.exists():
        return curve.assign(**dict.fromkeys(PROTOCOL_CURVES, math.nan))
    rows = _in_budget_unit(pd.read_csv(csv_path).drop_duplicates("timesteps", keep="last"), budget)
    rows = rows.rename(columns={"discounted_return": PROTOCOL_CURVES[0], "success_pct": PROTOCOL_CURVES[1]})
    return curve.merge(rows[["timesteps", *PROTOCOL_CURVES]], on="timesteps", how="left")


def summarize(runs: pd.DataFrame, cvar_alpha: float = 0.1) -> pd.DataFrame:
    """One row per environment, student and teacher (see the module docstring for the columns)."""
    table = []
    for (env, student, label), group in runs.groupby(GROUP, sort=False):
        baseline = group[group["teacher"] == BASELINE]
        for teacher, own in group.groupby("teacher", sort=False):
            row = {"env": env, "student": student, "group": label, "teacher": teacher, "seeds": len(own)}
            for metric in ("mastered_pct", "mean_return", "auc"):
                row[f"{metric}_mean"], row[f"{metric}_std"], row[f"{metric}_ci95"] = mean_ci(own[metric].to_numpy())
            # the env's held-out target set, and the target-distribution protocol, when the runs have them
            for metric in (
                "target_mastered_pct",
                "target_return",
                "protocol_return",
                "protocol_success_pct",
                "named_solved_pct",
                "infeasible_steps_pct",
            ):
                if metric in own and own[metric].notna().all():
                    row[f"{metric}_mean"], row[f"{metric}_std"], row[f"{metric}_ci95"] = mean_ci(own[metric].to_numpy())
            if "infeasible_pct" in own and own["infeasible_pct"].notna().all():  # the training episodes' share
                share = own["infeasible_pct"].to_numpy()
                row["infeasible_pct_mean"], row["infeasible_pct_std"], row["infeasible_pct_ci95"] = mean_ci(share)
                if teacher != BASELINE and "infeasible_pct" in baseline and baseline["infeasible_pct"].notna().all():
                    row["infeasible_pct_p_vs_random"] = welch_p(share, baseline["infeasible_pct"].to_numpy())
            for metric in ("mastered_pct", "mean_return"):
                other = baseline[metric].to_numpy()
                row[f"{metric}_p_vs_random"] = math.nan if teacher == BASELINE else welch_p(own[metric].to_numpy(), other)
            if "returns" in own:
                row.update(_robust(own, baseline, cvar_alpha), cvar_alpha=cvar_alpha)
                row["p_improvement_vs_random"] = math.nan if teacher == BASELINE else row["p_improvement_vs_random"]
            table.append(row)
    return pd.DataFrame(table)


#: the held-out target set's columns: (summary metric, display name, digits)
TARGET_COLUMNS = (("target_mastered_pct", "target mastered %", 1), ("target_return", "target return", 2))
#: the target-distribution protocol's columns (SPDL's evaluation, ``--target-episodes``)
PROTOCOL_COLUMNS = (
    ("protocol_return", "target-distribution discounted return", 2),
    ("protocol_success_pct", "target-distribution success %", 1),
)


def _fmt(value: float, digits: int = 1) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def table_rows(summary: pd.DataFrame) -> list[dict[str, str]]:
    """Display rows (strings) with the best mean per environment, student and metric marked ``**bold**``."""
    shown = []
    for _, group in summary.groupby(GROUP, sort=False):
        best = {m: group[f"{m}_mean"].max() for m in ("mastered_pct", "mean_return", "auc")}
        for _, row in group.iterrows():

            def cell(metric: str, digits: int = 1, row: pd.Series = row, best: dict[str, float] = best) -> str:
                text = f"{_fmt(row[f'{metric}_mean'], digits)} ± {_fmt(row[f'{metric}_std'], digits)}"
                return f"**{text}**" if row[f"{metric}_mean"] == best[metric] else text

            shown.append(
                {
                    "env": row["env"],
                    "student": row["student"],
                    "group": row["group"],
                    "teacher": row["teacher"],
                    "seeds": str(row["seeds"]),
                    "mastered %": cell("mastered_pct"),
                    "mastered 95% CI": "± " + _fmt(row["mastered_pct_ci95"]),
                    "mean return": cell("mean_return", 2),
                    "return 95% CI": "± " + _fmt(row["mean_return_ci95"], 2),
                    "AUC mastered %": cell("auc"),
                    "p mastered vs random": _fmt(row["mastered_pct_p_vs_random"], 3),
                    "p return vs random": _fmt(row["mean_return_p_vs_random"], 3),
                    "return IQM [95% bootstrap]": f"{_fmt(row.get('return_iqm'), 2)} [{_fmt(row.get('return_iqm_low'), 2)}, "
                    f"{_fmt(row.get('return_iqm_high'), 2)}]",
                    f"return CVaR {100 * row.get('cvar_alpha', 0.1):g}%": _fmt(row.get("return_cvar"), 2),
                    "P(return > random)": _fmt(row.get("p_improvement_vs_random"), 2),
                }
            )
            for columns in (TARGET_COLUMNS, PROTOCOL_COLUMNS):
                if not math.isnan(row.get(f"{columns[0][0]}_mean", math.nan)):
                    for metric, name, digits in columns:
                        shown[-1][name] = f"{_fmt(row[f'{metric}_mean'], digits)} ± {_fmt(row[f'{metric}_std'], digits)}"
            if not math.isnan(row.get("infeasible_pct_mean", math.nan)):
                shown[-1]["infeasible % played"] = f"{_fmt(row['infeasible_pct_mean'])} ± {_fmt(row['infeasible_pct_std'])}"
            if not math.isnan(row.get("infeasible_steps_pct_mean", math.nan)):
                shown[-1]["infeasible % of steps"] = (
                    f"{_fmt(row['infeasible_steps_pct_mean'])} ± {_fmt(row['infeasible_steps_pct_std'])}"
                )
            if not math.isnan(row.get("named_solved_pct_mean", math.nan)):
                shown[-1]["named solved %"] = f"{_fmt(row['named_solved_pct_mean'])} ± {_fmt(row['named_solved_pct_std'])}"
    return shown


def curve_band(curves: pd.DataFrame, metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(steps, mean over seeds, low, high) of one teacher's curve: the 95% t-interval of the mean, percentages
    clipped to [0, 100] (a single seed has no band: low = high = mean)."""
    points = curves.groupby("timesteps")[metric].apply(lambda v: mean_ci(v.to_numpy()))
    x = points.index.to_numpy()
    mean = np.array([p[0] for p in points])
    half = np.nan_to_num(np.array([p[2] for p in points]))
    low, high = mean - half, mean + half
    if metric in PERCENTAGES:
        low, high = np.clip(low, 0.0, 100.0), np.clip(high, 0.0, 100.0)
    return x, mean, low, high


def plot_profiles(runs: pd.DataFrame, path: Path, title: str) -> bool:
    """Performance profiles of the final per-task returns: per teacher, the share of runs x test tasks whose return
    exceeds each threshold (Agarwal et al. 2021). ``False`` (and no file) when the runs hold no per-task returns."""
    from matplotlib.figure import Figure

    from students.analysis.stats import performance_profile

    scores = {teacher: [r for r in own["returns"] if len(r)] for teacher, own in runs.groupby("teacher", sort=False)}
    values = [v for rows in scores.values() for r in rows for v in r]
    if not values:
        return False
    thresholds = np.linspace(min(values), max(values), 200)
    figure = Figure(figsize=(6, 4.2))
    axis = figure.add_subplot()
    for teacher, rows in scores.items():
        if rows:
            axis.plot(thresholds, performance_profile(np.concatenate(rows), thresholds), label=teacher)
    axis.set(xlabel="test return threshold", ylabel="share of runs x test tasks above it", ylim=(-0.02, 1.02))
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    seeds = runs.groupby("teacher")["seed"].nunique().max()
    figure.suptitle(f"{title}\nperformance profile of the final evaluation (up to {seeds} seeds x the test tasks)", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    return True


def _plot_panels(
    curves: pd.DataFrame,
    path: Path,
    unit: str,
    panels: list[tuple[str, dict[str, Any]]],
    suptitle: Callable[[str], str],
    title_size: float | None = None,
) -> None:
    """Side-by-side panels, one per ``(metric, axis settings)``: mean over seeds per teacher with its shaded 95%
    t-interval (:func:`curve_band`), teachers in the table's order; ``suptitle(seeds)`` titles the figure."""
    from matplotlib.figure import Figure  # no pyplot: the user's backend and figures stay untouched
    from matplotlib.ticker import FuncFormatter

    figure = Figure(figsize=(11, 4.2))
    axes = figure.subplots(1, len(panels))
    seeds = sorted({int(n) for n in curves.groupby("teacher", sort=False)["seed"].nunique()})
    for teacher, own in curves.groupby("teacher", sort=False):
        for axis, (metric, _) in zip(axes, panels, strict=True):
            x, mean, low, high = curve_band(own, metric)
            (line,) = axis.plot(x, mean, label=teacher)
            axis.fill_between(x, low, high, color=line.get_color(), alpha=0.2)
    for axis, (_, settings) in zip(axes, panels, strict=True):
        axis.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x / 1000:g}k" if x < 1e6 else f"{x / 1e6:g}M"))
        axis.grid(alpha=0.3)
        axis.set(xlabel=unit, **settings)
    axes[0].legend(fontsize=9)
    figure.suptitle(suptitle("/".join(map(str, seeds))), **({} if title_size is None else {"fontsize": title_size}))
    figure.tight_layout()
    figure.savefig(path, dpi=90)


def plot_curves(curves: pd.DataFrame, path: Path, title: str, unit: str = "steps") -> None:
    """Mastered % and mean return against steps: mean over seeds per teacher, shaded 95% t-interval (mastered %
    clipped to [0, 100]); teachers in the table's order; the figure says what the band is and over how many seeds."""
    panels: list[tuple[str, dict[str, Any]]] = [
        ("mastered_pct", {"ylabel": "test tasks mastered (%)", "ylim": (-2, 102)}),
        ("mean_return", {"ylabel": "mean test return"}),
    ]
    _plot_panels(
        curves,
        path,
        unit,
        panels,
        lambda n: f"{title}\nline: mean over {n} seeds; band: 95% t-interval of the mean (mastered % clipped to [0, 100])",
    )


def plot_target_protocol(curves: pd.DataFrame, path: Path, title: str, unit: str = "steps") -> bool:
    """SPDL's figure: the mean discounted return of the target-distribution episodes, and their success %, against
    steps (mean over seeds per teacher, shaded 95% t-interval). ``False`` (and no file) when no run has them."""
    curves = curves.dropna(subset=[PROTOCOL_CURVES[0]])
    if curves.empty:
        return False
    panels: list[tuple[str, dict[str, Any]]] = [
        (PROTOCOL_CURVES[0], {"ylabel": "mean discounted return (target distribution)"}),
        (PROTOCOL_CURVES[1], {"ylabel": "episodes that succeeded (%)", "ylim": (-2, 102)}),
    ]
    _plot_panels(
        curves,
        path,
        unit,
        panels,
        lambda n: (
            f"{title}\nSPDL's protocol: episodes on tasks from the target distribution, stochastic actions; "
            f"line: mean over {n} seeds; band: 95% t-interval"
        ),
        title_size=9,
    )
    return True


def _dimension_names(env: str) -> list[str] | None:
    """The task dimensions' names of an environment, or ``None`` when it cannot be built here."""
    from environments.registry import make_env

    try:
        built = make_env(env)
    except Exception:  # a user's environment that is not importable where the report runs
        return None
    try:
        return list(built.task_space.names)
    finally:
        built.close()


def region_shares(points: np.ndarray, success: np.ndarray, low: np.ndarray, high: np.ndarray, bins: int) -> np.ndarray:
    """Mean success per cell of a ``bins x bins`` grid over [low, high] of 2-D ``points`` (rows: the second
    coordinate, columns: the first; NaN where no point falls)."""
    cells = np.minimum(((points - low) / np.where(high > low, high - low, 1.0) * bins).astype(int), bins - 1)
    total, count = np.zeros((bins, bins)), np.zeros((bins, bins))
    np.add.at(total, (cells[:, 1], cells[:, 0]), success)
    np.add.at(count, (cells[:, 1], cells[:, 0]), 1)
    return np.divide(total, count, out=np.full_like(total, np.nan), where=count > 0)


def plot_regions(runs: pd.DataFrame, path: Path, title: str, names: list[str] | None = None, bins: int = 4) -> bool:
    """Share of test tasks mastered per region of the task space, one heat map per teacher and pair of dimensions:
    each dimension's test-task range cut into ``bins`` equal bins, a cell's value the mean success of the final
    evaluation over the runs x tasks in it (blank: no test task). ``False`` (and no file) for 1-D tasks or runs
    without per-task results."""
    from itertools import combinations

    from matplotlib.figure import Figure

    if "tasks" not in runs or not all(len(t) for t in runs["tasks"]):
        return False
    tasks = np.array([task for run in runs["tasks"] for task in run])
    if tasks.ndim != 2 or tasks.shape[1] < 2:
        return False
    low, high = tasks.min(axis=0), tasks.max(axis=0)
    varied = [i for i in range(tasks.shape[1]) if high[i] > low[i]]  # a dimension the test set does not vary: no axis
    pairs = list(combinations(varied, 2))[:3]
    if not pairs:
        return False
    names = names if names and len(names) == tasks.shape[1] else [f"dim {i}" for i in range(tasks.shape[1])]
    teachers = list(dict.fromkeys(runs["teacher"]))
    figure = Figure(figsize=(3.2 * len(pairs) + 0.6, 2.8 * len(teachers) + 0.6), layout="constrained")
    axes = figure.subplots(len(teachers), len(pairs), squeeze=False)
    for row, teacher in enumerate(teachers):
        own = runs[runs["teacher"] == teacher]
        points = np.array([task for run in own["tasks"] for task in run])
        success = np.array([s for run in own["successes"] for s in run], dtype=float)
        for col, (i, j) in enumerate(pairs):
            share = region_shares(points[:, [i, j]], success, low[[i, j]], high[[i, j]], bins)
            axis = axes[row, col]
            image = axis.imshow(
                share, origin="lower", vmin=0, vmax=1, cmap="viridis", aspect="auto", extent=(low[i], high[i], low[j], high[j])
            )
            axis.set(xlabel=names[i], ylabel=names[j])
            axis.set_title(teacher, fontsize=9)
    figure.colorbar(image, ax=axes, shrink=min(0.8, 2.5 / len(teachers)), label="share of test tasks mastered")
    figure.suptitle(f"{title}\nfinal evaluation, all seeds pooled; {bins} bins per dimension over the test tasks' range")
    figure.savefig(path, dpi=80)
    return True


#: the report columns a terminal shows, with their headings (compact: they fit 80 characters; report.md has them all)
TERMINAL_COLUMNS = {
    "teacher": "teacher",
    "mastered": "mastered %",
    "return": "return",
    "iqm": "return IQM [95%]",
    "p_better": "P>rand",
    "target": "target %",
    "infeasible": "infeasible %",
}


def terminal_tables(summary: pd.DataFrame) -> list[tuple[str, list[dict[str, str]]]]:
    """The summary as one titled table of compact cells per environment, student and group (best means in bold)."""
    tables = []
    for (env, student, label), group in summary.groupby(GROUP, sort=False):
        best = {m: group[f"{m}_mean"].max() for m in ("mastered_pct", "mean_return")}
        rows = []
        for _, row in group.iterrows():

            def cell(metric: str, digits: int = 1, row: pd.Series = row, best: dict[str, float] = best) -> str:
                text = f"{_fmt(row[f'{metric}_mean'], digits)}±{_fmt(row[f'{metric}_std'], digits)}"
                return f"**{text}**" if row[f"{metric}_mean"] == best[metric] else text

            digits = 2 if group["mean_return_mean"].abs().max() < 10 else 1  # returns in [0, 1] (the maze) need two
            shown = {"teacher": row["teacher"], "mastered": cell("mastered_pct"), "return": cell("mean_return", digits)}
            low, high = _fmt(row.get("return_iqm_low"), digits), _fmt(row.get("return_iqm_high"), digits)
            shown["iqm"] = f"{_fmt(row.get('return_iqm'), digits)} [{low}, {high}]"
            shown["p_better"] = _fmt(row.get("p_improvement_vs_random"), 2)
            if not math.isnan(row.get("target_mastered_pct_mean", math.nan)):
                shown["target"] = _fmt(row["target_mastered_pct_mean"])
            if not math.isnan(row.get("infeasible_pct_mean", math.nan)):
                shown["infeasible"] = _fmt(row["infeasible_pct_mean"])
            rows.append(shown)
        seeds = "/".join(str(n) for n in sorted(set(group["seeds"])))
        title = (
            f"{env}, {student} ({label}): final test set, mean±std over {seeds} seeds; return IQM over runs x "
            "tasks; P>rand: a run beats a random one on a task; target %: mastered of the env's held-out target set"
        )
        tables.append((title, rows))
    return tables


def write_report(
    out: Path, cvar_alpha: float = 0.1, warn: Callable[[str], None] | None = None
) -> tuple[pd.DataFrame, list[dict[str, str]], dict[str, str]]:
    """Write ``report.md``, ``summary.csv``, ``runs.csv`` (each run's own results) and the curve PNGs into ``out``;
    return (summary, display rows, failures).

    :param warn: told of each run left out because a file of it cannot be read
    :raises ReportError: no finished run under ``out``
    """
    out = Path(out)
    collected = collect(out, warn)
    settings = out / "compare.yaml"
    if settings.exists():  # teachers in the order the comparison named them
        order = {t: i for i, t in enumerate(yaml.safe_load(settings.read_text()).get("teachers", []))}

        def rank(column: pd.Series) -> pd.Series:
            return column.map(order).fillna(len(order))

        collected.runs = collected.runs.sort_values("teacher", key=rank, kind="stable")
        collected.curves = collected.curves.sort_values("teacher", key=rank, kind="stable")
    summary = summarize(collected.runs, cvar_alpha)
    summary.to_csv(out / "summary.csv", index=False, float_format="%.6g")
    per_run = collected.runs.drop(columns=[c for c in PER_TASK if c in collected.runs]).dropna(axis=1, how="all")
    per_run.to_csv(out / "runs.csv", index=False, float_format="%.6g")  # a row per run: the seeds behind each mean
    rows = table_rows(summary)
    keys = list(summary[GROUP].drop_duplicates().itertuples(index=False))
    lines = _report_header(out, settings, keys)
    for env, student, label in keys:
        index = [k for k in keys if k[:2] == (env, student)].index((env, student, label))
        lines += _group_section(out, collected, rows, (env, student, label), index)
    lines += _side_by_side(rows, out / "compare.yaml")
    if collected.failed:
        lines += ["## Failed runs", ""] + [f"- `{folder}`: {error}" for folder, error in collected.failed.items()] + [""]
    (out / "report.md").write_text("\n".join(lines))
    return summary, rows, collected.failed


def _report_header(out: Path, settings: Path, keys: list[Any]) -> list[str]:
    """The report's title, settings, how to read its tables, and which groups of runs are kept apart."""
    lines = [f"# Comparison: {out.name}", ""]
    if settings.exists():
        s = yaml.safe_load(settings.read_text())
        envs = f"{s['n_envs']} envs" if s["n_envs"] else "each student's default envs"
        lines += [f"Settings: {s['steps']} steps per run, seeds {s['seeds']}, {envs}, test set `{s['test_set']}`.", ""]
    lines += [
        "Final test-set evaluation, mean ± std over seeds; 95% CI: t-interval half-width; AUC: mean mastered % over the "
        "evaluated part of training; p: Welch's t-test against `random`. Best mean in bold. Over the runs x test tasks "
        "of the final evaluation (Agarwal et al. 2021): the interquartile mean of the returns with its stratified-"
        "bootstrap 95% interval, the CVaR (mean over the worst share of tasks), and the probability that a run beats a "
        "`random` run on a task.",
        "",
    ]
    pairs = [(env, student) for env, student, _ in keys]
    mixed = sorted({pair for pair in pairs if pairs.count(pair) > 1})
    if mixed:
        lines += [
            "Runs with different settings are reported separately, never pooled: "
            + "; ".join(f"{env}, {student}: {pairs.count((env, student))} groups" for env, student in mixed)
            + ".",
            "",
        ]
    return lines


def _group_section(
    out: Path, collected: Collected, rows: list[dict[str, str]], key: tuple[str, str, str], index: int
) -> list[str]:
    """One group's section (an env, a student, one set of settings): its table, and its figures written into
    ``out``; ``index``: its rank among the groups of its env and student (0: the first, whose files take no
    number)."""
    env, student, label = key
    lines = [f"## {env}, student {student}", "", f"Runs: {label}.", ""]
    shown = [r for r in rows if (r["env"], r["student"], r["group"]) == key]
    headers = [h for h in shown[0] if h not in ("env", "student", "group")]
    lines += ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(r[h] for h in headers) + " |" for r in shown]
    picture = f"{_slug(env)}_{student}{f'_{index + 1}' if index else ''}_curves.png"
    title = f"{env}, {student} ({label})"
    curves = collected.curves[
        (collected.curves["env"] == env) & (collected.curves["student"] == student) & (collected.curves["group"] == label)
    ]
    budgets = set(curves["budget"])
    budget = budgets.pop() if len(budgets) == 1 else "env-steps"
    unit = BUDGET_UNITS[budget]
    plot_curves(curves, out / picture, title, unit)
    axis = {
        "trained-steps": "the steps the student trained on",
        "all-steps": "every learner's environment steps (a regret teacher's antagonist and adversary too)",
    }.get(budget, "environment steps (trained on or not)")
    lines += ["", f"![learning curves]({picture})", "", f"The curves' x-axis counts {axis}.", ""]
    protocol = picture.replace("_curves.png", "_target.png")
    if plot_target_protocol(curves, out / protocol, title, unit):
        lines += [
            f"![target-distribution protocol]({protocol})",
            "",
            "SPDL's evaluation (`--target-episodes`): at every evaluation, episodes on tasks drawn from the "
            "environment's target distribution, stochastic actions, the mean return discounted at the student's "
            "gamma (the paper's metric) and the share that succeeded.",
            "",
        ]
    group_runs = collected.runs[
        (collected.runs["env"] == env) & (collected.runs["student"] == student) & (collected.runs["group"] == label)
    ]
    profile = picture.replace("_curves.png", "_profiles.png")
    if "returns" in group_runs and plot_profiles(group_runs, out / profile, title):
        lines += [f"![performance profiles]({profile})", ""]
    regions = picture.replace("_curves.png", "_regions.png")
    if plot_regions(group_runs, out / regions, title, _dimension_names(env)):
        lines += [f"![mastered share per region]({regions})", ""]
    return lines + all_steps_note(group_runs) + named_levels_table(group_runs) + pairwise_improvement_table(group_runs)


def all_steps_note(runs: pd.DataFrame) -> list[str]:
    """Markdown lines: the environment steps PAIRED's three learners took per run, against the budget's (the
    student's); empty without a PAIRED run."""
    if "all_steps" not in runs or runs["all_steps"].isna().all():
        return []
    lines = []
    for teacher, own in runs[runs["all_steps"].notna()].groupby("teacher", sort=False):
        ratio = float((own["all_steps"] / own["student_steps"]).mean())
        if set(own["budget"]) == {"all-steps"}:
            lines.append(
                f"`{teacher}`: the budget counts every learner's environment steps (`--budget all-steps`); its student "
                f"took {_fmt_steps(float(own['student_steps'].mean()))} of the {_fmt_steps(float(own['all_steps'].mean()))} "
                f"(1/{ratio:.2f}; `metrics.json` `paired`)."
            )
            continue
        lines.append(
            f"`{teacher}`: the budget counts the student's environment steps (dcd's `steps`); with its antagonist and "
            f"adversary, a run took {_fmt_steps(float(own['all_steps'].mean()))} environment steps in all ({ratio:.2f}x; "
            "`metrics.json` `paired`)."
        )
    return [*lines, ""]


def _fmt_steps(steps: float) -> str:
    return f"{steps / 1e6:.2f}M" if steps >= 1e6 else f"{steps / 1e3:.1f}k"


def named_levels_table(runs: pd.DataFrame) -> list[str]:
    """Markdown lines: each teacher's solved % on each named test level zero-shot (mean over seeds), and the mean
    over the levels, as the regret papers' tables (empty when the runs played none)."""
    if "named" not in runs or not any(runs["named"]):
        return []
    names = list(next(named for named in runs["named"] if named))
    lines = ["Zero-shot on the named test levels (`--named-episodes`; sampled actions), solved %, mean over seeds:", ""]
    lines += ["| teacher | " + " | ".join(names) + " | mean |", "|---|" + "---|" * (len(names) + 1)]
    for teacher, own in runs.groupby("teacher", sort=False):
        rates = [[named.get(name, math.nan) for name in names] for named in own["named"]]
        means = 100.0 * np.nanmean(np.array(rates, dtype=float), axis=0)
        cells = [_fmt(float(v)) for v in means]
        lines.append(f"| {teacher} | " + " | ".join(cells) + f" | {_fmt(float(np.mean(means)))} |")
    return [*lines, ""]


def pairwise_improvement_table(runs: pd.DataFrame) -> list[str]:
    """Markdown lines: P(a run of the row's teacher beats a run of the column's on a test task), every pair of
    teachers with per-task returns on the same tasks (empty with fewer than two)."""
    from students.analysis.stats import probability_of_improvement

    scores = {t: np.array(list(own["returns"])) for t, own in runs.groupby("teacher", sort=False) if "returns" in own}
    scores = {t: v for t, v in scores.items() if v.ndim == 2 and v.shape[1]}
    if len(scores) < 2 or len({v.shape[1] for v in scores.values()}) != 1:
        return []
    names = list(scores)
    lines = ["P(a run of the row's teacher beats a run of the column's on a test task; ties count one half):", ""]
    lines += ["| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for row in names:
        cells = ["-" if row == col else f"{probability_of_improvement(scores[row], scores[col]):.2f}" for col in names]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _side_by_side(rows: list[dict[str, str]], settings: Path) -> list[str]:
    """With several students (e.g. from scratch and kickstarted), one table per environment with every teacher's
    students next to each other."""
    students = list(dict.fromkeys(r["student"] for r in rows))
    if len(students) < 2:
        return []
    if settings.exists():
        named = yaml.safe_load(settings.read_text()).get("students") or []
        students.sort(key=lambda name: list(named).index(name) if name in named else len(named))
    lines = ["## Students side by side", ""]
    for env in dict.fromkeys(r["env"] for r in rows):
        mine = [r for r in rows if r["env"] == env]
        teachers = list(dict.fromkeys(r["teacher"] for r in mine))
        mine.sort(key=lambda r: (teachers.index(r["teacher"]), students.index(r["student"])))
        lines += [f"{env}: final test set, mean ± std (ddof 1) over seeds.", ""]
        lines += ["| teacher | student | seeds | mastered % | mean return | AUC mastered % |", "|---|---|---|---|---|---|"]
        lines += [
            f"| {r['teacher']} | {r['student']} | {r['seeds']} | {r['mastered %'].strip('*')} | "
            f"{r['mean return'].strip('*')} | {r['AUC mastered %'].strip('*')} |"
            for r in mine
        ]
        lines.append("")
    return lines


def _slug(name: str) -> str:
    return name.replace(":", "_").replace("/", "_").replace(".", "_")
