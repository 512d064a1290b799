"""Kickstarting: the loss, the experts, schedules, routing by task region, resume, errors."""

import json
import pickle

import numpy as np
import pytest
import torch as th
from click.testing import CliRunner
from stable_baselines3 import PPO
from stable_baselines3.common.save_util import load_from_zip_file

from cli import cli
from curriculum.registry import make_teacher
from environments.point_mass import PointMassGateEnv
from students.loop.curriculum import CurriculumCallback
from students.loop.kickstart import (
    Expert,
    KickstartCallback,
    KickstartError,
    Region,
    Schedule,
    closed_form_kl,
    policy_distribution,
)
from students.policies import load_policy
from students.loop.auxiliary import auxiliary_kwargs
from students.run.train import RunConfig, RunError, train
from students.loop.vec_env import make_vec_env
from tests.test_runs import interrupt_at, point_mass, same

SPACE = PointMassGateEnv.task_space


@pytest.fixture(scope="module")
def experts(tmp_path_factory):
    """Small experts: PPO on plain and on privileged observations, SAC, and a PPO of another env (1-D actions)."""
    root = tmp_path_factory.mktemp("experts")
    train(point_mass("ppo", "random", 4096), root / "ppo")
    train(point_mass("ppo", "random", 2048, env_kwargs={"observation_mode": "privileged"}), root / "privileged")
    train(point_mass("sac", "random", 400), root / "sac")
    echo = RunConfig(env="tests.user_env:TaskEchoEnv", teacher="random", student="ppo", steps=128, n_envs=1, device="cpu")
    echo.hp_overrides = {"n_steps": "64", "batch_size": "64"}
    train(echo, root / "other")
    return root


def kicked(student: str, expert, steps: int, **kwargs) -> RunConfig:
    config = point_mass(student, "random", steps, **kwargs)
    config.student, config.algo, config.kickstart = f"{student}-kick", student, [str(expert)]
    return config


def policy_params(path):
    _, params, _ = load_from_zip_file(path, device="cpu")
    return params


@pytest.mark.parametrize(
    ("student", "expert"), [("ppo", "ppo"), ("a2c", "ppo"), ("sac", "sac"), ("sac", "ppo"), ("td3", "sac")]
)
def test_a_zero_coefficient_gives_exactly_the_sb3_update(tmp_path, experts, student, expert):
    steps = 1024 if student in ("ppo", "a2c") else 400
    plain = train(point_mass(student, "random", steps), tmp_path / "plain")
    zero = train(kicked(student, experts / expert, steps, kick_coef=[0.0]), tmp_path / "zero")
    assert zero == plain
    a, b = policy_params(tmp_path / "plain" / "model.zip"), policy_params(tmp_path / "zero" / "model.zip")
    assert a.keys() == b.keys() == {"policy", *(k for k in a if k.endswith("optimizer"))}  # no expert inside
    assert all(th.equal(a["policy"][name], b["policy"][name]) for name in a["policy"])


def kl_to(expert_policy, student_policy, observations) -> float:
    obs = th.as_tensor(observations)
    with th.no_grad():
        expert, student = policy_distribution(expert_policy, obs), policy_distribution(student_policy, obs)
        return float(closed_form_kl(expert.distribution, student.distribution).mean())


def test_the_kickstarting_term_pulls_the_student_to_its_expert_which_stays_frozen(tmp_path, experts):
    before = (experts / "ppo" / "model.zip").read_bytes()
    expert = load_policy(experts / "ppo")
    env = PointMassGateEnv()
    env.reset(seed=0)
    env.action_space.seed(0)  # fixed states to measure on
    observations = np.array([env.step(env.action_space.sample())[0] for _ in range(200)], dtype=np.float32)
    fresh = PPO("MlpPolicy", make_vec_env("point-mass", 1, seed=0), device="cpu", seed=0).policy
    # students of another seed than the expert's (seed 0), so that training alone does not retrace its steps
    train(point_mass("ppo", "random", 2048, seed=1), tmp_path / "scratch")
    train(kicked("ppo", experts / "ppo", 2048, kick_coef=[5.0], seed=1), tmp_path / "kick")
    scratch = PPO.load(tmp_path / "scratch" / "model.zip", device="cpu").policy
    kick = PPO.load(tmp_path / "kick" / "model.zip", device="cpu").policy
    start, without, with_term = (
        kl_to(expert, fresh, observations),
        kl_to(expert, scratch, observations),
        kl_to(expert, kick, observations),
    )
    assert with_term < 0.5 * start and with_term < 0.5 * without, (start, without, with_term)
    assert (experts / "ppo" / "model.zip").read_bytes() == before
    assert not any(p.requires_grad for p in expert.parameters()) and not expert.training


def test_schedules():
    assert Schedule.parse("constant").value(10**6) == 1.0
    linear = Schedule.parse("linear:1000")
    assert [linear.value(t) for t in (0, 250, 1000, 5000)] == [1.0, 0.75, 0.0, 0.0]
    assert Schedule.parse("exp:100").value(200) == pytest.approx(0.25)
    until = Schedule.parse("until-expert:400")
    assert until.steps == 400 and Schedule.parse("until-expert").steps == 50_000
    assert [until.value(t, None) for t in (0, 10**6)] == [1.0, 1.0]
    assert [until.value(t, 1000) for t in (1000, 1100, 1400, 2000)] == [1.0, 0.75, 0.0, 0.0]
    for bad in ("linear", "linear:-5", "exp:x", "cosine:10", "constant:3"):
        with pytest.raises(KickstartError, match="valid: constant, linear:STEPS"):
            Schedule.parse(bad)


def test_regions():
    region = Region.parse("gate_width=0.5:4,friction=0:1", SPACE)
    assert region.contains([0.0, 2.0, 0.5]) and not region.contains([0.0, 5.0, 0.5]) and not region.contains([0, 2, 3])
    assert Region.parse("", SPACE).contains([3.9, 7.9, 3.9])
    for bad, message in [
        ("gate_width=0:9", "not inside the task space: gate_width lies in \\[0.5, 8\\]"),
        ("wings=1:2", "NAME one of gate_x, gate_width, friction"),
        ("gate_width=4", "expected NAME=LOW:HIGH"),
        ("gate_width=a:b", "must be numbers"),
    ]:
        with pytest.raises(KickstartError, match=message):
            Region.parse(bad, SPACE)


def test_each_state_takes_the_expert_of_its_episode_task(experts):
    policy = load_policy(experts / "ppo")
    narrow = Expert("narrow", policy, Region.parse("gate_width=0.5:4", SPACE), 1.0, False)
    wide = Expert("wide", policy, Region.parse("gate_width=4:8,gate_x=-2:2", SPACE), 2.0, False)
    env = make_vec_env("point-mass", 3, seed=0, env_kwargs={"horizon": 10})
    curriculum = CurriculumCallback(make_teacher("random", SPACE, seed=0))
    seen: dict[tuple[int, int], np.ndarray] = {}
    model = PPO(env=env, n_steps=32, batch_size=32, n_epochs=1, device="cpu", **auxiliary_kwargs(PPO, "MlpPolicy", False))

    def tasks():
        current = curriculum.current_tasks()
        for i, task in enumerate(current):
            seen[(model.rollout_buffer.pos, i)] = np.array(task)
        return current

    kick = KickstartCallback([narrow, wide], Schedule.parse("constant"), tasks)
    curriculum.prime(env)
    model.learn(32 * 3, callback=[kick, curriculum])
    owners = {0: 0, 1: 0, 2: 0, -1: 0}
    for (row, i), task in seen.items():
        expected = 0 if task[1] <= 4 else (1 if -2 <= task[0] <= 2 else -1)
        assert kick._expert_of[row, i] == expected
        owners[expected] += 1
    assert owners[0] and owners[1] and owners[-1]  # all three cases occurred
    assert list(kick.coefficients()) == [1.0, 2.0]


def test_privileged_expert_teaches_a_student_that_reads_its_part(tmp_path, experts):
    config = kicked("ppo", experts / "privileged", 1024)
    assert config.resolve().reads_privileged
    metrics = train(config, tmp_path / "run")
    assert metrics["episodes_reported"] > 0
    student = PPO.load(tmp_path / "run" / "model.zip", device="cpu")
    assert student.observation_space == PointMassGateEnv().observation_space  # the deployable view, no privileged key


@pytest.mark.parametrize("schedule", ["until-expert:2000", "linear:3000"])
def test_resume_continues_the_schedule_exactly(tmp_path, experts, schedule):
    config = kicked("ppo", experts / "ppo", 2600, kick_schedule=schedule, eval_every=600)
    whole = train(config, tmp_path / "whole")
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "cut", progress=interrupt_at(1200))
    state = pickle.loads((tmp_path / "cut" / "checkpoint" / "state.pkl").read_bytes())["kickstart"]
    if schedule.startswith("until"):
        assert state["levels"][0] is not None  # the expert's level, measured once at the start, travels on
    assert train(config, tmp_path / "cut", resume=True) == whole
    assert (tmp_path / "cut" / "eval.csv").read_bytes() == (tmp_path / "whole" / "eval.csv").read_bytes()
    teachers = [pickle.loads((tmp_path / run / "teacher.pkl").read_bytes()) for run in ("whole", "cut")]
    assert same(*teachers)


def test_bad_experts_are_refused_with_one_line_and_nothing_written(tmp_path, experts):
    from stable_baselines3 import DQN

    DQN("MlpPolicy", "CartPole-v1", device="cpu").save(tmp_path / "dqn.zip")
    base = ["run", "--env", "point-mass", "--teacher", "random", "--steps", "256", "--device", "cpu"]
    cases = [
        (["--kickstart", str(tmp_path / "dqn.zip")], "has a DQNPolicy; kickstarting reads actor-critic"),
        (["--kickstart", str(tmp_path / "nowhere")], "does not exist (give a run folder or a model.zip)"),
        (["--kickstart", str(experts / "other")], "acts in Box(-1.0, 1.0, (1,), float32), the student in Box(-10.0"),
        (["--kickstart", f"{experts / 'ppo'}@gate_width=0:9"], "not inside the task space"),
        (["--kickstart", str(experts / "ppo"), "--kick-schedule", "cosine"], "unknown kickstart schedule 'cosine'"),
        (["--kickstart", str(experts / "ppo"), "--kick-coef", "1", "--kick-coef", "2"], "one --kick-coef for every expert"),
        (["--kickstart", str(experts / "ppo"), "--env-kwarg", "task_visible=false"], "the expert reads Box"),
    ]
    for extra, message in cases:
        out = tmp_path / "run"
        result = CliRunner().invoke(cli, [*base, *extra, "--out", str(out)])
        assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output, (extra, result.output)
        assert not out.exists()


def test_compare_runs_named_student_variants_side_by_side(tmp_path, experts):
    from students.experiments.compare import CompareConfig, CompareError, compare

    config = CompareConfig(
        env="point-mass",
        teachers=["random"],
        students={"ppo": {}, "ppo-kick": {"algo": "ppo", "kickstart": str(experts / "ppo"), "kick_schedule": "linear:512"}},
        steps=512,
        n_envs=2,
        eval_every=512,
        test_set="narrow",
        hp={"n_steps": "128", "batch_size": "64"},
        device="cpu",
    )
    result = compare(config, tmp_path / "exp", workers=2)
    assert len(result.finished) == 2 and not result.failed
    saved = json.loads((tmp_path / "exp" / "point-mass" / "random" / "ppo-kick" / "seed0" / "metrics.json").read_text())
    assert saved["timesteps"] == 512
    from students.analysis.report import write_report

    write_report(tmp_path / "exp")
    report = (tmp_path / "exp" / "report.md").read_text()
    assert "## point-mass, student ppo-kick" in report and "## point-mass, student ppo\n" in report
    config.students = {"ppo-kick": {"algo": "ppo", "kickstart_path": "x"}}
    with pytest.raises(CompareError, match="unknown key\\(s\\) kickstart_path; valid: algo, n_envs, kickstart"):
        compare(config, tmp_path / "other")


def test_tensorboard_shows_the_coefficient_term_and_agreement(tmp_path, experts):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(kicked("ppo", experts / "ppo", 1024, kick_schedule="linear:1024"), tmp_path / "run")
    events = EventAccumulator(str(next((tmp_path / "run" / "tb").glob("run_*")))).Reload()
    tags = events.Tags()["scalars"]
    assert {"kickstart/coef/expert0", "kickstart/kl/expert0", "kickstart/expert_agreement"} <= set(tags), tags
    coefs = [e.value for e in events.Scalars("kickstart/coef/expert0")]
    assert coefs == sorted(coefs, reverse=True) and coefs[0] <= 1.0 and coefs[-1] < 0.9  # the linear decay
    assert all(e.value > 0 for e in events.Scalars("kickstart/kl/expert0"))


@pytest.mark.parametrize(("student", "expert"), [("a2c", "ppo"), ("sac", "sac"), ("td3", "ppo")])
def test_every_student_takes_the_term(tmp_path, experts, student, expert):
    steps = 1024 if student == "a2c" else 400
    train(point_mass(student, "random", steps), tmp_path / "plain")
    train(kicked(student, experts / expert, steps, kick_coef=[5.0]), tmp_path / "kick")
    a, b = policy_params(tmp_path / "plain" / "model.zip"), policy_params(tmp_path / "kick" / "model.zip")
    assert any(not th.equal(a["policy"][name], b["policy"][name]) for name in a["policy"])


def test_an_asymmetric_expert_reads_the_privileged_part_of_each_state_the_student_saw(experts):
    from students.loop.kickstart import StudentView

    policy = load_policy(experts / "privileged")
    expert = Expert("privileged", policy, Region.parse("", SPACE), 1.0, True)
    env = StudentView(make_vec_env("point-mass", 2, seed=0, env_kwargs={"observation_mode": "privileged", "horizon": 10}))
    curriculum = CurriculumCallback(make_teacher("random", SPACE, seed=0))
    model = PPO(env=env, n_steps=32, batch_size=32, n_epochs=1, device="cpu", **auxiliary_kwargs(PPO, "MlpPolicy", False))
    seen: dict[tuple[int, int], np.ndarray] = {}

    def tasks():
        current = curriculum.current_tasks()
        for i, task in enumerate(current):
            seen[(model.rollout_buffer.pos, i)] = np.array(task, dtype=np.float32)
        return current

    kick = KickstartCallback([expert], Schedule.parse("constant"), tasks)
    curriculum.prime(env)
    model.learn(64, callback=[kick, curriculum])
    assert model.observation_space.shape == (7,)  # the student reads its part only
    assert set(kick._privileged) == {"privileged"}  # the rest is what the expert adds
    for (row, i), task in seen.items():
        assert np.array_equal(kick._privileged["privileged"][row, i], task)  # point-mass: privileged = the task


def test_a_restarted_sub_environment_replaces_its_part_of_the_student_view():
    from students.loop.kickstart import StudentView

    env = StudentView(make_vec_env("point-mass", 2, seed=0, env_kwargs={"observation_mode": "privileged", "horizon": 10}))
    first = env.reset()
    full = {key: np.full_like(value[1], 7.0) for key, value in env.full.items()}
    student = env.restart(1, full)
    assert np.array_equal(student, full["student"])
    assert all(np.array_equal(env.full[key][1], full[key]) for key in full)
    assert np.array_equal(env.full["student"][0], first[0])  # the other sub-environment untouched
    env.close()


def test_the_fused_gaussian_kl_back_propagates_as_autograd_does():
    from students.loop.auxiliary import GaussianKL, join

    g = th.Generator().manual_seed(0)
    mean = th.randn(6, 2, generator=g, dtype=th.float64, requires_grad=True)
    std = (th.rand(6, 2, generator=g, dtype=th.float64) + 0.5).requires_grad_()
    carrier = mean.sum(dim=1) * 0.3
    expert_mean, expert_std = th.randn(6, 2, generator=g, dtype=th.float64), th.rand(6, 2, generator=g, dtype=th.float64) + 0.5
    weight = th.rand(6, generator=g, dtype=th.float64)
    fused = join(carrier, GaussianKL(mean, std, expert_mean, expert_std**2, weight)).pow(2).sum()
    fused_grads = th.autograd.grad(fused, (mean, std), retain_graph=True)
    kl = th.distributions.kl_divergence(th.distributions.Normal(expert_mean, expert_std), th.distributions.Normal(mean, std))
    plain = carrier.pow(2).sum() + (weight * kl.sum(dim=1)).sum()
    for a, b in zip(fused_grads, th.autograd.grad(plain, (mean, std)), strict=True):
        assert th.allclose(a, b, atol=1e-12)


def test_a_trpo_student_is_refused_kickstarting_in_one_line(tmp_path, experts):
    base = ["run", "--env", "point-mass", "--teacher", "random", "--steps", "256", "--device", "cpu"]
    args = [*base, "--student", "trpo", "--kickstart", str(experts / "ppo"), "--out", str(tmp_path / "run")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0 and "takes no kickstarting term" in result.output, result.output
    assert not (tmp_path / "run").exists()


def test_a_run_command_resolves_once_builds_one_teacher_and_loads_each_expert_once(tmp_path, experts, monkeypatch):
    """``cli.py run`` checks the settings once: the teacher is built once and every expert loaded once (checked on
    the CPU, then moved to the student's device); the config it was given is left as given."""
    import students.loop.kickstart as kickstart_module
    import students.run.train as train_module

    built, loaded = [], []
    teacher_for, load_policy = train_module.teacher_for, kickstart_module.load_policy
    monkeypatch.setattr(train_module, "teacher_for", lambda *a, **k: (built.append(a[0]), teacher_for(*a, **k))[1])
    monkeypatch.setattr(kickstart_module, "load_policy", lambda *a, **k: (loaded.append(a[0]), load_policy(*a, **k))[1])
    args = ["run", "--env", "point-mass", "--teacher", "alp-gmm", "--student", "ppo", "--steps", "256", "--n-envs", "2"]
    args += ["--hp", "n_steps=128", "--hp", "batch_size=64", "--eval-every", "256", "--device", "cpu"]
    args += ["--kickstart", str(experts / "ppo"), "--kickstart", str(experts / "ppo"), "--out", str(tmp_path / "run")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert built == ["alp-gmm"] and len(loaded) == 2
    config = kicked("ppo", experts / "ppo", 256)
    resolved = config.resolve()
    assert config.hyperparams == {} and resolved.config.hyperparams["n_steps"] == 128
    train(resolved, tmp_path / "again")
    with pytest.raises(RunError, match="has trained already"):
        train(resolved, tmp_path / "twice")
