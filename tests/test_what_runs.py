"""What a user asks for is what runs: the switches' defaults reach config.yaml, the final result is the saved
final model's, and eval.csv, TensorBoard, the progress line and metrics.json tell of one evaluation at one step."""

import json
from dataclasses import fields
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cli import cli
from students.experiments.compare import CompareConfig
from students.run.distill import DistillConfig
from students.run.train import RunConfig
from students.experiments.simulate import SimulateConfig

TINY_RUN = ["--env", "point-mass", "--teacher", "random", "--student", "ppo", "--n-envs", "2", "--device", "cpu"]
ISSUE_CASE = [*TINY_RUN, "--eval-every", "512", "--checkpoint-every", "512", "--hp", "n_steps=256", "--steps", "2048"]


def boolean_settings(settings_class: type) -> dict[str, bool]:
    return {f.name: f.default for f in fields(settings_class) if isinstance(f.default, bool) and "help" in f.metadata}


def test_every_switch_not_given_keeps_its_documented_default(tmp_path):
    run_switches = boolean_settings(RunConfig)
    assert {"batched": True, "save_replay_buffer": True, "subproc": False}.items() <= run_switches.items()
    help_text = CliRunner().invoke(cli, ["run", "--help"], terminal_width=200).output
    assert "[default: True]" in help_text
    tiny = [*TINY_RUN, "--steps", "64", "--hp", "n_steps=32", "--hp", "batch_size=64"]
    result = CliRunner().invoke(cli, ["run", *tiny, "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    saved = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())
    assert {key: saved[key] for key in run_switches} == run_switches
    given = CliRunner().invoke(cli, ["run", *tiny, "--no-batched", "--out", str(tmp_path / "g")])  # given: recorded
    assert given.exit_code == 0, given.output
    assert yaml.safe_load((tmp_path / "g" / "config.yaml").read_text())["batched"] is False
    # every command's switches: a switch not given is None, so that the setting's default (or a file's) stands
    commands = {"run": RunConfig, "compare": CompareConfig, "simulate": SimulateConfig, "distill": DistillConfig}
    for name, settings_class in commands.items():
        switches = [p for p in cli.commands[name].params if p.name in boolean_settings(settings_class)]
        assert switches or name in ("distill",), name
        assert all(p.default is None for p in switches), (name, [p.name for p in switches if p.default is not None])


@pytest.mark.parametrize("in_file", [True, False])
def test_a_compare_switch_from_the_config_file_or_its_default_reaches_every_run(tmp_path, in_file):
    config = {"env": "point-mass", "teachers": ["random"], "seeds": [0], "steps": 64, "n_envs": 2, "device": "cpu"}
    if in_file:
        config["batched"] = True
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "exp"
    args = ["compare", "--config", str(path), "--hp", "n_steps=32", "--hp", "batch_size=64", "--workers", "1"]
    result = CliRunner().invoke(cli, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load((out / "compare.yaml").read_text())["batched"] is True
    (run_config,) = out.rglob("config.yaml")
    assert yaml.safe_load(run_config.read_text())["batched"] is True


def tensorboard_scalars(folder: Path, tag: str) -> list[tuple[int, float]]:
    points = []
    for events in sorted(folder.rglob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        if tag in accumulator.Tags()["scalars"]:
            points += [(e.step, e.value) for e in accumulator.Scalars(tag)]
    return sorted(points)


def eval_by_step(path: Path) -> dict[int, float]:
    rows = [line.split(",") for line in path.read_text().splitlines()[1:]]
    steps = sorted({int(r[0]) for r in rows})
    return {s: 100 * sum(int(r[4]) for r in rows if int(r[0]) == s) / sum(int(r[0]) == s for r in rows) for s in steps}


def test_the_final_result_is_the_saved_models_and_every_log_tells_the_same(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["run", *ISSUE_CASE, "--out", str(out)])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    shown = CliRunner().invoke(cli, ["eval", str(out), "--json"])
    assert shown.exit_code == 0, shown.output
    again = json.loads(shown.output)
    assert again["mean_return"] == pytest.approx(metrics["final_eval"]["mean_return"], abs=1e-9)
    assert again["mastered_pct"] == metrics["final_eval"]["mastered_pct"]
    # eval.csv: one evaluation per multiple of 512 steps, each between rollouts, the last of the final model
    by_step = eval_by_step(out / "eval.csv")
    assert list(by_step) == [512, 1024, 1536, 2048] and metrics["timesteps"] == 2048
    rows = [line.split(",") for line in (out / "eval.csv").read_text().splitlines()[1:]]
    assert all(r[0] == r[5] for r in rows)  # trained_steps = timesteps in an env-steps run: no lag
    # TensorBoard: the same evaluations at the same steps, the final one included
    points = tensorboard_scalars(out / "tb", "eval/mastered_pct")
    assert [step for step, _ in points] == list(by_step)
    assert [value for _, value in points] == pytest.approx(list(by_step.values()))
    returns = tensorboard_scalars(out / "tb", "eval/mean_return")
    assert returns[-1][1] == pytest.approx(metrics["final_eval"]["mean_return"], abs=1e-4)


def test_the_final_result_is_the_saved_models_after_a_resume(tmp_path):
    out = tmp_path / "run"
    first = CliRunner().invoke(cli, ["run", *ISSUE_CASE[:-1], "1024", "--out", str(out)])
    assert first.exit_code == 0, first.output
    resumed = CliRunner().invoke(cli, ["run", *ISSUE_CASE, "--out", str(out), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    whole = tmp_path / "whole"
    assert CliRunner().invoke(cli, ["run", *ISSUE_CASE, "--out", str(whole)]).exit_code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    again = json.loads(CliRunner().invoke(cli, ["eval", str(out), "--json"]).output)
    assert again["mean_return"] == pytest.approx(metrics["final_eval"]["mean_return"], abs=1e-9)
    assert metrics == json.loads((whole / "metrics.json").read_text())


def test_shipped_configs_by_name_and_a_missing_hyperparameter_file_is_an_error(tmp_path, monkeypatch):
    from students.loop import algorithms
    from students.loop.algorithms import StudentConfigError, resolve_hyperparams
    from students.config import ConfigError, config_file, shipped_configs

    assert {"demo", "simulated_student", "point_mass"} <= set(shipped_configs())
    assert config_file("demo") == Path(__file__).resolve().parents[1] / "experiments" / "demo.yaml"
    with pytest.raises(ConfigError, match="does not exist; or give a shipped config by name: demo"):
        config_file("nonesuch")
    result = CliRunner().invoke(cli, ["simulate", "--config", "nonesuch"])
    assert result.exit_code == 2 and "shipped config by name" in result.output
    assert resolve_hyperparams("ppo", "point-mass", {})["n_steps"] == 128  # the tuned settings
    monkeypatch.setattr(algorithms, "HYPERPARAMS_DIR", tmp_path)
    with pytest.raises(StudentConfigError, match="cannot be read .* reinstall teachrl"):
        resolve_hyperparams("ppo", "point-mass", {})
    (tmp_path / "ppo.yml").write_text("point-mass: [unclosed")
    with pytest.raises(StudentConfigError, match="is not valid YAML"):
        resolve_hyperparams("ppo", "point-mass", {})
    out = tmp_path / "r"
    result = CliRunner().invoke(cli, ["run", "--env", "point-mass", "--teacher", "random", "--out", str(out)])
    assert result.exit_code == 2 and "is not valid YAML" in result.output and not out.exists()


def test_the_interrupt_message_s_command_resumes_the_run(tmp_path):
    out = tmp_path / "run"
    first = CliRunner().invoke(cli, ["run", *ISSUE_CASE[:-1], "1024", "--out", str(out)])
    assert first.exit_code == 0, first.output
    # as after a Ctrl-C: the folder has a checkpoint, the final outputs are not written yet
    for name in ("metrics.json", "model.zip", "teacher.pkl"):
        (out / name).unlink(missing_ok=True)
    resumed = CliRunner().invoke(cli, ["run", "--resume", "--out", str(out)])
    assert resumed.exit_code == 0, resumed.output
    assert json.loads((out / "metrics.json").read_text())["timesteps"] == 1024
    changed = CliRunner().invoke(cli, ["run", "--resume", "--out", str(out), "--teacher", "alp-gmm"])
    assert changed.exit_code == 2 and "settings differ from the saved run in teacher" in changed.output
    missing = CliRunner().invoke(cli, ["run", "--teacher", "random"])
    assert missing.exit_code == 2 and "Missing option '--env'" in missing.output


def test_render_meets_the_policy_with_its_run_s_environment(tmp_path):
    out = tmp_path / "run"
    trained = CliRunner().invoke(cli, ["run", *ISSUE_CASE[:-1], "512", "--obs", "privileged", "--out", str(out)])
    assert trained.exit_code == 0, trained.output
    for policy in (out, out / "model.zip"):
        shown = CliRunner().invoke(
            cli, ["render", "--env", "point-mass", "--policy", str(policy), "--out", str(tmp_path / "a.png")]
        )
        assert shown.exit_code == 0, shown.output
        assert (tmp_path / "a.png").stat().st_size > 0
    plain = CliRunner().invoke(
        cli, ["render", "--env", "point-mass", "--policy", str(out), "--env-kwarg", "observation_mode=plain", "--out", "b.png"]
    )
    assert plain.exit_code == 2 and "this environment gives" in plain.output


def test_a_masking_teacher_refuses_a_student_that_cannot_mask(tmp_path):
    from stable_baselines3 import PPO

    from curriculum.registry import make_teacher, teacher_for
    from environments.point_mass import PointMassGateEnv
    from environments.registry import make_env
    from students.loop.curriculum import CurriculumCallback
    from students.loop.masked import MaskedPPO
    from students.loop.vec_env import make_vec_env

    unprepared = CurriculumCallback(make_teacher("accel", PointMassGateEnv.task_space, seed=0))
    with pytest.raises(ValueError, match="AccelTeacher reads its environment .*teacher_for\\(name, env\\)"):
        unprepared.prime(make_vec_env("point-mass", 2, seed=0))
    assert not make_teacher("random", PointMassGateEnv.task_space).reads_env
    assert teacher_for("adr", make_env("point-mass")).prepared

    for name in ("robust-plr", "accel", "sfl"):
        for student in (PPO, MaskedPPO):
            env = make_vec_env("point-mass", 2, seed=0)
            callback = CurriculumCallback(teacher_for(name, make_env("point-mass"), seed=0))
            callback.prime(env)
            model = student("MlpPolicy", env, n_steps=32, batch_size=64, device="cpu")
            if student is PPO:
                with pytest.raises(ValueError, match="only on some episodes, which a PPO student cannot.*MaskedPPO"):
                    model.learn(64, callback=callback)
            else:
                model.learn(64, callback=callback)
            env.close()


def test_a_user_module_imports_from_the_working_folder(tmp_path, monkeypatch):
    import sys

    source = (Path(__file__).parent / "user_env.py").read_text()
    (tmp_path / "my_corridor.py").write_text(source)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    listed = CliRunner().invoke(cli, ["list", "envs", "--include", "my_corridor:CorridorEnv"])
    assert listed.exit_code == 0, listed.output
    assert listed.output.startswith("my_corridor:CorridorEnv")  # the user's env first
    sys.modules.pop("my_corridor", None)


class _ForgetfulEnv:
    """Builders of user envs that break the contract (each forgets one thing)."""

    @staticmethod
    def build(forget: str):
        import gymnasium as gym
        import numpy as np

        from tests.user_env import CorridorEnv

        class Broken(CorridorEnv):
            def reset(self, *, seed=None, options=None):
                gym.Env.reset(self, seed=seed)
                if forget != "begin":
                    self._begin_episode()
                self.position = 0.0
                return np.array([0.0], np.float32), ({} if forget in ("begin", "reset-info") else self.task_info())

            def step(self, action):
                obs, reward, terminated, truncated, info = super().step(action)
                return obs, reward, terminated, truncated, ({} if forget == "step-info" else info)

        return Broken()


def forgets_begin(**_):
    return _ForgetfulEnv.build("begin")


def forgets_step_info(**_):
    return _ForgetfulEnv.build("step-info")


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        ("forgets_begin", "reset() never calls self._begin_episode()"),
        ("forgets_step_info", "the info step() returns lacks task and level_seed"),
    ],
)
def test_an_env_that_breaks_the_contract_is_named_before_anything_is_written(tmp_path, factory, message):
    out = tmp_path / "run"
    args = ["run", "--env", f"tests.test_what_runs:{factory}", "--teacher", "random", "--device", "cpu", "--out", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_a_run_that_died_before_its_first_checkpoint_never_blocks_the_same_command(tmp_path):
    from students.run.train import check_run_dir

    out = tmp_path / "run"
    out.mkdir()
    (out / "config.yaml").write_text("env: point-mass\n")  # as left by a run killed during its first rollout
    (out / "tb").mkdir()
    (out / ".lock").write_text("12345")
    config = RunConfig(env="point-mass", teacher="random", steps=512, n_envs=2, device="cpu", hp_overrides={"n_steps": "128"})
    assert check_run_dir(config, out, resume=False) == "restart"
    result = CliRunner().invoke(cli, ["run", *TINY_RUN, "--steps", "256", "--hp", "n_steps=128", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "restarting it from step 0" in result.output
    again = CliRunner().invoke(cli, ["run", *TINY_RUN, "--steps", "256", "--hp", "n_steps=128", "--out", str(out)])
    assert again.exit_code == 2 and "already holds a run" in again.output  # a run with results is never overwritten


def test_a_comparison_extends_to_a_larger_budget_and_refuses_a_smaller_one(tmp_path):
    out = tmp_path / "exp"
    base = ["compare", "--env", "point-mass", "--teachers", "random", "--seeds", "0", "--n-envs", "2", "--device", "cpu"]
    base += ["--hp", "n_steps=128", "--hp", "batch_size=64", "--eval-every", "256", "--workers", "1", "--out", str(out)]
    first = CliRunner().invoke(cli, [*base, "--steps", "512"])
    assert first.exit_code == 0, first.output
    longer = CliRunner().invoke(cli, [*base, "--steps", "1024"])
    assert longer.exit_code == 0, longer.output
    assert "1 run(s) to execute, 0 already finished" in longer.output
    (metrics,) = out.rglob("metrics.json")
    assert json.loads(metrics.read_text())["timesteps"] == 1024
    assert list(eval_by_step(metrics.parent / "eval.csv")) == [256, 512, 768, 1024]  # the earlier rows kept
    shorter = CliRunner().invoke(cli, [*base, "--steps", "768"])
    assert shorter.exit_code == 2 and "can be extended to a larger budget, not cut to a smaller one" in shorter.output
    other = CliRunner().invoke(cli, [*base, "--steps", "1024", "--budget", "trained-steps"])
    assert other.exit_code == 2 and "other settings in budget" in other.output


def test_a_hyperparameter_of_the_wrong_type_is_named_with_the_type_it_needs(tmp_path):
    cases = {
        "n_steps=abc": "--hp n_steps=abc: n_steps must be an integer (PPO's default: 2048), got 'abc'",
        "n_epochs=2.5": "n_epochs must be an integer",
        "learning_rate=fast": "learning_rate must be a number",
        "normalize_advantage=3": "normalize_advantage must be true or false",
    }
    for option, message in cases.items():
        result = CliRunner().invoke(cli, ["run", *TINY_RUN, "--hp", option, "--out", str(tmp_path / "r")])
        assert result.exit_code == 2 and message in result.output, (option, result.output)
        assert not (tmp_path / "r").exists()
