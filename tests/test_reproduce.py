"""``cli.py reproduce``: the registry of reproductions, the row and claim checks, a tiny rerun end to end; and the
mostly infeasible point mass it reproduces TeachMyAgent's challenge on."""

import json
import math
import shutil

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import students.experiments.reproduce as reproduce
from cli import cli
from environments.point_mass import PointMassGateEnv, PointMassInfeasibleEnv
from environments.registry import make_env
from students.experiments.reproduce import REPRODUCTIONS, Claim, Reproduction, Stat, check
from students.run.train import RunConfig, train


# -- the registry ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(REPRODUCTIONS))
def test_every_reproduction_names_files_that_exist_and_claims_rows_its_reference_has(name):
    item = REPRODUCTIONS[name]
    assert (reproduce.ROOT / item.config).is_file() and item.claim and item.source and item.minutes
    reference = reproduce.ROOT / item.reference
    assert reference.exists(), f"{name}: no committed reference at {item.reference}"
    rows = reproduce.read_rows(item, reference / ("" if item.reader == "simulate" else "summary.csv"))
    for claim in item.claims:
        assert claim.better in rows and (claim.worse is None or claim.worse in rows), (name, claim.text)
        assert claim.metric in rows[claim.better], (name, claim.text)


def test_claims_test_means_p_values_and_paper_figures():
    rows = {
        "random": {"mastered_pct": Stat(10.0, 2.0, 5.0, 3)},
        "alp-gmm": {"mastered_pct": Stat(25.0, 4.0, 9.0, 3, p_vs_random=0.006)},
        "riac": {"mastered_pct": Stat(12.0, 4.0, 9.0, 3, p_vs_random=0.5)},
    }
    assert Claim("", "alp-gmm", "random", p=0.05).holds(rows) is True
    assert Claim("", "riac", "random").holds(rows) is True
    assert Claim("", "riac", "random", p=0.05).holds(rows) is False  # ahead, but not significantly
    assert Claim("", "random", "alp-gmm").holds(rows) is False
    assert Claim("", "alp-gmm", at_least=25.0).holds(rows) is True and Claim("", "riac", at_least=12.5).holds(rows) is False
    assert Claim("", "sfl", "random").holds(rows) is None and Claim("", "alp-gmm", "random", metric="auc").holds(rows) is None
    # a share of wasted episodes: lower is better
    assert Claim("", "random", "alp-gmm", lower=True).holds(rows) is True
    assert Claim("", "alp-gmm", "random", p=0.05, lower=True).holds(rows) is False


def test_the_infeasible_reproduction_reads_the_share_and_its_p_value():
    item = REPRODUCTIONS["infeasible"]
    rows = reproduce.read_rows(item, reproduce.ROOT / item.reference / "summary.csv")
    share = rows["alp-gmm"]["infeasible_pct"]
    assert share.mean < rows["random"]["infeasible_pct"].mean and share.p_vs_random < 0.05 and share.ci95 > 0
    assert [claim.holds(rows) for claim in item.claims] == [True, False, False]  # fewer failed engines; no landings yet


def test_bench_tables_and_several_students_are_read_by_their_labels(tmp_path):
    table = pd.DataFrame(
        {"student": ["privileged expert (PPO)", "DAgger (random teacher)"], "mastered %": ["49.7 ± 9.7 (± 24.0)", "-"],
         "test return": ["45.81 ± 5.57 (± 13.84)", "36.37 ± 1.36 (± 3.37)"], "return / expert's": ["1.00", "0.79"]}
    )  # fmt: skip
    rows = reproduce._table_rows(table)
    assert rows["privileged expert (PPO)"]["mastered_pct"] == Stat(49.7, 9.7, 24.0, 0)
    dagger = rows["DAgger (random teacher)"]
    assert "mastered_pct" not in dagger and dagger["return_ratio"].mean == 0.79
    summary = pd.read_csv(reproduce.ROOT / "results/reference/kickstart_point_mass/summary.csv")
    assert {"ppo / random", "ppo-kick / plr"} <= set(reproduce._summary_rows(summary))


def test_the_spdl_paper_reproduction_runs_its_part_of_the_config_and_reads_the_papers_metric(tmp_path):
    item = REPRODUCTIONS["spdl-paper"]
    command = item.command(tmp_path, 2, "0-4")
    teachers = command[command.index("--teachers") + 1]
    assert teachers == "spdl,alp-gmm,random,stages" and command[command.index("--students") + 1] == "trpo"
    rows = reproduce.read_rows(item, reproduce.ROOT / item.reference / "summary.csv")
    success = {name: rows[name]["protocol_success_pct"].mean for name in ("spdl", "alp-gmm", "random", "stages")}
    assert success == {"spdl": 99.6, "alp-gmm": 5.6, "random": 0.0, "stages": 20.0}  # one Default seed of 5 passes
    assert all(rows[name]["protocol_return"].seeds == 5 for name in success)
    assert [claim.holds(rows) for claim in item.claims] == [True, True, True, True]


# -- the command -------------------------------------------------------------------------------------------------
def test_list_names_every_reproduction_and_bad_input_gets_one_line(tmp_path):
    shown = CliRunner().invoke(cli, ["reproduce", "--list"])
    assert shown.exit_code == 0 and all(f"{name} (about" in shown.output for name in REPRODUCTIONS)
    for args, problem in (
        (["reproduce", "nope"], "unknown reproduction 'nope'; valid: simulated-student, demo, lunar-lander"),
        (["reproduce", "distill", "--seeds", "0-1", "--out", str(tmp_path / "d")], "runs its own seeds: leave out --seeds"),
        (["reproduce", "lunar-lander", "--check-only", "--out", str(tmp_path / "none")], "run the reproduction first"),
    ):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2 and problem in result.output and "Traceback" not in result.output
    assert not (tmp_path / "d").exists()


def test_a_reference_checked_against_itself_is_inside_its_interval_and_keeps_its_verdicts(tmp_path):
    shutil.copy(reproduce.ROOT / "results/reference/classics_lunar-lander/summary.csv", tmp_path / "summary.csv")
    rows, claims = check(REPRODUCTIONS["lunar-lander"], tmp_path)
    assert [(r.label, r.inside) for r in rows] == [("random", True), ("alp-gmm", True)]
    assert [(ours, ref) for _, ours, ref in claims] == [(True, True)]
    summary = pd.read_csv(tmp_path / "summary.csv")
    summary.loc[summary["teacher"] == "alp-gmm", "mastered_pct_mean"] = 9.0  # a rerun that lost the effect
    summary.to_csv(tmp_path / "summary.csv", index=False)
    rows, claims = check(REPRODUCTIONS["lunar-lander"], tmp_path)
    assert [r.inside for r in rows] == [True, False] and [(ours, ref) for _, ours, ref in claims] == [(False, True)]
    shown = CliRunner().invoke(cli, ["reproduce", "lunar-lander", "--check-only", "--out", str(tmp_path)])
    assert shown.exit_code == 0 and "OUTSIDE" in shown.output and "DISAGREES" in shown.output


def test_a_tiny_reproduction_runs_resumably_and_is_checked(tmp_path, monkeypatch):
    config = tmp_path / "tiny.yaml"
    config.write_text(
        "env: point-mass\nteachers: [random, alp-gmm]\nstudents: [ppo]\nseeds: 0\nsteps: 1024\nn_envs: 2\n"
        "hp: {n_steps: 256, batch_size: 256, n_epochs: 1}\neval_every: 512\ntest_set: narrow\ndevice: cpu\n"
    )
    tiny = Reproduction(
        "tiny", "claim", "source", "1", "compare", str(config), str(tmp_path / "ref"), "summary.csv", "summary",
        (Claim("ALP-GMM >= 0", "alp-gmm", at_least=0.0),),
    )  # fmt: skip
    monkeypatch.setitem(REPRODUCTIONS, "tiny", tiny)
    out = tmp_path / "out"
    reproduce.rerun(tiny, out, workers=1, seeds=None)
    (tmp_path / "ref").mkdir()
    shutil.copy(out / "summary.csv", tmp_path / "ref" / "summary.csv")
    rows, claims = check(tiny, out)
    assert [r.label for r in rows] == ["random", "alp-gmm"] and [c[1] for c in claims] == [True]
    assert all(r.ours.mean == r.reference.mean and r.inside is None for r in rows)  # one seed: no interval
    before = (out / "point-mass/random/ppo/seed0/metrics.json").read_bytes()
    reproduce.rerun(tiny, out, workers=1, seeds=None)  # again: the finished runs are kept
    assert (out / "point-mass/random/ppo/seed0/metrics.json").read_bytes() == before


# -- the mostly infeasible point mass ----------------------------------------------------------------------------
def test_a_closed_gate_cannot_be_passed_and_an_open_one_can():
    """Straight down from the start: through an open gate of width 8 at x = 0 it reaches the goal; a closed gate
    (width <= 0) crashes it at the wall, wherever the gate is."""
    for width, gate_x, crashes in ((8.0, 0.0, False), (0.0, 0.0, True), (-1.0, 0.0, True), (-24.0, 4.0, True)):
        env = make_env("point-mass-infeasible")
        env.set_task([gate_x, width, 0.0], level_seed=0)
        env.reset(seed=0)
        for _ in range(100):
            _, _, terminated, truncated, _ = env.step(np.array([0.0, -3.0]))
            if terminated or truncated:
                break
        assert env.crashed == crashes and abs(env.y) < 1e-9 if crashes else env.y < 0.0, (width, gate_x)
    assert PointMassInfeasibleEnv.feasible(np.array([[0, 0.5, 0], [0, 0.0, 1], [2, -3, 0]])).tolist() == [True, False, False]
    assert PointMassGateEnv.feasible is None  # declared on ParametricEnv: every task can be solved
    env = PointMassInfeasibleEnv()
    np.testing.assert_array_equal(env.test_set("default"), PointMassGateEnv().test_set("default"))
    assert env.task_space.low[1] == -24.0 and not PointMassInfeasibleEnv.feasible(env.test_set("closed")).any()


# -- the mostly infeasible lunar lander --------------------------------------------------------------------------
def _episode(env, task, level_seed, actions):
    """Play one episode of ``task``, the actions drawn from ``actions``; the return, the last info, the positions."""
    env.set_task(task, level_seed=level_seed)
    obs, _ = env.reset()
    total, path, done = 0.0, [obs[:2].copy()], False
    while not done:
        obs, reward, terminated, truncated, info = env.step(actions())
        total, done = total + reward, terminated or truncated
        path.append(obs[:2].copy())
    return total, info, np.array(path)


def test_a_failed_engine_plays_the_same_episode_whatever_the_policy_and_never_lands():
    """On a failed-engine task every action is ignored (the main engine fires): two policies play the same
    episode to the bit, and no task of 200 drawn uniformly over the failed part is a success (returns far below
    the 200 a landing needs); on the same task with working engines the policies' episodes differ."""
    from environments.lunar_lander import LunarLanderInfeasibleEnv

    env, rng = make_env("lunar-lander-infeasible"), np.random.default_rng(7)
    space = env.task_space
    best = -np.inf
    for i in range(200):
        task = space.low + rng.random(4) * space.span
        task[3] = -3.0 * rng.random()  # failed: engine_state in (-3, 0]
        if i < 5:
            noop, _, path_noop = _episode(env, task, i, lambda: 0)
            left, _, path_left = _episode(env, task, i, lambda: 1)
            assert noop == left and np.array_equal(path_noop, path_left)
        total, info, _ = _episode(env, task, i, lambda: int(rng.integers(4)))
        assert not env.is_success(total, info)
        best = max(best, total)
    assert best < 0.0
    working = [-10.0, 0.0, 0.0, 1.0]
    assert _episode(env, working, 0, lambda: 0)[0] != _episode(env, working, 0, lambda: 2)[0]
    feasible = LunarLanderInfeasibleEnv.feasible
    assert feasible(np.array([[-10, 0, 0, 1.0], [-10, 0, 0, 0.01], [-10, 0, 0, 0.0], [-5, 3, 1, -3.0]])).tolist() == [
        True, True, False, False]  # fmt: skip
    plain = make_env("lunar-lander")
    np.testing.assert_array_equal(env.test_set("default")[:, :3], plain.test_set("default"))
    assert feasible(env.test_set("default")).all() and not feasible(env.test_set("failed")).any()
    assert np.isclose(1.0 - np.mean(feasible(space.low + rng.random((20_000, 4)) * space.span)), 0.75, atol=0.01)


def test_the_infeasible_lunar_lander_trains_with_lunar_landers_settings():
    from students.loop.algorithms import default_hyperparams

    assert default_hyperparams("ppo", "lunar-lander-infeasible") == default_hyperparams("ppo", "lunar-lander")
    env = make_env("lunar-lander-infeasible", observation_mode="privileged")  # the task, engine_state included
    assert env.observation_space["privileged"].shape == (4,) and env.feasible is not None


def test_the_share_of_infeasible_episodes_is_counted_and_reported(tmp_path):
    config = RunConfig(env="point-mass-infeasible", teacher="random", steps=4096, n_envs=4, eval_every=100_000,
                       device="cpu", test_set="narrow", hp_overrides={"n_steps": "256", "batch_size": "256"})  # fmt: skip
    metrics = train(config, tmp_path / "run")
    share = metrics["infeasible_share"]
    assert 0.6 < share < 0.9  # 75% of the space; crashes end the closed gates' episodes early, so they are more
    counted = json.loads((tmp_path / "run" / "metrics.json").read_text())["infeasible_share"]
    assert counted == share and math.isclose(share * metrics["episodes_reported"], round(share * metrics["episodes_reported"]))
    steps = metrics["infeasible_step_share"]  # the same episodes' share of the steps: another count
    assert 0.6 < steps < 0.9 and steps != share
    plain_config = RunConfig(env="point-mass", teacher="random", steps=512, n_envs=2, eval_every=100_000, device="cpu",
                             test_set="narrow", hp_overrides={"n_steps": "256", "batch_size": "256"})  # fmt: skip
    plain = train(plain_config, tmp_path / "plain")
    assert "infeasible_share" not in plain
