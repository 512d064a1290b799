"""Cost of the curriculum for the student: SB3 PPO on point-mass with and without a teacher.

Usage: python bench/curriculum_overhead.py [--steps 40000] [--repeats 3]

Same PPO settings (the point-mass defaults of students/loop/hyperparams/ppo.yml), 4 sub-environments in this
process, CPU, seed 0, one torch and one BLAS thread. "plain SB3" is SB3 on a Monitor-wrapped env with its
default task and no callback; "uniform tasks set by the env" draws a uniform task at every reset inside the
env (the same task distribution as the random teacher, without the teacher loop); the teachers drive every
episode's task through students.loop.curriculum. The difference between the last three isolates the loop's cost
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
from typing import Any

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
from students.loop.algorithms import default_hyperparams
from students.loop.curriculum import CurriculumCallback
from students.loop.vec_env import EpisodeOutcomeWrapper, make_vec_env


class TaskRecorder(gym.Wrapper):
    """Records the task of every reset (to replay a teacher's curriculum without the teacher)."""

    def __init__(self, env: gym.Env, log: list[np.ndarray]) -> None:
        super().__init__(env)
        self.log = log

    def reset(self, **kwargs):  # type: ignore[no-untyped-def]
        result = self.env.reset(**kwargs)
        self.log.append(self.env.unwrapped.task.copy())
        return result


class ReplayTasks(gym.Wrapper):
    """Plays a recorded task sequence, one task per reset, with no teacher machinery."""

    def __init__(self, env: gym.Env, tasks: list[np.ndarray]) -> None:
        super().__init__(env)
        self.tasks = iter(tasks)

    def reset(self, **kwargs):  # type: ignore[no-untyped-def]
        self.env.unwrapped.set_task(next(self.tasks))
        return self.env.reset(**kwargs)


class UniformTaskOnReset(gym.Wrapper):
    """Plain domain randomisation inside the env: a uniform task at every reset, no teacher machinery."""

    def __init__(self, env: gym.Env, seed: int) -> None:
        super().__init__(env)
        self.rng = np.random.default_rng(seed)

    def reset(self, **kwargs):  # type: ignore[no-untyped-def]
        self.env.unwrapped.set_task(self.env.unwrapped.task_space.sample(self.rng))
        return self.env.reset(**kwargs)


def _seeded(env: gym.Env, seed: int) -> gym.Env:
    env.reset(seed=seed)  # PPO(seed=0) below reseeds every configuration's sub-envs with 0..3 at its first reset
    return env


def steps_per_second(
    teacher: str | None, steps: int, record: list[list[np.ndarray]] | None = None, replay: list[list[np.ndarray]] | None = None
) -> tuple[float, float, float]:
    """(steps per wall-clock second, per second of this process's CPU time, sum of all episode returns).

    ``record`` (with a teacher) receives each sub-env's task sequence; ``replay`` (without) plays such sequences.
    """
    hp = default_hyperparams("ppo", "point-mass")
    policy = hp.pop("policy")
    if replay is not None:
        env = DummyVecEnv([lambda i=i: _seeded(Monitor(ReplayTasks(PointMassGateEnv(), replay[i])), i) for i in range(4)])
        callback = None
    elif record is not None:
        record[:] = [[] for _ in range(4)]
        env = DummyVecEnv(
            [
                lambda i=i: _seeded(Monitor(EpisodeOutcomeWrapper(TaskRecorder(PointMassGateEnv(), record[i]))), i)
                for i in range(4)
            ]
        )
    elif teacher is None:
        env = DummyVecEnv([lambda: Monitor(PointMassGateEnv()) for _ in range(4)])
        callback = None
    elif teacher == "env-side uniform":
        env = DummyVecEnv([lambda i=i: Monitor(UniformTaskOnReset(PointMassGateEnv(), seed=i)) for i in range(4)])
        callback = None
    else:  # one by one (DummyVecEnv), as the other configurations
        env = make_vec_env("point-mass", 4, seed=0, batched=False)
    if teacher not in (None, "env-side uniform"):
        callback = CurriculumCallback(
            make_teacher(teacher, PointMassGateEnv.task_space, seed=0, return_bounds=PointMassGateEnv.return_bounds)
        )
        callback.prime(env)
    model = PPO(policy, env, seed=0, device="cpu", **hp)
    start, cpu_start = time.perf_counter(), time.process_time()
    model.learn(steps, callback=callback)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    returns = sum(sum(m) for m in env.env_method("get_episode_rewards"))
    env.close()
    return model.num_timesteps / elapsed, model.num_timesteps / cpu, returns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, torch threads 1")
    print(f"command: python bench/curriculum_overhead.py --steps {args.steps} --repeats {args.repeats}")
    recorded: list[list[np.ndarray]] = []
    *_, teacher_returns = steps_per_second("alp-gmm", args.steps, record=recorded)  # untimed: records the curriculum
    configs: dict[str, dict[str, Any]] = {
        "plain SB3": {"teacher": None},
        "plain SB3, uniform tasks set by the env": {"teacher": "env-side uniform"},
        "plain SB3, alp-gmm's tasks replayed by env": {"teacher": None, "replay": recorded},
        "random teacher": {"teacher": "random"},
        "alp-gmm teacher": {"teacher": "alp-gmm"},
    }
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in configs}
    order = list(configs)
    for repeat in range(args.repeats):  # rotate the order, so that drift on a shared machine hits every config
        for name in order[repeat % len(order) :] + order[: repeat % len(order)]:
            results[name].append(steps_per_second(steps=args.steps, **configs[name]))
    replayed = results["plain SB3, alp-gmm's tasks replayed by env"][0][2]
    print(f"replay plays the teacher's episodes exactly (same sum of returns): {np.isclose(replayed, teacher_returns)}")
    for base in ("plain SB3", "plain SB3, alp-gmm's tasks replayed by env"):
        base_wall = statistics.median(v[0] for v in results[base])
        base_cpu = statistics.median(v[1] for v in results[base])
        print(f"-- ratios to: {base}")
        for name, values in results.items():
            wall, cpu = statistics.median(v[0] for v in values), statistics.median(v[1] for v in values)
            spread = f"{min(v[0] for v in values):.0f}-{max(v[0] for v in values):.0f}"
            print(
                f"{name:44s} wall {wall:6.0f} steps/s (ratio {wall / base_wall:5.3f}, runs {spread})   "
                f"cpu {cpu:6.0f} steps/s (ratio {cpu / base_cpu:5.3f})"
            )


if __name__ == "__main__":
    main()
