"""Nothing lost: a checkpoint swap cut at any point recovers the newest complete checkpoint, a checkpoint's own
files suffice to resume, one line ending in eval.csv, and a resume that would change the results is refused."""

import json
import shutil
from itertools import product

import pytest

from students.run.train import RunConfig, RunError, train
from tests.test_distill import expert, toy_config  # noqa: F401  (expert: a pytest fixture)


def point_mass(steps: int, **kwargs) -> RunConfig:
    base = {"env": "point-mass", "teacher": "random", "steps": steps, "n_envs": 2, "eval_every": 256, "device": "cpu"}
    base["hp_overrides"] = {"n_steps": "128", "batch_size": "64", "n_epochs": "1"}
    return RunConfig(**{**base, "checkpoint_every": 256, **kwargs})


def fake_checkpoint(folder, steps: int, complete: bool = True) -> None:
    folder.mkdir()
    for name in ("model.zip", "state.pkl") if complete else ("model.zip",):
        (folder / name).write_text(str(steps))
    if complete:
        (folder / "progress.json").write_text(json.dumps({"timesteps": steps}))


@pytest.mark.parametrize(("current", "staged", "previous"), list(product([None, "partial", "complete"], repeat=3)))
def test_recovery_keeps_the_newest_complete_checkpoint_after_a_kill_anywhere_in_a_swap(tmp_path, current, staged, previous):
    from students.run import checkpoints

    steps = {"checkpoint.old": 100, "checkpoint": 200, "checkpoint.next": 300}  # the order saves make them in
    for name, kind in zip(("checkpoint", "checkpoint.next", "checkpoint.old"), (current, staged, previous), strict=True):
        if kind:
            fake_checkpoint(tmp_path / name, steps[name], complete=kind == "complete")
    complete = [name for name, kind in zip(steps, (previous, current, staged), strict=True) if kind == "complete"]
    assert checkpoints.saved_checkpoint(tmp_path) == bool(complete)
    assert checkpoints.recover(tmp_path) == bool(complete)
    assert not (tmp_path / "checkpoint.next").exists() and not (tmp_path / "checkpoint.old").exists()
    if complete:
        newest = max(complete, key=steps.get)
        assert (tmp_path / "checkpoint" / "state.pkl").read_text() == str(steps[newest])
    # a save then swaps in whatever was left
    staging = checkpoints.stage(tmp_path)
    for name in ("model.zip", "state.pkl", "progress.json"):
        (staging / name).write_text("400")
    checkpoints.swap_in(tmp_path)
    assert (tmp_path / "checkpoint" / "state.pkl").read_text() == "400"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]


def test_a_leftover_previous_checkpoint_never_blocks_a_resume_or_the_next_save(tmp_path):
    out = tmp_path / "run"
    train(point_mass(512), out)
    for name in ("metrics.json", "model.zip", "teacher.pkl"):  # killed after the last checkpoint's swap...
        (out / name).unlink()
    shutil.copytree(out / "checkpoint", out / "checkpoint.old")  # ...before it removed the previous one
    metrics = train(point_mass(1024), out, resume=True)  # saves checkpoints on the way (ENOTEMPTY before)
    assert metrics["timesteps"] == 1024 and not (out / "checkpoint.old").exists()


def test_a_checkpoint_without_progress_json_still_resumes_and_an_incomplete_one_is_refused(tmp_path):
    out = tmp_path / "run"
    train(point_mass(512), out)
    (out / "checkpoint" / "progress.json").unlink()
    messages: list[str] = []
    metrics = train(point_mass(768), out, resume=True, notify=messages.append)
    assert metrics["timesteps"] == 768 and not any("restarting" in m for m in messages)
    assert any("extending the run from its budget of 512 steps to 768" in m for m in messages)
    (out / "checkpoint" / "state.pkl").unlink()
    (out / "metrics.json").unlink()
    with pytest.raises(RunError, match=r"checkpoint' lacks state.pkl, so it cannot be resumed"):
        train(point_mass(1024), out, resume=True)


def test_eval_csv_has_one_line_ending_after_a_resume(tmp_path):
    out = tmp_path / "run"
    train(point_mass(512), out)
    train(point_mass(1024), out, resume=True)
    data = (out / "eval.csv").read_bytes()
    assert b"\r" not in data and data.count(b"\n") == 1 + 4 * 51  # header and four evaluations of 51 tasks


@pytest.mark.parametrize(
    ("change", "name"),
    [({"eval_every": 128}, "eval_every"), ({"test_set": "narrow"}, "test_set"), ({"budget": "trained-steps"}, "budget")],
)
def test_a_resume_that_would_mix_two_schedules_test_sets_or_budgets_is_refused(tmp_path, change, name):
    out = tmp_path / "run"
    train(point_mass(256), out)
    with pytest.raises(RunError, match=f"settings differ from the saved run in {name}"):
        train(point_mass(512, **change), out, resume=True)


def test_a_distillation_killed_before_its_first_checkpoint_restarts_under_resume(expert, tmp_path):  # noqa: F811
    from students.run.distill import distill

    out = tmp_path / "run"
    first = distill(toy_config(expert), out)
    shutil.rmtree(out / "checkpoint")  # as if killed during its first round: only the settings were written
    for name in ("metrics.json", "model.zip", "teacher.pkl", "eval.csv"):
        (out / name).unlink()
    messages: list[str] = []
    again = distill(toy_config(expert), out, resume=True, notify=messages.append)
    assert any("restarting it from step 0" in m for m in messages)
    assert again == first


def test_damaged_files_and_twice_listed_runs_are_one_line_each(tmp_path):
    from click.testing import CliRunner

    from cli import cli

    out = tmp_path / "run"
    train(point_mass(512), out)
    (out / "metrics.json").unlink()
    base = ["run", "--resume", "--out", str(out), "--steps", "768"]
    for name, content in (("state.pkl", b"garbage"), ("state.pkl", b""), ("model.zip", b"PK\x03\x04 cut")):
        original = (out / "checkpoint" / name).read_bytes()
        (out / "checkpoint" / name).write_bytes(content)
        result = CliRunner().invoke(cli, base)
        assert result.exit_code == 2 and f"checkpoint/{name}' is damaged or unreadable" in result.output, result.output
        assert "Traceback" not in result.output
        (out / "checkpoint" / name).write_bytes(original)
    (out / "config.yaml").write_text("env: [unclosed")
    result = CliRunner().invoke(cli, base)
    assert result.exit_code == 2 and "config.yaml' is not a run's config.yaml" in result.output, result.output
    args = ["compare", "--env", "point-mass", "--seeds", "0", "--teachers", "random,random", "--out", str(tmp_path / "c")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and "teachers lists random more than once" in result.output, result.output
    assert not (tmp_path / "c").exists()
    config = tmp_path / "c.yaml"
    config.write_text("env: point-mass\nteachers: [random]\nseeds: [0, 0]\n")
    result = CliRunner().invoke(cli, ["compare", "--config", str(config), "--out", str(tmp_path / "c")])
    assert result.exit_code == 2 and "seeds lists 0 more than once" in result.output, result.output
    config.write_text("env: point-mass\nteachers: [random]\nseeds: [1.5]\n")
    result = CliRunner().invoke(cli, ["compare", "--config", str(config), "--out", str(tmp_path / "c")])
    assert result.exit_code == 2 and "seeds must be a non-empty list of non-negative integers" in result.output


def test_eval_of_a_model_from_another_env_names_both_spaces(tmp_path):
    from click.testing import CliRunner

    from cli import cli

    out = tmp_path / "run"
    train(point_mass(256), out)
    config = (out / "config.yaml").read_text().replace("env_kwargs: {}", "env_kwargs: {observation_mode: privileged}")
    (out / "config.yaml").write_text(config)
    result = CliRunner().invoke(cli, ["eval", str(out)])
    assert result.exit_code == 2 and "reads Box" in result.output and "this environment gives Dict" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("eval.csv", "timesteps,task_index,task,return,success,trained_steps\nx,0,1,y,1,0\n"),
        ("eval.csv", ""),
        ("metrics.json", "{"),
    ],
)
def test_a_run_with_an_unreadable_file_is_left_out_of_the_report_by_name(tmp_path, name, content):
    from students.analysis.report import write_report

    for seed in (0, 1):
        train(point_mass(256, seed=seed), tmp_path / "point-mass" / "random" / "ppo" / f"seed{seed}")
    broken = tmp_path / "point-mass" / "random" / "ppo" / "seed1"
    (broken / name).write_text(content)
    warnings: list[str] = []
    summary, _, failed = write_report(tmp_path, warn=warnings.append)
    assert summary["seeds"].tolist() == [1]  # the other run is reported
    assert len(warnings) == 1 and str(broken) in warnings[0] and f"{name} cannot be read" in warnings[0]
    assert list(failed) == ["point-mass/random/ppo/seed1"]


def test_a_moved_run_logs_into_its_own_folder_and_a_missing_replay_buffer_is_said(tmp_path):
    first, moved = tmp_path / "first", tmp_path / "moved"
    train(point_mass(256), first)
    (first / "metrics.json").unlink()
    shutil.move(first, moved)
    train(point_mass(512), moved, resume=True)
    assert not first.exists()  # SB3's absolute tb path no longer points back
    assert len(list((moved / "tb").rglob("events.out.tfevents.*"))) == 2

    hp = {"learning_starts": "64", "batch_size": "32", "buffer_size": "2000", "train_freq": "8", "gradient_steps": "1"}
    sac = tmp_path / "sac"
    train(point_mass(256, student="sac", hp_overrides=hp), sac)
    (sac / "metrics.json").unlink()
    (sac / "checkpoint" / "replay_buffer.pkl").unlink()
    messages: list[str] = []
    train(point_mass(512, student="sac", hp_overrides=hp), sac, resume=True, notify=messages.append)
    assert sum("replay_buffer.pkl' is missing: resuming with an empty replay buffer" in m for m in messages) == 1
    assert json.loads((sac / "checkpoint" / "progress.json").read_text())["exact"] is False


def test_a_layout_whose_first_rollout_exceeds_the_budget_says_what_it_will_do(tmp_path):
    messages: list[str] = []
    metrics = train(point_mass(100), tmp_path / "run", notify=messages.append)
    assert messages == [
        "the first rollout alone is 256 steps (2 envs x n_steps 128), more than the budget of 100: the run will take "
        "256 steps (lower --n-envs or --hp n_steps)"
    ]
    assert metrics["timesteps"] == 256


def test_every_teacher_parameter_has_a_declared_range_that_its_default_meets_and_bad_values_are_one_line(tmp_path):
    from click.testing import CliRunner

    from cli import cli
    from curriculum.registry import PARAM_RANGES, TEACHERS, param_problem, teacher_params

    for name, cls in TEACHERS.items():
        for p in teacher_params(cls):
            numeric = isinstance(p.default, int | float) and not isinstance(p.default, bool)
            assert not numeric or p.name in PARAM_RANGES or p.name.endswith("threshold"), (name, p.name)
            assert param_problem(p.name, p.default, p.default) is None, (name, p.name)
    cases = {
        "plr.temperature=nan": "teacher 'plr': temperature must be a finite number in (0, inf), got nan",
        "plr.temperature=inf": "temperature must be a finite number in (0, inf), got inf",
        "plr.replay_prob=1.5": "replay_prob must be a finite number in [0, 1], got 1.5",
        "plr.buffer_size=0": "buffer_size must be a finite number in [1, inf), got 0",
    }
    out = tmp_path / "run"
    for option, message in cases.items():
        result = CliRunner().invoke(
            cli, ["run", "--env", "point-mass", "--teacher", "plr", "--teacher-param", option, "--out", str(out)]
        )
        assert result.exit_code == 2 and message in result.output, (option, result.output)
        assert not out.exists()


def test_bad_stage_and_hyperparameter_values_are_refused_before_anything_is_written(tmp_path):
    from click.testing import CliRunner

    from cli import cli

    out = tmp_path / "run"
    stages = tmp_path / "stages.yaml"
    cases = {
        "{box: {gate_width: [4, 8]}, until: {success: 0.5, window: -1}}": "until.window must be a whole number >= 1, got -1",
        "{box: {gate_width: [4, 8]}, until: {steps: abc}}": "until.steps must be a whole number >= 1, got 'abc'",
        "{box: {gate_width: [4, 8]}, until: {episodes: .nan}}": "until.episodes must be a whole number >= 1, got nan",
        "{box: {gate_width: [4, 8]}, until: {success: 2}}": "until.success must be a number in [0, 1], got 2",
    }
    for stage, message in cases.items():
        stages.write_text(f"stages:\n  - {stage}\n  - {{box: {{gate_width: [1, 8]}}}}\n")
        args = ["run", "--env", "point-mass", "--teacher", "stages", "--teacher-param", f"stages={stages}", "--out", str(out)]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2 and message in result.output, (stage, result.output)
        assert not out.exists()
    for args, message in [
        (["--hp", "n_epochs=0"], "n_epochs must be a finite number in [1, inf), got 0"),
        (["--hp", "gamma=2"], "gamma must be a finite number in [0, 1], got 2"),
        (["--kick-coef", "2"], "--kick-coef without --kickstart"),
    ]:
        result = CliRunner().invoke(cli, ["run", "--env", "point-mass", "--teacher", "random", *args, "--out", str(out)])
        assert result.exit_code == 2 and message in result.output, (args, result.output)
        assert not out.exists()


def test_a_number_yaml_reads_as_text_is_the_number_meant(tmp_path):
    from students.config import load_settings

    path = tmp_path / "c.yaml"
    path.write_text("steps: 1e6\neval_every: 5E4\nenv: point-mass\n")
    assert load_settings(path, {}, ["steps", "eval_every", "env"]) == {
        "steps": 1_000_000,
        "eval_every": 50_000,
        "env": "point-mass",
    }


def test_a_full_disk_ends_in_one_line_and_the_previous_checkpoint_survives(tmp_path, monkeypatch):
    import errno
    import pickle

    from click.testing import CliRunner

    import students.run.train
    from cli import cli
    from students.experiments.compare import _record_failure

    calls = [0]
    dump = pickle.dump

    def full_disk(obj, handle, *args, **kwargs):
        name = str(getattr(handle, "name", ""))
        calls[0] += name.endswith("state.pkl")
        if name.endswith("state.pkl") and calls[0] == 2:  # the second checkpoint's
            raise OSError(errno.ENOSPC, "No space left on device", name)
        return dump(obj, handle, *args, **kwargs)

    monkeypatch.setattr(students.run.train.pickle, "dump", full_disk)
    out = tmp_path / "run"
    args = ["run", "--env", "point-mass", "--teacher", "random", "--n-envs", "2", "--hp", "n_steps=128", "--device", "cpu"]
    args += ["--hp", "batch_size=64", "--steps", "1024", "--checkpoint-every", "256", "--out", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "disk full while writing" in result.output and "checkpoint.next/state.pkl" in result.output
    assert f"the last complete checkpoint survives; free space, then continue with --resume --out {out}" in result.output
    monkeypatch.setattr(students.run.train.pickle, "dump", dump)
    resumed = CliRunner().invoke(cli, ["run", "--resume", "--out", str(out)])
    assert resumed.exit_code == 0, resumed.output
    assert json.loads((out / "metrics.json").read_text())["timesteps"] == 1024

    def no_space(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    worker = tmp_path / "worker"
    worker.mkdir()
    monkeypatch.setattr(type(worker), "write_text", no_space)
    assert "its error could not be kept" in _record_failure(worker, 1)  # the comparison's bookkeeping goes on


def test_an_extension_keeps_the_finished_results_until_new_ones_exist(tmp_path):
    from tests.test_runs import interrupt_at

    out = tmp_path / "run"
    train(point_mass(512), out)
    before = {name: (out / name).read_bytes() for name in ("metrics.json", "model.zip", "teacher.pkl")}
    with pytest.raises(KeyboardInterrupt):
        train(point_mass(2048), out, resume=True, progress=interrupt_at(900))
    assert {name: (out / name).read_bytes() for name in before} == before  # the 512-step results, untouched
    assert json.loads((out / "checkpoint" / "progress.json").read_text())["timesteps"] > 512
    assert train(point_mass(2048), out, resume=True)["timesteps"] == 2048


def test_a_damaged_distillation_checkpoint_is_one_line(expert, tmp_path):  # noqa: F811
    from students.run.distill import DistillError, distill

    out = tmp_path / "run"
    distill(toy_config(expert), out)
    for name in ("metrics.json", "model.zip"):
        (out / name).unlink()
    (out / "checkpoint" / "state.pkl").write_bytes(b"cut")
    with pytest.raises(DistillError, match=r"checkpoint/state.pkl' is damaged or unreadable"):
        distill(toy_config(expert), out, resume=True)
