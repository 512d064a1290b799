import numpy as np
import pytest

from curriculum.spaces import BoxTaskSpace, DiscreteTaskSpace, TaskSpaceError


def space() -> BoxTaskSpace:
    return BoxTaskSpace(["height", "spacing"], [0.0, -2.0], [3.0, 6.0])


@pytest.mark.parametrize(
    ("names", "low", "high", "message"),
    [
        (["a", "b"], [0, 1], [1, 1], "lower bound of 'b' must be below"),
        (["a"], [2], [1], "lower bound of 'a' must be below"),
        (["a"], [0], [np.inf], "must be finite"),
        (["a"], [np.nan], [1], "must be finite"),
        (["a", "a"], [0, 0], [1, 1], "unique; repeated: a"),
        (["a", "b"], [0], [1, 1], "2 dimension names but 1 lower"),
        ([], [], [], "at least one dimension"),
    ],
)
def test_box_rejects_bad_definitions(names, low, high, message):
    with pytest.raises(TaskSpaceError, match=message):
        BoxTaskSpace(names, low, high)


def test_box_dict_round_trip_and_normalisation():
    s = space()
    task = np.array([1.5, 2.0])
    assert s.to_dict(task) == {"height": 1.5, "spacing": 2.0}
    np.testing.assert_array_equal(s.from_mapping({"spacing": 2.0, "height": 1.5}), task)
    np.testing.assert_allclose(s.normalize(task), [0.5, 0.5])
    np.testing.assert_allclose(s.denormalize(s.normalize(task)), task)
    np.testing.assert_allclose(s.normalize(np.stack([s.low, s.high])), [[0, 0], [1, 1]])


@pytest.mark.parametrize(
    ("task", "message"),
    [
        ([1.0], "has 2 values .height, spacing., got 1"),
        ([1.0, 2.0, 3.0], "got 3"),
        ([np.nan, 1.0], "must be finite"),
        ([4.0, 1.0], r"'height' = 4 is outside its bounds \[0, 3\]"),
        ([1.0, -3.0], "'spacing' = -3 is outside"),
        ({"height": 1.0}, "missing dimension.*spacing"),
        ({"height": 1.0, "spacing": 1.0, "width": 2.0}, "unknown dimension.*width.*valid: height, spacing"),
        ("abc", "vector of 2 numbers"),
    ],
)
def test_box_rejects_bad_tasks(task, message):
    with pytest.raises(TaskSpaceError, match=message):
        space().validate(task)


def test_box_sampling_is_seeded_and_in_bounds():
    s = space()
    a = np.array([s.sample(np.random.default_rng(3)) for _ in range(5)])
    b = np.array([s.sample(np.random.default_rng(3)) for _ in range(5)])
    np.testing.assert_array_equal(a, b)
    draws = np.array([s.sample(np.random.default_rng(i)) for i in range(500)])
    assert (draws >= s.low).all() and (draws <= s.high).all()
    assert draws[:, 1].min() < -1.5 and draws[:, 1].max() > 5.5  # covers the range


def test_discrete_space():
    s = DiscreteTaskSpace(["easy", "medium", "hard"])
    assert s.validate("hard") == 2
    assert s.validate(1) == 1
    assert s.validate(np.array([0])) == 0
    for bad, message in [
        ("impossible", "unknown task 'impossible'; valid: easy, medium, hard"),
        (3, r"\[0, 2\]"),
        (1.5, "integer"),
    ]:
        with pytest.raises(TaskSpaceError, match=message):
            s.validate(bad)
    with pytest.raises(TaskSpaceError, match="unique"):
        DiscreteTaskSpace(["a", "a"])
    counts = np.bincount([s.sample(np.random.default_rng(i)) for i in range(300)], minlength=3)
    assert counts.min() > 70
