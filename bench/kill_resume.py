"""Kill harness: ``kill -9`` a run, a distillation or a comparison at a random moment, resume it, and compare the
result with the uninterrupted one, byte for byte.

Scenarios (tiny budgets, point-mass unless named, CPU): ``ppo`` (ALP-GMM), ``sac`` (PLR, a small replay buffer
checkpointed), ``sac-defaults`` (PLR, SAC's point-mass defaults: its whole 1M-transition replay buffer in every
checkpoint), ``kick`` (PPO kickstarted from a PPO expert), ``distill`` (DAgger from a privileged expert),
``compare`` (two teachers x two seeds, two workers) and ``paired`` (PAIRED on the maze: student, antagonist and
adversary in every checkpoint). For each trial the command starts in a fresh folder, is killed with SIGKILL after a
uniform random delay (up to the uninterrupted run's wall time), and is resumed (``run --resume --out DIR``,
``distill --resume --out DIR``, or the same command again where the kill came before the settings were written,
and for ``compare``) until it finishes; with ``--double`` the first resume is killed too. A trial is *exact* when
every ``metrics.json`` and ``eval.csv`` equals the uninterrupted run's, *different* when one differs, *failed* when
a resume exits non-zero (a stuck run).

    python bench/kill_resume.py [--trials 10] [--scenarios ppo,sac,sac-defaults,kick,distill,compare,paired] [--double]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, str(ROOT / "cli.py")]
PM = ["--env", "point-mass", "--device", "cpu", "--n-envs", "2", "--threads", "1"]
PPO = ["--hp", "n_steps=128", "--hp", "batch_size=64", "--hp", "n_epochs=2"]
SAC = ["--student", "sac", "--hp", "learning_starts=200", "--hp", "buffer_size=5000", "--hp", "batch_size=64"]


def scenarios(experts: dict[str, Path]) -> dict[str, tuple[list[str], list[str]]]:
    """name -> (command without --out, resume arguments appended to ``--out DIR``)"""
    every = ["--eval-every", "1000", "--checkpoint-every", "1000"]
    ppo = [*CLI, "run", *PM, *PPO, "--teacher", "alp-gmm", "--teacher-param", "fit_rate=20", "--steps", "6000", *every]
    sac = [*CLI, "run", *PM, *SAC, "--teacher", "plr", "--steps", "2500", "--eval-every", "500", "--checkpoint-every", "500"]
    # SAC with its point-mass defaults (a 1M-transition replay buffer in every checkpoint), learning from step 500
    sac_defaults = [*CLI, "run", *PM, "--student", "sac", "--hp", "learning_starts=500", "--teacher", "plr"]
    sac_defaults += ["--steps", "2500", "--eval-every", "500", "--checkpoint-every", "500"]
    kick = [*CLI, "run", *PM, *PPO, "--teacher", "random", "--kickstart", str(experts["plain"]), "--steps", "5000", *every]
    distill = [*CLI, "distill", "--expert", str(experts["privileged"]), "--env", "point-mass", "--n-envs", "2"]
    distill += ["--steps", "6000", "--rollout-steps", "500", "--checkpoint-every", "1000", "--eval-every", "2000"]
    distill += ["--device", "cpu", "--threads", "1"]
    compare = [*CLI, "compare", "--env", "point-mass", "--teachers", "random,alp-gmm", "--seeds", "0-1", "--steps", "3000"]
    compare += ["--n-envs", "2", "--hp", "n_steps=128", "--hp", "batch_size=64", "--eval-every", "1000", "--workers", "2"]
    compare += ["--device", "cpu"]
    # PAIRED on the maze: three learners (student, antagonist, adversary) in every checkpoint
    paired = [*CLI, "run", "--env", "maze", "--device", "cpu", "--n-envs", "2", "--threads", "1", *PPO]
    paired += ["--teacher", "paired", "--teacher-param", "hidden=16", "--steps", "4000", *every]
    return {"ppo": (ppo, ["--resume"]), "sac": (sac, ["--resume"]), "sac-defaults": (sac_defaults, ["--resume"])} | {
        "kick": (kick, ["--resume"]),
        "distill": (distill, ["--resume"]),
        "compare": (compare, []),
        "paired": (paired, ["--resume"]),
    }


def resume_command(command: list[str], resume: list[str], out: Path) -> list[str]:
    """The resume the interrupt message gives (``--resume --out DIR``), or the same command again where the kill
    came before the run wrote its settings (or for a comparison)."""
    if not resume or not any((out / name).exists() for name in ("config.yaml", "distill.yaml")):
        return [*command, "--out", str(out)]
    verb = command.index("run") if "run" in command else command.index("distill")
    return [*command[: verb + 1], *resume, "--out", str(out), "--threads", "1"]


def outputs(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for name in ("metrics.json", "eval.csv") for p in sorted(folder.rglob(name))
    }


def make_experts(tmp: Path) -> dict[str, Path]:
    experts = {"plain": tmp / "expert", "privileged": tmp / "expert_priv"}
    for kind, folder in experts.items():
        extra = ["--obs", "privileged"] if kind == "privileged" else []
        subprocess.run(
            [*CLI, "run", *PM, *PPO, "--teacher", "random", "--steps", "2048", *extra, "--out", str(folder)],
            check=True,
            capture_output=True,
        )
    return experts


def trial(command: list[str], resume: list[str], out: Path, delay: float, rng: random.Random, double: bool) -> str:
    process = subprocess.Popen(
        [*command, "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    kill_after(process, delay)
    kills = 1 if double else 0
    for _ in range(20):
        again = subprocess.Popen(
            resume_command(command, resume, out), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
        )
        if kills:
            kills -= 1
            kill_after(again, rng.uniform(0.5, delay + 1.0))
            continue
        output, _ = again.communicate()
        return "done" if again.returncode == 0 else "failed: " + output.decode(errors="replace").strip().splitlines()[-1][:160]
    return "failed: never finished"


def kill_after(process: subprocess.Popen, delay: float) -> None:
    try:
        process.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the whole group: a comparison's workers too
        process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--scenarios", default="ppo,sac,sac-defaults,kick,distill,compare,paired")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--double", action="store_true", help="kill the first resume too")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        table = scenarios(make_experts(tmp))
        for name in args.scenarios.split(","):
            command, resume = table[name]
            start = time.perf_counter()
            subprocess.run([*command, "--out", str(tmp / f"{name}_whole")], check=True, capture_output=True)
            wall = time.perf_counter() - start
            reference = outputs(tmp / f"{name}_whole")
            counts = {"exact": 0, "different": 0, "failed": 0}
            for k in range(args.trials):
                out = tmp / f"{name}_{k}"
                status = trial(command, resume, out, rng.uniform(0.5, wall), rng, args.double)
                if status != "done":
                    counts["failed"] += 1
                    print(f"  {name} trial {k}: {status}", flush=True)
                else:
                    counts["exact" if outputs(out) == reference else "different"] += 1
                shutil.rmtree(out, ignore_errors=True)
            print(
                f"{name}: {args.trials} kills (uninterrupted {wall:.1f} s): "
                + ", ".join(f"{v} {k}" for k, v in counts.items()),
                flush=True,
            )


if __name__ == "__main__":
    main()
