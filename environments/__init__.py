"""Parametric environments. Importing this package registers the gymnasium ids (``teachrl/PointMassGate-v0``, ...):

import gymnasium as gym
import environments  # noqa: F401
env = gym.make("teachrl/PointMassGate-v0")
"""

from environments import registry as _registry  # noqa: F401  (registers the gymnasium ids)
