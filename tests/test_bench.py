"""Every ``bench/`` script runs on a fresh clone as its docstring says, here at its smallest setting (in a temporary
folder, so that whatever it writes under its default ``results/`` lands there).

Deselected from the suite (about 5 minutes on 2 cores): ``make bench-check`` runs them, and so does CI after it.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

BENCH = Path(__file__).resolve().parents[1] / "bench"
pytestmark = pytest.mark.bench

#: each script with its smallest setting, and a line its output must hold
SMALLEST = {
    "curriculum_overhead.py": (["--steps", "1024", "--repeats", "1"], "ratio"),
    "distill.py --throughput": (["--throughput", "--steps", "1024", "--dataset-size", "2048"], "ratio to PPO"),
    "env_speed.py": (["--steps", "100"], "steps/s"),
    "kickstart.py --overhead": (["--overhead", "--steps", "1024", "--repeats", "1"], "kickstarted, 2 experts"),
    "infeasible_budget.py": (
        ["--teachers", "random", "--seeds", "0", "--steps", "2048", "--n-envs", "2", "--eval-every", "2048"],
        "| random |",
    ),
    "kill_resume.py": (["--trials", "1", "--scenarios", "ppo"], "1 exact"),
    "maze_throughput.py": (["--rollouts", "1", "--n-envs", "2"], "recurrent-ppo"),
    "paired_adversary.py": (
        ["--steps", "512", "--n-envs", "2", "--grid", "entropy_coef=0", "--seeds", "0"],
        "| entropy_coef=0 |",
    ),
    "paired_cost.py": (["--steps", "512", "--n-envs", "2", "--repeats", "1", "--vae-iterations", "5"], "clutr pretraining"),
    "point_mass_speed.py": (["--steps", "1024", "--repeats", "1"], "steps/s"),
    "spdl_step.py": (["--buffers", "1"], "worst gap"),
    "teacher_cost.py": (["--episodes", "20", "--repeats", "1"], "plr          skipped: needs the student's"),
    "threads.py": (["--steps", "512", "--repeats", "1"], "--threads 2"),
}


def run_script(folder: Path, script: str, *arguments: str) -> subprocess.CompletedProcess:
    """``python bench/SCRIPT ARGUMENTS`` run in ``folder``, its output captured."""
    command = [sys.executable, str(BENCH / script), *arguments]
    return subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=600)


def test_every_bench_script_is_listed():
    scripts = {p.name for p in BENCH.glob("*.py")}
    listed = {name.split()[0] for name in SMALLEST} | {"distill.py", "kickstart.py", "infeasible_interference.py"}
    assert scripts == listed


@pytest.mark.parametrize("name", list(SMALLEST))
def test_a_bench_script_runs_at_its_smallest_setting(tmp_path, name):
    arguments, expected = SMALLEST[name]
    done = run_script(tmp_path, name.split()[0], *arguments)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and expected in done.stdout, done.stdout[-2000:]


def test_the_kickstart_and_distillation_comparisons_run_at_their_smallest_setting(tmp_path):
    done = run_script(tmp_path, "kickstart.py", "--steps", "1024", "--expert-steps", "1024", "--seeds", "0")
    output = done.stdout[-2000:] + done.stderr[-2000:]
    assert done.returncode == 0 and "8 runs done, 0 skipped, 0 failed" in done.stdout, output
    setup = yaml.safe_load((BENCH.parent / "experiments" / "distill_point_mass.yaml").read_text())
    setup.update(seeds="0", eval_every=1024, distill_eval_every=1024)
    for stage in ("expert", "scratch"):
        setup[stage]["steps"] = 1024
    for variant in setup["distill"].values():
        variant["steps"] = 1024
    setup["distill"] = {"dagger": setup["distill"]["dagger"]}
    setup["finetune"]["steps"] = 1024
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(setup))
    done = run_script(tmp_path, "distill.py", "--config", "tiny.yaml", "--workers", "2", "--out", "out")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert (tmp_path / "out" / "table.md").read_text().count("\n") >= 4 and (tmp_path / "out" / "curves.png").exists()


def test_the_infeasible_interference_replay_runs_on_a_budget_folder(tmp_path):
    budget = ["--teachers", "alp-gmm", "--seeds", "0", "--steps", "2048", "--n-envs", "2", "--eval-every", "2048"]
    done = run_script(tmp_path, "infeasible_budget.py", *budget, "--out", "budget")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    interference = ["--budget", "budget", "--seeds", "0", "--masked", "alp-gmm", "--n-envs", "2", "--out", "replay"]
    done = run_script(tmp_path, "infeasible_interference.py", *interference)
    assert done.returncode == 0 and "seed 0: replay" in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]
    assert "| alp-gmm |" in done.stdout and (tmp_path / "replay" / "masked" / "alp-gmm" / "seed0" / "metrics.json").is_file()
    metrics = json.loads((tmp_path / "replay" / "masked" / "alp-gmm" / "seed0" / "metrics.json").read_text())
    assert 0 < metrics["trained_steps"] < metrics["timesteps"]  # the failed-engine episodes were left out
    assert (tmp_path / "replay" / "replay" / "seed0" / "metrics.json").is_file()
    missing = run_script(tmp_path, "infeasible_interference.py", "--budget", "nowhere", "--seeds", "0", "--out", "none")
    assert missing.returncode != 0 and "run bench/infeasible_budget.py --teachers alp-gmm --out DIR first" in missing.stderr
    assert not (tmp_path / "none").exists()
