"""Point-mass PPO throughput: steps per second of one training run, per vector env and PPO layout.

Each configuration trains PPO with the random teacher for ``--steps`` steps (one torch and BLAS thread, as each run of
a ``--workers 2`` comparison on 2 cores; no evaluation), in turn (the order rotating between repeats), ``--repeats``
times; the median steps/s and its ratio to the first configuration (the layout before batched stepping) are printed.
Learning per step is not measured here: the comparisons' curves are (docs/comparisons.md).

    python bench/point_mass_speed.py [--steps 60000 --repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_name, "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from stable_baselines3 import PPO  # noqa: E402

from curriculum.registry import teacher_for  # noqa: E402
from environments.point_mass import PointMassGateEnv  # noqa: E402
from students.loop.algorithms import default_hyperparams  # noqa: E402
from students.loop.curriculum import CurriculumCallback  # noqa: E402
from students.loop.vec_env import make_vec_env  # noqa: E402

#: name -> (batched, n_envs, PPO overrides); the first is the reference of the ratios
CONFIGS: dict[str, tuple[bool, int, dict[str, int]]] = {
    "one by one, 4 envs x 1024, batch 128 (before)": (False, 4, {"n_steps": 1024, "batch_size": 128}),
    "batched,    4 envs x 1024, batch 128": (True, 4, {"n_steps": 1024, "batch_size": 128}),
    "one by one, 32 envs x 128, batch 128": (False, 32, {"n_steps": 128, "batch_size": 128}),
    "batched,   32 envs x 128, batch 128": (True, 32, {"n_steps": 128, "batch_size": 128}),
    "batched,   32 envs x 128, batch 512": (True, 32, {"n_steps": 128, "batch_size": 512}),
    "batched,   32 envs x 128, batch 1024 (now)": (True, 32, {"n_steps": 128, "batch_size": 1024}),
}


def steps_per_second(batched: bool, n_envs: int, overrides: dict[str, int], steps: int) -> float:
    hp = {**default_hyperparams("ppo", "point-mass"), **overrides}
    policy = hp.pop("policy")
    env = make_vec_env("point-mass", n_envs, seed=0, batched=batched)
    callback = CurriculumCallback(teacher_for("random", PointMassGateEnv(), 0))
    callback.prime(env)
    model = PPO(policy, env, seed=0, device="cpu", **hp)
    start = time.perf_counter()
    model.learn(steps, callback=callback)
    elapsed = time.perf_counter() - start
    env.close()
    return model.num_timesteps / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, torch threads 1")
    print(f"command: python bench/point_mass_speed.py --steps {args.steps} --repeats {args.repeats}")
    names = list(CONFIGS)
    results: dict[str, list[float]] = {name: [] for name in names}
    for repeat in range(args.repeats):
        for name in names[repeat % len(names) :] + names[: repeat % len(names)]:
            results[name].append(steps_per_second(*CONFIGS[name], args.steps))
    base = float(np.median(results[names[0]]))
    for name in names:
        median, runs = float(np.median(results[name])), results[name]
        print(f"{name:46s} {median:7.0f} steps/s (ratio {median / base:.2f}; runs {min(runs):.0f}-{max(runs):.0f})")


if __name__ == "__main__":
    main()
