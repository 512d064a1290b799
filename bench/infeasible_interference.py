"""Why ALP-GMM's working-engine tasks of ``lunar-lander-infeasible`` learn slowly: the failed-engine episodes played
beside them, or the curriculum ALP-GMM chose inside the working part.

Usage: python bench/infeasible_interference.py --budget DIR [--teacher alp-gmm] [--masked alp-gmm,random]
       [--seeds 0-4] [--n-envs 0] [--workers 2] [--out DIR]

``--budget DIR`` is the ``--out`` folder of ``bench/infeasible_budget.py`` (its ``infeasible/`` and ``plain/``
comparisons; run that first). For each seed, the infeasible run's own curriculum is read from its teacher's history
(ALP-GMM's nearest-neighbour history: every episode's task, in the order the episodes ended), and its working-engine
tasks, in that order, are replayed on ``lunar-lander`` (the working part alone) by :class:`ReplayTeacher` for ``W``
steps, the infeasible run's training steps on working engines, with the same PPO settings and seed (``cli.py run``;
a rerun skips the runs done). The replay is the infeasible run less its failed-engine episodes: the same working
tasks in the same order for the same steps. So:

- replay level with the infeasible run: the curriculum inside the working part explains the slow learning;
- replay level with the plain twin at ``W`` (ALP-GMM on ``lunar-lander`` itself): the failed-engine episodes do.

A run trains whole rollouts (16 x 1,024 steps), so the replay ends up to 16,383 steps past ``W``: it is read at
``W``, as the twin is, linearly between its evaluations (every 50,000 steps and at its end).

Printed, mean ± std over seeds: ``W``; the curriculum (the working tasks' mean wind and turbulence power, beside
the twin's over its first as many episodes); the infeasible run's final test mastered % and mean return, the
replay's and the twin's at ``W``; Welch's p of the replay's return against each of the other two; and PPO's
training diagnostics (value loss, explained variance, clip fraction, policy-gradient loss, entropy) of the three runs,
each the mean over the updates up to where the run is read.

Then the student that is told which episodes it can do nothing in: each ``--masked`` teacher (ALP-GMM, random)
runs again on the infeasible space with its budget run's steps and seed, every failed-engine episode played (the
teacher learns from it as before) but left out of PPO's updates (:class:`MaskedAlpGmm`, :class:`MaskedRandom`; the
masked PPO of Robust PLR's unscored levels). ``T``, its training steps, are all on working engines. Printed per
teacher: ``T``, the infeasible share of its episodes, its final test mastered % and return beside the unmasked run's
and the twin's at ``T``, with Welch's p; and masked ALP-GMM against masked random. An oracle, not a student
TeachMyAgent's challenge allows: it measures what the failed-engine episodes cost, and what the teachers'
curricula are worth once they cost nothing.
"""

from __future__ import annotations

import argparse
import json
import pickle
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.infeasible_budget import at, cell  # noqa: E402
from curriculum.alp_gmm import AlpGmmTeacher  # noqa: E402
from curriculum.base import Feedback, Level, Teacher  # noqa: E402
from curriculum.random_teacher import RandomTeacher  # noqa: E402
from curriculum.spaces import BoxTaskSpace  # noqa: E402
from environments.lunar_lander import LunarLanderInfeasibleEnv  # noqa: E402
from students.analysis.report import eval_curve, welch_p  # noqa: E402
from students.config import parse_seeds  # noqa: E402

INFEASIBLE, PLAIN = "lunar-lander-infeasible", "lunar-lander"
MODULE = "bench.infeasible_interference"  # how cli.py run finds this file's teachers


class ReplayTeacher(Teacher[BoxTaskSpace]):
    """Plays a recorded sequence of tasks in order, learning nothing; once it is used up, every task is drawn
    uniformly from its last ``tail`` tasks (all of them when it holds fewer), and ``overrun`` counts those draws.

    :param tasks: path of a ``.npy`` array of tasks, one row per episode, in the task space's dimensions
    :param tail: how many of the last tasks are drawn from once the sequence is used up
    """

    state_attrs = ("_next", "overrun")

    def __init__(
        self,
        task_space: BoxTaskSpace,
        seed: int = 0,
        return_bounds: tuple[float, float] | None = None,
        tasks: str = "",
        tail: int = 250,
    ) -> None:
        super().__init__(task_space, seed, return_bounds)
        if not tasks or not Path(tasks).is_file():
            raise ValueError(f"replay needs tasks=PATH of a .npy array of tasks, got '{tasks}'")
        self._tasks = np.load(tasks)
        if self._tasks.ndim != 2 or self._tasks.shape[1] != task_space.dim or not len(self._tasks):
            raise ValueError(f"'{tasks}' must hold tasks of {task_space.dim} values, got shape {self._tasks.shape}")
        if not ((self._tasks >= task_space.low) & (self._tasks <= task_space.high)).all():
            raise ValueError(f"'{tasks}' holds tasks outside the task space")
        self.tail = min(tail, len(self._tasks))
        self._next = 0
        self.overrun = 0

    def _sample(self) -> np.ndarray:
        if self._next < len(self._tasks):
            task = self._tasks[self._next]
        else:
            task = self._tasks[len(self._tasks) - self.tail + int(self.rng.integers(self.tail))]
            self.overrun += 1
        self._next += 1
        return task.copy()

    def _update(self, task: Any, feedback: Feedback) -> None:
        pass


class _TrainOnWorkingEngines:
    """Teacher mixin: every failed-engine episode is played (and the teacher learns from it) but left out of the
    student's updates (``Level.train``; a masked PPO then takes no part of it in any loss, advantage normalisation
    included: :mod:`students.loop.masked`). An oracle: the student is told which episodes it can do nothing in."""

    masks_updates = True

    def sample_level(self) -> Level:
        level = super().sample_level()  # type: ignore[misc]
        return replace(level, train=bool(LunarLanderInfeasibleEnv.feasible(np.asarray(level.task))[0]))


class MaskedAlpGmm(_TrainOnWorkingEngines, AlpGmmTeacher):
    """ALP-GMM whose student learns from working-engine episodes only."""


class MaskedRandom(_TrainOnWorkingEngines, RandomTeacher):
    """Random whose student learns from working-engine episodes only."""


MASKED = {"alp-gmm": "MaskedAlpGmm", "random": "MaskedRandom"}


def history(run: Path, space: BoxTaskSpace) -> np.ndarray:
    """The tasks of an ALP-GMM run's history (its nearest-neighbour ALP history, then the window not yet fitted), one
    row per episode, in the order the episodes ended."""
    state = pickle.loads((run / "teacher.pkl").read_bytes())
    alp = state["_alp"]
    pending = state["_buffer"][: state["n_updates"] - alp._n, : space.dim]  # the window not yet fitted
    return space.low + np.vstack([alp._points[: alp._n], pending]) * space.span


def space_of(env: str) -> BoxTaskSpace:
    from environments.registry import make_env

    made = make_env(env)
    try:
        return made.task_space
    finally:
        made.close()


def curve_at(run: Path, steps: float) -> tuple[float, float]:
    """A run's test mastered % and mean return at ``steps``, linearly between its evaluations."""
    curve = eval_curve(run / "eval.csv")
    return at(curve, steps, "mastered_pct"), at(curve, steps, "mean_return")


#: PPO's training diagnostics (SB3's TensorBoard scalars, one per update) printed for the three runs, with the
#: decimals they are printed with
DIAGNOSTICS = {
    "value loss": ("train/value_loss", 0),
    "explained variance": ("train/explained_variance", 3),
    "clip fraction": ("train/clip_fraction", 3),
    "policy-gradient loss": ("train/policy_gradient_loss", 4),
    "entropy": ("train/entropy_loss", 3),
}


def diagnostics(run: Path, until: float) -> dict[str, float]:
    """A run's PPO diagnostics, each the mean over its updates logged at or before ``until`` steps (entropy: minus
    SB3's entropy loss)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    values: dict[str, dict[int, float]] = {name: {} for name in DIAGNOSTICS}
    for events_file in sorted((run / "tb").glob("*/events.out.tfevents.*")):  # a resumed run logs to more than one
        events = EventAccumulator(str(events_file), size_guidance={"scalars": 0})
        events.Reload()
        for name, (tag, _) in DIAGNOSTICS.items():
            if tag in events.Tags()["scalars"]:
                values[name] |= {e.step: e.value for e in events.Scalars(tag) if e.step <= until}
    means = {name: float(np.mean(list(by_step.values()))) for name, by_step in values.items()}
    return means | {"entropy": -means["entropy"]}


def train(run: Path, env: str, teacher: str, params: list[str], steps: int, seed: int, n_envs: int) -> Path:
    """``cli.py run`` of one of this script's runs with the budget runs' PPO settings (skipped when done)."""
    if (run / "metrics.json").is_file():
        return run
    command = [sys.executable, str(ROOT / "cli.py"), "run", "--env", env, "--teacher", teacher, "--student", "ppo",
               "--steps", str(steps), "--seed", str(seed), "--n-envs", str(n_envs), "--eval-every", "50000",
               "--checkpoint-every", "50000", "--device", "cpu", "--out", str(run)]  # fmt: skip
    for param in params:
        command += ["--teacher-param", param]
    if (run / "config.yaml").is_file():
        command.append("--resume")
    print(" ".join(command[1:]), flush=True)
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"{run} failed: {(done.stderr or done.stdout).strip().splitlines()[-1]}")
    return run


def budget_run(args: argparse.Namespace, kind: str, teacher: str, seed: int) -> Path:
    """A finished run of ``bench/infeasible_budget.py`` (``kind``: infeasible or plain), or exit saying so."""
    env = INFEASIBLE if kind == "infeasible" else PLAIN
    run = args.budget / kind / env / teacher / "ppo" / f"seed{seed}"
    if not (run / "metrics.json").is_file():
        raise SystemExit(f"no finished {kind} run of {teacher} seed {seed} under {args.budget}: "
                         f"run bench/infeasible_budget.py --teachers {teacher} --out DIR first")  # fmt: skip
    return run


def replays(args: argparse.Namespace, seeds: list[int], out: Path, pool: ThreadPoolExecutor) -> None:
    """The replay runs of ``args.teacher``'s curriculum, and their table beside the infeasible runs and the twins."""
    infeasible_space, plain_space = space_of(INFEASIBLE), space_of(PLAIN)
    runs = {}
    (out / "tasks").mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        own, twin = (budget_run(args, kind, args.teacher, seed) for kind in ("infeasible", "plain"))
        metrics = json.loads((own / "metrics.json").read_text())
        tasks = history(own, infeasible_space)
        kept = tasks[tasks[:, 3] > 0.0, :3]
        np.save(out / "tasks" / f"seed{seed}.npy", kept)
        working = round(metrics["timesteps"] * (1.0 - metrics["infeasible_step_share"]))
        runs[seed] = {"own": own, "twin": twin, "W": working, "kept": kept, "twin_tasks": history(twin, plain_space)}

    def one(seed: int) -> Path:
        tasks = [f"tasks={out / 'tasks' / f'seed{seed}.npy'}"]
        steps = runs[seed]["W"]
        return train(out / "replay" / f"seed{seed}", PLAIN, f"{MODULE}:ReplayTeacher", tasks, steps, seed, args.n_envs)

    done = dict(zip(seeds, pool.map(one, seeds), strict=True))
    lists: dict[str, list[float]] = {}
    for seed in seeds:
        r = runs[seed]
        n = len(r["kept"])
        teacher = pickle.loads((done[seed] / "teacher.pkl").read_bytes())
        values = {
            "W": r["W"] / 1000,
            "episodes": n,
            "overrun": 100.0 * teacher["overrun"] / max(1, teacher["_next"]),
            "wind_own": float(r["kept"][:, 1].mean()),
            "wind_twin": float(r["twin_tasks"][:n, 1].mean()),
            "turbulence_own": float(r["kept"][:, 2].mean()),
            "turbulence_twin": float(r["twin_tasks"][:n, 2].mean()),
        }
        for name, run, steps in (("own", r["own"], np.inf), ("replay", done[seed], r["W"]), ("twin", r["twin"], r["W"])):
            values[f"{name}_mastered"], values[f"{name}_return"] = curve_at(run, steps)
            values |= {f"{name}_{key}": value for key, value in diagnostics(run, steps).items()}
        for key, value in values.items():
            lists.setdefault(key, []).append(value)
    rows = {key: np.array(v) for key, v in lists.items()}
    p_own = welch_p(rows["replay_return"], rows["own_return"])
    p_twin = welch_p(rows["replay_return"], rows["twin_return"])
    print(f"\n{args.teacher}, seeds {args.seeds}; W: the infeasible run's training steps on working engines; replay: "
          "its working-engine tasks, in order, on lunar-lander for W steps; twin: the teacher itself on lunar-lander; "
          "both read at W\n")  # fmt: skip
    print("| W (k steps) | working episodes | replay past its tasks % | mean wind: infeasible run / twin "
          "| mean turbulence: infeasible run / twin | infeasible run: mastered % / return "
          "| replay: mastered % / return | twin at W: mastered % / return | p replay vs infeasible run "
          "| p replay vs twin |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    cells = [cell(rows["W"]), cell(rows["episodes"], 0), cell(rows["overrun"])]
    cells += [f"{cell(rows[f'{k}_own'], 2)} / {cell(rows[f'{k}_twin'], 2)}" for k in ("wind", "turbulence")]
    cells += [f"{cell(rows[f'{k}_mastered'])} / {cell(rows[f'{k}_return'], 2)}" for k in ("own", "replay", "twin")]
    print(f"| {' | '.join(cells)} | {p_own:.2g} | {p_twin:.2g} |")
    print("\nPPO's training diagnostics, each the mean over a run's updates (the infeasible run's all; the replay's "
          "and the twin's up to W)\n")  # fmt: skip
    print(f"| run | {' | '.join(DIAGNOSTICS)} |")
    print(f"|---|{'---|' * len(DIAGNOSTICS)}")
    for label, k in (("infeasible run", "own"), ("replay", "replay"), ("twin", "twin")):
        print(f"| {label} | {' | '.join(cell(rows[f'{k}_{name}'], d) for name, (_, d) in DIAGNOSTICS.items())} |")
    for i, seed in enumerate(seeds):
        print(f"seed {seed}: " + ", ".join(f"{label} {rows[f'{k}_mastered'][i]:.1f}% / {rows[f'{k}_return'][i]:.2f}"
              for label, k in (("replay", "replay"), ("infeasible run", "own"), ("twin at W", "twin"))))  # fmt: skip


def masked_runs(args: argparse.Namespace, seeds: list[int], out: Path, pool: ThreadPoolExecutor) -> None:
    """The masked runs of ``args.masked``'s teachers, and their table beside the unmasked runs and the twins."""
    teachers = args.masked
    if not teachers:
        return
    pairs = [(teacher, seed) for teacher in teachers for seed in seeds]
    unmasked = {pair: budget_run(args, "infeasible", *pair) for pair in pairs}
    twins = {pair: budget_run(args, "plain", *pair) for pair in pairs}

    def one(pair: tuple[str, int]) -> Path:
        steps = yaml.safe_load((unmasked[pair] / "config.yaml").read_text())["steps"]
        folder = out / "masked" / pair[0] / f"seed{pair[1]}"
        return train(folder, INFEASIBLE, f"{MODULE}:{MASKED[pair[0]]}", [], steps, pair[1], args.n_envs)

    done = dict(zip(pairs, pool.map(one, pairs), strict=True))
    print("\nThe student told which episodes it can do nothing in: the same teacher on the infeasible space, every "
          "failed-engine episode played (and the teacher learning from it) but left out of PPO's updates; T: its "
          "training steps, all on working engines; the twin read at T\n")  # fmt: skip
    print("| teacher | T (k steps) | infeasible % of episodes | masked: mastered % / return | unmasked: mastered % / return "
          "| p masked vs unmasked | twin at T: mastered % / return | p masked vs twin |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    results: dict[str, dict[str, np.ndarray]] = {}
    for teacher in teachers:
        m: dict[str, list[float]] = {}
        for seed in seeds:
            pair = (teacher, seed)
            metrics = json.loads((done[pair] / "metrics.json").read_text())
            trained = float(metrics["trained_steps"])
            values = {"T": trained / 1000, "share": 100.0 * metrics["infeasible_share"]}
            for name, run, steps in (
                ("masked", done[pair], np.inf),
                ("unmasked", unmasked[pair], np.inf),
                ("twin", twins[pair], trained),
            ):
                values[f"{name}_mastered"], values[f"{name}_return"] = curve_at(run, steps)
            for key, value in values.items():
                m.setdefault(key, []).append(value)
        r = results[teacher] = {key: np.array(v) for key, v in m.items()}
        cells = [teacher, cell(r["T"]), cell(r["share"])]
        cells += [f"{cell(r[f'{k}_mastered'])} / {cell(r[f'{k}_return'], 2)}" for k in ("masked", "unmasked")]
        cells += [f"{welch_p(r['masked_return'], r['unmasked_return']):.2g}"]
        cells += [f"{cell(r['twin_mastered'])} / {cell(r['twin_return'], 2)}"]
        cells += [f"{welch_p(r['masked_return'], r['twin_return']):.2g}"]
        print(f"| {' | '.join(cells)} |")
    if {"alp-gmm", "random"} <= set(results):
        a, b = results["alp-gmm"], results["random"]
        print(f"\nmasked alp-gmm vs masked random, Welch's p: return {welch_p(a['masked_return'], b['masked_return']):.2g}, "
              f"mastered % {welch_p(a['masked_mastered'], b['masked_mastered']):.2g}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=Path, required=True, help="the --out folder of bench/infeasible_budget.py")
    parser.add_argument("--teacher", default="alp-gmm", help="the teacher whose curriculum is replayed")
    parser.add_argument("--masked", default="alp-gmm,random", help="teachers of the masked runs ('': none)")
    parser.add_argument("--seeds", default="0-4")
    parser.add_argument("--n-envs", type=int, default=0, help="0: lunar-lander's 16 (the budget runs' own)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    seeds = parse_seeds(args.seeds)
    args.budget = args.budget.resolve()
    args.masked = [t for t in args.masked.split(",") if t]
    if unknown := sorted(set(args.masked) - set(MASKED)):
        raise SystemExit(f"--masked takes {', '.join(MASKED)}, got {', '.join(unknown)}")
    for seed in seeds:  # every run this needs is there before any starts
        for kind in ("infeasible", "plain"):
            for teacher in dict.fromkeys([args.teacher, *args.masked]):
                budget_run(args, kind, teacher, seed)
    out = (args.out or Path(tempfile.mkdtemp(prefix="infeasible_interference_"))).resolve()
    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        replays(args, seeds, out, pool)
        masked_runs(args, seeds, out, pool)


if __name__ == "__main__":
    main()
