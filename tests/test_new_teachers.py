"""The mechanics of ADR, SPDL, GoalGAN, the LP bandit, stages and the oracle, and the references' known bugs."""

import itertools
import pickle

import numpy as np
import pytest

from curriculum.adr import AdrTeacher
from curriculum.base import Feedback
from curriculum.goal_gan import GoalGanTeacher
from curriculum.lp_bandit import LpBanditTeacher
from curriculum.plr import AccelTeacher
from curriculum.riac import RiacTeacher
from curriculum.schedules import OracleTeacher, StagesTeacher
from curriculum.sfl import SflTeacher
from curriculum.spaces import BoxTaskSpace, DiscreteTaskSpace
from curriculum.spdl import SpdlTeacher, gaussian_kl
from environments.point_mass import PointMassGateEnv
from environments.simulated_student import SimulatedStudent, simulate

LINE = BoxTaskSpace(["x"], [0.0], [10.0])


def test_adr_expands_after_a_queue_of_successes_and_shrinks_after_failures():
    adr = AdrTeacher(LINE, return_bounds=(0, 1), queue_len=3, step_size=0.1, boundary_sampling_p=1.0)
    assert adr.lows[0] == adr.highs[0] == 5.0  # a point: the centre (no easy region given)
    for _ in range(3):  # every episode on the point counts for both bounds
        adr.update([5.0], Feedback(1.0))
    assert (adr.lows[0], adr.highs[0]) == (4.0, 6.0)
    for _ in range(2):
        adr.update([4.0], Feedback(0.0))
    assert adr.lows[0] == 4.0  # the queue is not full yet
    adr.update([4.0], Feedback(0.0))
    assert (adr.lows[0], adr.highs[0]) == (5.0, 6.0)  # shrank by one step
    for _ in range(3):
        adr.update([5.0], Feedback(0.5))  # between the thresholds: no move, queue emptied
    assert (adr.lows[0], adr.highs[0]) == (5.0, 6.0) and len(adr.queues[0][0]) == 0
    pinned = [adr.sample()[0] for _ in range(200)]
    assert set(np.round(pinned, 9)) <= {5.0, 6.0}  # boundary_sampling_p = 1: always on a bound


def test_adr_starts_in_the_easy_region_and_expands_on_the_simulated_student():
    result = simulate("adr", 4000, seed=0, checkpoints=[4000])
    assert result.mastered[4000] >= 10.0 and result.stats["box_volume_share"] > 0.05
    student = SimulatedStudent()
    adr = AdrTeacher(student.task_space, return_bounds=(0, 1))
    adr.prepare(student)
    np.testing.assert_allclose(adr.lows, [0.05, 0.05])  # the origin cell's centre


def test_spdl_steps_respect_the_kl_bound_and_move_toward_the_target():
    env = PointMassGateEnv()
    spdl = SpdlTeacher(env.task_space, seed=0, update_frequency=500, update_offset=500, max_kl=0.1, zeta=2.0)
    spdl.prepare(env)
    np.testing.assert_allclose(spdl.mean, [0.0, 4.25, 2.0])
    rng = np.random.default_rng(0)
    kls = [gaussian_kl(spdl.mean, spdl.chol, spdl.target_mean, spdl.target_chol)]
    for _ in range(6):
        old = (spdl.mean.copy(), spdl.chol.copy())
        for _ in range(50):  # 50 episodes of 10 steps: one update
            task = spdl.sample()
            value = 10.0 + rng.normal(0, 0.1)
            spdl.update(task, Feedback(value, length=10, scores={"initial_value": value}))
        assert gaussian_kl(*old, spdl.mean, spdl.chol) <= 0.1 + 1e-6
        kls.append(gaussian_kl(spdl.mean, spdl.chol, spdl.target_mean, spdl.target_chol))
    assert spdl.updates == 6 and all(b < a for a, b in itertools.pairwise(kls)), [float(k) for k in kls]
    assert spdl.required_scores == ("initial_value",)


def test_spdl_without_pull_follows_the_values():
    spdl = SpdlTeacher(LINE, seed=0, update_frequency=100, update_offset=100, max_kl=0.5, zeta=0.0)
    spdl.set_distributions([5.0], [1.0], [0.0], [0.1])
    for _ in range(100):  # values grow with x: the distribution moves right, away from the target at 0
        task = spdl.sample()
        spdl.update(task, Feedback(0.0, scores={"initial_value": float(task[0])}))
    assert spdl.mean[0] > 5.2


def test_goal_gan_labels_tasks_of_intermediate_difficulty():
    gan = GoalGanTeacher(LINE, seed=0, n_rollouts=2, update_size=1000, p_old=0.0)
    first = gan.sample()
    np.testing.assert_array_equal(gan.sample(), first)  # a generated task is played n_rollouts times
    gan.update(first, Feedback(0.0, success=True))
    gan.update(first, Feedback(0.0, success=False))
    second = gan.sample()
    gan.sample()
    gan.update(second, Feedback(0.0, success=True))
    gan.update(second, Feedback(0.0, success=True))
    assert gan.labels == [True, False]  # 0.5 is intermediate, 1.0 is not
    assert len(gan.old_tasks) == 1 and gan.old_tasks[0] == pytest.approx(second)  # mastered: kept for replay
    gan.update([3.3], Feedback(0.0, success=True))  # not a generated task: not labelled
    assert len(gan.labels) == 2 and not gan.pending


def test_goal_gan_trains_toward_labelled_tasks():
    gan = GoalGanTeacher(LINE, seed=0, gan_iterations=300)
    tasks = np.concatenate([np.full(50, 8.0), np.full(50, 2.0)])[:, None]
    labels = np.concatenate([np.ones(50), np.zeros(50)]).astype(np.float32)
    gan._train(tasks, labels)
    samples = np.array([gan.sample()[0] for _ in range(400)])
    assert abs(np.median(samples) - 8.0) < abs(np.median(samples) - 2.0)


def test_lp_bandit_prefers_the_task_whose_score_moves():
    space = DiscreteTaskSpace(["flat", "rising", "falling"])
    bandit = LpBanditTeacher(space, seed=0, return_bounds=(0, 1), epsilon=0.0)
    level = {0: 0.5, 1: 0.0, 2: 1.0}
    picks = []
    for _ in range(150):  # neither moving score reaches its end (100 practices) before the last episode
        task = bandit.sample()
        picks.append(task)
        if task == 1:
            level[1] = min(1.0, level[1] + 0.01)
        if task == 2:
            level[2] = max(0.0, level[2] - 0.01)  # forgetting attracts practice too (|slope|)
        bandit.update(task, Feedback(level[task]))
    assert picks.count(0) == 2 and picks.count(1) > 40 and picks.count(2) > 40  # flat: its two first tries only
    with pytest.raises(TypeError, match="works on DiscreteTaskSpace"):
        LpBanditTeacher(LINE)


@pytest.mark.parametrize("policy", ["epsilon-greedy", "boltzmann", "thompson"])
def test_lp_bandit_beats_random_on_the_discrete_simulated_student(policy):
    student = {"discrete": True, "cells": 6}
    bandit = simulate("lp-bandit", 3000, seed=0, teacher_params={"policy": policy}, student_params=student)
    baseline = simulate("random", 3000, seed=0, student_params=student)
    assert bandit.mastered[3000] >= baseline.mastered[3000] + 30.0


def test_lp_bandit_state_round_trip():
    space = DiscreteTaskSpace([f"t{i}" for i in range(5)])
    a = LpBanditTeacher(space, seed=1, return_bounds=(0, 1))
    rng = np.random.default_rng(0)
    for _ in range(50):
        a.update(a.sample(), Feedback(float(rng.random())))
    b = LpBanditTeacher(space, seed=9, return_bounds=(0, 1))
    b.load_state_dict(pickle.loads(pickle.dumps(a.state_dict())))
    assert [a.sample() for _ in range(30)] == [b.sample() for _ in range(30)]


def test_stages_advance_on_their_conditions(tmp_path):
    path = tmp_path / "stages.yaml"
    path.write_text(
        "stages:\n"
        "  - {box: {a: [0, 0.1]}, until: {episodes: 5}}\n"
        "  - {box: {a: 0.5}, until: {success: 0.5, window: 4}}\n"
        "  - {box: {}}\n"
    )
    teacher = StagesTeacher(BoxTaskSpace(["a", "b"], [0, 0], [1, 1]), stages=str(path))
    for _ in range(5):
        task = teacher.sample()
        assert task[0] <= 0.1
        teacher.update(task, Feedback(0.0))
    assert teacher.stage == 1 and teacher.sample()[0] == 0.5
    for success in (True, False, True, False):
        teacher.update(teacher.sample(), Feedback(0.0, success=success))
    assert teacher.stage == 2
    for text, message in [
        ("stages: [{box: {c: [0, 1]}}]", "unknown dimension 'c'"),
        ("stages: [{box: {a: [0, 2]}}]", "is not inside"),
        ("stages: [{box: {}, until: {speed: 3}}, {box: {}}]", "'until' needs one of"),
        ("nothing: 1", "needs a non-empty 'stages' list"),
    ]:
        path.write_text(text)
        with pytest.raises(ValueError, match=message):
            StagesTeacher(BoxTaskSpace(["a", "b"], [0, 0], [1, 1]), stages=str(path))


def test_oracle_moves_its_window_toward_the_target_on_good_returns():
    env = PointMassGateEnv()
    oracle = OracleTeacher(env.task_space, return_bounds=(0, 100), every=10, threshold=0.5)
    oracle.prepare(env)
    start = oracle.centre.copy()
    for _ in range(10):
        oracle.update(oracle.sample(), Feedback(20.0))  # poor: the window stays
    np.testing.assert_array_equal(oracle.centre, start)
    for _ in range(10):
        oracle.update(oracle.sample(), Feedback(90.0))
    target = env.spdl_target[0]
    assert np.linalg.norm(oracle.centre - target) < np.linalg.norm(start - target)


def test_accel_mutates_the_replayed_levels_not_always_the_first():
    """dcd's bug: argsort over a 2-D array made ACCEL always edit level 0."""
    space = BoxTaskSpace(["x", "y"], [0, 0], [1, 1])
    accel = AccelTeacher(space, seed=3, buffer_size=30, min_fill=0.3, cycle="episode")
    rng = np.random.default_rng(0)
    for _ in range(400):
        level = accel.sample_level()
        score = float(rng.random())
        accel.update(level.task, Feedback(0.0, scores={"positive_value_loss": score}, level_seed=level.seed))
    assert len(set(accel.pending_parents.values()) | set(accel.buffer.parents[: accel.buffer.size].tolist()) - {-1}) > 3


def test_riac_split_score_counts_the_childrens_sizes():
    """teachDeepRL's bug: the split score multiplied by len() of a 2-tuple, so children's sizes never counted."""
    riac = RiacTeacher(BoxTaskSpace(["x"], [0.0], [1.0]), seed=0, max_region_size=20, nb_split_attempts=2)
    region = riac.regions[0]
    region.tasks = [np.array([(i + 0.5) / 20]) for i in range(20)]
    region.returns = [0.0, 1.0] + [2.9] * 18  # split at 0.1: |ALP| diff 1.0, sizes 2 x 18; at 0.5: 0.96, 10 x 10

    class Candidates:  # the two thresholds the split tries, in this order
        def __init__(self):
            self.thresholds = iter([0.1, 0.5])

        def integers(self, n):
            return 0

        def uniform(self, low, high):
            return next(self.thresholds)

    riac.rng = Candidates()
    assert riac._try_split(0)
    assert region.split[1] == 0.5  # 0.96 * 100 > 1.0 * 36; without sizes 0.1 would win


def test_sfl_keeps_the_most_learnable_levels_and_scores_without_training():
    space = DiscreteTaskSpace([f"t{i}" for i in range(10)])
    sfl = SflTeacher(space, seed=0, n_candidates=10, rollouts=4, buffer_size=3, buffer_share=1.0, update_every=100)
    success_rate = {2: 0.5, 5: 0.5, 7: 0.75}  # the others always or never succeed
    scoring = [sfl.sample_level() for _ in range(40)]
    assert all(not level.train for level in scoring)  # 10 candidates x 4 rollouts, no gradient
    counts: dict[int, int] = {}
    for level in scoring:
        k = counts[level.seed] = counts.get(level.seed, 0) + 1
        task = int(level.task)
        p = success_rate.get(task, float(task % 2))
        sfl.update(task, Feedback(0.0, success=k <= round(4 * p), level_seed=level.seed))
    kept = [int(task) for task, _ in sfl.buffer]
    candidates = list(dict.fromkeys((level.seed, int(level.task)) for level in scoring))  # in generation order
    p = [round(4 * success_rate.get(task, float(task % 2))) / 4 for _, task in candidates]
    learnability = [q * (1 - q) + 0.001 * q for q in p]
    expected = [candidates[i][1] for i in sorted(range(10), key=lambda i: -learnability[i])[:3]]
    assert kept == expected and all(0 < q < 1 for q in sorted(p, key=lambda q: -(q * (1 - q)))[:1])
    training = [sfl.sample_level() for _ in range(50)]
    assert all(level.train and int(level.task) in kept for level in training)  # buffer_share = 1
    for level in training:
        sfl.update(level.task, Feedback(0.0, level_seed=level.seed))
    assert sfl.stats()["scoring_share"] == pytest.approx(40 / 90)


def test_setter_solver_judge_learns_where_the_student_succeeds():
    import torch as th

    from curriculum.setter_solver import SetterSolverTeacher

    teacher = SetterSolverTeacher(LINE, seed=0, update_frequency=10, hidden=32, blocks=2)
    for _ in range(3000):
        task = teacher.sample()
        assert 0.0 <= task[0] <= 10.0
        teacher.update(task, Feedback(0.0, success=bool(task[0] > 5.0)))
    assert teacher.updates == 300 and not teacher.pending
    with th.no_grad():
        low, high = teacher.judge(th.tensor([[0.2], [0.8]])).flatten().tolist()  # unit coordinates
    assert high > low + 1.0  # success is likelier where it happened


def test_adr_starts_from_a_given_task():
    space = BoxTaskSpace(["x", "y"], [0.0, 0.0], [10.0, 10.0])
    adr = AdrTeacher(space, return_bounds=(0, 1), start="y=2, x=7")
    adr.prepare(SimulatedStudent())  # a given start wins over the environment's easy region
    np.testing.assert_array_equal(adr.lows, [7.0, 2.0])
    for text, message in [("x=1", "missing dimension"), ("x=1,y=20", "outside"), ("x1", "NAME=VALUE")]:
        with pytest.raises(ValueError, match=message):
            AdrTeacher(space, start=text)


def test_spdl_updates_on_multiples_of_its_frequency_from_its_offset():
    spdl = SpdlTeacher(LINE, seed=0, update_frequency=100, update_offset=150)
    steps = []
    for step in range(1, 501):
        spdl.update(spdl.sample(), Feedback(0.0, length=1, scores={"initial_value": 1.0}))
        if spdl.updates > len(steps):
            steps.append(step)
    assert steps == [200, 300, 400, 500]  # as TeachMyAgent: step >= offset and step % frequency == 0
