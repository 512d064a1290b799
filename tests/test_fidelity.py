"""Teachers and envs against their references' rules, on fixed inputs (issue: teachers that run as their
references run): SPDL's step and settings, the point mass, ADR, the regret teachers' replay schedule."""

import numpy as np
import pytest
from scipy.stats import multivariate_normal
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from threadpoolctl import threadpool_limits

from bench.spdl_step import independent, kl_cov
from curriculum.base import Feedback
from curriculum.plr import AccelTeacher, RobustPlrTeacher
from curriculum.registry import UnknownTeacherError, make_teacher
from curriculum.spaces import BoxTaskSpace
from curriculum.spdl import SpdlTeacher, gaussian_kl, pack, step_objective, trust_region_kl, unpack
from students.loop.curriculum import CurriculumCallback
from tests.test_students import train_on_echo

BOX = BoxTaskSpace(["x", "y", "z"], [-4.0, 0.5, 0.0], [4.0, 8.0, 4.0])  # the SPDL point mass's context box
TARGET = (np.array([2.5, 0.5, 0.0]), np.array([0.004, 0.00375, 0.002]))


def fixed_buffer(seed, episodes=40):
    rng = np.random.default_rng(seed)
    mean, std = np.array([0.0, 4.25, 2.0]) + rng.normal(0, 0.3, 3), np.array([2.0, 1.875, 1.0]) * rng.uniform(0.4, 1, 3)
    contexts = np.clip(mean + std * rng.standard_normal((episodes, 3)), BOX.low, BOX.high)
    goal = rng.uniform(BOX.low, BOX.high)
    values = 5 * np.exp(-np.sum(((contexts - goal) / [4, 3, 2]) ** 2, axis=1)) + rng.normal(0, 0.3, episodes)
    return mean, std, contexts, values


def spdl_after_one_step(seed, **params):
    """An SPDL teacher at the paper's max_kl and zeta, started at a fixed distribution, after one update on a
    fixed buffer; and that buffer."""
    mean, std, contexts, values = fixed_buffer(seed)
    params = {"max_kl": 0.05, "zeta": 1.6, **params}
    spdl = SpdlTeacher(BOX, update_frequency=len(values), update_offset=0, **params)
    spdl.set_distributions(mean, std, *TARGET)
    for context, value in zip(contexts, values, strict=True):
        spdl.update(context, Feedback(0.0, length=1, scores={"initial_value": float(value)}))
    assert spdl.updates == 1
    return spdl, (mean, std, contexts, values)


def reached_objective(spdl, mean, std, contexts, values, alpha):
    old_log_p = multivariate_normal(mean, np.diag(std**2)).logpdf(contexts)
    cov = spdl.chol @ spdl.chol.T
    ratio = np.exp(multivariate_normal(spdl.mean, cov).logpdf(contexts) - old_log_p)
    return float(np.mean(ratio * values)) - alpha * kl_cov(spdl.mean, cov, TARGET[0], np.diag(TARGET[1] ** 2))


@pytest.mark.parametrize("seed", [0, 3, 7])
def test_spdl_step_reaches_the_constrained_optimum_of_an_independent_solve(seed):
    spdl, (mean, std, contexts, values) = spdl_after_one_step(seed)
    kl_target = kl_cov(mean, np.diag(std**2), TARGET[0], np.diag(TARGET[1] ** 2))
    alpha = min(1.6 * max(values.mean(), 0) / kl_target, 1e5)
    best = independent(contexts, values, mean, np.diag(std), alpha, starts=4)[0]
    reached = reached_objective(spdl, mean, std, contexts, values, alpha)
    assert reached >= best - 1e-3 * abs(best), (reached, best)
    assert kl_cov(mean, np.diag(std**2), spdl.mean, spdl.chol @ spdl.chol.T) <= 0.05 + 1e-9


def test_spdl_step_is_the_same_on_one_and_two_threads():
    results = []
    for threads in (1, 2):
        with threadpool_limits(threads):
            spdl, _ = spdl_after_one_step(5)
        results.append(pack(spdl.mean, spdl.chol))
    np.testing.assert_array_equal(results[0], results[1])


def test_spdl_gradients_match_finite_differences():
    mean, std, contexts, values = fixed_buffer(1)
    chol = np.diag(std) + np.tril(np.full((3, 3), 0.2), -1)
    theta = pack(mean + 0.1, chol)
    old_log_p = multivariate_normal(mean, np.diag(std**2)).logpdf(contexts)
    args = (contexts, values, old_log_p, TARGET[0], np.diag(TARGET[1]), 1e-5)
    for function, extra in ((step_objective, args), (trust_region_kl, (mean, np.diag(std)))):
        _, grad = function(theta, *extra)
        numeric = [(function(theta + e, *extra)[0] - function(theta - e, *extra)[0]) / 2e-6 for e in np.eye(9) * 1e-6]
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-6)
    assert trust_region_kl(theta, mean, np.diag(std))[0] == pytest.approx(
        kl_cov(mean, np.diag(std**2), *(lambda m, c: (m, c @ c.T))(*unpack(theta, 3)))
    )


def test_spdl_alpha_offset_counts_as_the_references_do():
    """psclklnk and TeachMyAgent: alpha = 0 while iteration < offset, the iteration counted before the update:
    offset 1 pulls at the first update, as offset 0 does; offset 2 does not."""
    first = {
        offset: pack(*(lambda t: (t.mean, t.chol))(spdl_after_one_step(2, alpha_offset=offset)[0])) for offset in (0, 1, 2)
    }
    np.testing.assert_array_equal(first[0], first[1])
    assert not np.allclose(first[1], first[2])
    spdl, _ = spdl_after_one_step(2, zeta=0.0)  # zeta 0: no pull at all, as offset 2's first update
    np.testing.assert_allclose(pack(spdl.mean, spdl.chol), first[2], rtol=1e-6, atol=1e-8)


def test_spdl_std_bound_inside_the_solve_or_after_it():
    """A std bound that binds on x: inside the solve (psclklnk) the step stays in the trust region with every std
    at or above the bound; floored afterwards (TeachMyAgent) the std is raised past the step it took. A bound no
    distribution in the region meets: the old distribution raised to it."""
    bound = 0.13  # share of each range: (1.04, 0.975, 0.52); x's std is 0.897, the unbounded step takes it to 0.988
    kls, stds = {}, {}
    for mode in ("solve", "floor"):
        spdl, (mean, std, _, _) = spdl_after_one_step(4, std_lower_bound=bound, kl_threshold=1.0, std_bound=mode)
        stds[mode] = np.diag(spdl.chol)
        kls[mode] = kl_cov(mean, np.diag(std**2), spdl.mean, spdl.chol @ spdl.chol.T)
    floor = bound * BOX.span
    assert (stds["solve"] >= floor - 1e-9).all() and (stds["floor"] >= floor - 1e-12).all()
    assert stds["solve"][0] == pytest.approx(floor[0], rel=1e-4) and kls["solve"] <= 0.05 + 1e-9
    assert not np.allclose(stds["solve"], stds["floor"])
    unbounded, _ = spdl_after_one_step(4, std_lower_bound=bound, kl_threshold=1e12)  # KL below the threshold
    assert np.diag(unbounded.chol)[0] == pytest.approx(0.988, abs=1e-3)
    spdl, (mean, std, _, _) = spdl_after_one_step(4, std_lower_bound=0.2, kl_threshold=1.0)  # x: 0.897 -> 1.6
    np.testing.assert_array_equal(spdl.mean, mean)
    np.testing.assert_allclose(np.diag(spdl.chol), np.maximum(std, 0.2 * BOX.span))


def test_spdl_paper_preset_and_its_overrides():
    spdl = make_teacher("spdl", BOX, preset="point-mass-paper")
    settings = {k: getattr(spdl, k) for k in SpdlTeacher.PRESETS["point-mass-paper"]}
    assert settings == {
        "update_frequency": 2048,
        "update_offset": 10240,
        "alpha_offset": 70,
        "zeta": 1.6,
        "max_kl": 0.05,
        "std_lower_bound": 0.025,
        "kl_threshold": 8000.0,
        "performance": "return",
    }
    np.testing.assert_allclose(spdl.std_lower_bound * BOX.span, [0.2, 0.1875, 0.1])  # the paper's bound
    assert spdl.next_update == 10240 and spdl.required_scores == ("initial_value", "discounted_return")
    assert make_teacher("spdl", BOX, preset="point-mass-paper", alpha_offset=20).alpha_offset == 20
    with pytest.raises(UnknownTeacherError, match="no preset 'jmlr'; valid: point-mass-paper"):
        make_teacher("spdl", BOX, preset="jmlr")


def test_spdl_average_performance_scales_alpha_with_the_discounted_returns():
    """performance=return: alpha from the mean discounted return, not the values (zero values, positive
    returns: a pull toward the target all the same)."""
    moved = {}
    for performance in ("value", "return"):
        spdl = SpdlTeacher(BOX, update_frequency=30, update_offset=0, max_kl=0.05, zeta=1.6, performance=performance)
        spdl.set_distributions([0.0, 4.25, 2.0], [2.0, 1.875, 1.0], *TARGET)
        for _ in range(30):
            spdl.update(spdl.sample(), Feedback(0.0, scores={"initial_value": 0.0, "discounted_return": 3.0}))
        moved[performance] = gaussian_kl(spdl.mean, spdl.chol, spdl.target_mean, spdl.target_chol)
    assert moved["return"] < moved["value"] - 1.0


def test_the_discounted_return_score_uses_the_environments_rewards_and_the_students_gamma():
    teacher, _ = train_on_echo(2, False, steps=200, n_steps=8)  # episodes of 1-5 steps split across rollouts
    assert len(teacher.updates) > 30
    for task, feedback in teacher.updates:  # a reward of a + 10 b on the last step only
        expected = 0.99 ** (feedback.length - 1) * (task[0] + 10 * task[1])
        assert feedback.scores["discounted_return"] == pytest.approx(expected, rel=1e-5)


# -- the point mass (psclklnk/spdl deep_sprl/environments/contextual_point_mass.py) ------------------------------
def reference_point_mass(context, actions, noise_rng):
    """The reference's rules, transcribed: state (x, vx, y, vy), explicit Euler of dt 0.01 clipped to the box,
    ten sub-steps a step, a crash on a crossing of y = 0 outside the gate in either direction. The noise comes
    from ``noise_rng`` in the env's order (20 draws a step: x, y per sub-step). Returns the positions after each
    step and the step the episode crashed at (or None)."""
    low, high = np.array([-4.0, -np.inf, -4.0, -np.inf]), np.array([4.0, np.inf, 4.0, np.inf])
    state, positions = np.array([0.0, 0.0, 3.0, 0.0]), []
    for t, action in enumerate(actions):
        action = np.clip(action, -10, 10)
        noise = noise_rng.normal(0.0, 0.05, 20).reshape(10, 2)
        crash = False
        for i in range(10):
            der = np.zeros(4)
            der[0::2] = state[1::2]
            der[1::2] = 1.5 * action - context[2] * state[1::2] + noise[i]
            new = np.clip(state + 0.01 * der, low, high)
            if state[2] >= 0 > new[2] or state[2] <= 0 < new[2]:
                alpha = (0.0 - state[2]) / (new[2] - state[2])
                x_crit = alpha * new[0] + (1 - alpha) * state[0]
                if np.abs(x_crit - context[0]) > 0.5 * context[1]:
                    new, crash = np.array([x_crit, 0.0, 0.0, 0.0]), True
            state = new
            if crash:
                break
        positions.append(state[0::2].copy())
        if crash:
            return np.array(positions), t
    return np.array(positions), None


def through_the_gate_and_back_up():
    """Down through a gate at x = 0, right below the wall, then up outside the gate."""
    return [np.array([0.0, -10.0])] * 8 + [np.array([10.0, 3.0])] * 6 + [np.array([0.0, 10.0])] * 20


@pytest.mark.parametrize("batched", [False, True])
def test_point_mass_crashes_as_the_reference_in_either_direction(batched):
    import copy

    from environments.point_mass import PointMassGateEnv

    context = np.array([0.0, 1.0, 0.5])
    actions = through_the_gate_and_back_up()
    env = PointMassGateEnv()
    env.set_task(context, level_seed=11)
    env.reset(seed=0)
    expected, crash_step = reference_point_mass(context, actions, copy.deepcopy(env._noise))
    assert crash_step is not None and crash_step > 14  # it went through the gate, then crashed going up
    for t, action in enumerate(actions):
        if batched:
            _, _, terminated, _, _ = PointMassGateEnv.step_batch([env], action[None])
            terminated = bool(terminated[0])
        else:
            _, _, terminated, _, _ = env.step(action)
        np.testing.assert_allclose([env.x, env.y], expected[t], rtol=0, atol=1e-12)
        assert terminated == (t == crash_step)
        if terminated:
            break
    assert env.crashed and env.y == 0.0 and env.vx == env.vy == 0.0


def test_point_mass_target_distribution_and_its_held_out_set_are_the_references():
    from environments.point_mass import PointMassGateEnv

    mean, std = PointMassGateEnv.spdl_target
    np.testing.assert_array_equal(mean, [2.5, 0.5, 0.0])
    np.testing.assert_array_equal(std, [0.004, 0.00375, 0.002])  # point_mass_experiment.py's TARGET_VARIANCE
    target = PointMassGateEnv().test_set("target")
    drawn = np.random.default_rng(0).normal([2.5, 0.5, 0.0], [0.004, 0.00375, 0.002], (10, 3))
    np.testing.assert_array_equal(target, np.clip(drawn, PointMassGateEnv.task_space.low, PointMassGateEnv.task_space.high))


@pytest.mark.parametrize("name", ["point-mass", "stump-tracks"])
def test_a_task_and_a_level_seed_replay_the_same_episode_whatever_the_reset_seed(name):
    from environments.registry import make_env

    trajectories = []
    for reset_seed in (1, 2):
        env = make_env(name)
        env.unwrapped.set_task(env.unwrapped.default_task, level_seed=7)
        obs, _ = env.reset(seed=reset_seed)
        steps = [obs]
        actions = np.random.default_rng(0).uniform(-1, 1, (30, *env.action_space.shape)) * env.action_space.high
        for action in actions:
            obs, reward, terminated, truncated, _ = env.step(action.astype(np.float32))
            steps.append(np.append(obs, reward))
            if terminated or truncated:
                break
        trajectories.append(steps)
        env.close()
    assert len(trajectories[0]) == len(trajectories[1])
    for a, b in zip(*trajectories, strict=True):
        np.testing.assert_array_equal(a, b)


# -- ADR (TeachMyAgent teachers/algos/adr.py) ---------------------------------------------------------------------
def pinned_sides(adr, n=4000):
    """How often ``n`` samples sit on dimension 0's low and high bounds."""
    tasks = np.array([adr.sample() for _ in range(n)])
    return int((tasks[:, 0] == adr.lows[0]).sum()), int((tasks[:, 0] == adr.highs[0]).sum())


def test_adr_pins_either_bound_50_50_as_the_reference_even_at_the_limit():
    from curriculum.adr import AdrTeacher

    line = BoxTaskSpace(["x"], [0.0], [10.0])
    adr = AdrTeacher(line, boundary_sampling_p=1.0, start="x=0")  # low bound at the space's limit
    adr.highs[:] = 4.0
    low, high = pinned_sides(adr)
    assert low + high == 4000 and abs(low - 2000) < 150  # TeachMyAgent: random.random() < 0.5 when any can move
    movable = AdrTeacher(line, boundary_sampling_p=1.0, start="x=0", pin="movable")
    movable.highs[:] = 4.0
    assert pinned_sides(movable) == (0, 4000)


@pytest.mark.parametrize("high", [4.0, 10.0])
def test_adr_bound_at_the_limit_shrinks_after_failures(high):
    """A low bound at the space's limit (with the high one movable, or at its limit too) shrinks by one step after
    a queue of failures, as any bound does."""
    from curriculum.adr import AdrTeacher

    line = BoxTaskSpace(["x"], [0.0], [10.0])
    adr = AdrTeacher(line, return_bounds=(0, 1), boundary_sampling_p=1.0, queue_len=5, step_size=0.1, start="x=0")
    adr.highs[:] = high
    for _ in range(200):
        task = adr.sample()
        adr.update(task, Feedback(0.0))  # every episode fails
        if adr.lows[0] > 0.0:
            break
    assert adr.lows[0] == pytest.approx(1.0)


# -- PLR, Robust PLR, ACCEL (dcd level_replay/level_sampler.py) -------------------------------------------------
@pytest.mark.parametrize(
    ("schedule", "fill", "expected"),
    [
        ("proportionate", 0.4, 0.0),
        ("proportionate", 0.6, 0.6),
        ("proportionate", 0.95, 0.9),
        ("fixed", 0.6, 0.9),
    ],
)
def test_plr_replay_schedule_is_dcds_sample_replay_decision(schedule, fill, expected):
    """dcd (sample_full_distribution): replay iff fill >= rho and U < min(fill, replay_prob) (proportionate) or
    U < replay_prob (fixed)."""
    from curriculum.plr import PlrTeacher

    line = BoxTaskSpace(["x"], [0.0], [1.0])
    plr = PlrTeacher(line, seed=0, replay_prob=0.9, buffer_size=100, min_fill=0.5, replay_schedule=schedule)
    for k in range(round(fill * 100)):
        plr._admit(np.array([k / 100]), 10_000 + k, 1.0, 0.0, -1)
    kinds = []
    for _ in range(4000):
        plr.sample_level()
        kinds.append(plr._kind)
    assert kinds.count("replay") / 4000 == pytest.approx(expected, abs=0.025)
    assert plr.buffer.size == round(fill * 100)  # sampling alone admits nothing


def test_regret_teachers_default_to_the_proportionate_schedule():
    from curriculum.plr import AccelTeacher, PlrTeacher, RobustPlrTeacher

    line = BoxTaskSpace(["x"], [0.0], [1.0])
    assert {cls(line).replay_schedule for cls in (PlrTeacher, RobustPlrTeacher, AccelTeacher)} == {"proportionate"}


class CycleSpy(BaseCallback):
    """Per rollout: the teacher's kind, the first observations, the level seed each sub-env played at each step,
    the buffer's seeds at the start, and whether the student's update learned from anything."""

    def __init__(self, teacher):
        super().__init__()
        self.teacher, self.rollouts = teacher, []

    def _on_rollout_start(self):
        buffer = self.teacher.buffer
        self.rollouts.append(
            {
                "kind": self.teacher.rollout_kind,
                "obs": np.array(self.model._last_obs),
                "buffer": set(buffer.seeds[: buffer.size].tolist()),
                "parents": dict(self.teacher.pending_parents),
                "seeds": [[] for _ in range(self.training_env.num_envs)],
            }
        )

    def _on_step(self):
        for i, info in enumerate(self.locals["infos"]):
            self.rollouts[-1]["seeds"][i].append(int(info["level_seed"]))
        return True

    def _on_rollout_end(self):
        buffer = self.model.rollout_buffer
        self.rollouts[-1]["trained"] = bool(getattr(buffer, "n_unmasked", buffer.buffer_size))


class RecordingRobustPlr(RobustPlrTeacher):
    def _update(self, task, feedback):
        self.lengths = [*getattr(self, "lengths", []), feedback.length]
        super()._update(task, feedback)


def cycle_run(teacher, steps=6144, n_envs=3):
    from environments.point_mass import PointMassGateEnv
    from students.loop.masked import MaskedPPO
    from students.loop.vec_env import make_vec_env

    env = make_vec_env("point-mass", n_envs, seed=0, env_kwargs={"horizon": 60})  # dcd's layout: rollout >= episode
    teacher.prepare(PointMassGateEnv())
    callback, spy = CurriculumCallback(teacher), CycleSpy(teacher)
    model = MaskedPPO("MlpPolicy", env, n_steps=64, batch_size=64, n_epochs=1, seed=0, device="cpu")
    callback.prime(env)
    model.learn(steps, callback=CallbackList([callback, spy]))
    env.close()
    return model, callback, spy.rollouts


def test_robust_plr_rollout_cycle_plays_one_kind_per_rollout_and_trains_only_on_replays():
    from environments.point_mass import PointMassGateEnv

    teacher = RecordingRobustPlr(PointMassGateEnv.task_space, seed=0, buffer_size=12, min_fill=0.25, cycle="rollout")
    model, callback, rollouts = cycle_run(teacher)
    kinds = [r["kind"] for r in rollouts]
    assert kinds.count("replay") >= 4 and kinds.count("new") >= 4 and set(kinds) == {"replay", "new"}
    for r in rollouts:
        np.testing.assert_array_equal(r["obs"][:, :4], np.tile([0.0, 3.0, 0.0, 0.0], (3, 1)))  # every env reset
        played = {s for seeds in r["seeds"] for s in seeds}
        if r["kind"] == "replay":
            assert played <= r["buffer"] and r["trained"]
        else:  # a fresh level per sub-env, played again after each episode that ends; no update
            assert all(len(set(seeds)) == 1 for seeds in r["seeds"]) and not played & r["buffer"]
            assert not r["trained"]
    stats = teacher.stats()
    assert (stats["replay_rollouts"], stats["new_rollouts"]) == (kinds.count("replay"), kinds.count("new"))
    assert stats["student_updates"] == sum(r["trained"] for r in rollouts)
    # every step belongs to one reported episode (finished, or cut at a rollout's start) or to one still running
    assert sum(teacher.lengths) + int(callback._lengths.sum()) == model.num_timesteps


def test_accel_rollout_cycle_edits_the_levels_each_replay_rollout_started_with():
    from environments.point_mass import PointMassGateEnv

    teacher = AccelTeacher(PointMassGateEnv.task_space, seed=1, buffer_size=12, min_fill=0.25, cycle="rollout")
    _, _, rollouts = cycle_run(teacher)
    kinds = [r["kind"] for r in rollouts]
    edits = [k for k, kind in enumerate(kinds) if kind == "edit"]
    assert len(edits) >= 3 and all(kinds[k - 1] == "replay" for k in edits)
    assert all(kinds[k + 1] == "edit" for k, kind in enumerate(kinds[:-1]) if kind == "replay")
    for k in edits:
        r, before = rollouts[k], rollouts[k - 1]
        assert all(len(set(seeds)) == 1 for seeds in r["seeds"]) and not r["trained"]
        children = [seeds[0] for seeds in r["seeds"]]
        assert [r["parents"][c] for c in children] == [seeds[0] for seeds in before["seeds"]]
    assert teacher.stats()["edit_rollouts"] == len(edits)


def test_with_rollouts_shorter_than_an_episode_a_cycle_lasts_until_every_sub_env_ends_one(tmp_path):
    """A2C's 8-step rollouts, 20-step episodes, 2 sub-envs: each cycle takes 3 rollouts (24 steps), so each
    sub-env ends one episode in it and the next cycle cuts the 4 steps after it. Before, every rollout started a
    cycle and no episode ever ended."""
    from students.run.train import RunConfig, train

    config = RunConfig(
        env="point-mass", teacher="robust-plr", student="a2c", steps=480, n_envs=2, eval_every=100_000,
        device="cpu", teacher_params={"buffer_size": 4, "min_fill": 0.5}, hp_overrides={"n_steps": "8"},
        env_kwargs={"horizon": 20}, test_set="narrow",
    )  # fmt: skip
    metrics = train(config, tmp_path / "run")
    stats = metrics["teacher_stats"]
    replay, new = stats["replay_rollouts"], stats["new_rollouts"]
    assert replay + new == 480 // 16 and replay % 3 == new % 3 == 0 and new >= 3 and stats["edit_rollouts"] == 0
    assert metrics["episodes_reported"] == 2 * 10 and metrics["episodes_cut"] == 2 * 9  # the last cycle is not cut
    assert metrics["teacher_updates"] == 38
    assert stats["student_updates"] == replay and metrics["trained_steps"] == 16 * replay  # Robust PLR: replays only


def test_the_rollout_cycle_needs_an_on_policy_student():
    from students.run.train import RunConfig, RunError, student_class_for

    teacher = make_teacher("robust-plr", BOX, cycle="rollout")
    problem = (
        "cycle=rollout, its default.* needs an on-policy student \\(ppo, a2c, trpo, recurrent-ppo\\), not sac: "
        "give it cycle=episode"
    )
    with pytest.raises(RunError, match=problem):
        student_class_for(teacher, "sac")
    assert RunConfig  # the run refuses it before anything is written (student_class_for runs in resolve)


def test_plr_replay_distribution_is_dcds_sample_weights_on_fixed_scores():
    """dcd's sample_weights: rank transform 1 / rank ** (1 / temperature), staleness transform power (temperature
    1), mixed (1 - rho) h + rho P_stale; computed here from dcd's code on fixed scores and staleness."""
    from curriculum.plr import PlrTeacher

    line = BoxTaskSpace(["x"], [0.0], [1.0])
    plr = PlrTeacher(line, buffer_size=6, temperature=0.3, staleness_coef=0.3)
    scores = np.array([0.5, 2.0, 0.1, 1.2, 0.9, 3.3])
    last = np.array([3, 9, 0, 5, 1, 7])
    for k in range(6):
        plr._admit(np.array([k / 6]), 100 + k, float(scores[k]), 0.0, -1)
    plr.buffer.last_sampled[:6], plr.clock = last, 12
    temp = np.flip(scores.argsort())  # dcd's rank transform, as written there
    ranks = np.empty_like(temp)
    ranks[temp] = np.arange(len(temp)) + 1
    h = 1 / ranks ** (1.0 / 0.3)
    h /= h.sum()
    staleness = (12 - last).astype(float)
    expected = 0.7 * h + 0.3 * staleness / staleness.sum()
    np.testing.assert_allclose(plr.replay_probabilities(), expected, rtol=1e-12)


def test_a_checkpoint_whose_teacher_state_this_version_cannot_read_is_refused_in_one_line(tmp_path):
    import pickle

    from students.run.train import RunError, train
    from tests.test_runs import interrupt_at, point_mass

    config = point_mass("ppo", "plr", 2600, teacher_params={"buffer_size": 6})
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "run", progress=interrupt_at(1000))
    path = tmp_path / "run" / "checkpoint" / "state.pkl"
    state = pickle.loads(path.read_bytes())
    del state["teacher"]["rollout_counts"]  # as saved before dcd's cycle existed
    path.write_bytes(pickle.dumps(state))
    with pytest.raises(RunError, match="cannot resume .*teacher state lacks rollout_counts.*start it again"):
        train(config, tmp_path / "run", resume=True)
