"""Cost of PAIRED against PLR with the same student: wall time of a short maze run under each teacher, the student's
steps per second, and all the environment steps per second (PAIRED's antagonist plays as many steps as the student,
its adversary builds every level in ``max_walls + 2`` steps); and the time CLUTR's VAE pretraining takes.

Usage: python bench/paired_cost.py [--steps 16384] [--n-envs 16] [--repeats 2] [--vae-iterations 3000]

Both runs: the maze's defaults (PPO, MLP, 256 steps per env), ``n_envs`` sub-environments in this process, CPU, one
torch thread, seed 0, no evaluation but the final one, which is left out of the timing (``train`` runs it: the
time measured is up to the end of learning); the two teachers alternate ``repeats`` times and each keeps its
fastest run (the first pays for imports and warm-up). Printed: each teacher's wall time, student steps/s, all steps/s, and
the ratio of PAIRED's wall time to PLR's, and CLUTR's pretraining time on the maze at its defaults (``vae_iterations``
batches of 32 levels; one torch thread).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import torch

from curriculum.registry import teacher_for
from environments.registry import make_env
from students.run.train import RunConfig, train


def measure(teacher: str, steps: int, n_envs: int, folder: Path) -> dict[str, float]:
    """One run's learning time (evaluations pushed past the budget) and its step counts."""
    config = RunConfig(
        env="maze", teacher=teacher, steps=steps, n_envs=n_envs, eval_every=10 * steps, checkpoint_every=10 * steps,
        device="cpu", test_set="no-lava",
    )
    learned: list[float] = []

    def progress(done: int, *_: object) -> None:
        if done >= steps:
            learned.append(time.perf_counter())

    start = time.perf_counter()
    metrics = train(config, folder / teacher, progress=progress)
    wall = (learned[0] if learned else time.perf_counter()) - start
    student = float(metrics["timesteps"])
    every = float(metrics.get("paired", {}).get("all_steps", student))
    return {"wall": wall, "student": student / wall, "all": every / wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=16384)
    parser.add_argument("--n-envs", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--vae-iterations", type=int, default=3000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}")
    print(f"maze, ppo, {args.n_envs} envs, {args.steps} student steps per run")
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for name in ("plr", "paired"):
                r = measure(name, args.steps, args.n_envs, Path(tmp) / str(repeat))
                if name not in results or r["wall"] < results[name]["wall"]:
                    results[name] = r
    for name, r in results.items():
        print(f"{name:7s} wall {r['wall']:7.1f} s   student {r['student']:7.0f} steps/s   all envs {r['all']:7.0f} steps/s")
    print(f"ratio of PAIRED's wall time to PLR's: {results['paired']['wall'] / results['plr']['wall']:.2f}")
    clutr = teacher_for("clutr", make_env("maze"), 0, vae_iterations=args.vae_iterations)
    start = time.perf_counter()
    clutr.pretrain()
    seconds = time.perf_counter() - start
    print(f"clutr pretraining, {args.vae_iterations} batches of 32 maze levels: {seconds:.1f} s "
          f"(final reconstruction loss {clutr.vae_final_loss:.3f})")


if __name__ == "__main__":
    main()
