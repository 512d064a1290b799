"""Features extractors for students that read a structured observation: the maze's egocentric view as an image.

:class:`MazeViewCNN` is dcd's maze agent's encoder (``models/multigrid_models.py``, ``MultigridNetwork``): a 3 x 3
convolution with 16 filters, no padding, over the agent's view, flattened, ReLU; the heading one-hot through a
linear layer to 5 units; both concatenated (149 features for a 5 x 5 view). dcd's LSTM (256 units, shared by the
actor and the critic) and its two 32-unit heads are sb3-contrib's ``RecurrentPPO`` settings
(``students/loop/hyperparams/recurrent-ppo.yml``: ``lstm_hidden_size: 256``, ``shared_lstm: true``,
``net_arch: {pi: [32, 32], vf: [32, 32]}``).

Deviation: dcd convolves MiniGrid's 3 raw channels (object type, colour, state as integers); our maze's
observation is the one-hot object type of each cell (11 channels: what the MLP student reads), so the convolution
reads those 11 channels. The colour and state channels carry nothing in our maze (walls, lava and the goal have one
colour each and no state).
"""

from __future__ import annotations

import gymnasium as gym
import torch as th
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn


class MazeViewCNN(BaseFeaturesExtractor):
    """dcd's maze encoder over the maze's flat observation (``view * view * channels`` one-hot cells, x-major as
    MiniGrid's image, then the 4-way heading); see the module docstring.

    :param observation_space: the maze's flat Box observation
    :param view: the side of the agent's view (the maze's ``view``)
    :param channels: one-hot channels per cell (MiniGrid's 11 object types)
    :param filters: convolution filters (dcd: 16)
    :param kernel: convolution kernel side (dcd: 3)
    :param scalar_fc: units of the heading's embedding (dcd: 5)
    :raises ValueError: an observation of another length than the view and heading make
    """

    def __init__(
        self,
        observation_space: gym.spaces.Box,
        view: int = 5,
        channels: int = 11,
        filters: int = 16,
        kernel: int = 3,
        scalar_fc: int = 5,
    ) -> None:
        expected = view * view * channels + 4
        shape = observation_space.shape
        if shape is None or len(shape) != 1 or shape[0] != expected:
            raise ValueError(
                f"MazeViewCNN reads a flat maze view of {view} x {view} cells x {channels} channels + 4 (heading) = "
                f"{expected} values, got an observation of shape {shape}"
            )
        side = view - kernel + 1
        super().__init__(observation_space, features_dim=side * side * filters + scalar_fc)
        self.view, self.channels = view, channels
        self.conv = nn.Sequential(nn.Conv2d(channels, filters, kernel_size=kernel), nn.Flatten(), nn.ReLU())
        self.heading = nn.Linear(4, scalar_fc)

    def forward(self, observations: th.Tensor) -> th.Tensor:
        cells = self.view * self.view * self.channels
        image = observations[:, :cells].reshape(-1, self.view, self.view, self.channels).permute(0, 3, 1, 2)
        return th.cat([self.conv(image), self.heading(observations[:, cells:])], dim=1)
