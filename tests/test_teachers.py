import pickle
from pathlib import Path

import numpy as np
import pytest

from curriculum.base import Feedback, FeedbackError, Teacher
from curriculum.registry import (
    TEACHERS,
    UnknownTeacherError,
    make_teacher,
    parse_teacher_params,
    teacher_class,
    teacher_params,
)
from curriculum.spaces import BoxTaskSpace, DiscreteTaskSpace
from environments.simulated_student import SimulatedStudent, simulate

# small fit windows so that every teacher's adaptive machinery runs within a few hundred episodes
FAST = {"random": {}, "alp-gmm": {"fit_rate": 50}, "covar-gmm": {"fit_rate": 50}, "riac": {"max_region_size": 30}}
FAST.update({name: {"buffer_size": 40, "min_fill": 0.5} for name in ("plr", "robust-plr", "accel")})
FAST.update(
    {
        "adr": {"queue_len": 5, "expand_threshold": 0.3, "shrink_threshold": 0.05},
        "spdl": {"update_frequency": 40, "update_offset": 40, "max_kl": 0.2},
        "goal-gan": {"update_size": 10, "gan_iterations": 5, "goid_low": 0.0, "goid_high": 1.0},  # trains every 10
        "stages": {"stages": str(Path(__file__).parent / "data" / "stages.yaml")},
        "oracle": {"every": 10, "threshold": 0.2},
        "sfl": {"n_candidates": 10, "rollouts": 2, "buffer_size": 3, "update_every": 50},
        "setter-solver": {"update_frequency": 10, "hidden": 16, "blocks": 1},
    }
)
#: the teachers of box task spaces (the contract tests below play them on boxes; lp-bandit has its own tests), but
#: PAIRED, whose cycle needs an antagonist student (tests/test_paired.py)
BOX_TEACHERS = [
    name for name, cls in TEACHERS.items() if BoxTaskSpace in cls.supported_spaces and not getattr(cls, "antagonist", False)
]


def feedback(level, episode_return: float, length: int = 1, success: bool = False) -> Feedback:
    """Feedback with the level seed and stand-in student scores, so the score-based teachers run here too."""
    regret = abs(episode_return - 0.5)
    scores = {"positive_value_loss": regret, "value_l1": regret, "mean_value": 0.5, "initial_value": episode_return}
    return Feedback(episode_return, success=success, length=length, scores=scores, level_seed=level.seed)


def play(teacher: Teacher, student: SimulatedStudent, episodes: int) -> list[np.ndarray]:
    tasks = []
    for _ in range(episodes):
        level = teacher.sample_level()
        tasks.append(level.task)
        episode_return = student.episode(level.task)
        teacher.update(level.task, feedback(level, episode_return, success=student.is_mastered(level.task)))
    return tasks


@pytest.mark.parametrize("name", BOX_TEACHERS)
def test_tasks_stay_in_bounds_of_a_shifted_box(name):
    space = BoxTaskSpace(["a", "b", "c"], [-5.0, 10.0, 0.0], [-1.0, 20.0, 0.001])
    teacher = make_teacher(name, space, seed=1, return_bounds=(-10.0, 10.0), **FAST[name])
    rng = np.random.default_rng(0)
    for _ in range(300):
        level = teacher.sample_level()
        task = level.task
        assert task.shape == (3,)
        assert (task >= space.low).all() and (task <= space.high).all()
        teacher.update(task, feedback(level, float(rng.normal(0, 5)), length=10))


@pytest.mark.parametrize("name", BOX_TEACHERS)
def test_same_seed_same_curriculum_and_other_seed_differs(name):
    def run(seed: int) -> np.ndarray:
        student = SimulatedStudent()
        teacher = make_teacher(name, student.task_space, seed=seed, return_bounds=(0, 1), **FAST[name])
        teacher.prepare(student)  # as simulate() and run do: ADR, ACCEL and oracle start in the origin cell
        return np.array(play(teacher, student, 400))

    np.testing.assert_array_equal(run(0), run(0))
    assert not np.array_equal(run(0), run(1))


@pytest.mark.parametrize("name", BOX_TEACHERS)
def test_state_round_trip_continues_the_same_sequence(name):
    student_a = SimulatedStudent()
    teacher_a = make_teacher(name, student_a.task_space, seed=3, return_bounds=(0, 1), **FAST[name])
    teacher_a.prepare(student_a)
    play(teacher_a, student_a, 275)  # mid-run: after several fits, between two of them
    state = pickle.loads(pickle.dumps(teacher_a.state_dict()))
    competence = student_a.competence.copy()

    teacher_b = make_teacher(name, student_a.task_space, seed=999, return_bounds=(0, 1), **FAST[name])
    teacher_b.prepare(student_a)
    teacher_b.load_state_dict(state)
    student_b = SimulatedStudent()
    student_b.competence[:] = competence
    continued_a = play(teacher_a, student_a, 300)
    continued_b = play(teacher_b, student_b, 300)
    np.testing.assert_array_equal(np.array(continued_a), np.array(continued_b))
    assert teacher_b.n_updates == teacher_a.n_updates == 575


def test_state_of_another_teacher_is_refused():
    space = BoxTaskSpace(["a"], [0], [1])
    state = make_teacher("riac", space).state_dict()
    with pytest.raises(ValueError, match="saved by RiacTeacher, not AlpGmmTeacher"):
        make_teacher("alp-gmm", space).load_state_dict(state)


@pytest.mark.parametrize("name", ["alp-gmm", "covar-gmm", "riac"])
def test_adaptive_teachers_avoid_an_unlearnable_half(name):
    # dimension 0's upper half never learns: returns there stay 0, so there is no progress to find
    result = simulate(name, 6000, seed=0, student_params={"unlearnable_share": 0.5})
    baseline = simulate("random", 6000, seed=0, student_params={"unlearnable_share": 0.5})
    assert 0.45 < baseline.unlearnable_share_played < 0.55
    assert result.unlearnable_share_played < 0.3, result.unlearnable_share_played
    assert result.mastered[6000] > baseline.mastered[6000]


def test_adaptive_teachers_beat_random_on_the_toy_benchmark():
    names = ("random", "alp-gmm", "covar-gmm", "riac")  # the regret-based teachers need an RL student's scores
    scores = {name: simulate(name, 8000, seed=0, checkpoints=[8000]).mastered[8000] for name in names}
    assert scores["random"] <= 2.0
    for name in ("alp-gmm", "covar-gmm", "riac"):
        assert scores[name] >= 5 * max(scores["random"], 1.0), scores


@pytest.mark.parametrize("name", BOX_TEACHERS)
def test_bad_feedback_is_rejected(name):
    space = BoxTaskSpace(["a", "b"], [0, 0], [1, 1])
    teacher = make_teacher(name, space, seed=0, **FAST[name])
    with pytest.raises(FeedbackError, match="finite"):
        teacher.update([0.5, 0.5], Feedback(float("nan")))
    with pytest.raises(FeedbackError, match="finite"):
        Feedback(float("inf"))
    with pytest.raises(FeedbackError, match="score 'positive_value_loss' must be finite"):
        Feedback(1.0, scores={"positive_value_loss": float("nan")})
    with pytest.raises(FeedbackError, match="length"):
        Feedback(1.0, length=0)
    with pytest.raises(FeedbackError, match="outside the teacher's space.*has 2 values"):
        teacher.update([0.5], Feedback(1.0))
    with pytest.raises(FeedbackError, match="outside the teacher's space.*'b' = 1.5 is outside"):
        teacher.update([0.5, 1.5], Feedback(1.0))
    with pytest.raises(FeedbackError, match="must be a Feedback"):
        teacher.update([0.5, 0.5], 1.0)
    assert teacher.n_updates == 0


def test_random_teacher_on_a_discrete_space_and_gmm_teachers_refuse_it():
    space = DiscreteTaskSpace(["a", "b", "c", "d"])
    teacher = make_teacher("random", space, seed=0)
    picks = [teacher.sample() for _ in range(400)]
    assert set(picks) == {0, 1, 2, 3}
    teacher.update("c", Feedback(1.0))
    with pytest.raises(TypeError, match="AlpGmmTeacher works on BoxTaskSpace task spaces, not DiscreteTaskSpace"):
        make_teacher("alp-gmm", space)


def test_return_normalisation_uses_the_environments_bounds():
    space = BoxTaskSpace(["a"], [0], [1])
    teacher = make_teacher("random", space, return_bounds=(-150, 350))
    assert teacher.normalize_return(100) == pytest.approx(0.5)
    assert teacher.normalize_return(-1000) == 0.0 and teacher.normalize_return(1000) == 1.0
    assert make_teacher("random", space).normalize_return(7.0) == 7.0
    with pytest.raises(ValueError, match="low < high"):
        make_teacher("random", space, return_bounds=(1, 1))


def test_registry_lists_parameters_and_rejects_unknown_names():
    params = {p.name: p for p in teacher_params(teacher_class("alp-gmm"))}
    assert params["fit_rate"].default == 250 and "fits" in params["fit_rate"].help
    assert params["random_task_ratio"].default == 0.2
    assert all(p.help for p in params.values())
    with pytest.raises(UnknownTeacherError, match="unknown teacher 'alp_gmm'; valid: random, alp-gmm, covar-gmm, riac"):
        teacher_class("alp_gmm")
    with pytest.raises(UnknownTeacherError, match="no parameter fitrate; valid: criterion, fit_rate"):
        make_teacher("alp-gmm", BoxTaskSpace(["a"], [0], [1]), fitrate=3)
    assert parse_teacher_params({"fit_rate": "150", "criterion": "bic"}, "alp-gmm") == {"fit_rate": 150, "criterion": "bic"}
    assert parse_teacher_params({"absolute_lp": "true"}, "covar-gmm") == {"absolute_lp": True}
    with pytest.raises(UnknownTeacherError, match="bad value for alp-gmm.fit_rate"):
        parse_teacher_params({"fit_rate": "many"}, "alp-gmm")
    with pytest.raises(ValueError, match="random_task_ratio must be a finite number in"):
        make_teacher("alp-gmm", BoxTaskSpace(["a"], [0], [1]), random_task_ratio=2.0)


class ConstantTeacher(Teacher):
    """Always the centre of the box (a user's own teacher, loaded by path).

    :param offset: added to the centre
    """

    def __init__(self, task_space, seed=0, return_bounds=None, offset: float = 0.0):
        super().__init__(task_space, seed, return_bounds)
        self.offset = offset

    def _sample(self):
        return (self.task_space.low + self.task_space.high) / 2 + self.offset

    def _update(self, task, feedback):
        pass


def test_user_teacher_by_module_path():
    space = BoxTaskSpace(["a"], [0], [2])
    teacher = make_teacher("tests.test_teachers:ConstantTeacher", space, offset=0.5)
    assert teacher.sample() == pytest.approx([1.5])
    assert [p.name for p in teacher_params(type(teacher))] == ["offset"]
    with pytest.raises(UnknownTeacherError, match="cannot load teacher 'tests.test_teachers:Nope'"):
        teacher_class("tests.test_teachers:Nope")
    with pytest.raises(UnknownTeacherError, match="not a subclass"):
        teacher_class("numpy:ndarray")


def test_riac_reference_mode_keeps_ancestors_windows_and_samples_every_region():
    from curriculum.riac import RiacTeacher

    space = BoxTaskSpace(["x", "y"], [0.0, 0.0], [10.0, 10.0])
    reference = RiacTeacher(space, seed=0, max_region_size=20, leaves_only=False)
    ours = RiacTeacher(space, seed=0, max_region_size=20)
    rng = np.random.default_rng(0)
    for _ in range(400):
        task = rng.uniform(0, 10, 2)
        for teacher in (reference, ours):
            teacher.update(task, Feedback(episode_return=float(task[0] > 5) * rng.random()))
    root_ref, root_ours = reference.regions[0], ours.regions[0]
    assert root_ref.split is not None and len(root_ref.returns) == 20  # the root keeps its last window
    assert root_ours.split is not None and root_ours.returns == []
    assert len(reference._alps) == len(reference.regions) > len(reference.leaves())
    # mode 3: the chosen region's lowest-return task, moved by noise of 0.1 task units, clipped to the region
    reference.p_alp = reference.p_random = 0.0
    region = reference.regions[reference.leaves()[0]]
    reference._choose_region = lambda: region
    worst = space.denormalize(region.tasks[int(np.argmin(region.returns))])
    tasks = np.array([reference.sample() for _ in range(300)])
    low, high = space.denormalize(region.low), space.denormalize(region.high)
    assert np.all(tasks >= low - 1e-9) and np.all(tasks <= high + 1e-9)
    inside = tasks[np.all((tasks > low + 0.3) & (tasks < high - 0.3), axis=1)] if np.all(high - low > 0.6) else tasks
    assert np.std(tasks - worst) < 0.2 and np.std(inside - worst) > 0.05  # 0.1 units, not 0.1 x range (1.0)
