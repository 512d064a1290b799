"""Wall time of one small ``cli.py run`` per thread count of its process: the rule behind ``--threads``' default.

Each configuration runs ``python cli.py run --env point-mass --teacher random --steps STEPS --threads N`` in a fresh
process (PPO with its point-mass settings: 32 batched envs x 128 steps, an evaluation at the end), in turn (the
order rotating between repeats), ``--repeats`` times; prints the median wall time and its ratio to one thread.
``--threads`` up to the number of cores is torch's own default (its intra-op threads = the physical cores).

    python bench/threads.py [--steps 4096 --repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed_run(threads: int, steps: int, folder: Path) -> float:
    command = [sys.executable, str(ROOT / "cli.py"), "run", "--env", "point-mass", "--teacher", "random"]
    command += ["--steps", str(steps), "--eval-every", str(steps), "--device", "cpu", "--threads", str(threads)]
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    start = time.perf_counter()
    subprocess.run([*command, "--out", str(folder)], check=True, capture_output=True, env=env, cwd=ROOT)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    counts = sorted({1, 2, os.cpu_count() or 1})
    times: dict[int, list[float]] = {n: [] for n in counts}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            order = counts[repeat % len(counts) :] + counts[: repeat % len(counts)]
            for n in order:
                times[n].append(timed_run(n, args.steps, Path(tmp) / f"r{repeat}_{n}"))
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
    print(f"cli.py run, point-mass PPO, {args.steps} steps, median of {args.repeats} (wall s, ratio to 1 thread):")
    base = statistics.median(times[1])
    for n in counts:
        median = statistics.median(times[n])
        print(f"  --threads {n}: {median:6.2f} s  x{median / base:.2f}")


if __name__ == "__main__":
    main()
