"""Maze throughput of the two maze students: PPO with an MLP (the cheap default) and RecurrentPPO with dcd's maze
agent (a CNN over the view, an LSTM of 256), and the share of each one's time spent in the environment.

Usage: python bench/maze_throughput.py [--rollouts 2] [--n-envs 16]

Each student learns ``rollouts`` rollouts of its maze defaults (``students/loop/hyperparams/``: 256 steps per env,
``n_envs`` sub-environments in this process, CPU, one torch thread, seed 0), after one warm-up rollout; then the
same sub-environments take as many steps with random actions and nothing else (the environment's own cost). The
environment's share is that cost over the student's. Printed: steps/s per wall-clock second and per second of
process CPU time (which other load disturbs less), the ratio of the recurrent student's to the MLP's, and the
environment's share.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import torch
from stable_baselines3.common.vec_env import DummyVecEnv

from environments.registry import make_env
from students.loop.algorithms import algorithm_class, default_hyperparams, model_arguments

STUDENTS = ("ppo", "recurrent-ppo")


def _clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def measure(student: str, rollouts: int, n_envs: int) -> dict[str, float]:
    """Steps/s of ``student`` learning on the maze, and of the maze alone under random actions."""
    hp = model_arguments(default_hyperparams(student, "maze"))
    policy = hp.pop("policy")
    env = DummyVecEnv([lambda: make_env("maze") for _ in range(n_envs)])
    model = algorithm_class(student)(policy, env, device="cpu", seed=0, verbose=0, **hp)
    per_rollout = int(hp["n_steps"]) * n_envs
    model.learn(per_rollout)  # warm-up
    wall, cpu = _clocks()
    model.learn(per_rollout * rollouts, reset_num_timesteps=False)
    end_wall, end_cpu = _clocks()
    steps = per_rollout * rollouts
    rng = np.random.default_rng(0)
    env.reset()
    env_cpu = time.process_time()
    for _ in range(steps // n_envs):
        env.step(rng.integers(0, env.action_space.n, n_envs))
    env_end_cpu = time.process_time()
    env.close()
    return {
        "wall": steps / (end_wall - wall),
        "cpu": steps / (end_cpu - cpu),
        "env_share": (env_end_cpu - env_cpu) / (end_cpu - cpu),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rollouts", type=int, default=2)
    parser.add_argument("--n-envs", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}")
    print(f"maze, {args.n_envs} envs in one process, {args.rollouts} rollouts of 256 steps per env after a warm-up")
    results = {student: measure(student, args.rollouts, args.n_envs) for student in STUDENTS}
    base = results["ppo"]
    print(f"{'student':<15} {'steps/s (wall)':>15} {'steps/s (cpu)':>14} {'vs ppo (cpu)':>13} {'env share':>10}")
    for student, r in results.items():
        print(f"{student:<15} {r['wall']:>15.0f} {r['cpu']:>14.0f} {r['cpu'] / base['cpu']:>13.3f} {r['env_share']:>10.1%}")


if __name__ == "__main__":
    main()
