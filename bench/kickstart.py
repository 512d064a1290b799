"""Kickstarting on the point-mass gate: how many steps does a student need to reach its expert, with and without
kickstarting, and where does it end?

1. trains the expert if ``OUT/expert`` holds none (PPO, the PLR teacher, ``--expert-steps`` steps, seed 100);
2. runs ``experiments/kickstart_point_mass.yaml`` (from scratch vs kickstarted, same and smaller net, random and PLR
   teachers, 3 seeds) into ``OUT/compare`` with that expert, resumable like any comparison;
3. prints, per teacher and net: the first evaluated step at which each seed's test mastered % reaches the
   expert's (and 90% of its mean return), the ratio scratch / kickstarted of the mean steps (runs that never reach it
   count at the budget, so the ratio is then a lower bound, marked ``>=``), and the final results.

``--overhead`` instead measures kickstarted PPO's steps/s as a ratio of plain PPO on the same settings (4 Dummy envs,
one torch and BLAS thread, the random teacher, no evaluation), with one expert and with two (copies of a small
expert it trains into ``OUT/overhead_expert`` the first time: its skill does not change the cost).

    python bench/kickstart.py --workers 2 [--steps 300000] [--out results/kickstart]
    python bench/kickstart.py --overhead [--steps 40000 --repeats 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from students.experiments.compare import compare, load_compare_config  # noqa: E402
from students.analysis.report import eval_curve, write_report  # noqa: E402
from students.run import layout  # noqa: E402
from students.run.train import RunConfig, train  # noqa: E402


#: the PPO layout the committed reference was measured with (before the point-mass defaults' 32 x 128, batch 512)
REFERENCE_LAYOUT: dict = {"n_envs": 4, "hp_overrides": {"n_steps": "1024", "batch_size": "128"}}


def train_expert(folder: Path, steps: int) -> dict:
    if (folder / layout.METRICS).exists():
        return yaml.safe_load((folder / layout.METRICS).read_text())
    settings = {"env": "point-mass", "teacher": "plr", "student": "ppo", "steps": steps, "seed": 100, "device": "cpu"}
    config = RunConfig(**settings, eval_every=50_000, **REFERENCE_LAYOUT)
    print(f"training the expert ({steps} steps) into {folder}", flush=True)
    return train(config, folder, resume=(folder / layout.CONFIG).exists())


def first_step(curve: pd.DataFrame, column: str, target: float) -> float:
    reached = curve[curve[column] >= target]
    return float(reached["timesteps"].iloc[0]) if len(reached) else float("nan")


def steps_table(folder: Path, expert: dict, budget: int) -> pd.DataFrame:
    target_mastered = expert["final_eval"]["mastered_pct"]
    target_return = 0.9 * expert["final_eval"]["mean_return"]
    rows = []
    for config_path in sorted(folder.rglob(layout.CONFIG)):
        run = config_path.parent
        if not (run / layout.METRICS).exists():
            continue
        config = yaml.safe_load(config_path.read_text())
        curve = eval_curve(run / layout.EVAL)
        final = yaml.safe_load((run / layout.METRICS).read_text())["final_eval"]
        rows.append(
            {
                "teacher": config["teacher"],
                "student": config["student"],
                "seed": config["seed"],
                "to_expert_mastered": first_step(curve, "mastered_pct", target_mastered),
                "to_90pct_return": first_step(curve, "mean_return", target_return),
                "final_mastered": final["mastered_pct"],
                "final_return": final["mean_return"],
            }
        )
    return pd.DataFrame(rows)


def mean_steps(values: pd.Series, budget: int) -> tuple[float, bool]:
    """Mean steps to the target, runs that never reached it counted at the budget (then a lower bound)."""
    censored = values.isna().any()
    return float(values.fillna(budget).mean()), bool(censored)


def ratio_interval(scratch: pd.Series, kick: pd.Series, resamples: int = 10_000) -> tuple[float, float]:
    """Percentile bootstrap interval of mean(scratch) / mean(kick), resampling the seeds of each side."""
    rng = np.random.default_rng(0)
    a, b = scratch.to_numpy(float), kick.to_numpy(float)
    ratios = rng.choice(a, (resamples, len(a))).mean(axis=1) / rng.choice(b, (resamples, len(b))).mean(axis=1)
    return float(np.quantile(ratios, 0.025)), float(np.quantile(ratios, 0.975))


def summarize(table: pd.DataFrame, budget: int) -> None:
    for teacher, own in table.groupby("teacher", sort=False):
        for net in ("", "-small"):
            scratch, kick = own[own["student"] == f"ppo{net}"], own[own["student"] == f"ppo{net}-kick"]
            if scratch.empty or kick.empty:
                continue
            for column, label in (("to_expert_mastered", "expert's mastered %"), ("to_90pct_return", "90% of its return")):
                s_mean, s_cut = mean_steps(scratch[column], budget)
                k_mean, k_cut = mean_steps(kick[column], budget)
                ratio = s_mean / k_mean if k_mean else float("nan")
                low, high = ratio_interval(scratch[column].fillna(budget), kick[column].fillna(budget))
                bound = ">=" if s_cut and not k_cut else ("~" if s_cut or k_cut else "")
                print(
                    f"{teacher:7s} net{net or '-default':9s} steps to the {label:20s}: scratch {s_mean:9.0f} "
                    f"(per seed {scratch[column].tolist()}), kickstarted {k_mean:9.0f} "
                    f"(per seed {kick[column].tolist()}), ratio {bound}{ratio:.2f} [95% bootstrap {low:.2f}, {high:.2f}]"
                )
            for name, runs in (("scratch", scratch), ("kickstarted", kick)):
                m, r = runs["final_mastered"], runs["final_return"]
                print(
                    f"{teacher:7s} net{net or '-default':9s} final {name:11s}: mastered {m.mean():5.1f} ± "
                    f"{m.std(ddof=1):4.1f} %, return {r.mean():6.2f} ± {r.std(ddof=1):5.2f} (ddof 1, {len(runs)} seeds)"
                )


def overhead(steps: int, repeats: int, out: Path) -> None:
    from stable_baselines3 import PPO

    from curriculum.registry import make_teacher
    from students.loop.auxiliary import auxiliary_kwargs
    from environments.point_mass import PointMassGateEnv
    from students.loop.curriculum import CurriculumCallback
    from students.loop.kickstart import Expert, KickstartCallback, Region, Schedule
    from students.policies import load_policy
    from students.loop.vec_env import make_vec_env

    torch.set_num_threads(1)
    folder = out / "overhead_expert"  # its skill does not matter here: 8,192 steps
    if not (folder / layout.MODEL).exists():
        config = RunConfig(env="point-mass", teacher="random", student="ppo", steps=8192, eval_every=10**9, device="cpu")
        train(config, folder, resume=(folder / layout.CONFIG).exists())
    space = PointMassGateEnv.task_space

    def run(n_experts: int) -> float:
        env = make_vec_env("point-mass", 4, seed=0)
        curriculum = CurriculumCallback(make_teacher("random", space, seed=0))
        callbacks: list = [curriculum]
        student = auxiliary_kwargs(PPO, "MlpPolicy", dict_obs=False) if n_experts else {"policy": "MlpPolicy"}
        model = PPO(env=env, seed=0, device="cpu", n_steps=1024, batch_size=64, **student)
        if n_experts:
            regions = ["gate_width=0.5:4", "gate_width=4:8"] if n_experts == 2 else [""]
            experts = [Expert(f"e{k}", load_policy(folder), Region.parse(r, space), 1.0, False) for k, r in enumerate(regions)]
            callbacks.insert(0, KickstartCallback(experts, Schedule.parse("constant"), curriculum.current_tasks))
        curriculum.prime(env)
        start = time.perf_counter()
        model.learn(steps, callback=callbacks)
        elapsed = time.perf_counter() - start
        env.close()
        return steps / elapsed

    results: dict[str, list[float]] = {"plain PPO": [], "kickstarted, 1 expert": [], "kickstarted, 2 experts": []}
    for _ in range(repeats):  # interleaved, so that machine noise hits every configuration alike
        for n, name in enumerate(results):
            results[name].append(run(n))
    base = float(np.median(results["plain PPO"]))
    for name, values in results.items():
        median = float(np.median(values))
        print(f"{name:24s} {median:7.0f} steps/s (ratio {median / base:.3f}; runs {min(values):.0f}-{max(values):.0f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("results/kickstart"))
    parser.add_argument("--steps", type=int, default=None, help="steps per student run (default: the config's)")
    parser.add_argument("--expert-steps", type=int, default=500_000)
    parser.add_argument("--seeds", default=None, help="e.g. 0-2 (default: the config's)")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--overhead", action="store_true", help="measure steps/s instead (see the docstring)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.overhead:
        overhead(args.steps or 40_000, args.repeats, args.out)
        return
    expert_dir = args.out / "expert"
    expert = train_expert(expert_dir, args.expert_steps)
    print(
        f"expert: {expert['final_eval']['mastered_pct']:.1f}% mastered, mean return {expert['final_eval']['mean_return']:.2f}"
    )
    config = load_compare_config(ROOT / "experiments" / "kickstart_point_mass.yaml", {"steps": args.steps})
    if args.seeds:
        from students.experiments.compare import parse_seeds

        config.seeds = parse_seeds(args.seeds)
    for settings in config.students.values():
        if "kickstart" in settings:
            settings["kickstart"] = str(expert_dir)
    start = time.monotonic()
    result = compare(config, args.out / "compare", workers=args.workers)
    done, skipped, failed = len(result.finished), len(result.skipped), len(result.failed)
    print(f"{done} runs done, {skipped} skipped, {failed} failed, {time.monotonic() - start:.0f} s")
    write_report(args.out / "compare")
    summarize(steps_table(args.out / "compare", expert, config.steps), config.steps)


if __name__ == "__main__":
    main()
