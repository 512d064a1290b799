"""Cost per episode of each teacher (sample + update) and of the simulated student, on the toy protocol.

Usage: python bench/teacher_cost.py [--episodes 20000] [--repeats 3]

Prints the machine, then per teacher the median over repeats of its own time per episode, and the student's
time per episode. A teacher the simulated student cannot feed (PLR's value scores) or whose task space is of
another kind (lp-bandit's discrete one) or that needs a parameter (stages: its file) is skipped with a line saying
why. Figures on a shared machine are noisy: compare ratios measured in one run.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curriculum.registry import TEACHERS, teacher_for
from environments.simulated_student import SimulatedStudent, simulate


def student_us_per_episode(episodes: int) -> float:
    student = SimulatedStudent()
    tasks = np.random.default_rng(0).random((episodes, 2))
    start = time.perf_counter()
    for task in tasks:
        student.episode(task)
    return 1e6 * (time.perf_counter() - start) / episodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"command: python bench/teacher_cost.py --episodes {args.episodes} --repeats {args.repeats}")
    print(f"{'':12s} {'µs/episode (median)':>20s} {'% mastered':>11s}")
    toy = SimulatedStudent()
    for name in TEACHERS:
        try:
            needs = teacher_for(name, toy, 0).required_scores
        except (TypeError, ValueError) as exc:  # another kind of task space (lp-bandit), a required parameter (stages)
            print(f"{name:12s} skipped: {exc}")
            continue
        if needs:
            print(f"{name:12s} skipped: needs the student's {', '.join(needs)} score, which the toy does not give")
            continue
        runs = [simulate(name, args.episodes, seed=r) for r in range(args.repeats)]
        cost = statistics.median(r.teacher_us_per_episode for r in runs)
        mastered = statistics.mean(r.mastered[args.episodes] for r in runs)
        print(f"{name:12s} {cost:20.1f} {mastered:11.1f}")
    student = statistics.median(student_us_per_episode(args.episodes) for _ in range(args.repeats))
    print(f"{'student':12s} {student:20.1f}")


if __name__ == "__main__":
    main()
