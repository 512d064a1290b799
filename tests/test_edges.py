"""Bad input, swept through the command line: one line naming the problem, exit 2, nothing written."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from cli import cli
from students.experiments.compare import CompareConfig, CompareError, load_compare_config

ROOT = Path(__file__).resolve().parents[1]
RUN = ["run", "--env", "point-mass", "--teacher", "random", "--steps", "256", "--n-envs", "2", "--device", "cpu"]


def files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture
def workspace(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("env: point-mass\nteachers: [random\n")
    tagged = tmp_path / "tagged.yaml"
    tagged.write_text("env: !!python/object/apply:os.system ['true']\nteachers: [random]\n")
    (tmp_path / "sim_steps.yaml").write_text("teachers: [random]\nepisodes: abc\n")
    (tmp_path / "sim_key.yaml").write_text("teachers: [random]\nteacher_param: [riac.p_alp=0.5]\n")
    return tmp_path


def cases(tmp: Path) -> list[tuple[list[str], str]]:
    out = ["--out", str(tmp / "new")]
    return [
        ([*RUN, "--hp", "batch_size=0", *out], "batch_size must be a finite number in [1, inf), got 0"),
        ([*RUN, "--hp", "n_steps=-5", *out], "n_steps must be a finite number in [1, inf), got -5"),
        ([*RUN, "--hp", "policy_kwargs={net_arch: foo}", *out], "refuses its hyperparameters"),
        ([*RUN, "--hp", "learning_rate=abc", *out], "learning_rate must be a number"),
        ([*RUN, "--hp", "n_steps=64", "--hp", "n_steps=32", *out], "gives 'n_steps' twice"),
        ([*RUN, "--env-kwarg", "horizon=[1", *out], "--env-kwarg horizon=[1: not a value"),
        ([*RUN, "--out", str(tmp / "a_file")], "is a file"),
        ([*RUN, "--out", str(tmp / "a_file" / "run")], "is not a writable folder"),
        (["run", "--env", "os:path", "--teacher", "random", *out], "'os:path' is not a class or factory"),
        (["compare", "--config", str(tmp / "bad.yaml"), *out], "is not valid YAML"),
        (["compare", "--config", str(tmp / "tagged.yaml"), *out], "is not valid YAML"),
        (["compare", "--env", "point-mass", "--teachers", "random", "--out", str(tmp / "a_file" / "x")], "not a writable"),
        (["simulate", "--config", str(tmp / "bad.yaml")], "is not valid YAML"),
        (["simulate", "--teachers", "random", "--seeds", "3-1"], "low <= high"),
        (["simulate", "--config", str(tmp / "sim_steps.yaml")], "episodes must be an integer >= 1, got 'abc'"),
        (["simulate", "--config", str(tmp / "sim_key.yaml")], "unknown key(s) in"),
        (["simulate", "--teachers", "random", "--json", str(tmp / "a_file" / "x.json")], "--json"),
        (
            ["render", "--env", "point-mass", "--task", "gate_x=1,gate_x=2", "--out", str(tmp / "x.png")],
            "gives 'gate_x' twice",
        ),
        (["render", "--env", "point-mass", "--out", str(tmp / "a_file" / "x.png")], "cannot write there"),
        (["render", "--env", "point-mass", "--policy", str(tmp / "a_file"), "--out", str(tmp / "y.png")], "--policy"),
    ]


def test_bad_input_sweep(workspace):
    before = files(workspace)
    for args, message in cases(workspace):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert lines and lines[-1].startswith("Error:") and "Traceback" not in result.output, (args, result.output)
        assert files(workspace) == before, (args, files(workspace) - before)


def test_render_refuses_a_model_of_another_environment(tmp_path):
    from students.run.train import RunConfig, train

    config = RunConfig(env="tests.user_env:TaskEchoEnv", teacher="random", student="ppo", steps=64, n_envs=1, device="cpu")
    config.hp_overrides = {"n_steps": "64", "batch_size": "64"}
    train(config, tmp_path / "echo")
    args = ["render", "--env", "point-mass", "--policy", str(tmp_path / "echo"), "--out", str(tmp_path / "x.png")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and "reads Box(-1.0, 10.0, (3,), float32)" in result.output, result.output
    assert not (tmp_path / "x.png").exists()


def test_numbers_are_read_as_a_user_means_them(tmp_path):
    result = CliRunner().invoke(cli, [*RUN, "--hp", "learning_rate=1e-3", "--hp", "n_steps=128", "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    saved = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())
    assert saved["hyperparams"]["learning_rate"] == 0.001 and isinstance(saved["hyperparams"]["learning_rate"], float)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("eval_every", 0, "eval_every must be an integer >= 1, got 0"),
        ("checkpoint_every", -1, "checkpoint_every must be an integer >= 1, got -1"),
        ("steps", "abc", "steps must be an integer >= 1, got 'abc'"),
        ("n_envs", 2.5, "n_envs must be an integer >= 0, got 2.5"),
        ("budget", "episodes", "unknown budget 'episodes'; valid: env-steps, trained-steps, all-steps"),
        ("device", "tpu", "unknown device 'tpu'; valid: auto, cpu, cuda"),
        ("hp", ["lr"], "hp must be a mapping"),
    ],
)
def test_config_files_are_checked_like_options(tmp_path, key, value, message):
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({"env": "point-mass", "teachers": ["random"], key: value}))
    with pytest.raises(CompareError, match=message.replace("(", "\\(").replace(")", "\\)")):
        load_compare_config(path, {})


def test_hyperparameters_from_a_config_file_may_be_numbers():
    config = CompareConfig(env="point-mass", teachers=["random"], hp={"learning_rate": 0.001, "n_steps": 64}, device="cpu")
    assert config.run_configs()[0].hyperparams["learning_rate"] == 0.001


def test_importing_environments_registers_the_gymnasium_ids():
    code = "import gymnasium as gym, environments; print(gym.make('teachrl/PointMassGate-v0').reset(seed=0)[0].shape)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0 and "(7,)" in proc.stdout, proc.stderr
