"""Maze levels as structures: the text encoding round-trips, bad levels are one clear line, and the named test
mazes are dcd's (wall counts, starts, goals and rows as its envs/multigrid/maze.py gives them)."""

import re

import numpy as np
import pytest

from environments.maze_levels import LevelError, MazeLevel, named_mazes

#: from dcd's envs/multigrid/maze.py (commit 72991be): size, the number of 1s in bit_map, start_pos, goal_pos
DCD = {
    "Maze": (15, 73, (7, 1), [(7, 13)]),
    "Maze2": (15, 72, (1, 7), [(13, 5)]),
    "Maze3": (15, 71, (4, 1), [(13, 7)]),
    "SmallCorridor": (15, 71, (1, 7), [(c, r) for r in (6, 8) for c in (3, 5, 7, 9, 11)]),
    "LargeCorridor": (21, 161, (1, 10), [(c, r) for r in (9, 11) for c in (3, 5, 7, 9, 11, 13, 15, 17)]),
    "Labyrinth": (15, 72, (1, 13), [(7, 7)]),
    "Labyrinth2": (15, 72, (1, 1), [(7, 7)]),
    "NineRooms": (15, 36, (2, 2), [(12, 12)]),
    "NineRoomsFewerDoors": (15, 39, (2, 2), [(12, 12)]),
    "SixteenRooms": (15, 46, (2, 2), [(12, 12)]),
    "SixteenRoomsFewerDoors": (15, 53, (2, 2), [(12, 12)]),
    "MiniMaze": (6, 5, (1, 1), [(1, 3)]),
    "MediumMaze": (10, 25, (5, 1), [(3, 8)]),
}


def test_a_level_round_trips_through_its_text():
    level = MazeLevel.parse(">.#/.~./..G")
    assert level.start == (1, 1) and level.heading == 0 and level.goal == (3, 3) and level.size == 5
    assert level.rows == ("..#", ".~.", "...") and level.n_walls == 1 and level.lava.sum() == 1
    assert level.text == ">.#/.~./..G" and MazeLevel.parse(level.text) == level
    assert MazeLevel.parse("G.^").heading == 3 and MazeLevel.parse("v/G").start == (1, 1)
    for maze in named_mazes().values():
        for level in maze.levels:
            assert MazeLevel.parse(level.text) == level


def test_dcd_bit_maps_read_as_dcd_places_them():
    """bit_map[y - 1][x - 1] is the inner cell (x, y): dcd puts a wall at (x + 1, y + 1) for bit_map[y, x]."""
    bit_map = [[0, 1, 0], [0, 0, 0], [1, 0, 0]]
    level = MazeLevel.from_bit_map(bit_map, start=(1, 1), goal=(3, 3))
    assert level.cell(2, 1) == "#" and level.cell(1, 3) == "#" and level.cell(2, 2) == "."
    assert level.cell(0, 2) == "#" and level.cell(4, 2) == "#"  # the border
    np.testing.assert_array_equal(level.walls, np.array(bit_map, dtype=bool))
    assert level.shortest_path() == 4


def test_the_shortest_path_goes_around_walls_and_lava_or_is_none():
    assert MazeLevel.parse(">.~/.#./..G").shortest_path() == 4
    assert MazeLevel.parse(">#G").shortest_path() is None and not MazeLevel.parse(">#G").solvable
    assert MazeLevel.parse(">~G").shortest_path() is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (">../..G/.G.", "one agent (> v < ^) and one goal (G); '>../..G/.G.' has 1 and 2"),
        ("..G/...", "has 0 and 1"),
        (">.G/..", "rows must be non-empty and of one length"),
        (">xG", "unknown cells 'x'"),
    ],
)
def test_a_bad_level_text_is_one_line_naming_the_problem(text, message):
    with pytest.raises(LevelError, match=re.escape(message)):
        MazeLevel.parse(text)


def test_a_bad_structure_is_refused():
    with pytest.raises(LevelError, match=r"the start \(2, 1\) is on a wall"):
        MazeLevel((".#.",), (2, 1), 0, (3, 1))
    with pytest.raises(LevelError, match=r"the goal \(4, 1\) is outside the inner grid \(x 1-3, y 1-1\)"):
        MazeLevel(("...",), (1, 1), 0, (4, 1))
    with pytest.raises(LevelError, match="heading must be 0-3"):
        MazeLevel(("...",), (1, 1), 4, (3, 1))


def test_the_named_mazes_are_dcds():
    mazes = named_mazes()
    assert set(mazes) == set(DCD)
    for name, (size, walls, start, goals) in DCD.items():
        maze = mazes[name]
        assert [level.goal for level in maze.levels] == goals, name
        for level in maze.levels:
            assert (level.size, level.n_walls, level.start, level.heading) == (size, walls, start, 0), name
            assert level.solvable, name
        assert maze.max_steps == 2 * size * size  # dcd's MazeEnv default
    # two rows copied by hand from dcd's source
    assert mazes["Labyrinth2"].levels[0].rows[0] == ".#..........."
    assert mazes["SixteenRooms"].levels[0].rows[6] == "##.#.##.###.#"


def dcd_mutate(level: MazeLevel, rng: np.random.Generator, num_edits: int, actions: str) -> MazeLevel:
    """dcd's mutate_level, transcribed with its free mask (the same draws from ``rng``), as the reference."""
    height, width = level.height, level.width
    walls = level.walls.copy()
    start, goal = np.array(level.start), np.array(level.goal)
    edit_locs = list(set(rng.integers(0, width * height, num_edits)))
    chosen = [actions[i] for i in rng.integers(0, len(actions), len(edit_locs))]
    free_mask = ~walls
    free_mask[start[1] - 1, start[0] - 1] = free_mask[goal[1] - 1, goal[0] - 1] = False
    for loc, a in zip(edit_locs, chosen, strict=True):
        x, y = loc % width + 1, loc // width + 1
        walls[y - 1, x - 1] = False  # _clean_loc
        if goal is not None and tuple(goal) == (x, y):
            goal = None
        if start is not None and tuple(start) == (x, y):
            start = None
        if a == "-":
            walls[y - 1, x - 1], free_mask[y - 1, x - 1] = True, False
        elif a == ".":
            free_mask[y - 1, x - 1] = True
        elif a == "a":
            if start is not None:
                free_mask[start[1] - 1, start[0] - 1] = True
            start, free_mask[y - 1, x - 1] = np.array((x, y)), False
        elif a == "g":
            if goal is not None:
                free_mask[goal[1] - 1, goal[0] - 1] = True
            goal, free_mask[y - 1, x - 1] = np.array((x, y)), False
    for lost in ("goal", "start"):
        if (goal if lost == "goal" else start) is None:
            free_idx = free_mask.flatten().nonzero()[0]
            loc = free_idx[rng.integers(len(free_idx))]
            x, y = loc % free_mask.shape[0], loc // free_mask.shape[0]
            free_mask[y, x] = False
            if lost == "goal":
                goal = np.array((x + 1, y + 1))
            else:
                start = np.array((x + 1, y + 1))
    return MazeLevel.from_bit_map(walls.astype(int), tuple(start), tuple(goal), level.heading)


@pytest.mark.parametrize("editor", ["walls_none", "walls_none_goal", "walls_none_agent_goal"])
def test_an_edit_is_dcds_mutate_level(editor):
    from environments.maze_levels import EDITORS

    base = named_mazes()["SixteenRooms"].levels[0]
    for seed in range(40):
        child = base.mutate(np.random.default_rng(seed), num_edits=5, editor=editor, solvable_only=False)
        expected = dcd_mutate(base, np.random.default_rng(seed), 5, EDITORS[editor])
        assert child == expected, seed
        changed = {(x, y) for x in range(1, 14) for y in range(1, 14) if child.cell(x, y) != base.cell(x, y)}
        assert len(changed) <= 5 and child.heading == base.heading
        if editor == "walls_none":
            assert (child.start, child.goal) == (base.start, base.goal) or changed & {base.start, base.goal}


def test_an_edit_keeps_the_level_solvable_or_is_refused(monkeypatch):
    base = MazeLevel.parse(">...#/.#..#/.#.../...#G")
    for seed in range(30):
        child = base.mutate(np.random.default_rng(seed), num_edits=8)
        assert child is not None and child.solvable
    blocked = MazeLevel.parse(">#G")
    monkeypatch.setattr(MazeLevel, "_edit", lambda self, rng, n, actions: blocked)
    assert base.mutate(np.random.default_rng(0)) is None
    with pytest.raises(LevelError, match="unknown editor 'walls'; valid: walls_none, walls_none_goal"):
        base.mutate(np.random.default_rng(0), editor="walls")
