"""Privileged-teacher distillation on the point-mass gate, every stage of ``experiments/distill_point_mass.yaml``:

1. ``OUT/experts``: PPO experts on the privileged dict (one per seed), a comparison folder (resumable);
2. ``OUT/scratch``: PPO from scratch on the student's view (with its history), same budget;
3. ``OUT/distilled/<env>/<teacher>/<variant>/seed<k>``: DAgger from seed k's expert, per variant;
4. the fine-tuned student (PPO from the distilled one) beside it, as ``dagger-ft``;
5. a table (``OUT/summary.csv``, ``OUT/table.md``): test mastered % and return per row (mean ± std with ddof 1 and a
   95% t-interval over seeds), the environment steps each stage used, and the steps at which each seed first reached
   90% of its own expert's final test return (evaluations every ``eval_every`` / ``distill_eval_every`` steps).

``--throughput`` instead measures steps/s on the student's view, in one process, one torch thread, back to back: a
DAgger round (collection, then the fit, with a full dataset of ``--dataset-size`` samples) in each ``fit`` mode
(``round``: a round's worth of rows per epoch, the default; ``dataset``: every row) against plain PPO learning.
Its expert is seed 0's of ``OUT/experts`` when the stages above ran, else a small one it trains into
``OUT/throughput_expert`` (PPO, 8,192 steps: the speed of a round does not depend on the expert's skill).

    python bench/distill.py --workers 2 [--out results/distill_point_mass]
    python bench/distill.py --throughput [--steps 20000] [--dataset-size 100000]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from students.experiments.compare import CompareConfig, compare  # noqa: E402
from students.config import parse_seeds  # noqa: E402
from students.run.distill import FITS, DistillConfig, distill, finetune_plan  # noqa: E402
from students.analysis.report import eval_curve, mean_ci  # noqa: E402
from students.run import layout  # noqa: E402
from students.run.train import RunConfig, train  # noqa: E402


def comparison(spec: dict[str, Any], setup: dict[str, Any], env_kwargs: dict[str, Any], out: Path, workers: int) -> None:
    config = CompareConfig(
        env=setup["env"],
        teachers=[spec["teacher"]],
        seeds=setup["seeds"],
        steps=spec["steps"],
        n_envs=setup.get("n_envs", 0),
        hp=dict(setup.get("hp", {})),
        eval_every=setup["eval_every"],
        test_set=setup["test_set"],
        env_kwargs=env_kwargs,
    )
    result = compare(config, out, workers=workers)
    print(f"{out}: {len(result.finished)} done, {len(result.skipped)} already finished, {len(result.failed)} failed")


def run_folder(root: Path, env: str, teacher: str, student: str, seed: int) -> Path:
    return root / env / teacher / student / f"seed{seed}"


def _distill_job(settings: dict[str, Any], folder: Path, finetune: bool) -> str:
    torch.set_num_threads(1)
    config = DistillConfig(**settings)
    if not (folder / layout.METRICS).exists():
        distill(config, folder, resume=(folder / layout.CHECKPOINT / layout.STATE).exists())
    if finetune:
        tuned, tuned_folder = finetune_plan(config.resolve(), folder, in_layout=True, resume=True)
        if not (tuned_folder / layout.METRICS).exists():
            train(tuned, tuned_folder, resume=(tuned_folder / layout.CHECKPOINT).exists())
    return str(folder)


def variant_label(spec: dict[str, Any]) -> str:
    """A DAgger row's name: its teacher, and the settings it changes from ``cli.py distill``'s defaults."""
    changed = "".join(f", {key}={value}" for key, value in spec.items() if key not in ("teacher", "steps"))
    return f"DAgger ({spec['teacher']} teacher{changed})"


def distill_all(setup: dict[str, Any], out: Path, workers: int) -> None:
    jobs = []
    for seed in setup["seeds"]:
        expert = run_folder(out / "experts", setup["env"], setup["expert"]["teacher"], "ppo", seed)
        for variant, spec in setup["distill"].items():
            finetune = setup["finetune"]["from"] == variant
            settings = {
                "expert": str(expert),
                "teacher": spec["teacher"],
                "steps": spec["steps"],
                "seed": seed,
                "history": setup["history"],
                "eval_every": setup["distill_eval_every"],
                "test_set": setup["test_set"],
                "finetune_steps": setup["finetune"]["steps"] if finetune else 0,
                "hp": dict(setup.get("hp", {})),
                **{key: value for key, value in spec.items() if key not in ("teacher", "steps")},  # e.g. fit
            }
            jobs.append((settings, run_folder(out / "distilled", setup["env"], spec["teacher"], variant, seed), finetune))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for done in pool.map(_distill_job, *zip(*jobs, strict=True)):
            print(f"finished {done}", flush=True)


def first_step(folder: Path, target: float) -> float:
    curve = eval_curve(folder / layout.EVAL)
    reached = curve[curve["mean_return"] >= target]
    return float(reached["timesteps"].iloc[0]) if len(reached) else math.nan


def summary(setup: dict[str, Any], out: Path) -> pd.DataFrame:
    """One row per stage: the expert's RL steps it builds on, its own steps, final results, steps to 90%."""
    env, seeds, expert_steps = setup["env"], setup["seeds"], setup["expert"]["steps"]
    # (row, root, teacher, student, expert steps it builds on, student steps before its own folder's)
    rows_spec = [("privileged expert (PPO)", out / "experts", setup["expert"]["teacher"], "ppo", 0, 0)]
    rows_spec.append(("PPO from scratch, student view", out / "scratch", setup["scratch"]["teacher"], "ppo", 0, 0))
    for variant, spec in setup["distill"].items():
        rows_spec.append((variant_label(spec), out / "distilled", spec["teacher"], variant, expert_steps, 0))
    source = setup["distill"][setup["finetune"]["from"]]
    label = f"{variant_label(source)} + PPO fine-tuning"
    rows_spec.append((label, out / "distilled", source["teacher"], "dagger-ft", expert_steps, source["steps"]))
    expert_folders = {seed: run_folder(out / "experts", env, setup["expert"]["teacher"], "ppo", seed) for seed in seeds}
    experts = {seed: yaml.safe_load((folder / layout.METRICS).read_text()) for seed, folder in expert_folders.items()}
    expert_return = float(np.mean([e["final_eval"]["mean_return"] for e in experts.values()]))
    table = []
    for name, root, teacher, student, built_on, offset in rows_spec:
        finals, reach, own_steps = [], [], []
        for seed in seeds:
            folder = run_folder(root, env, teacher, student, seed)
            metrics = yaml.safe_load((folder / layout.METRICS).read_text())
            finals.append(metrics["final_eval"])
            own_steps.append(offset + metrics["timesteps"])
            reach.append(offset + first_step(folder, 0.9 * experts[seed]["final_eval"]["mean_return"]))
        mastered = mean_ci(np.array([f["mastered_pct"] for f in finals]))
        returns = mean_ci(np.array([f["mean_return"] for f in finals]))
        table.append(
            {
                "student": name,
                "expert's RL steps": f"{built_on:,}" if built_on else "-",
                "own env steps": f"{int(np.mean(own_steps)):,}",
                "mastered %": f"{mastered[0]:.1f} ± {mastered[1]:.1f} (± {mastered[2]:.1f})",
                "test return": f"{returns[0]:.2f} ± {returns[1]:.2f} (± {returns[2]:.2f})",
                "return / expert's": f"{returns[0] / expert_return:.2f}",
                "own steps to 90% of its expert's return": ", ".join(
                    "never" if math.isnan(s) else f"{s / 1000:.0f}k" for s in reach
                ),
            }
        )
    return pd.DataFrame(table)


def plot(setup: dict[str, Any], out: Path, path: Path) -> None:
    """Test return (mean over seeds) against each student's own environment steps, the experts' final level dashed."""
    from matplotlib.figure import Figure

    env, seeds = setup["env"], setup["seeds"]
    source = setup["distill"][setup["finetune"]["from"]]
    lines = [("privileged expert", out / "experts", setup["expert"]["teacher"], "ppo", 0)]
    lines.append(("PPO from scratch (student view)", out / "scratch", setup["scratch"]["teacher"], "ppo", 0))
    lines += [(variant_label(s), out / "distilled", s["teacher"], v, 0) for v, s in setup["distill"].items()]
    lines.append(("DAgger + PPO fine-tuning", out / "distilled", source["teacher"], "dagger-ft", source["steps"]))
    figure = Figure(figsize=(7, 4.2))
    axis = figure.add_subplot()
    for label, root, teacher, student, offset in lines:
        curves = [eval_curve(run_folder(root, env, teacher, student, seed) / layout.EVAL) for seed in seeds]
        mean = pd.concat(curves).groupby("timesteps")["mean_return"].mean()
        axis.plot((mean.index + offset) / 1000, mean.to_numpy(), marker="o", markersize=3, label=label)
    axis.set(xlabel="the student's own environment steps (thousands)", ylabel="test return (51 tasks)", xscale="log")
    axis.set_title(f"point-mass gate: test return, mean over {len(seeds)} seeds", fontsize=10)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def markdown(table: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    return "\n".join(lines + ["| " + " | ".join(map(str, row)) + " |" for row in table.itertuples(index=False)]) + "\n"


def throughput_expert(setup: dict[str, Any], out: Path) -> Path:
    """Seed 0's expert of ``out/experts``, else a small expert trained (or resumed) into ``out/throughput_expert``."""
    folder = out / "experts" / "point-mass" / "random" / "ppo" / "seed0"
    if (folder / layout.MODEL).exists():
        return folder
    folder = out / "throughput_expert"
    if not (folder / layout.MODEL).exists():
        print(f"no expert in {out / 'experts'}: training a small one (PPO, 8,192 steps) into {folder}")
        config = RunConfig(
            env=setup["env"],
            teacher="random",
            steps=8192,
            n_envs=4,
            hp_overrides={"n_steps": "1024", "batch_size": "128"},
            env_kwargs={**setup["view"], "observation_mode": "privileged"},
            eval_every=8192,
            checkpoint_every=8192,
            test_set="narrow",
            device="cpu",
        )
        train(config.resolve(), folder, resume=(folder / layout.CONFIG).exists())
    return folder


def throughput(steps: int, dataset_size: int, out: Path) -> None:
    from stable_baselines3 import PPO

    from curriculum.registry import make_teacher
    from students.loop.curriculum import CurriculumCallback
    from students.run.distill import Distiller
    from students.loop.vec_env import make_vec_env

    torch.set_num_threads(1)
    setup = yaml.safe_load((ROOT / "experiments" / "distill_point_mass.yaml").read_text())
    view = {**setup["view"], "history": setup["history"]}
    expert_dir = throughput_expert(setup, out)
    timings = {}  # fit mode -> (collection s, fit s)
    for mode in FITS:
        asked = DistillConfig(expert=str(expert_dir), history=setup["history"], dataset_size=dataset_size, fit=mode)
        resolved = asked.resolve()
        config = resolved.config
        distiller = Distiller(resolved, out / "throughput")  # nothing is written there: no evaluation, no checkpoint
        distiller.start()
        while len(distiller.dataset) < config.dataset_size:  # a full dataset: the fit's worst case
            distiller.collect()
        collect = fit = 0.0
        rounds = max(1, steps // config.rollout_steps)
        for _ in range(rounds):
            start = time.perf_counter()
            distiller.collect()
            collect += time.perf_counter() - start
            start = time.perf_counter()
            distiller.fit()
            fit += time.perf_counter() - start
        distiller.close()
        timings[mode] = (collect, fit)
    env = make_vec_env(setup["env"], 4, seed=0, env_kwargs=view)
    curriculum = CurriculumCallback(make_teacher("random", env.get_attr("task_space")[0], seed=0))
    curriculum.prime(env)
    model = PPO("MlpPolicy", env, device="cpu", n_steps=1024, batch_size=128, gamma=0.95, gae_lambda=0.99)
    start = time.perf_counter()
    model.learn(rounds * config.rollout_steps, callback=curriculum)
    ppo = rounds * config.rollout_steps / (time.perf_counter() - start)
    env.close()
    n = rounds * config.rollout_steps
    print(f"{rounds} rounds of {config.rollout_steps} steps, dataset {config.dataset_size}, {config.epochs} epochs:")
    for mode, (collect, fit) in timings.items():
        rate = n / (collect + fit)
        print(f"  {'collection (fit=' + mode + ' run)':<30} {n / collect:8.0f} steps/s")
        print(f"  {'DAgger round, fit=' + mode:<30} {rate:8.0f} steps/s  (ratio to PPO {rate / ppo:.2f})")
    print(f"  {'plain PPO learning':<30} {ppo:8.0f} steps/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=ROOT / "experiments" / "distill_point_mass.yaml")
    parser.add_argument("--out", type=Path, default=Path("results/distill_point_mass"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--throughput", action="store_true", help="measure steps/s instead (see the docstring)")
    parser.add_argument("--steps", type=int, default=20_000, help="--throughput: steps measured")
    parser.add_argument("--dataset-size", type=int, default=100_000, help="--throughput: the aggregated dataset's size")
    args = parser.parse_args()
    if args.throughput:
        throughput(args.steps, args.dataset_size, args.out)
        return
    setup = yaml.safe_load(args.config.read_text())
    setup["seeds"] = parse_seeds(setup["seeds"])
    view = dict(setup["view"])
    start = time.monotonic()
    comparison(setup["expert"], setup, {**view, "observation_mode": "privileged"}, args.out / "experts", args.workers)
    comparison(setup["scratch"], setup, {**view, "history": setup["history"]}, args.out / "scratch", args.workers)
    distill_all(setup, args.out, args.workers)
    table = summary(setup, args.out)
    table.to_csv(args.out / "summary.csv", index=False)
    (args.out / "table.md").write_text(markdown(table))
    plot(setup, args.out, args.out / "curves.png")
    print(markdown(table))
    print(f"wall time {time.monotonic() - start:.0f} s (finished stages are skipped)")


if __name__ == "__main__":
    main()
