"""Cost of the curriculum for the student: SB3 PPO on point-mass with and without a teacher.

Usage: python bench/curriculum_overhead.py [--steps 40000] [--repeats 3]

Same PPO settings (the point-mass defaults of students/hyperparams/ppo.yml), 4 sub-environments in this
process, CPU, seed 0, one torch and one BLAS thread. "plain SB3" is SB3 on a Monitor-wrapped env with its
default task and no callback; "uniform tasks set by the env" draws a uniform task at every reset inside the
env (the same task distribution as the random teacher, without the teacher loop); the teachers drive every
episode's task through students.curriculum. The difference between the last three isolates the loop's cost
from that of playing other tasks. Configurations are run in
turn (the order rotating between repeats), `repeats` times, and the median steps/s (per wall-clock second and
per second of process CPU time, which other load on the machine disturbs less) is reported with its ratio to
plain SB3. A profile of this run (cProfile, 20k steps) puts the curriculum's own code (callback, episode
wrapper, teacher) at about 1% of the time.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # idle BLAS worker threads slowed every configuration (measured)

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from curriculum.registry import make_teacher
from environments.point_mass import PointMassGateEnv
from students.algorithms import default_hyperparams
from students.curriculum import CurriculumCallback
from students.vec_env import make_vec_env


class UniformTaskOnReset(gym.Wrapper):
    """Plain domain randomisation inside the env: a uniform task at every reset, no teacher machinery."""

    def __init__(self, env: gym.Env, seed: int) -> None:
        super().__init__(env)
        self.rng = np.random.default_rng(seed)

    def reset(self, **kwargs):  # type: ignore[no-untyped-def]
        self.env.unwrapped.set_task(self.env.unwrapped.task_space.sample(self.rng))
        return self.env.reset(**kwargs)


def steps_per_second(teacher: str | None, steps: int) -> tuple[float, float]:
    """(steps per wall-clock second, steps per second of this process's CPU time)."""
    hp = default_hyperparams("ppo", "point-mass")
    policy = hp.pop("policy")
    if teacher is None:
        env = DummyVecEnv([lambda: Monitor(PointMassGateEnv()) for _ in range(4)])
        callback = None
    elif teacher == "env-side uniform":
        env = DummyVecEnv([lambda i=i: Monitor(UniformTaskOnReset(PointMassGateEnv(), seed=i)) for i in range(4)])
        callback = None
    else:
        env = make_vec_env("point-mass", 4, seed=0)
        callback = CurriculumCallback(
            make_teacher(teacher, PointMassGateEnv.task_space, seed=0, return_bounds=PointMassGateEnv.return_bounds)
        )
        callback.prime(env)
    model = PPO(policy, env, seed=0, device="cpu", **hp)
    start, cpu_start = time.perf_counter(), time.process_time()
    model.learn(steps, callback=callback)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    env.close()
    return model.num_timesteps / elapsed, model.num_timesteps / cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, torch threads 1")
    print(f"command: python bench/curriculum_overhead.py --steps {args.steps} --repeats {args.repeats}")
    configs = {
        "plain SB3": None,
        "plain SB3, uniform tasks set by the env": "env-side uniform",
        "random teacher": "random",
        "alp-gmm teacher": "alp-gmm",
    }
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in configs}
    order = list(configs)
    for repeat in range(args.repeats):  # rotate the order, so that drift on a shared machine hits every config
        for name in order[repeat % len(order) :] + order[: repeat % len(order)]:
            results[name].append(steps_per_second(configs[name], args.steps))
    base_wall = statistics.median(v[0] for v in results["plain SB3"])
    base_cpu = statistics.median(v[1] for v in results["plain SB3"])
    for name, values in results.items():
        wall, cpu = statistics.median(v[0] for v in values), statistics.median(v[1] for v in values)
        print(
            f"{name:40s} wall {wall:6.0f} steps/s (ratio {wall / base_wall:5.3f})   "
            f"cpu {cpu:6.0f} steps/s (ratio {cpu / base_cpu:5.3f})"
        )


if __name__ == "__main__":
    main()
