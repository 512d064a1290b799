"""Task spaces and teacher algorithms behind one small interface (sample; update from feedback; exact state).

The public surface, for one's own training loop::

    import curriculum, environments
    teacher = curriculum.teacher_for("alp-gmm", environments.make_env("point-mass"), seed=0)
    task = teacher.sample()
    teacher.update(task, curriculum.Feedback(episode_return=12.0, success=False, length=100))

:func:`teacher_for` builds a teacher prepared for its environment (ADR, SPDL and ACCEL read their regions and
distributions from it); :func:`make_teacher` builds one over a bare task space, for a loop without an environment
object. Teachers never import Stable-Baselines3.
"""

from curriculum.base import Feedback, FeedbackError, Level, Teacher
from curriculum.registry import (
    UnknownTeacherError,
    make_teacher,
    register_teacher,
    teacher_class,
    teacher_for,
    teacher_names,
)
from curriculum.spaces import BoxTaskSpace, DiscreteTaskSpace, TaskSpace, TaskSpaceError

__all__ = [
    "BoxTaskSpace",
    "DiscreteTaskSpace",
    "Feedback",
    "FeedbackError",
    "Level",
    "TaskSpace",
    "TaskSpaceError",
    "Teacher",
    "UnknownTeacherError",
    "make_teacher",
    "register_teacher",
    "teacher_class",
    "teacher_for",
    "teacher_names",
]
