import numpy as np
import pytest

from environments.simulated_student import SimulatedStudent


def centre(student: SimulatedStudent, *index: int) -> np.ndarray:
    return (np.array(index) + 0.5) / student.cells


def test_origin_always_learns_and_returns_competence():
    s = SimulatedStudent()
    returns = [s.episode(np.array([0.05, 0.05])) for _ in range(3)]
    assert returns == pytest.approx([0.01, 0.02, 0.03])


def test_cell_unlocks_only_after_a_previous_neighbour_reaches_mastery():
    s = SimulatedStudent()
    target = centre(s, 1, 1)
    assert s.episode(target) == 0.0  # locked: no previous neighbour at 75
    for _ in range(74):
        s.episode(centre(s, 0, 0))
    assert s.episode(target) == 0.0  # origin at 74: still locked
    s.episode(centre(s, 0, 0))  # origin reaches 75
    assert s.episode(target) == pytest.approx(0.01)  # the diagonal neighbour unlocks (1, 1)
    assert s.episode(centre(s, 2, 0)) == 0.0  # (1, 0) and (2, 0)'s neighbours are below 75
    assert s.episode(centre(s, 0, 1)) == pytest.approx(0.01)


def test_competence_caps_at_100_and_score_counts_cells_above_mastery():
    s = SimulatedStudent(cells=4)
    for _ in range(150):
        last = s.episode(centre(s, 0, 0))
    assert last == 1.0
    assert s.score() == pytest.approx(100 / 16)
    s.competence[:] = 75.0
    assert s.score() == 0.0  # mastered means strictly above 75
    s.competence[:3] = 76.0
    assert s.score() == pytest.approx(300 / 16)


def test_three_dimensions_and_distractors():
    s = SimulatedStudent(dims=3, cells=5, distractors=2)
    assert s.task_space.dim == 5 and len(s.competence) == 125
    a = s.episode(np.array([0.1, 0.1, 0.1, 0.9, 0.2]))
    b = s.episode(np.array([0.1, 0.1, 0.1, 0.0, 0.7]))  # same cell, other distractor values
    assert (a, b) == pytest.approx((0.01, 0.02))
    assert s.cell_of(np.array([1.0, 1.0, 1.0, 0, 0])) == 124  # upper bound falls in the last bin


def test_unlearnable_cells_never_learn():
    s = SimulatedStudent(unlearnable_share=0.5)
    s.competence[:] = 100.0
    s.competence[s.cell_of(centre(s, 7, 3))] = 0.0
    s.competence[s.cell_of(centre(s, 3, 3))] = 0.0
    assert s.episode(centre(s, 7, 3)) == 0.0
    assert s.episode(centre(s, 3, 3)) == pytest.approx(0.01)
    assert s.learnable.mean() == 0.5


def test_forgetting_and_seeded_noise():
    s = SimulatedStudent(forgetting=0.5)
    s.competence[5] = 10.0
    s.episode(centre(s, 0, 0))
    assert s.competence[5] == 9.5 and s.competence[0] == 1.0
    noisy = [SimulatedStudent(return_noise=0.1, seed=4).episode(centre(s, 0, 0)) for _ in range(2)]
    assert noisy[0] == noisy[1] != 0.01


def test_bad_options():
    with pytest.raises(ValueError, match="unlearnable_share"):
        SimulatedStudent(unlearnable_share=1.0)
    with pytest.raises(ValueError, match="dims >= 1"):
        SimulatedStudent(dims=0)
