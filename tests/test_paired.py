"""PAIRED: dcd's regret by hand, the adversary's levels through the env by dcd's building rules, a run of three
learners that resumes exactly, an adversary that moves toward regret, and clear refusals."""

import json
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch as th

from curriculum.base import Feedback
from curriculum.clutr import kl_weight, placements
from curriculum.paired import PairedTeacher, regrets
from curriculum.registry import teacher_for
from curriculum.spaces import BoxTaskSpace
from environments.maze_levels import LevelError, MazeBuilder, MazeLevel
from environments.registry import make_env
from students.run.train import RunConfig, train
from tests.test_runs import interrupt_at


def test_regret_is_dcds_max_antagonist_minus_mean_protagonist_clipped_at_zero():
    protagonist = [[0.2, 0.4], [0.9], [], [0.5]]
    antagonist = [[0.1, 0.8, 0.3], [0.5], [0.6], []]
    # by hand: 0.8 - 0.3; max(0.5 - 0.9, 0); 0.6 - 0 (no protagonist episode counts 0); max(0 - 0.5, 0)
    assert regrets(protagonist, antagonist) == pytest.approx([0.5, 0.0, 0.6, 0.0])
    # flexible: the better best return plays the antagonist: level 1 -> 0.9 - 0.5; level 3 -> 0.5 - 0
    assert regrets(protagonist, antagonist, flexible=True) == pytest.approx([0.5, 0.4, 0.6, 0.5])


def test_the_teacher_credits_completed_episodes_to_their_level_and_ignores_cut_ones():
    teacher = PairedTeacher(BoxTaskSpace(["x"], [0.0], [1.0]), seed=3)
    teacher.begin_rollout(2)
    first, second = teacher.sample_level(), teacher.sample_level()
    teacher.update(first.task, Feedback(0.5, level_seed=first.seed))
    teacher.update(first.task, Feedback(0.1, level_seed=first.seed))
    teacher.update(first.task, Feedback(0.9, level_seed=first.seed, cut=True))  # cut by the cycle's end: not counted
    teacher.update(second.task, Feedback(0.7, level_seed=12345))  # a level of no cycle of this teacher's
    teacher.record_antagonist([[0.6], [0.2, 0.4]])
    assert teacher.protagonist == [[0.5, 0.1], []]
    teacher.begin_rollout(2)  # learns from the last cycle
    assert teacher.last_stats["paired/regret"] == pytest.approx(((0.6 - 0.3) + 0.4) / 2)
    with pytest.raises(ValueError, match="antagonist returns for 1 levels; the cycle has 2"):
        teacher.record_antagonist([[0.1]])


def test_the_teachers_state_round_trips_and_the_next_levels_are_the_same():
    env = make_env("maze")
    teacher = teacher_for("paired", env, 4, hidden=16)
    for _ in range(2):
        teacher.begin_rollout(2)
        levels = [teacher.sample_level() for _ in range(2)]
        for level in levels:
            teacher.update(level.task, Feedback(0.25, level_seed=level.seed))
        teacher.record_antagonist([[1.0], [0.5]])
    copy = teacher_for("paired", env, 99, hidden=16)
    copy.load_state_dict(pickle.loads(pickle.dumps(teacher.state_dict())))
    for one in (teacher, copy):
        one.begin_rollout(2)
    assert [copy.sample_level().structure for _ in range(2)] == [teacher.sample_level().structure for _ in range(2)]
    assert copy.last_stats == teacher.last_stats and copy.adversary_steps == teacher.adversary_steps == 3 * 2 * 22


def test_the_builder_follows_dcds_placement_rules():
    builder = MazeBuilder(7, n_blocks=3)  # 5 x 5 inner cells, numbered left to right, top to bottom
    rng = np.random.default_rng(0)
    builder.start(heading=2)
    builder.step(6, rng)  # goal at inner (1, 1) -> full-grid (2, 2)
    builder.step(0, rng)  # the agent at (1, 1)
    builder.step(6, rng)  # a wall on the goal: nothing
    builder.step(0, rng)  # a wall on the agent: nothing
    builder.step(24, rng)  # a wall at (5, 5)
    level = builder.level()
    assert (level.goal, level.start, level.heading, level.n_walls) == ((2, 2), (1, 1), 2, 1)
    assert level.text == "<..../.G.../...../...../....#"
    with pytest.raises(LevelError, match="all 5 placements were made"):
        builder.step(1, rng)
    last = MazeBuilder(7, n_blocks=2, goal_last=True)
    last.start()
    for cell in (3, 8, 3, 3):  # walls at cells 3 and 8, the goal on wall 3 (removed), the agent on the goal
        last.step(cell, rng)
    level = last.level()
    assert level.goal == (4, 1) and level.n_walls == 1 and level.start not in ((4, 1), (4, 2))
    with pytest.raises(LevelError, match="outside the inner grid's 25 cells"):
        MazeBuilder(7, n_blocks=3).step(25, rng)


def test_the_adversarys_levels_are_played_as_built():
    env = make_env("maze")
    teacher = teacher_for("paired", env, 0)
    assert teacher.adversary_kind == "steps" and teacher.builder.n_steps == 20 + 2  # the maze's max_walls walls
    teacher.begin_rollout(3)
    levels = [teacher.sample_level() for _ in range(3)]
    assert teacher.adversary_steps == 3 * 22 and len({level.structure.text for level in levels}) == 3
    for level in levels:
        env.unwrapped.set_next_level(level.task, level.seed, level.structure)
        _, info = env.reset()
        assert info["level"] == level.structure.text and info["level_seed"] == level.seed
        assert MazeLevel.parse(info["level"]) == level.structure


@pytest.mark.parametrize("peak", [None, 0.7])
def test_an_adversary_moves_toward_the_levels_where_the_students_differ_most(peak):
    """A fixed strong antagonist and a fixed weak protagonist (return 0): the antagonist returns x on task x
    (regret grows with x), or 1 near ``peak`` only (regret exp(-((x - peak) / 0.15)^2))."""
    teacher = PairedTeacher(BoxTaskSpace(["x"], [0.0], [1.0]), seed=0, learning_rate=3e-3, entropy_coef=0.0)
    tasks = []
    for _ in range(100 if peak else 40):
        teacher.begin_rollout(32)
        levels = [teacher.sample_level() for _ in range(32)]
        for level in levels:
            teacher.update(level.task, Feedback(0.0, level_seed=level.seed))
        xs = np.array([level.task[0] for level in levels])
        teacher.record_antagonist([[v] for v in (np.exp(-(((xs - peak) / 0.15) ** 2)) if peak else xs)])
        tasks.append(xs)
    first, last = tasks[0], np.concatenate(tasks[-10:])
    assert first.mean() < 0.65 and first.std() > 0.3  # the untrained adversary: its Gaussian clipped to the box
    if peak is None:
        assert last.mean() > 0.9
    else:
        assert abs(np.median(last) - peak) < 0.05 and last.std() < 0.2


def paired_run(steps: int, **params) -> RunConfig:
    return RunConfig(
        env="maze",
        teacher="paired",
        student="ppo",
        steps=steps,
        n_envs=2,
        eval_every=512,
        checkpoint_every=100_000,
        test_set="no-lava",
        device="cpu",
        teacher_params={"hidden": 16, **params},
        hp_overrides={"n_steps": "128", "batch_size": "64", "n_epochs": "2"},
    )


def test_a_paired_run_of_three_learners_resumes_exactly(tmp_path):
    config = paired_run(2048)
    whole = train(config, tmp_path / "whole")
    assert whole["paired"] == {
        "student_steps": 2048,
        "antagonist_steps": 2048,
        "adversary_steps": 8 * 2 * 22,
        "all_steps": 2048 * 2 + 8 * 2 * 22,
    }
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "cut", progress=interrupt_at(1000))
    assert json.loads((tmp_path / "cut" / "checkpoint" / "progress.json").read_text())["exact"]
    assert (tmp_path / "cut" / "checkpoint" / "antagonist.zip").exists()
    resumed = train(config, tmp_path / "cut", resume=True)
    assert resumed == whole
    for name in ("metrics.json", "eval.csv", "model.zip", "antagonist.zip", "adversary.pt"):
        assert (tmp_path / "cut" / name).exists()
    for name in ("metrics.json", "eval.csv"):
        assert (tmp_path / "cut" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name


def test_the_antagonist_plays_the_cycles_levels_on_its_own_streams():
    from stable_baselines3 import PPO

    from students.loop.paired import Antagonist
    from students.loop.vec_env import make_vec_env

    env = make_vec_env("maze", 2, seed=0, antagonist=True)
    antagonist = Antagonist.build(lambda e: PPO("MlpPolicy", e, n_steps=64, batch_size=64, device="cpu"), env, seed=5)
    teacher = teacher_for("paired", make_env("maze"), 0)
    teacher.begin_rollout(2)
    levels = [teacher.sample_level() for _ in range(2)]
    np.random.seed(1)
    th.manual_seed(1)
    before = (np.random.get_state()[1].copy(), th.get_rng_state().clone())
    returns = antagonist.play(levels, fresh=True)
    assert np.array_equal(np.random.get_state()[1], before[0]) and th.equal(th.get_rng_state(), before[1])
    assert len(returns) == 2 and antagonist.model.num_timesteps == 128
    assert env.env_method("played_level") == [level.structure.text for level in levels]
    env.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--env", "point-mass", "--teacher", "paired", "--teacher-param", "adversary=steps"],
            "adversary=steps builds levels step by step, which PointMassGateEnv cannot",
        ),
        (["--env", "point-mass", "--teacher", "paired", "--student", "sac"], "needs an on-policy student"),
        (
            ["--env", "maze", "--teacher", "paired", "--teacher-param", "adversary=grid"],
            "unknown adversary 'grid'; valid: auto, steps, box",
        ),
        (["--env", "maze", "--teacher", "clutr", "--teacher-param", "vae=missing.pt"], "vae 'missing.pt' is not a file"),
    ],
)
def test_bad_paired_settings_are_one_clear_line_and_nothing_is_written(tmp_path, args, message):
    out = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "cli.py", "run", *args, "--steps", "256", "--out", str(out)], capture_output=True, text=True
    )
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not out.exists()


# -- CLUTR ------------------------------------------------------------------------------------------------------
SMALL_VAE = {"embed_size": 32, "encoder_size": 64, "decoder_size": 128, "latent_dim": 16}


def test_clutrs_sequences_are_sorted_walls_then_goal_then_agent():
    level = MazeLevel.parse("#.>/.#./G..")  # 3 x 3 inner cells: walls at cells 0 and 4, goal 6, agent 2
    assert placements(level, 3) == [1, 5, 7, 3]
    assert kl_weight(3500) == pytest.approx(0.5) and kl_weight(0) < 0.001 and kl_weight(8000) > 0.999
    assert kl_weight(250, total=1000) == pytest.approx(0.5) and kl_weight(1000, total=1000) > 0.99


def test_the_vae_reconstructs_held_out_generated_mazes_above_chance():
    """Pretrained on CLUTR's random sequences, tested on mazes the env's own generator makes (not seen)."""
    env = make_env("maze", size=7, max_walls=4, max_lava=1)
    teacher = teacher_for("clutr", env, 0, vae_iterations=800, vae_learning_rate=3e-3, **SMALL_VAE)
    teacher.pretrain()
    u = env.unwrapped
    counts = np.random.default_rng(5).integers(0, 5, 200)
    seqs = [placements(u.level_of(np.array([float(w), 0.0]), seed), 5) for seed, w in enumerate(counts)]
    tokens = th.zeros((len(seqs), teacher.builder.n_steps), dtype=th.long)
    for i, s in enumerate(seqs):
        tokens[i, : len(s)] = th.tensor(s)
    decoded = teacher.vae.reconstruct(tokens, th.tensor([len(s) for s in seqs]))
    pairs = list(zip(decoded, seqs, strict=True))
    accuracy = np.mean([np.mean([a == b for a, b in zip((d + [0] * len(s))[: len(s)], s, strict=True)]) for d, s in pairs])
    exact = np.mean([d == s for d, s in pairs])
    assert accuracy > 0.5 and exact > 0.2  # chance: 1 in 26 tokens
    assert all(not p.requires_grad for p in teacher.vae.parameters())  # frozen


def test_clutrs_levels_come_from_the_decoder_and_a_box_space_decodes_tasks():
    maze = teacher_for("clutr", make_env("maze"), 0, vae_iterations=5, **SMALL_VAE)
    maze.begin_rollout(3)
    levels = [maze.sample_level() for _ in range(3)]
    assert all(isinstance(level.structure, MazeLevel) for level in levels) and maze.adversary_steps == 3
    box = teacher_for("clutr", make_env("point-mass"), 0, vae_iterations=5, latent_dim=4)
    box.begin_rollout(4)
    tasks = np.array([box.sample_level().task for _ in range(4)])
    space = box.task_space
    assert tasks.shape == (4, space.dim) and np.all(tasks >= space.low) and np.all(tasks <= space.high)


def test_a_clutr_run_resumes_exactly_and_its_vae_is_reused(tmp_path):
    config = paired_run(2048)
    config = RunConfig(**{**config.__dict__, "teacher": "clutr", "teacher_params": {"vae_iterations": 20, **SMALL_VAE}})
    whole = train(config, tmp_path / "whole")
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "cut", progress=interrupt_at(1000))
    assert train(config, tmp_path / "cut", resume=True) == whole
    assert (tmp_path / "cut" / "eval.csv").read_bytes() == (tmp_path / "whole" / "eval.csv").read_bytes()
    reused = {**config.teacher_params, "vae": str(tmp_path / "whole" / "vae.pt"), "vae_iterations": 0}
    again = train(RunConfig(**{**config.__dict__, "teacher_params": reused, "steps": 256}), tmp_path / "again")
    assert "clutr/vae_reconstruction_loss" not in again["teacher_stats"]  # not pretrained again: the saved one, frozen
    saved, used = (th.load(tmp_path / name / "vae.pt") for name in ("whole", "again"))
    assert all(th.equal(saved[key], used[key]) for key in saved)


def test_an_all_steps_budget_counts_the_three_learners_and_resumes_exactly(tmp_path):
    config = RunConfig(**{**paired_run(2000).__dict__, "budget": "all-steps", "eval_every": 1000})
    whole = train(config, tmp_path / "whole")
    steps = whole["paired"]
    learners = steps["student_steps"] + steps["antagonist_steps"] + steps["adversary_steps"]
    assert whole["all_steps"] == steps["all_steps"] == learners
    # a cycle: 2 levels of 22 construction steps, then 2 x 128 steps of each student; the budget is checked at a
    # cycle's start, after its levels are built
    cycles = steps["student_steps"] // 256
    assert steps["adversary_steps"] == 44 * (cycles + 1) and whole["all_steps"] - 44 < 2000 + 556
    assert whole["all_steps"] >= 2000 > whole["all_steps"] - 556 and whole["timesteps"] < 2000
    rows = (tmp_path / "whole" / "eval.csv").read_text().splitlines()
    assert rows[0].endswith(",trained_steps,all_steps")
    evaluated = sorted({int(r.split(",")[-1]) for r in rows[1:]})
    assert evaluated[0] >= 1000 and evaluated[-1] == whole["all_steps"]  # evaluations follow the budget's unit
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "cut", progress=interrupt_at(1000))
    assert train(config, tmp_path / "cut", resume=True) == whole
    assert (tmp_path / "cut" / "eval.csv").read_bytes() == (tmp_path / "whole" / "eval.csv").read_bytes()


def test_an_all_steps_budget_is_the_students_steps_for_a_teacher_of_one_learner(tmp_path):
    base = {
        "env": "point-mass",
        "teacher": "random",
        "steps": 1024,
        "n_envs": 2,
        "eval_every": 512,
        "device": "cpu",
        "hp_overrides": {"n_steps": "128", "batch_size": "64", "n_epochs": "1"},
    }
    env_steps = train(RunConfig(**base), tmp_path / "env")
    all_steps = train(RunConfig(**base, budget="all-steps"), tmp_path / "all")
    assert all_steps.pop("all_steps") == all_steps["timesteps"] == 1024
    assert {**all_steps, "budget": "env-steps"} == env_steps
    env_rows, all_rows = ((tmp_path / name / "eval.csv").read_text().splitlines() for name in ("env", "all"))
    assert [row.rsplit(",", 1)[0] for row in all_rows] == env_rows


def test_the_report_draws_an_all_steps_run_against_every_learners_steps(tmp_path):
    import pandas as pd

    from students.analysis.report import all_steps_note, eval_curve, settings_label

    csv = tmp_path / "eval.csv"
    csv.write_text(
        "timesteps,task_index,task,return,success,trained_steps,all_steps\n"
        "512,0,1,1.0,1,512,1100\n512,1,2,0.0,0,512,1100\n1024,0,1,1.0,1,1024,2200\n1024,1,2,1.0,1,1024,2200\n"
    )
    assert eval_curve(csv, "all-steps")["timesteps"].tolist() == [1100, 2200]
    assert eval_curve(csv, "env-steps")["timesteps"].tolist() == [512, 1024]
    assert settings_label({"steps": 2000, "budget": "all-steps"}, "x") == "x: 2000 steps of all learners"
    runs = pd.DataFrame({"teacher": ["paired"], "all_steps": [2200.0], "student_steps": [1024.0], "budget": ["all-steps"]})
    assert all_steps_note(runs)[0] == (
        "`paired`: the budget counts every learner's environment steps (`--budget all-steps`); its student took 1.0k "
        "of the 2.2k (1/2.15; `metrics.json` `paired`)."
    )


def test_a_stop_during_clutrs_pretraining_ends_the_run_at_once_and_a_resume_starts_it_again(tmp_path):
    import signal
    import time
    from pathlib import Path

    root, out = Path(__file__).resolve().parents[1], tmp_path / "run"
    settings = ["--env", "maze", "--teacher", "clutr", "--n-envs", "2", "--device", "cpu", "--test-set", "no-lava",
                "--hp", "n_steps=128", "--hp", "batch_size=64", "--hp", "n_epochs=1", "--steps", "256", "--out", str(out),
                "--eval-every", "256"]  # fmt: skip
    slow = [*settings, "--teacher-param", "vae_iterations=1000000", "--teacher-param", "embed_size=8"]
    log = (tmp_path / "log.txt").open("w")
    process = subprocess.Popen([sys.executable, str(root / "cli.py"), "run", *slow], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not (out / "tb").exists():  # learn() has begun: the first cycle pretrains the VAE
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.2)
        time.sleep(2)
        sent = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)  # a million batches take hours: the stop is served within a batch
        waited = time.monotonic() - sent
    finally:
        if process.poll() is None:
            process.kill()
        log.close()
    output = (tmp_path / "log.txt").read_text()
    assert process.returncode == 130 and waited < 10, output
    assert "interrupted before the first checkpoint" in output and "Traceback" not in output
    assert not (out / "checkpoint").exists() and not (out / "metrics.json").exists()


def test_a_clutr_run_stopped_in_its_pretraining_restarts_from_step_0_to_the_same_result(tmp_path, monkeypatch):
    import os
    import signal

    from curriculum.clutr import SequenceVAE

    config = paired_run(512)
    config = RunConfig(**{**config.__dict__, "teacher": "clutr", "teacher_params": {"vae_iterations": 20, **SMALL_VAE}})
    whole = train(config, tmp_path / "whole")
    loss, calls = SequenceVAE.loss, [0]

    def stopping_loss(self, *args, **kwargs):
        calls[0] += 1
        if calls[0] == 5:  # SIGTERM in the middle of the pretraining
            os.kill(os.getpid(), signal.SIGTERM)
        return loss(self, *args, **kwargs)

    monkeypatch.setattr(SequenceVAE, "loss", stopping_loss)
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "cut")
    assert calls[0] == 5 and not (tmp_path / "cut" / "checkpoint").exists()
    messages = []
    assert train(config, tmp_path / "cut", resume=True, notify=messages.append) == whole
    assert any("restarting it from step 0" in m for m in messages)


def test_a_comparisons_progress_counts_a_finished_run_in_its_budgets_unit(tmp_path):
    from students.experiments.compare import steps_done

    (tmp_path / "metrics.json").write_text(json.dumps({"timesteps": 1024, "trained_steps": 1024, "all_steps": 2268}))
    assert steps_done(tmp_path, "all-steps") == 2268 and steps_done(tmp_path, "env-steps") == 1024
    (tmp_path / "metrics.json").unlink()
    (tmp_path / "status.json").write_text(json.dumps({"timesteps": 700}))  # a running run: its progress callback's
    assert steps_done(tmp_path, "all-steps") == 700
