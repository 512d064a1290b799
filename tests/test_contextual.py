"""Any gymnasium env as a parametric one: dimensions applied at the next reset, bad specs, use by name."""

from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from cli import cli
from environments.contextual import ContextualEnv
from environments.registry import make_env

ROOT = Path(__file__).resolve().parents[1]
ACROBOT = str(ROOT / "experiments" / "envs" / "acrobot.yaml")
PENDULUM = {
    "env": "Pendulum-v1",
    "dims": {"g": {"low": 2.0, "high": 12.0, "kwarg": "g"}, "mass": {"low": 0.5, "high": 2.0, "attr": "m"}},
    "return_bounds": [-1700, 0],
    "success": {"return_at_least": -200},
    "test_set": {"uniform": 5, "seed": 1},
}


def test_attribute_dimensions_apply_at_the_next_reset_and_are_reported():
    env = make_env(ACROBOT)
    env.set_task({"link_length_1": 1.4, "link_mass_1": 0.6}, level_seed=3)
    assert env.env.unwrapped.LINK_LENGTH_1 == 1.0  # not before the reset
    obs, info = env.reset(seed=0)
    assert env.env.unwrapped.LINK_LENGTH_1 == 1.4 and env.env.unwrapped.LINK_MASS_1 == 0.6
    _, _, _, _, info = env.step(env.action_space.sample())
    np.testing.assert_allclose(info["task"], [1.4, 0.6])
    assert info["level_seed"] == 3
    env.set_task({"link_length_1": 1.4, "link_mass_1": 0.6}, level_seed=3)
    again, _ = env.reset()
    np.testing.assert_array_equal(obs, again)  # same task and level seed: same episode
    assert env.test_set().shape == (9, 2) and not env.is_success(-200.0)


def test_keyword_dimensions_remake_the_env_only_when_they_change():
    env = ContextualEnv(PENDULUM, observation_mode="privileged")
    first = env.env
    env.set_task({"g": 9.0, "mass": 1.0})  # the default is the centre, g = 7
    env.reset(seed=0)
    made = env.env
    assert made is not first and made.unwrapped.g == 9.0
    env.set_task({"g": 9.0, "mass": 1.7})  # only an attribute changes: the same env
    obs, _ = env.reset()
    assert env.env is made and made.unwrapped.m == 1.7
    np.testing.assert_allclose(obs["privileged"], [9.0, 1.7])
    assert env.test_set().shape == (5, 2) and env.is_success(-150.0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"dims": {"g": {"low": 2.0, "high": 12.0, "attr": "gravity_x"}}}, "has no attribute 'gravity_x'"),
        ({"dims": {"g": {"low": 2.0, "high": 12.0, "kwarg": "gravity"}}}, "Pendulum-v1 refuses ['gravity']"),
        ({"dims": {"g": {"low": 5.0, "high": 2.0, "kwarg": "g"}}}, "must be below its upper bound"),
        ({"dims": {"g": {"low": 2.0, "high": 12.0}}}, "exactly one of kwarg, attr, call"),
        ({"default": {"g": 40.0}}, "outside"),
        ({"colour": "red"}, "unknown key(s) ['colour']"),
    ],
)
def test_bad_specs_fail_at_load_with_one_line(change, message):
    with pytest.raises(ValueError, match=message.replace("(", "\\(").replace(")", "\\)").replace("[", "\\[")):
        ContextualEnv({**PENDULUM, **change})


def test_a_spec_file_trains_and_compares_by_name(tmp_path):
    spec = tmp_path / "pendulum.yaml"
    spec.write_text(yaml.safe_dump(PENDULUM))
    args = ["run", "--env", str(spec), "--teacher", "alp-gmm", "--steps", "256", "--n-envs", "2", "--eval-every", "256"]
    result = CliRunner().invoke(cli, [*args, "--hp", "n_steps=128", "--hp", "batch_size=64", "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert "(5 tasks)" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**PENDULUM, "dims": {"g": {"low": 2.0, "high": 12.0, "attr": "nope"}}}))
    result = CliRunner().invoke(cli, ["run", "--env", str(bad), "--teacher", "random", "--out", str(tmp_path / "b")])
    assert result.exit_code == 2 and "has no attribute 'nope'" in result.output and not (tmp_path / "b").exists()


@pytest.mark.parametrize("name", ["cartpole", "pendulum", "acrobot", "lunar-lander"])
def test_shipped_classics_apply_their_task(name):
    env = make_env(name)
    task = env.task_space.low + 0.8 * env.task_space.span
    env.set_task(task, level_seed=0)
    env.reset(seed=0)
    _, _, _, _, info = env.step(env.action_space.sample())
    np.testing.assert_allclose(info["task"], task)
    assert len(env.test_set()) == 3**env.task_space.dim
    env.close()


def test_cartpole_pole_changes_update_what_cartpole_derives_from_them():
    env = make_env("cartpole")
    env.set_task({"pole_length": 1.5, "pole_mass": 0.3, "force_mag": 12.0})
    env.reset(seed=0)
    pole = env.env.unwrapped
    assert (pole.length, pole.masspole, pole.force_mag) == (1.5, 0.3, 12.0)
    assert pole.polemass_length == pytest.approx(0.45) and pole.total_mass == pytest.approx(1.3)


def test_lunar_lander_gravity_is_a_constructor_keyword():
    env = make_env("lunar-lander")
    env.set_task({"gravity": -3.0, "wind_power": 5.0, "turbulence_power": 0.5})
    env.reset(seed=0)
    lander = env.env.unwrapped
    assert (lander.gravity, lander.wind_power, lander.turbulence_power, lander.enable_wind) == (-3.0, 5.0, 0.5, True)
