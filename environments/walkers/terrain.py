"""Terrain generators for the walkers: flat ground plus obstacles built from the task and the level's generator.

Units: the terrain step (14/30 world units). Every generator returns the static obstacle bodies, their
heights (in steps, for tests and diagnostics) and a height map: the obstacle height above the ground at
each terrain step (world units), used for privileged "terrain ahead" observations.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import Box2D
import numpy as np
from Box2D.b2 import edgeShape, fixtureDef, polygonShape
from gymnasium.envs.box2d import bipedal_walker as bw

STEP = bw.TERRAIN_STEP
GROUND = bw.TERRAIN_HEIGHT
START = bw.TERRAIN_STARTPAD * STEP  # obstacles begin after the flat start pad
END = (bw.TERRAIN_LENGTH - bw.TERRAIN_GRASS) * STEP  # and stop before the finish
MIN_STUMP = 0.05  # in terrain steps

_POLYGON = fixtureDef(shape=polygonShape(vertices=[(0, 0), (1, 0), (1, -1), (0, -1)]), friction=bw.FRICTION)
_EDGE = fixtureDef(shape=edgeShape(vertices=[(0, 0), (1, 1)]), friction=bw.FRICTION, categoryBits=0x0001)


@dataclass
class Terrain:
    """What a generator built."""

    bodies: list[Box2D.b2Body] = field(default_factory=list)
    obstacle_heights: list[float] = field(default_factory=list)  # in terrain steps
    height_map: np.ndarray = field(default_factory=lambda: np.zeros(bw.TERRAIN_LENGTH))  # world units per step
    # polygons for BipedalWalker's renderer: (vertices, colour) of the ground strips
    ground_polys: list[tuple[list[tuple[float, float]], tuple[int, int, int]]] = field(default_factory=list)

    def add_obstacle(self, world: Box2D.b2World, vertices: list[tuple[float, float]]) -> None:
        _POLYGON.shape.vertices = vertices
        body = world.CreateStaticBody(fixtures=_POLYGON)
        body.color1, body.color2 = (255, 255, 255), (153, 153, 153)
        self.bodies.append(body)
        xs = [v[0] for v in vertices]
        top = max(v[1] for v in vertices) - GROUND
        self.obstacle_heights.append(top / STEP)
        first, last = max(int(min(xs) / STEP), 0), min(int(np.ceil(max(xs) / STEP)), bw.TERRAIN_LENGTH)
        self.height_map[first:last] = np.maximum(self.height_map[first:last], top)


def flat_ground(world: Box2D.b2World, terrain: Terrain) -> None:
    """BipedalWalker's flat ground: one edge per terrain step, plus the polygons its renderer fills."""
    for i in range(bw.TERRAIN_LENGTH - 1):
        edge = [(i * STEP, GROUND), ((i + 1) * STEP, GROUND)]
        _EDGE.shape.vertices = edge
        body = world.CreateStaticBody(fixtures=_EDGE)
        body.color1 = body.color2 = (76, 255 if i % 2 == 0 else 204, 76)
        terrain.bodies.append(body)
        terrain.ground_polys.append(([*edge, (edge[1][0], 0), (edge[0][0], 0)], (102, 153, 76)))


def stump_track(world: Box2D.b2World, task: np.ndarray, rng: np.random.Generator) -> Terrain:
    """Stumps one step wide, ``task[1]`` world units apart (teachDeepRL and TeachMyAgent: a flat stretch of
    ``obstacle_spacing`` world units between two stumps), heights N(``task[0]``, 0.1) floored at ``MIN_STUMP``
    steps."""
    height_mean, spacing = float(task[0]), float(task[1])
    terrain = Terrain()
    x = START
    while x + STEP <= END:
        height = max(float(rng.normal(height_mean, 0.1)), MIN_STUMP) * STEP
        terrain.add_obstacle(world, [(x, GROUND), (x + STEP, GROUND), (x + STEP, GROUND + height), (x, GROUND + height)])
        x += STEP + spacing
    flat_ground(world, terrain)
    return terrain


# A default hexagon (in steps, origin at its bottom-left corner on the ground) and the direction in which each
# task parameter moves one vertex coordinate. Parameters 1 and 3 push the two ground vertices *down*, into
# the ground, where nothing can touch them: the two irrelevant dimensions, by construction.
HEXAGON = np.array([[0.0, 0.0], [1.0, 0.0], [1.25, 0.25], [1.0, 0.5], [0.0, 0.5], [-0.25, 0.25]])
HEXAGON_DIRECTIONS = np.array([[-1, -1], [1, -1], [1, 1], [1, 1], [-1, 1], [-1, 1]], dtype=float)
HEXAGON_OFFSET_SCALE = 0.5  # steps per unit of task parameter
HEXAGON_PITCH = 8.0  # steps between two obstacles' origins
HEXAGON_NOISE = 0.1  # std of per-obstacle noise on every parameter


def hexagon_track(world: Box2D.b2World, task: np.ndarray, rng: np.random.Generator) -> Terrain:
    """Hexagonal obstacles every ``HEXAGON_PITCH`` steps; ``task`` (12 values in [0, 4]) moves their vertices.

    Vertex ``i`` of an obstacle is ``HEXAGON[i] + HEXAGON_DIRECTIONS[i] * 0.5 * (task[2i:2i+2] + noise)`` in
    steps, noise ~ N(0, 0.1) per obstacle and parameter, offsets floored at 0 (vertices only move outward, so
    the obstacle stays a valid convex-ish polygon; Box2D keeps its convex hull).
    """
    offsets = np.asarray(task, dtype=float).reshape(6, 2)
    terrain = Terrain()
    x = START
    while x + 3 * STEP <= END:
        noisy = np.maximum(offsets + rng.normal(0.0, HEXAGON_NOISE, offsets.shape), 0.0)
        vertices = (HEXAGON + HEXAGON_DIRECTIONS * HEXAGON_OFFSET_SCALE * noisy) * STEP
        left = -vertices[:, 0].min()  # shift so that the obstacle starts at x
        terrain.add_obstacle(world, [(x + left + vx, GROUND + vy) for vx, vy in vertices])
        x += HEXAGON_PITCH * STEP
    flat_ground(world, terrain)
    return terrain
