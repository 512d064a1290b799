"""Walker embodiments on BipedalWalker's physics: short and default bipeds, and a quadruped.

Every leg is an upper and a lower segment on two motorised revolute joints (hip, knee), as in gymnasium's
BipedalWalker; a body is the hull plus pairs of legs hung at given points under it. Leg heights follow the
reference (17, 34 and 51 pixels of BipedalWalker's 30-pixel world unit); the quadruped hangs two leg pairs,
one near each end of the hull, and has 1.5x the motor torque.
"""

from __future__ import annotations

from dataclasses import dataclass

import Box2D
from Box2D.b2 import fixtureDef, polygonShape, revoluteJointDef
from gymnasium.envs.box2d import bipedal_walker as bw

SCALE = bw.SCALE


@dataclass(frozen=True)
class BodySpec:
    """An embodiment.

    :param name: registry name
    :param leg_height: length of each leg segment, in pixels (world units * 30)
    :param hips: x positions (pixels, hull frame) where a pair of legs hangs
    :param motors_torque: maximum torque of every joint motor
    """

    name: str
    leg_height: float
    hips: tuple[float, ...]
    motors_torque: float

    @property
    def n_legs(self) -> int:
        return 2 * len(self.hips)

    @property
    def action_dim(self) -> int:
        return 2 * self.n_legs  # hip and knee per leg

    @property
    def observation_dim(self) -> int:
        return 4 + 5 * self.n_legs + 10  # hull, per leg (2 angles, 2 speeds, contact), lidar

    @property
    def leg_h(self) -> float:
        """Segment length in world units."""
        return self.leg_height / SCALE


BODIES = {
    "short": BodySpec("short", leg_height=17, hips=(0.0,), motors_torque=bw.MOTORS_TORQUE),
    "default": BodySpec("default", leg_height=34, hips=(0.0,), motors_torque=bw.MOTORS_TORQUE),
    "quadruped": BodySpec("quadruped", leg_height=51, hips=(-22.0, 22.0), motors_torque=1.5 * bw.MOTORS_TORQUE),
}


@dataclass
class Body:
    """The Box2D bodies and joints of one walker."""

    hull: Box2D.b2Body
    segments: list[Box2D.b2Body]  # upper, lower, upper, lower, ...
    joints: list[Box2D.b2RevoluteJoint]  # hip, knee, hip, knee, ...

    @property
    def feet(self) -> list[Box2D.b2Body]:
        return self.segments[1::2]


def build_body(world: Box2D.b2World, spec: BodySpec, x: float, y: float) -> Body:
    """Create a walker whose hull centre is at (x, y) (leg tips then touch y - 2 * leg_h - a little)."""
    leg_h, leg_w, leg_down = spec.leg_h, bw.LEG_W, bw.LEG_DOWN
    hull = world.CreateDynamicBody(position=(x, y), fixtures=bw.HULL_FD)
    hull.color1, hull.color2 = (127, 51, 229), (76, 76, 127)
    upper_fd = fixtureDef(
        shape=polygonShape(box=(leg_w / 2, leg_h / 2)), density=1.0, restitution=0.0, categoryBits=0x0020, maskBits=0x001
    )
    lower_fd = fixtureDef(
        shape=polygonShape(box=(0.8 * leg_w / 2, leg_h / 2)),
        density=1.0,
        restitution=0.0,
        categoryBits=0x0020,
        maskBits=0x001,
    )
    segments, joints = [], []
    for hip in spec.hips:
        hip_x = hip / SCALE
        for side in (-1, +1):
            colour1 = (153 - side * 25, 76 - side * 25, 127 - side * 25)
            colour2 = (102 - side * 25, 51 - side * 25, 76 - side * 25)
            upper = world.CreateDynamicBody(
                position=(x + hip_x, y - leg_h / 2 - leg_down), angle=side * 0.05, fixtures=upper_fd
            )
            upper.color1, upper.color2 = colour1, colour2
            joints.append(
                world.CreateJoint(
                    revoluteJointDef(
                        bodyA=hull,
                        bodyB=upper,
                        localAnchorA=(hip_x, leg_down),
                        localAnchorB=(0, leg_h / 2),
                        enableMotor=True,
                        enableLimit=True,
                        maxMotorTorque=spec.motors_torque,
                        motorSpeed=side,
                        lowerAngle=-0.8,
                        upperAngle=1.1,
                    )
                )
            )
            lower = world.CreateDynamicBody(
                position=(x + hip_x, y - leg_h * 3 / 2 - leg_down), angle=side * 0.05, fixtures=lower_fd
            )
            lower.color1, lower.color2 = colour1, colour2
            lower.ground_contact = False
            joints.append(
                world.CreateJoint(
                    revoluteJointDef(
                        bodyA=upper,
                        bodyB=lower,
                        localAnchorA=(0, -leg_h / 2),
                        localAnchorB=(0, leg_h / 2),
                        enableMotor=True,
                        enableLimit=True,
                        maxMotorTorque=spec.motors_torque,
                        motorSpeed=1,
                        lowerAngle=-1.6,
                        upperAngle=-0.1,
                    )
                )
            )
            segments += [upper, lower]
    return Body(hull, segments, joints)
