"""Comparisons: seeds parsing, config files, failure isolation, skip/resume, report statistics, Ray backend."""

import json
import math

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from scipy import stats

from cli import cli
from students.experiments.compare import CompareConfig, CompareError, compare, load_compare_config
from students.config import ConfigError, parse_seeds
from students.analysis.report import write_report

ECHO = "tests.user_env:TaskEchoEnv"
TINY = {"n_steps": "32", "batch_size": "32"}


def tiny(teachers, seeds=(0,), steps=64, n_envs=1):
    return CompareConfig(
        env=ECHO,
        teachers=list(teachers),
        seeds=list(seeds),
        steps=steps,
        n_envs=n_envs,
        eval_every=32,
        hp=dict(TINY),
        device="cpu",
    )


def test_seed_ranges_and_bad_seeds():
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("3,1,1") == [1, 3]
    assert parse_seeds("0-2,7") == [0, 1, 2, 7]
    for bad, message in [("a", "'a' is not a seed"), ("3-1", "low <= high"), ("", "no seed given"), ("-2", "not a seed")]:
        with pytest.raises(ConfigError, match=message):
            parse_seeds(bad)


def test_config_file_keys_and_overrides(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({"env": "point-mass", "teachers": "random,alp-gmm", "seeds": "0-2", "steps": 5000}))
    config = load_compare_config(path, {"steps": 7000, "env": None})
    assert (config.env, config.teachers, config.seeds, config.steps) == ("point-mass", ["random", "alp-gmm"], [0, 1, 2], 7000)
    path.write_text(yaml.safe_dump({"env": "point-mass", "teacher": "random"}))
    with pytest.raises(CompareError, match="unknown key.*teacher; valid: env, teachers, students, seeds"):
        load_compare_config(path, {})
    with pytest.raises(CompareError, match="does not exist"):
        load_compare_config(tmp_path / "missing.yaml", {})


def test_teachers_and_students_options_run_part_of_a_config_file(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({
        "env": "point-mass", "teachers": ["spdl", "alp-gmm", "stages"],
        "teacher_params": {"alp-gmm": {"fit_rate": 100}, "stages": {"stages": "experiments/stages/spdl_target.yaml"}},
        "students": {"trpo": {}, "ppo-ent": {"algo": "ppo", "hp": {"ent_coef": 0.02}}},
    }))  # fmt: skip
    config = load_compare_config(path, {"teachers": "spdl,stages", "students": "ppo-ent"})
    assert config.teacher_params == {"stages": {"stages": "experiments/stages/spdl_target.yaml"}}  # alp-gmm's unused
    assert config.student_variants() == {"ppo-ent": {"algo": "ppo", "hp": {"ent_coef": 0.02}}}  # the variant's own
    assert [c.hp_overrides for c in config.run_configs()] == [{"ent_coef": "0.02"}] * 2  # two teachers, one student
    with pytest.raises(CompareError, match="teacher parameters given for riac, which is not among: spdl"):
        CompareConfig(env="point-mass", teachers=["spdl"], teacher_params={"riac": {}}).run_configs()  # no file: refused


def test_shipped_experiment_configs_are_valid(tmp_path):
    from pathlib import Path

    files = sorted(Path(__file__).resolve().parents[1].joinpath("experiments").glob("*.yaml"))
    assert {p.stem for p in files} >= {"point_mass", "stump_tracks", "simulated_student"}
    for path in files:
        if path.stem.startswith("simulated"):  # for cli.py simulate --config
            result = CliRunner().invoke(cli, ["simulate", "--config", str(path), "--episodes", "200", "--seeds", "1"])
            assert result.exit_code == 0, result.output
            assert "covar-gmm" in result.output
            continue
        if path.stem.startswith("distill"):  # for bench/distill.py: its two PPO stages and its distillations
            setup = yaml.safe_load(path.read_text())
            for stage, extra in (("expert", {"observation_mode": "privileged"}), ("scratch", {"history": setup["history"]})):
                stage_config = CompareConfig(
                    env=setup["env"], teachers=[setup[stage]["teacher"]], steps=setup[stage]["steps"],
                    env_kwargs={**setup["view"], **extra}, eval_every=setup["eval_every"],
                )  # fmt: skip
                assert len(stage_config.run_configs()) == 1
            assert setup["finetune"]["from"] in setup["distill"]
            continue
        config = load_compare_config(path, {})
        variants = config.student_variants()
        for settings in variants.values():  # kickstarted variants: a small expert stands in for the benchmark's
            if settings.get("kickstart"):
                settings["kickstart"] = [str(_small_expert(tmp_path))]
        config.students = variants
        assert len(config.run_configs()) == len(config.teachers) * len(config.students) * len(config.seeds)


def _small_expert(root):
    from students.run.train import RunConfig, train

    folder = root / "expert"
    if not (folder / "model.zip").exists():
        config = RunConfig(env="point-mass", teacher="random", student="ppo", steps=64, n_envs=1, device="cpu")
        config.hp_overrides, config.test_set = {"n_steps": "64", "batch_size": "64"}, "narrow"
        train(config, folder)
    return folder


def test_bad_names_fail_before_anything_starts(tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["compare", "--env", "point-mass", "--teachers", "random,nope", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "unknown teacher 'nope'; valid: random" in result.output
    result = runner.invoke(cli, ["compare", "--env", "point-mass", "--teachers", "random", "--seeds", "2-1"])
    assert result.exit_code == 2 and "low <= high" in result.output
    result = runner.invoke(
        cli, ["compare", "--env", "point-mass", "--teachers", "random", "--student", "dqn", "--out", str(tmp_path / "x")]
    )
    assert result.exit_code == 2 and "unknown student 'dqn'" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "x").exists()


def test_a_failing_run_is_recorded_the_others_finish_and_a_rerun_skips_finished_runs(tmp_path):
    out = tmp_path / "exp"
    args = [
        "compare",
        "--env",
        ECHO,
        "--teachers",
        "random,tests.user_env:ExplodingTeacher",
        "--seeds",
        "0-1",
        "--steps",
        "64",
        "--n-envs",
        "1",
        "--eval-every",
        "32",
        "--device",
        "cpu",
        "--workers",
        "2",
        "--out",
        str(out),
    ]
    args += [f"--hp={k}={v}" for k, v in TINY.items()]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    assert "2 run(s) failed" in result.output
    finished = sorted(out.rglob("metrics.json"))
    assert [p.parent.name for p in finished] == ["seed0", "seed1"] and all(p.parts[-4] == "random" for p in finished)
    errors = sorted(out.rglob("error.txt"))
    assert len(errors) == 2 and all("exploding teacher: deliberate failure" in e.read_text() for e in errors)
    assert all((e.parent / "run.log").read_text().count("RuntimeError") >= 1 for e in errors)
    report = (out / "report.md").read_text()
    assert "## Failed runs" in report and "deliberate failure" in report
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and "random" in p.parts}
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 1 and "2 run(s) to execute, 2 already finished" in again.output
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # finished runs untouched


def test_an_interrupted_run_resumes_from_its_checkpoint(tmp_path):
    out = tmp_path / "exp"
    compare(tiny(["random"], seeds=(0, 1)), out, workers=2)
    run = out / "tests.user_env_TaskEchoEnv" / "random" / "ppo" / "seed1"
    other = run.parent / "seed0" / "metrics.json"
    before = other.stat().st_mtime_ns
    (run / "metrics.json").unlink()  # as if killed after its last checkpoint
    (run / "model.zip").unlink()
    result = compare(tiny(["random"], seeds=(0, 1)), out, workers=2)
    assert result.finished == [run] and result.skipped == [other.parent]
    assert "resuming random / ppo / seed 1" in (run / "run.log").read_text()
    assert other.stat().st_mtime_ns == before
    with pytest.raises(CompareError, match="holds a run of 64 steps, more than the 48 asked"):  # a larger one extends
        compare(tiny(["random"], seeds=(0, 1), steps=48), out)
    with pytest.raises(CompareError, match="holds a run with other settings in n_envs"):
        compare(tiny(["random"], seeds=(0, 1), n_envs=2), out)


def fake_run(root, teacher, seed, final, curve, ret):
    folder = root / "point-mass" / teacher / "ppo" / f"seed{seed}"
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(
        yaml.safe_dump({"env": "point-mass", "teacher": teacher, "student": "ppo", "seed": seed})
    )
    (folder / "metrics.json").write_text(json.dumps({"final_eval": {"mastered_pct": final, "mean_return": ret, "tasks": 4}}))
    rows = []
    for step, pct in curve:
        successes = round(pct / 25)
        rows += [
            {"timesteps": step, "task_index": i, "task": "0 0", "return": ret, "success": int(i < successes)} for i in range(4)
        ]
    pd.DataFrame(rows).to_csv(folder / "eval.csv", index=False)


def test_report_statistics_match_hand_computed_values(tmp_path):
    finals = {"random": [25.0, 50.0, 25.0], "alp-gmm": [75.0, 100.0, 50.0]}
    returns = {"random": [10.0, 12.0, 14.0], "alp-gmm": [20.0, 30.0, 25.0]}
    for teacher in finals:
        for seed in range(3):
            curve = [(100, 0.0), (200, finals[teacher][seed]), (300, finals[teacher][seed])]
            fake_run(tmp_path, teacher, seed, finals[teacher][seed], curve, returns[teacher][seed])
    summary, rows, failed = write_report(tmp_path)
    assert not failed
    alp = summary.set_index("teacher").loc["alp-gmm"]
    values = np.array(finals["alp-gmm"])
    assert alp["mastered_pct_mean"] == pytest.approx(75.0)
    assert alp["mastered_pct_std"] == pytest.approx(25.0)  # sqrt(((0)^2 + 25^2 + 25^2) / 2)
    assert alp["mastered_pct_ci95"] == pytest.approx(4.302653 * 25.0 / math.sqrt(3), rel=1e-6)
    # Welch: t = (75 - 33.33) / sqrt(25^2/3 + 14.43^2/3), Welch-Satterthwaite degrees of freedom
    a, b = values, np.array(finals["random"])
    va, vb = a.var(ddof=1) / 3, b.var(ddof=1) / 3
    t = (a.mean() - b.mean()) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / 2 + vb**2 / 2)
    assert alp["mastered_pct_p_vs_random"] == pytest.approx(2 * stats.t.sf(abs(t), df), rel=1e-9)
    # AUC: trapezoid over steps 100..300 of (0, f, f) = (50 f + 100 f) / 200 = 0.75 f
    assert alp["auc_mean"] == pytest.approx(np.mean(0.75 * values))
    assert math.isnan(summary.set_index("teacher").loc["random", "mastered_pct_p_vs_random"])
    shown = {r["teacher"]: r for r in rows}
    assert shown["alp-gmm"]["mastered %"] == "**75.0 ± 25.0**" and shown["random"]["mastered %"] == "33.3 ± 14.4"
    csv = pd.read_csv(tmp_path / "summary.csv").set_index("teacher")
    assert csv.loc["alp-gmm", "mean_return_mean"] == pytest.approx(25.0)
    runs = pd.read_csv(tmp_path / "runs.csv")  # a row per run, each seed's own final result
    assert sorted(zip(runs.teacher, runs.seed, runs.mastered_pct, strict=True)) == sorted(
        (t, s, finals[t][s]) for t in finals for s in range(3)
    )
    assert "returns" not in runs and "target_mastered_pct" not in runs  # no per-task lists, no empty columns
    assert "| alp-gmm | 3 | **75.0 ± 25.0** |" in (tmp_path / "report.md").read_text()
    from PIL import Image

    with Image.open(tmp_path / "point-mass_ppo_curves.png") as image:
        assert image.size[0] > 400 and len(image.getcolors(1 << 16) or []) > 10  # a drawn plot, not a blank


def test_ray_backend_gives_the_local_layout(tmp_path):
    ray = pytest.importorskip("ray")
    config = tiny(["random"], seeds=(0, 1))
    compare(config, tmp_path / "local", workers=2)
    try:
        result = compare(config, tmp_path / "ray", workers=2, backend="ray")
    finally:
        ray.shutdown()
    assert len(result.finished) == 2 and not result.failed

    def layout(root):
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "tb" not in p.parts)

    assert layout(tmp_path / "ray") == layout(tmp_path / "local")
    for seed in (0, 1):
        path = f"tests.user_env_TaskEchoEnv/random/ppo/seed{seed}/metrics.json"
        assert json.loads((tmp_path / "ray" / path).read_text()) == json.loads((tmp_path / "local" / path).read_text())


def test_workers_stop_with_a_killed_compare_and_a_second_one_is_refused_meanwhile(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from students.run.lock import check_unlocked

    root, out = Path(__file__).resolve().parents[1], tmp_path / "exp"
    args = ["compare", "--env", ECHO, "--teachers", "random", "--seeds", "0-1", "--steps", "10000000", "--n-envs", "1"]
    args += ["--eval-every", "100000000", "--device", "cpu", "--workers", "2", "--out", str(out)]
    args += [f"--hp={k}={v}" for k, v in TINY.items()]
    runs = [out / "tests.user_env_TaskEchoEnv" / "random" / "ppo" / f"seed{s}" for s in (0, 1)]
    log = (tmp_path / "log.txt").open("w")
    parent = subprocess.Popen([sys.executable, "cli.py", *args], cwd=root, stdout=log, stderr=subprocess.STDOUT)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while not all((r / "checkpoint" / "progress.json").exists() for r in runs):  # both workers are training
            assert time.monotonic() < deadline and parent.poll() is None, (tmp_path / "log.txt").read_text()
            time.sleep(0.2)
        workers = [int((r / ".lock").read_text()) for r in runs]
        again = CliRunner().invoke(cli, args)
        assert again.exit_code == 2 and "is in use by another teachrl process" in again.output, again.output
        parent.kill()  # kill -9: the comparison cannot tell its workers anything
        parent.wait()
        deadline = time.monotonic() + 60
        while any(_alive(pid) for pid in workers):  # they notice, save a checkpoint and stop
            assert time.monotonic() < deadline, "workers outlived their comparison"
            time.sleep(0.2)
    finally:
        for pid in [parent.pid, *workers]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        log.close()
    for run in runs:
        assert "interrupted: checkpoint saved" in (run / "run.log").read_text()
        check_unlocked(run)  # released


def _alive(pid: int) -> bool:
    import os

    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)  # reap our own child if it ended
        if waited:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is dead
        return stat.read().split(")")[-1].split()[0] != "Z"


def test_report_header_names_the_students_default_envs_when_none_was_asked(tmp_path):
    fake_run(tmp_path, "random", 0, 50.0, [(100, 50.0)], 1.0)
    settings = {"steps": 100, "seeds": [0], "test_set": "default"}
    for n_envs, shown in [(0, "each student's default envs"), (4, "4 envs")]:
        (tmp_path / "compare.yaml").write_text(yaml.safe_dump({**settings, "n_envs": n_envs}))
        write_report(tmp_path)
        assert f"seeds [0], {shown}, test set" in (tmp_path / "report.md").read_text()


def test_report_separates_runs_of_other_settings(tmp_path):
    for seed in range(2):
        fake_run(tmp_path / "a", "random", seed, 50.0, [(100, 50.0)], 10.0)
        fake_run(tmp_path / "b", "random", seed, 0.0, [(100, 0.0)], 2.0)
    for path in (tmp_path / "b").rglob("config.yaml"):  # same experiment name, other budget
        config = yaml.safe_load(path.read_text())
        path.write_text(yaml.safe_dump({**config, "steps": 2000}))
    summary, _, _ = write_report(tmp_path)
    assert sorted(summary["seeds"]) == [2, 2]  # two groups of 2 seeds, never one of 4
    assert sorted(summary["mastered_pct_mean"]) == [0.0, 50.0]
    report = (tmp_path / "report.md").read_text()
    assert "Runs: a." in report and "Runs: b: 2000 steps." in report
    assert "reported separately, never pooled: point-mass, ppo: 2 groups" in report


def test_curve_bands_keep_percentages_in_range():
    from students.analysis.report import curve_band

    curves = pd.DataFrame(
        {
            "timesteps": [10, 10, 20, 20],
            "seed": [0, 1, 0, 1],
            "mastered_pct": [0.0, 40.0, 95.0, 100.0],
            "mean_return": [1, 3, 5, 7],
        }
    )
    x, mean, low, high = curve_band(curves, "mastered_pct")
    assert list(x) == [10, 20] and list(mean) == [20.0, 97.5]
    # t(0.975, 1) = 12.706205; std of (0, 40) is 28.28, of (95, 100) 3.54: half-widths 254.1 and 31.8
    assert (low[0], high[0], high[1]) == (0.0, 100.0, 100.0)  # clipped, not -234% / 274% / 129%
    assert low[1] == pytest.approx(97.5 - 12.706205 * 2.5, rel=1e-6)
    _, _, low_return, _ = curve_band(curves, "mean_return")
    assert low_return[0] == pytest.approx(2.0 - 12.706205, rel=1e-6)  # returns are not clipped


def test_report_robust_statistics_on_synthetic_runs(tmp_path):
    """IQM, CVaR and the probability of improvement from the runs' final per-task returns."""
    returns = {"random": [10.0, 12.0, 14.0], "alp-gmm": [20.0, 30.0, 25.0]}
    for teacher, per_seed in returns.items():
        for seed, ret in enumerate(per_seed):
            fake_run(tmp_path, teacher, seed, 50.0, [(100, 50.0)], ret)  # the same return on its 4 tasks
    summary = write_report(tmp_path)[0].set_index("teacher")
    alp = summary.loc["alp-gmm"]
    assert alp["return_iqm"] == pytest.approx(25.0)  # the middle half of 4 x [20, 25, 30]
    assert alp["return_cvar"] == pytest.approx(25.0)  # every task's mean is 25
    assert alp["p_improvement_vs_random"] == 1.0 and np.isnan(summary.loc["random", "p_improvement_vs_random"])
    assert 20.0 <= alp["return_iqm_low"] <= 25.0 <= alp["return_iqm_high"] <= 30.0
    assert "P(return > random)" in (tmp_path / "report.md").read_text()
    folder = tmp_path / "point-mass" / "alp-gmm" / "ppo" / "seed0"
    rows = [{"timesteps": 100, "task_index": i, "task": "0 0", "return": 10.0 * i, "success": 0} for i in range(4)]
    pd.DataFrame(rows).to_csv(folder / "eval.csv", index=False)  # seed 0's tasks: 0, 10, 20, 30
    result = CliRunner().invoke(cli, ["report", str(tmp_path), "--cvar-alpha", "0.5"])
    assert result.exit_code == 0, result.output
    # task means over seeds (0 + 30 + 25) / 3 ... (30 + 30 + 25) / 3: the worst half is tasks 0 and 1
    assert pd.read_csv(tmp_path / "summary.csv").set_index("teacher").loc["alp-gmm", "return_cvar"] == pytest.approx(
        (55 / 3 + 65 / 3) / 2
    )
    assert "return CVaR 50%" in (tmp_path / "report.md").read_text()


def test_region_shares_and_the_held_out_target_set_in_the_report(tmp_path):
    from students.analysis.report import region_shares, terminal_tables

    points = np.array([[0.0, 0.0], [0.1, 0.2], [1.0, 0.0], [0.0, 1.0], [0.9, 0.9], [1.0, 1.0]])
    success = np.array([1.0, 0.0, 1.0, 0.0, 1.0, 1.0])
    shares = region_shares(points, success, np.zeros(2), np.ones(2), 2)
    np.testing.assert_allclose(shares, [[0.5, 1.0], [0.0, 1.0]])  # rows: 2nd coordinate low/high; cols: 1st
    assert np.isnan(region_shares(points[:1], success[:1], np.zeros(2), np.ones(2), 2)[1, 1])  # no test task there
    targets = {"random": [0.0, 10.0, 20.0], "alp-gmm": [50.0, 70.0, 60.0]}
    for teacher, per_seed in targets.items():
        for seed, target in enumerate(per_seed):
            fake_run(tmp_path, teacher, seed, 50.0, [(100, 50.0)], 10.0)
            metrics = tmp_path / "point-mass" / teacher / "ppo" / f"seed{seed}" / "metrics.json"
            data = json.loads(metrics.read_text())
            data["target_eval"] = {"set": "target", "mastered_pct": target, "mean_return": target / 10, "tasks": 10}
            metrics.write_text(json.dumps(data))
    summary, rows, _ = write_report(tmp_path)
    alp = summary.set_index("teacher").loc["alp-gmm"]
    assert alp["target_mastered_pct_mean"] == pytest.approx(60.0) and alp["target_mastered_pct_std"] == pytest.approx(10.0)
    assert {r["teacher"]: r["target mastered %"] for r in rows} == {"random": "10.0 ± 10.0", "alp-gmm": "60.0 ± 10.0"}
    assert "target mastered %" in (tmp_path / "report.md").read_text()
    ((_, shown),) = terminal_tables(summary)
    assert {r["teacher"]: r["target"] for r in shown} == {"random": "10.0", "alp-gmm": "60.0"}
