"""PLR / Robust PLR / ACCEL level samplers on synthetic scores (no student needed)."""

import numpy as np
import pytest

from curriculum.base import Feedback, FeedbackError
from curriculum.plr import AccelTeacher, PlrTeacher, RobustPlrTeacher
from curriculum.registry import make_teacher, teacher_params
from curriculum.spaces import BoxTaskSpace

SPACE = BoxTaskSpace(["x", "y"], [0.0, -1.0], [1.0, 1.0])


def inside(space, task):
    return bool(np.all((task >= space.low) & (task <= space.high)))


def feedback(score, level_seed, ret=0.0, **extra):
    return Feedback(ret, scores={"positive_value_loss": score, **extra}, level_seed=level_seed)


def play(teacher, episodes, score_of=lambda task: float(task[0])):
    """Sample and report ``episodes`` levels one by one; return the levels played."""
    played = []
    for _ in range(episodes):
        level = teacher.sample_level()
        teacher.update(level.task, feedback(score_of(level.task), level.seed))
        played.append(level)
    return played


def test_replay_distribution_is_rank_prioritised_and_mixed_with_staleness():
    teacher = PlrTeacher(SPACE, seed=0, buffer_size=3, temperature=0.5, staleness_coef=0.3)
    levels = play(teacher, 3, score_of=lambda task: 0.0)  # fills the buffer
    buffer = teacher.buffer
    buffer.scores[:3] = [0.5, 2.0, 1.0]
    buffer.last_sampled[:3] = [2, 9, 5]
    teacher.clock = 10
    ranks = np.array([3.0, 1.0, 2.0])
    h = ranks**-2.0  # 1 / temperature = 2
    expected = 0.7 * h / h.sum() + 0.3 * np.array([8.0, 1.0, 5.0]) / 14.0
    np.testing.assert_allclose(teacher.replay_probabilities(), expected)
    assert [int(s) for s in buffer.seeds[:3]] == [level.seed for level in levels]


def test_replays_follow_the_rank_distribution_empirically():
    teacher = PlrTeacher(
        SPACE,
        seed=1,
        buffer_size=4,
        temperature=1.0,
        staleness_coef=0.0,
        replay_prob=1.0,
        min_fill=1.0,
        replay_schedule="fixed",
    )
    play(teacher, 4, score_of=lambda task: 0.0)
    teacher.buffer.scores[:4] = [4.0, 3.0, 2.0, 1.0]
    counts = np.zeros(4)
    for _ in range(20000):
        level = teacher.sample_level()
        counts[teacher.buffer.slot_of[level.seed]] += 1
    expected = np.array([1, 1 / 2, 1 / 3, 1 / 4]) / sum([1, 1 / 2, 1 / 3, 1 / 4])
    np.testing.assert_allclose(counts / counts.sum(), expected, atol=0.01)


def test_admission_only_when_beating_the_lowest_priority_level():
    teacher = PlrTeacher(SPACE, seed=2, buffer_size=2, staleness_coef=0.0, replay_prob=0.0)
    first, second, third, fourth = (teacher.sample_level() for _ in range(4))
    teacher.update(first.task, feedback(1.0, first.seed))
    teacher.update(second.task, feedback(3.0, second.seed))
    assert teacher.buffer.size == 2  # room: both admitted
    teacher.update(third.task, feedback(0.5, third.seed))
    assert third.seed not in teacher.buffer.slot_of and teacher.buffer.size == 2  # below the lowest: refused
    teacher.update(fourth.task, feedback(2.0, fourth.seed))
    assert set(teacher.buffer.slot_of) == {second.seed, fourth.seed}  # replaced the level scoring 1.0
    np.testing.assert_array_equal(teacher.buffer.tasks[teacher.buffer.slot_of[fourth.seed]], fourth.task)


def test_replayed_level_score_is_replaced_and_max_mc_uses_the_best_return():
    teacher = PlrTeacher(SPACE, seed=3, score="max_mc", buffer_size=4, replay_prob=1.0, min_fill=0.25, replay_schedule="fixed")
    assert teacher.required_scores == ("mean_value",)
    new = teacher.sample_level()
    teacher.update(new.task, Feedback(5.0, scores={"mean_value": 1.0}, level_seed=new.seed))
    slot = teacher.buffer.slot_of[new.seed]
    assert teacher.buffer.scores[slot] == pytest.approx(4.0)  # 5 - 1
    replay = teacher.sample_level()
    assert replay.seed == new.seed and replay.train
    teacher.update(replay.task, Feedback(3.0, scores={"mean_value": 2.5}, level_seed=replay.seed))
    assert teacher.buffer.scores[slot] == pytest.approx(2.5)  # best return so far (5) - 2.5
    assert teacher.buffer.replays[slot] == 1


def test_replay_decision_rate_is_close_to_p_once_the_buffer_is_filled_enough():
    teacher = PlrTeacher(SPACE, seed=4, buffer_size=10, replay_prob=0.3, min_fill=0.5, replay_schedule="fixed")
    before = play(teacher, 5)
    assert teacher.buffer.size == 5 and all(teacher.buffer.replays[:5] == 0)  # no replay until 5 levels
    kinds = []
    for _ in range(10000):
        level = teacher.sample_level()
        kinds.append(level.seed in teacher.buffer.slot_of)
    assert np.mean(kinds) == pytest.approx(0.3, abs=0.015)
    assert len(before) == 5


def test_robust_plr_scores_new_levels_without_training_on_them():
    robust = RobustPlrTeacher(SPACE, seed=5, buffer_size=4, min_fill=1.0, replay_prob=0.5, replay_schedule="fixed")
    levels = play(robust, 200)
    kinds = list(robust.recent_kinds)
    assert kinds[:4] == ["new"] * 4 and set(kinds[4:]) == {"new", "replay"}
    assert [lvl.train for lvl in levels] == [kind == "replay" for kind in kinds]
    plain = PlrTeacher(SPACE, seed=5, buffer_size=4, min_fill=1.0)
    assert all(lvl.train for lvl in play(plain, 50)) and "replay" in plain.recent_kinds
    assert RobustPlrTeacher.masks_updates and not PlrTeacher.masks_updates


@pytest.mark.parametrize("cls", [PlrTeacher, RobustPlrTeacher, AccelTeacher])
def test_state_round_trip_continues_the_same_sequence(cls):
    teacher = cls(SPACE, seed=6, buffer_size=20, min_fill=0.5)
    play(teacher, 150)
    state = teacher.state_dict()
    expected = play(teacher, 150)
    restored = cls(SPACE, seed=99, buffer_size=20, min_fill=0.5)
    restored.load_state_dict(state)
    again = play(restored, 150)
    assert [(lvl.task.tolist(), lvl.seed, lvl.train) for lvl in again] == [
        (lvl.task.tolist(), lvl.seed, lvl.train) for lvl in expected
    ]
    np.testing.assert_array_equal(restored.buffer.scores, teacher.buffer.scores)


def test_accel_mutates_high_regret_replays_into_children_with_parents():
    teacher = AccelTeacher(
        SPACE, seed=7, buffer_size=50, min_fill=0.2, num_edits=2, edit_step=0.1, mutate_quantile=0.5, cycle="episode"
    )
    played = play(teacher, 600)
    buffer = teacher.buffer
    children = [i for i in range(buffer.size) if buffer.parents[i] >= 0]
    assert children, "no child was admitted"
    kinds = list(teacher.recent_kinds)
    assert 0.2 < kinds.count("child") / len(kinds) < 0.6
    assert [lvl.train for lvl in played] == [kind == "replay" for kind in kinds]  # children: no gradient
    for i in children:  # a child differs from its parent (which may have left the buffer since) by small edits
        parent = buffer.slot_of.get(int(buffer.parents[i]))
        if parent is not None:
            assert np.all(np.abs(buffer.tasks[i] - buffer.tasks[parent]) <= 2 * 0.1 * (SPACE.high - SPACE.low) + 1e-12)
    # a child is at most num_edits moves of at most edit_step * range each from its parent
    parent = buffer.tasks[0].copy()
    for _ in range(200):
        child = teacher.mutate(parent)
        moved = np.abs(child - parent) / (SPACE.high - SPACE.low)
        assert np.all(moved <= 2 * 0.1 + 1e-12) and inside(SPACE, child)


def test_accel_starts_new_levels_in_the_easy_region():
    easy = BoxTaskSpace(["x", "y"], [0.0, -1.0], [0.1, -0.9])
    teacher = AccelTeacher(SPACE, seed=8, buffer_size=100)
    teacher.set_start_space(easy)
    new = [lvl for lvl in (teacher.sample_level() for _ in range(40))]
    assert all(inside(easy, lvl.task) for lvl in new)
    off = AccelTeacher(SPACE, seed=8, buffer_size=100, easy_start=False)
    off.set_start_space(easy)
    assert not all(inside(easy, off.sample_level().task) for _ in range(40))
    with pytest.raises(ValueError, match="inside the task space"):
        teacher.set_start_space(BoxTaskSpace(["x", "y"], [0.0, -2.0], [1.0, 1.0]))


def test_bad_feedback_and_parameters_are_refused():
    teacher = PlrTeacher(SPACE, seed=9)
    level = teacher.sample_level()
    with pytest.raises(FeedbackError, match="level seed"):
        teacher.update(level.task, Feedback(1.0, scores={"positive_value_loss": 1.0}))
    with pytest.raises(FeedbackError, match="positive_value_loss"):
        teacher.update(level.task, Feedback(1.0, level_seed=level.seed))
    with pytest.raises(ValueError, match="unknown score 'regret'; valid: positive_value_loss, value_l1, max_mc"):
        make_teacher("plr", SPACE, score="regret")
    with pytest.raises(ValueError, match="replay_prob"):
        make_teacher("robust-plr", SPACE, replay_prob=1.5)
    names = {p.name: p for p in teacher_params(AccelTeacher)}
    assert names["replay_prob"].default == 0.9 and "replaying" in names["replay_prob"].help  # inherited docs
    assert "edits per child" in names["num_edits"].help


def test_accel_discrete_edits_move_by_whole_steps():
    space = BoxTaskSpace(["a", "b"], [0.0, 0.0], [10.0, 20.0])
    teacher = AccelTeacher(space, seed=0, num_edits=1, edit_step=0.05, edit_moves="discrete")
    parent = np.array([5.0, 10.0])
    moves = np.array([teacher.mutate(parent) - parent for _ in range(300)])
    assert set(np.round(moves[:, 0], 9)) <= {-0.5, 0.0, 0.5} and set(np.round(moves[:, 1], 9)) <= {-1.0, 0.0, 1.0}
    assert {-0.5, 0.5} <= set(np.round(moves[:, 0], 9)) and (moves == 0).all(axis=1).any()  # all three factors occur
    with pytest.raises(ValueError, match="unknown edit_moves 'gaussian'; valid: discrete, uniform"):
        AccelTeacher(space, edit_moves="gaussian")
