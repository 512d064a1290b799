"""Maze levels as structures, as the regret-based literature handles them (dcd's ``envs/multigrid``): the wall bit
map of the inner grid, the agent's start cell and heading, the goal cell, and lava cells where a level has them.

A level round-trips through a compact text (:attr:`MazeLevel.text`, :meth:`MazeLevel.parse`): the inner grid's rows,
top to bottom, joined by ``/``; each cell one character: ``.`` empty, ``#`` wall, ``~`` lava, ``G`` the goal, and the
agent as the arrow of its heading, ``>`` east, ``v`` south, ``<`` west, ``^`` north (MiniGrid's directions 0-3).
For example ``">.#/.#./..G"`` is a 3 x 3 inner grid (a 5 x 5 room) with the agent facing east in its top-left cell.

Coordinates are dcd's and MiniGrid's: ``(x, y)`` = (column, row) in the full grid, border included, so the inner
cell ``(x, y)`` is ``rows[y - 1][x - 1]``.

:func:`named_mazes` gives the field's hand-designed test mazes (``data/named_mazes.yaml``, copied from dcd with its
source and licence named there).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import yaml

EMPTY, WALL, LAVA, GOAL = ".", "#", "~", "G"
#: the agent's glyph per MiniGrid direction (0 east, 1 south, 2 west, 3 north)
HEADINGS = (">", "v", "<", "^")
NAMED_MAZES_FILE = Path(__file__).with_name("data") / "named_mazes.yaml"
#: MiniGrid's moves per direction, as (dx, dy)
_MOVES = ((1, 0), (0, 1), (-1, 0), (0, -1))


class LevelError(ValueError):
    """A level text or structure that is not a maze level (one line naming the problem)."""


@dataclass(frozen=True)
class MazeLevel:
    """One maze level: the inner grid's rows (walls and lava; the agent and goal cells are empty), the agent's start
    ``(x, y)`` and heading, and the goal ``(x, y)``, in full-grid coordinates (see the module docstring).

    :raises LevelError: rows of unequal length or unknown cells; a start or goal outside the inner grid, on a wall or
        on lava, or both in one cell; a heading outside 0-3
    """

    rows: tuple[str, ...]
    start: tuple[int, int]
    heading: int
    goal: tuple[int, int]

    def __post_init__(self) -> None:
        if not self.rows or len({len(row) for row in self.rows}) != 1 or not self.rows[0]:
            raise LevelError(f"a level's rows must be non-empty and of one length, got {list(self.rows)}")
        unknown = set("".join(self.rows)) - {EMPTY, WALL, LAVA}
        if unknown:
            raise LevelError(f"unknown cells {''.join(sorted(unknown))!r} in a level's rows; valid: . # ~")
        if self.heading not in range(4):
            raise LevelError(f"heading must be 0-3 (east, south, west, north), got {self.heading}")
        for what, (x, y) in (("start", self.start), ("goal", self.goal)):
            if not (1 <= x <= self.width and 1 <= y <= self.height):
                raise LevelError(f"the {what} {(x, y)} is outside the inner grid (x 1-{self.width}, y 1-{self.height})")
            if self.rows[y - 1][x - 1] != EMPTY:
                raise LevelError(f"the {what} {(x, y)} is on a {'wall' if self.cell(x, y) == WALL else 'lava cell'}")
        if self.start == self.goal:
            raise LevelError(f"the start and the goal are one cell {self.start}")

    # -- shape and cells ---------------------------------------------------------------------------------------
    @property
    def width(self) -> int:
        """Columns of the inner grid."""
        return len(self.rows[0])

    @property
    def height(self) -> int:
        """Rows of the inner grid."""
        return len(self.rows)

    @property
    def size(self) -> int:
        """The room's side, border included (dcd's and MiniGrid's ``size``; levels are square)."""
        return max(self.width, self.height) + 2

    def cell(self, x: int, y: int) -> str:
        """The structure at full-grid cell ``(x, y)``: ``.``, ``#`` or ``~`` (the border is wall)."""
        if not (1 <= x <= self.width and 1 <= y <= self.height):
            return WALL
        return self.rows[y - 1][x - 1]

    @property
    def walls(self) -> np.ndarray:
        """The wall bit map of the inner grid, ``(height, width)`` booleans (dcd's ``bit_map``)."""
        return np.array([[c == WALL for c in row] for row in self.rows], dtype=bool)

    @property
    def lava(self) -> np.ndarray:
        """The lava cells of the inner grid, ``(height, width)`` booleans."""
        return np.array([[c == LAVA for c in row] for row in self.rows], dtype=bool)

    @property
    def n_walls(self) -> int:
        return int(self.walls.sum())

    @property
    def task(self) -> np.ndarray:
        """The maze task this level counts: ``(walls, lava cells)``."""
        return np.array([self.n_walls, int(self.lava.sum())], dtype=np.float64)

    # -- text ---------------------------------------------------------------------------------------------------
    @property
    def text(self) -> str:
        """The compact encoding (see the module docstring); :meth:`parse` reads it back."""
        grid = [list(row) for row in self.rows]
        grid[self.start[1] - 1][self.start[0] - 1] = HEADINGS[self.heading]
        grid[self.goal[1] - 1][self.goal[0] - 1] = GOAL
        return "/".join("".join(row) for row in grid)

    @classmethod
    def parse(cls, text: str) -> MazeLevel:
        """The level a :attr:`text` encodes.

        :raises LevelError: not one agent and one goal, or any problem the structure has
        """
        rows = [list(row) for row in str(text).strip().split("/")]
        agents = [(x + 1, y + 1) for y, row in enumerate(rows) for x, c in enumerate(row) if c in HEADINGS]
        goals = [(x + 1, y + 1) for y, row in enumerate(rows) for x, c in enumerate(row) if c == GOAL]
        if len(agents) != 1 or len(goals) != 1:
            raise LevelError(
                f"a level needs one agent ({' '.join(HEADINGS)}) and one goal (G); {text!r} has {len(agents)} and {len(goals)}"
            )
        (sx, sy), (gx, gy) = agents[0], goals[0]
        heading = HEADINGS.index(rows[sy - 1][sx - 1])
        rows[sy - 1][sx - 1] = rows[gy - 1][gx - 1] = EMPTY
        return cls(tuple("".join(row) for row in rows), (sx, sy), heading, (gx, gy))

    @classmethod
    def from_bit_map(
        cls, bit_map: np.ndarray | list[list[int]], start: tuple[int, int], goal: tuple[int, int], heading: int = 0
    ) -> MazeLevel:
        """A level from dcd's representation: the inner grid's wall bit map (``bit_map[y - 1][x - 1]``), the start
        and goal in full-grid ``(x, y)``."""
        walls = np.asarray(bit_map, dtype=bool)
        rows = tuple("".join(WALL if wall else EMPTY for wall in row) for row in walls)
        return cls(rows, (int(start[0]), int(start[1])), int(heading), (int(goal[0]), int(goal[1])))

    # -- reachability -------------------------------------------------------------------------------------------
    def shortest_path(self) -> int | None:
        """Moves between cells on the shortest route from the start to the goal around walls and lava (turns not
        counted); ``None`` when the goal cannot be reached."""
        seen, queue = {self.start: 0}, deque([self.start])
        while queue:
            x, y = queue.popleft()
            if (x, y) == self.goal:
                return seen[(x, y)]
            for dx, dy in _MOVES:
                nxt = (x + dx, y + dy)
                if nxt not in seen and self.cell(*nxt) == EMPTY:
                    seen[nxt] = seen[(x, y)] + 1
                    queue.append(nxt)
        return None

    @property
    def solvable(self) -> bool:
        return self.shortest_path() is not None


    # -- ACCEL's edits -------------------------------------------------------------------------------------------
    def mutate(
        self, rng: np.random.Generator, num_edits: int = 5, editor: str = "walls_none_goal", solvable_only: bool = True
    ) -> MazeLevel | None:
        """A child of this level by dcd's ``mutate_level`` (``envs/multigrid/adversarial.py``): ``num_edits`` inner
        cells drawn with replacement, their unique set edited in dcd's order (``list(set(...))``), each with an
        action drawn uniformly from ``editor`` (:data:`EDITORS`): ``-`` a wall, ``.`` empty, ``a`` the start, ``g``
        the goal; a cell is cleared first (a start or goal there is lost), and a lost start or goal is then placed on
        a free cell drawn uniformly (the goal first, as dcd). The heading is kept (dcd keeps its start direction).
        The defaults are dcd's ACCEL maze settings (``mg_60b_uni_accel_empty.json``: 5 edits, walls, empty and goal).

        dcd admits unsolvable children (``reject_unsolvable_seeds`` false); ``solvable_only`` (the default, as the
        generated levels here) draws the edits again, up to 100 times, until the goal can be reached, and returns
        ``None`` (the edit refused) when no draw gives a solvable child.

        :raises LevelError: an unknown editor or a number of edits below 1
        """
        if editor not in EDITORS:
            raise LevelError(f"unknown editor '{editor}'; valid: {', '.join(EDITORS)}")
        if num_edits < 1:
            raise LevelError(f"num_edits must be >= 1, got {num_edits}")
        for _ in range(100 if solvable_only else 1):
            child = self._edit(rng, num_edits, EDITORS[editor])
            if not solvable_only or child.solvable:
                return child
        return None

    def _edit(self, rng: np.random.Generator, num_edits: int, actions: str) -> MazeLevel:
        grid = [list(row) for row in self.rows]
        start: tuple[int, int] | None = self.start
        goal: tuple[int, int] | None = self.goal
        locations = list({int(v) for v in rng.integers(0, self.width * self.height, num_edits)})
        chosen = [actions[int(i)] for i in rng.integers(0, len(actions), len(locations))]
        for location, action in zip(locations, chosen, strict=True):
            x, y = location % self.width + 1, location // self.width + 1
            grid[y - 1][x - 1] = EMPTY  # dcd's _clean_loc: the wall goes, and a start or goal there is lost
            start, goal = (None if start == (x, y) else start), (None if goal == (x, y) else goal)
            if action == "-":
                grid[y - 1][x - 1] = WALL
            elif action == "a":
                start = (x, y)
            elif action == "g":
                goal = (x, y)
        for lost in ("goal", "start"):  # dcd places the goal first
            if (goal if lost == "goal" else start) is None:
                free = [
                    (x, y)
                    for y in range(1, self.height + 1)
                    for x in range(1, self.width + 1)
                    if grid[y - 1][x - 1] == EMPTY and (x, y) not in (start, goal)
                ]
                cell = free[int(rng.integers(len(free)))]
                start, goal = (start, cell) if lost == "goal" else (cell, goal)
        assert start is not None and goal is not None
        return MazeLevel(tuple("".join(row) for row in grid), start, self.heading, goal)


class MazeBuilder:
    """A maze level built one placement at a time, by dcd's adversary rules (``envs/multigrid/adversarial.py``,
    ``step_adversary``): PAIRED's adversary takes :attr:`n_steps` actions, each an inner cell numbered left to
    right, top to bottom (``cell = (y - 1) * width + (x - 1)``): the goal, the agent, then ``n_blocks`` walls
    (``goal_last``: the walls first, then the goal and the agent, dcd's ``choose_goal_last``).

    - The goal takes its cell (a wall there is removed). The agent takes its cell (a wall there is removed); on the
      goal's cell it is placed on a free cell drawn uniformly instead, as dcd's ``place_one_agent``.
    - A wall on a cell already taken (wall, goal or agent) does nothing, as dcd's.
    - The agent's heading is drawn at :meth:`start` (dcd's ``agent_start_dir``, drawn at the adversary's reset).

    The adversary's view of the level so far (:meth:`image`) has three planes over the full grid, border included:
    walls, the goal, the agent. dcd's is MiniGrid's encoding (object type, colour, state per cell) of the same
    cells; the planes hold the same facts, one per object.

    :param size: the room's side, border included
    :param n_blocks: the walls the adversary places (dcd's ``n_clutter``, 50 in its maze)
    :param goal_last: place the walls first, the goal and the agent last
    """

    def __init__(self, size: int, n_blocks: int = 50, goal_last: bool = False) -> None:
        if not (isinstance(size, int) and size >= 5):
            raise LevelError(f"a maze to build needs a size >= 5, got {size!r}")
        if not (isinstance(n_blocks, int) and 0 <= n_blocks <= (size - 2) ** 2):
            raise LevelError(f"n_blocks must be a whole number in [0, {(size - 2) ** 2}], got {n_blocks!r}")
        self.size, self.n_blocks, self.goal_last = size, n_blocks, goal_last
        self.width = size - 2
        self.n_actions = self.width * self.width
        self.n_steps = n_blocks + 2
        self.start()

    def start(self, heading: int = 0) -> None:
        """An empty room, the agent's heading set (dcd draws it at random: give ``rng.integers(4)``)."""
        self.walls = np.zeros((self.width, self.width), dtype=bool)
        self.goal: tuple[int, int] | None = None
        self.agent: tuple[int, int] | None = None
        self.heading, self.t = int(heading), 0

    @property
    def done(self) -> bool:
        return self.t >= self.n_steps

    def _role(self) -> str:
        t, last = self.t, self.n_steps
        if self.goal_last:
            return "goal" if t == last - 2 else "agent" if t == last - 1 else "wall"
        return "goal" if t == 0 else "agent" if t == 1 else "wall"

    def step(self, cell: int, rng: np.random.Generator) -> None:
        """Place the next object at inner cell number ``cell`` (``rng`` draws a free cell for an agent put on the
        goal).

        :raises LevelError: a cell outside the inner grid, or a step after the last
        """
        if self.done:
            raise LevelError(f"the level is built: all {self.n_steps} placements were made")
        if not 0 <= int(cell) < self.n_actions:
            raise LevelError(f"cell {cell} is outside the inner grid's {self.n_actions} cells")
        x, y = int(cell) % self.width + 1, int(cell) // self.width + 1
        role = self._role()
        if role == "goal":
            self.walls[y - 1, x - 1] = False
            self.goal = (x, y)
        elif role == "agent":
            self.walls[y - 1, x - 1] = False
            if (x, y) == self.goal:  # dcd's place_one_agent: a free cell drawn at random
                free = [(i + 1, j + 1) for j in range(self.width) for i in range(self.width)
                        if not self.walls[j, i] and (i + 1, j + 1) != self.goal]
                x, y = free[int(rng.integers(len(free)))]
            self.agent = (x, y)
        elif not self.walls[y - 1, x - 1] and (x, y) not in (self.goal, self.agent):
            self.walls[y - 1, x - 1] = True
        self.t += 1

    def image(self) -> np.ndarray:
        """The level so far as ``(3, size, size)`` planes (walls with the border, goal, agent), float32."""
        planes = np.zeros((3, self.size, self.size), dtype=np.float32)
        planes[0] = 1.0
        planes[0, 1:-1, 1:-1] = self.walls
        for plane, cell in ((1, self.goal), (2, self.agent)):
            if cell is not None:
                planes[plane, cell[1], cell[0]] = 1.0
        return planes

    def level(self) -> MazeLevel:
        """The level built.

        :raises LevelError: placements remain
        """
        if not self.done or self.goal is None or self.agent is None:
            raise LevelError(f"the level is not built yet: {self.t} of {self.n_steps} placements made")
        return MazeLevel.from_bit_map(self.walls, self.agent, self.goal, self.heading)


#: dcd's editor action sets (``EDITOR_ACTION_SPACES``): ``-`` wall, ``.`` empty, ``a`` the start, ``g`` the goal
EDITORS = {"walls_none": "-.", "walls_none_goal": "-.g", "walls_none_agent_goal": "-.ag"}


@dataclass(frozen=True)
class NamedMaze:
    """One of the field's hand-designed test mazes: its levels (one, or one per goal where the source draws the
    goal at random) and the step limit its source gives it."""

    name: str
    levels: tuple[MazeLevel, ...]
    max_steps: int
    source: str


@cache
def named_mazes() -> dict[str, NamedMaze]:
    """The named test mazes of dcd (and minimax, which reuses them), by name (``data/named_mazes.yaml``)."""
    data = yaml.safe_load(NAMED_MAZES_FILE.read_text())
    mazes = {}
    for name, entry in data.items():
        levels = tuple(
            MazeLevel(tuple(entry["rows"]), tuple(entry["start"]), 0, tuple(goal))
            for goal in entry["goals"]
        )
        size = levels[0].size
        mazes[name] = NamedMaze(name, levels, 2 * size * size, "facebookresearch/dcd envs/multigrid/maze.py")
    return mazes
