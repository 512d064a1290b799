"""Why ``lunar-lander-infeasible``'s working-engine tasks learn slowly: the training steps a teacher left them, or
the failed-engine episodes played beside them.

Usage: python bench/infeasible_budget.py [--teachers random,alp-gmm] [--seeds 0-4] [--steps 300000] [--workers 2]
       [--n-envs 0] [--out DIR]

Runs two comparisons under ``--out`` (``cli.py compare``, so a rerun skips the runs already done): ``infeasible/``
(``experiments/lunar_lander_infeasible.yaml``) and ``plain/`` (``experiments/lunar_lander.yaml``: ``lunar-lander``,
which is the infeasible space's working part alone, with the same PPO settings and the same 27 test tasks), with the
same teachers, seeds and budget. For each infeasible run, ``W`` is its training steps on working engines (its steps
x (1 - ``infeasible_step_share``)); its plain twin (same teacher and seed) is read at ``W`` steps, linearly between
its evaluations (its first one below that). Printed per teacher, mean ± std over seeds: the infeasible share of the
episodes and of the steps, ``W``, the infeasible run's final test mastered % and mean return, the plain twin's at
``W`` and at the whole budget, and Welch's p of the infeasible runs' return against their twins' at ``W``.
Infeasible runs level with their twins at ``W`` say the steps left to the working engines explain the slow learning;
runs behind them say the failed-engine episodes slow the learning on the working ones. The random teacher's row is
the clean test (its working-engine tasks are drawn as the plain random teacher's are); a learning-progress teacher's
twin follows the plain space's curriculum, not the one it played.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from students.analysis.report import eval_curve, welch_p  # noqa: E402
from students.config import parse_seeds  # noqa: E402

CONFIGS = {"infeasible": "experiments/lunar_lander_infeasible.yaml", "plain": "experiments/lunar_lander.yaml"}
ENVS = {"infeasible": "lunar-lander-infeasible", "plain": "lunar-lander"}


def compare(kind: str, args: argparse.Namespace, out: Path) -> None:
    """``cli.py compare`` on one of the two configs, narrowed to the asked teachers, seeds and budget."""
    command = [sys.executable, str(ROOT / "cli.py"), "compare", "--config", str(ROOT / CONFIGS[kind]), "--teachers",
               args.teachers, "--seeds", args.seeds, "--steps", str(args.steps), "--workers", str(args.workers),
               "--n-envs", str(args.n_envs), "--device", "cpu", "--out", str(out / kind)]  # fmt: skip
    if args.eval_every:
        command += ["--eval-every", str(args.eval_every)]
    print(f"{kind}: {' '.join(command[1:])}", flush=True)
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the {kind} comparison failed: {(done.stderr or done.stdout).strip().splitlines()[-1]}")


def at(curve: pd.DataFrame, steps: float, column: str) -> float:
    """The test set's ``column`` (mastered_pct or mean_return) at ``steps``, linearly between evaluations."""
    return float(np.interp(steps, curve["timesteps"].to_numpy(), curve[column].to_numpy()))


def measure(out: Path, teacher: str, seeds: list[int]) -> dict[str, np.ndarray]:
    """Per seed: the infeasible run's shares, working-engine steps and final result, its plain twin's at W and final."""
    values: dict[str, list[float]] = {}
    for seed in seeds:
        infeasible = out / "infeasible" / ENVS["infeasible"] / teacher / "ppo" / f"seed{seed}"
        plain = out / "plain" / ENVS["plain"] / teacher / "ppo" / f"seed{seed}"
        metrics = json.loads((infeasible / "metrics.json").read_text())
        working = metrics["timesteps"] * (1.0 - metrics["infeasible_step_share"])
        own, twin = eval_curve(infeasible / "eval.csv"), eval_curve(plain / "eval.csv")
        row = {
            "episodes_pct": 100.0 * metrics["infeasible_share"],
            "steps_pct": 100.0 * metrics["infeasible_step_share"],
            "working": working,
            "mastered": at(own, own["timesteps"].max(), "mastered_pct"),
            "return": at(own, own["timesteps"].max(), "mean_return"),
            "twin_mastered_w": at(twin, working, "mastered_pct"),
            "twin_return_w": at(twin, working, "mean_return"),
            "twin_mastered": at(twin, twin["timesteps"].max(), "mastered_pct"),
            "twin_return": at(twin, twin["timesteps"].max(), "mean_return"),
        }
        for key, value in row.items():
            values.setdefault(key, []).append(value)
    return {key: np.array(v) for key, v in values.items()}


def cell(values: np.ndarray, digits: int = 1) -> str:
    std = values.std(ddof=1) if len(values) > 1 else float("nan")
    return f"{values.mean():.{digits}f} ± {std:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teachers", default="random,alp-gmm")
    parser.add_argument("--seeds", default="0-4")
    parser.add_argument("--steps", type=int, default=300_000)
    parser.add_argument("--eval-every", type=int, default=0, help="0: the configs' own (50k)")
    parser.add_argument("--n-envs", type=int, default=0, help="0: lunar-lander's 16")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    seeds = parse_seeds(args.seeds)
    out = args.out or Path(tempfile.mkdtemp(prefix="infeasible_budget_"))
    for kind in CONFIGS:
        compare(kind, args, out)
    print(f"\n{args.steps} steps, seeds {args.seeds}; W: training steps on working engines; twin: the same teacher and "
          "seed on lunar-lander, the working part alone, read at W steps and at the whole budget\n")  # fmt: skip
    print("| teacher | infeasible % of episodes | infeasible % of steps | W (k steps) | mastered % | mean return "
          "| twin at W: mastered % | twin at W: return | p (return vs twin at W) | twin at the end: mastered % "
          "| twin at the end: return |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for teacher in args.teachers.split(","):
        m = measure(out, teacher, seeds)
        p = welch_p(m["return"], m["twin_return_w"]) if len(seeds) > 1 else float("nan")
        cells = [teacher, cell(m["episodes_pct"]), cell(m["steps_pct"]), cell(m["working"] / 1000), cell(m["mastered"]),
                 cell(m["return"], 2), cell(m["twin_mastered_w"]), cell(m["twin_return_w"], 2), f"{p:.2g}",
                 cell(m["twin_mastered"]), cell(m["twin_return"], 2)]  # fmt: skip
        print(f"| {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
