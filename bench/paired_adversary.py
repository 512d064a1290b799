"""A look at PAIRED's adversary at CPU budgets: how its learning rate and entropy bonus change what it learns, read
from the training signals only (the adversary's entropy and the regret it is trained to maximise; the test set's
mastered % is printed beside them for information, never to choose a setting).

Usage: python bench/paired_adversary.py [--env point-mass] [--steps 500000] [--seeds 0-2] [--workers 2]
       [--grid "learning_rate=0.0001;learning_rate=0.001;learning_rate=0.003;entropy_coef=0.0"] [--out DIR]

Each grid entry (``;``-separated, each a ``KEY=VALUE[,KEY=VALUE]`` set of PAIRED's parameters over its defaults:
dcd's learning rate 1e-4, minimax's entropy bonus 0.05) is one ``cli.py run --teacher paired`` per seed at the env's
student defaults, ``--workers`` at a time, under ``--out`` (default: a temporary folder). Printed per entry, mean ±
std over seeds: the adversary's policy entropy over the first and the last tenth of its updates (nats; a one-step
Gaussian over the point mass's 3 dimensions starts at 4.26), the regret and both students' returns over the last
tenth, the final test-set mastered %, and the number of adversary updates.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from students.config import parse_seeds  # noqa: E402

#: dcd's learning rate, a 10x and a 30x one, and no entropy bonus
GRID = "learning_rate=0.0001;learning_rate=0.001;learning_rate=0.003;entropy_coef=0.0"
#: the TensorBoard series read, and their column names
SERIES = {
    "paired/adversary_entropy": "entropy",
    "paired/regret": "regret",
    "paired/protagonist_return": "student return",
    "paired/antagonist_return": "antagonist return",
}


def run(env: str, params: str, seed: int, steps: int, n_envs: int, folder: Path) -> Path:
    """One PAIRED run of ``cli.py run``, its output in ``folder`` (one torch thread: the workers share the cores)."""
    command = [sys.executable, str(ROOT / "cli.py"), "run", "--env", env, "--teacher", "paired", "--steps", str(steps),
               "--eval-every", str(steps), "--seed", str(seed), "--device", "cpu", "--n-envs", str(n_envs),
               "--out", str(folder)]  # fmt: skip
    for param in filter(None, params.split(",")):
        command += ["--teacher-param", param]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=environment)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {done.stderr.strip().splitlines()[-1]}")
    return folder


def read(folder: Path) -> dict[str, float]:
    """A run's adversary entropy (first and last tenth of its updates), last-tenth regret and returns, and its final
    test-set mastered %."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(next((folder / "tb").glob("*"))), size_guidance={"scalars": 0})
    events.Reload()
    series = {name: np.array([e.value for e in events.Scalars(tag)]) for tag, name in SERIES.items()}
    tenth = max(len(series["entropy"]) // 10, 1)
    row = {"entropy first": float(series["entropy"][:tenth].mean())}
    row |= {f"{name} last": float(values[-tenth:].mean()) for name, values in series.items()}
    metrics = json.loads((folder / "metrics.json").read_text())
    return row | {"test mastered %": metrics["final_eval"]["mastered_pct"], "updates": len(series["entropy"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="point-mass")
    parser.add_argument("--steps", type=int, default=500_000)
    parser.add_argument("--seeds", default="0-2")
    parser.add_argument("--n-envs", type=int, default=0, help="0: the student's default for the env")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--grid", default=GRID)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    seeds, grid = parse_seeds(args.seeds), [entry.strip() for entry in args.grid.split(";") if entry.strip()]
    with tempfile.TemporaryDirectory() as scratch:
        out = args.out or Path(scratch)
        jobs = [(params, seed, out / (params.replace("=", "-").replace(",", "_") or "defaults") / f"seed{seed}")
                for params in grid for seed in seeds]  # fmt: skip
        print(f"PAIRED, {args.env}, {args.steps} student steps, seeds {args.seeds}: {len(jobs)} runs, {args.workers} at a go")
        with ThreadPoolExecutor(args.workers) as pool:
            folders = list(pool.map(lambda job: run(args.env, job[0], job[1], args.steps, args.n_envs, job[2]), jobs))
        rows = [read(folder) for folder in folders]
    columns = list(rows[0])
    print("| adversary | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for params in grid:
        own = [row for (p, _, _), row in zip(jobs, rows, strict=True) if p == params]
        cells = [f"{np.mean([r[c] for r in own]):.2f} ± {np.std([r[c] for r in own], ddof=1) if len(own) > 1 else 0:.2f}"
                 for c in columns[:-1]]  # fmt: skip
        print(f"| {params or 'defaults'} | " + " | ".join(cells) + f" | {own[0]['updates']} |")


if __name__ == "__main__":
    main()
