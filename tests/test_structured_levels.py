"""Levels as structures through the curriculum: a teacher's Level carries the level itself, the env plays it and
reports it, the feedback carries its text, ACCEL's buffer keeps it and edits it as dcd's mutate_level does."""

import pickle

import numpy as np
import pytest

from curriculum.base import Feedback
from curriculum.plr import EDITORS, LevelBuffer
from curriculum.registry import teacher_for
from environments import maze_levels
from environments.maze_levels import MazeLevel
from environments.registry import make_env
from students.run.train import RunConfig, train

PARENT = MazeLevel.parse(">....../.#####./......./###.###/......./.#.#.#./.....#G")


def _scores(value: float) -> dict[str, float]:
    return {"positive_value_loss": value}


def test_the_teachers_editor_names_are_the_levels():
    assert EDITORS == tuple(maze_levels.EDITORS)


def test_a_structure_set_as_the_next_level_is_played_under_its_seed_and_reported():
    env = make_env("maze")
    crowded = MazeLevel.parse("######>/#######/#######/#######/###..../...####/G######")
    env.set_next_level(np.array([3.0, 1.0]), 1234, crowded)
    assert env.has_pending_task()  # the loop, resumed, must not take the pending level for an abandoned one
    _, info = env.reset()
    assert not env.has_pending_task()
    assert info["level"] == crowded.text and info["level_seed"] == 1234 and env.played_level() == crowded.text
    assert crowded.n_walls == 40 and list(info["task"]) == [20.0, 0.0]  # 40 walls counted, clipped to max_walls 20
    env.set_next_level(np.array([3.0, 1.0]), 99)  # no structure: the task and seed generate the level
    _, info = env.reset()
    assert info["level"] == env.level_of(np.array([3.0, 1.0]), 99).text and list(info["task"]) == [3.0, 1.0]


def test_accel_edits_the_replayed_maze_level_with_dcds_mutate_level():
    env = make_env("maze")
    teacher = teacher_for("accel", env, 7, cycle="episode", buffer_size=2, min_fill=0.5)
    assert teacher.level_type is MazeLevel and (teacher.level_edits, teacher.editor) == (5, "walls_none_goal")
    teacher.buffer.put(0, PARENT.task, 11, 0.5, 0.2, 0, -1, PARENT.text)
    replay = np.random.default_rng()
    replay.bit_generator.state = teacher.rng.bit_generator.state
    teacher.update(PARENT.task, Feedback(0.3, level_seed=11, level=PARENT.text, scores=_scores(0.9)))
    # the child: a fresh level seed from the teacher's generator, then dcd's edit of the parent from the same one
    (child,) = teacher.children
    seed = int(replay.integers(2**31 - 1))
    expected = PARENT.mutate(replay, 5, "walls_none_goal")
    assert child.seed == seed and child.structure == expected and child.train is False
    assert np.array_equal(child.task, env.task_space.clip(expected.task)) and teacher.pending_parents[seed] == 11
    changed = {(x, y) for x in range(1, 8) for y in range(1, 8) if expected.cell(x, y) != PARENT.cell(x, y)}
    assert 1 <= len(changed) + (expected.goal != PARENT.goal) <= 5 + 1
    # played and admitted: the buffer holds the child as its text, and replays it as a structure
    played = teacher.sample_level()
    assert played is child
    teacher.update(child.task, Feedback(0.1, level_seed=child.seed, level=expected.text, scores=_scores(2.0)))
    slot = teacher.buffer.slot_of[child.seed]
    assert teacher.buffer.texts[slot] == expected.text and teacher.buffer.parents[slot] == 11
    assert teacher._structure(slot) == expected


def test_box_tasks_keep_accels_parameter_edits():
    env = make_env("point-mass")
    teacher = teacher_for("accel", env, 0, cycle="episode", buffer_size=2, min_fill=0.5)
    assert teacher.level_type is None
    task = np.array([0.0, 4.0, 1.0])
    teacher.buffer.put(0, task, 5, 0.5, 0.2, 0, -1)
    teacher.update(task, Feedback(0.3, level_seed=5, scores=_scores(0.9)))
    (child,) = teacher.children
    assert child.structure is None and child.task.shape == (3,) and not np.array_equal(child.task, task)


def test_an_edit_that_no_draw_keeps_solvable_replays_the_parent_and_is_counted(monkeypatch):
    env = make_env("maze")
    teacher = teacher_for("accel", env, 0, cycle="episode", buffer_size=2, min_fill=0.5)
    monkeypatch.setattr(MazeLevel, "mutate", lambda self, rng, n, editor, solvable_only=True: None)
    teacher.buffer.put(0, PARENT.task, 11, 0.5, 0.2, 0, -1, PARENT.text)
    teacher.update(PARENT.task, Feedback(0.3, level_seed=11, level=PARENT.text, scores=_scores(0.9)))
    assert teacher.children[0].structure == PARENT and teacher.stats()["refused_edits"] == 1.0
    teacher.buffer.texts[0] = None
    with pytest.raises(RuntimeError, match="a replayed level came without one"):
        teacher.update(PARENT.task, Feedback(0.3, level_seed=11, scores=_scores(0.9)))


def test_a_buffer_and_teacher_saved_before_level_texts_still_load():
    buffer = LevelBuffer(3, 2)
    state = buffer.__dict__.copy()
    del state["texts"]
    old = LevelBuffer.__new__(LevelBuffer)
    old.__setstate__(state)
    assert old.texts == [None] * 3
    teacher = teacher_for("accel", make_env("maze"), 0)
    saved = teacher.state_dict()
    del saved["refused_edits"]
    teacher.load_state_dict(pickle.loads(pickle.dumps(saved)))
    assert teacher.refused_edits == 0


@pytest.mark.parametrize("cycle", ["rollout", "episode"])
def test_accel_on_the_maze_trains_on_edited_levels_end_to_end(tmp_path, cycle):
    config = RunConfig(
        env="maze",
        teacher="accel",
        student="ppo",
        steps=4096,
        n_envs=4,
        eval_every=4096,
        teacher_params={"buffer_size": 64, "min_fill": 0.1, "cycle": cycle},
        hp_overrides={"n_steps": "128", "batch_size": "128"},
        test_set="no-lava",
    )
    metrics = train(config, tmp_path / "run")
    assert metrics["teacher_stats"]["child_share"] > 0
    from students.run.checkpoints import load_pickle

    teacher_state = load_pickle(next((tmp_path / "run").rglob("teacher*.pkl")))
    buffer = teacher_state["buffer"]
    texts = buffer.texts[: buffer.size]
    assert all(text is not None for text in texts)
    children = [i for i in range(buffer.size) if buffer.parents[i] >= 0]
    assert children, f"no edited level was admitted: {metrics['teacher_stats']}"
    for i in children:  # a child is its parent's level edited: the same size, its task what it counts
        level = MazeLevel.parse(texts[i])
        assert level.size == 9 and np.array_equal(buffer.tasks[i], np.minimum(level.task, [20.0, 4.0]))


def test_dcds_maze_sizes_take_a_default_task_inside_their_bounds():
    from environments.maze import MazeEnv

    env = MazeEnv(size=15, max_walls=60, max_lava=1, max_steps=250)  # experiments/maze_gpu.yaml's maze
    assert list(env.default_task) == [10.0, 1.0] and list(MazeEnv().default_task) == [10.0, 2.0]
    env.reset(seed=0)
    assert list(env.task) == [10.0, 1.0]
