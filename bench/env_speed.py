"""Environment throughput on one core: steps per second with random actions, resets included.

Usage: python bench/env_speed.py [--steps 20000]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from environments.registry import ENVIRONMENTS, make_env


def steps_per_second(name: str, steps: int) -> float:
    env = make_env(name)
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(1000)]
    env.reset(seed=0)
    start = time.perf_counter()
    for i in range(steps):
        *_, terminated, truncated, _ = env.step(actions[i % 1000])
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20000)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"command: python bench/env_speed.py --steps {args.steps}")
    for name, entry in ENVIRONMENTS.items():
        if entry.trainable:
            print(f"{name:26s} {steps_per_second(name, args.steps):10.0f} steps/s")


if __name__ == "__main__":
    main()
