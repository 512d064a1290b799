"""CLUTR (Azad et al. 2023): PAIRED whose adversary acts in the latent space of a task VAE pretrained on random levels.

Reference: ``clutr/clutr`` (``task_embed/clutr_RVAE``, its PAIRED runner built on dcd's). Before the curriculum a
VAE learns to encode the env's levels; it is then frozen, and the adversary's one action per level is a latent
vector, which the VAE's decoder turns into the level. Everything else is PAIRED's
(:class:`~curriculum.paired.PairedTeacher`): the antagonist, the regret, the adversary's PPO on it.

- The maze (an env with ``level_builder``): CLUTR's recurrent VAE (Bowman et al.'s sentence VAE) over the level as
  a sequence of placements, as CLUTR's ``gen_training_data.py`` writes them: the walls' cells in increasing order,
  then the goal's and the agent's (tokens 1..cells; 0 ends a sequence, cells + 1 starts the decoder), from 0 to
  ``n_blocks`` walls. Token embeddings learned from a random start (CLUTR's ``ClutrEmbedding``), a bidirectional
  LSTM encoder (its last forward and backward states), the latent through CLUTR's ``scaled_tanh`` (tanh times 4), an
  LSTM decoder that reads the latent beside every token (CLUTR's decoder input), dropout 0.3 on the decoder's
  embedded inputs (CLUTR's ``F.dropout``, drawn from the teacher's own generator); loss = 79 x token
  cross-entropy + CLUTR's annealed KL weight ``(tanh((i - 3500) / 1000) + 1) / 2`` (its centre scaled to a short
  budget: :func:`kl_weight`). The decoded level is built by the maze's own rules (dcd's GoalLast adversary,
  :class:`~environments.maze_levels.MazeBuilder` with ``goal_last``): a decoded sequence with fewer than two
  placements gets the missing goal and agent on cells the teacher's generator draws.
- A box task space: an MLP VAE over the task vector rescaled to [-1, 1] (two tanh layers of 64 each way), the same
  loss, the decoder's output through tanh.
- The adversary (:class:`~curriculum.paired.BoxAdversary`) draws a latent in [-1, 1]^latent_dim, times 4: the range of
  the encoder's scaled tanh (CLUTR's ``latent_dim_min``/``max`` of -4/4). This is CLUTR's ``singlestep_continuous``
  adversary (the whole latent in one step), the one its code runs. Its maze script (``train_minigrid50_clutr.sh``)
  names ``multistep_discrete`` (one latent dimension per step, a discrete value of 0..250 each), but the published
  code cannot run it: ``util/make_agent.py`` raises ``NotImplementedError("Not implemented yet")`` when it builds
  that adversary, and the env's ``step_adversary`` decodes an unbound ``latent_vector`` at that episode's end (and
  nothing maps the discrete values to latents). We do not invent the missing part. CLUTR's data generator writes
  the walls first and the goal and agent last, and its decoder's caller comments that its VAE places them first;
  we follow the generator, in training and in decoding alike.
- The adversary's PPO: CLUTR's maze script's (learning rate 1e-4, entropy bonus 0 (``adv_entropy_coef``), gamma
  0.995, GAE lambda 0.95, 5 epochs, one minibatch, clip 0.2, gradient norm 0.5), where PAIRED's defaults are
  minimax's (entropy 0.05, GAE 0.98). Its students' entropy bonus is 0 too; the students keep the env's defaults
  that every teacher shares (the maze: 0.01), as the comparison needs.

What we had to choose (CLUTR's script: 1M iterations on 10M pre-generated levels, batch 32, learning rate 5e-5,
embeddings of 300, encoder LSTM 600, decoder LSTM 800 x 2 layers, latent 64): a CPU budget. By default the VAE trains
``vae_iterations`` = 3000 batches of 32 levels drawn fresh from the generator (no fixed dataset: every batch is new
levels, so none repeats), with learning rate 1e-3 and embeddings 64, encoder 128, decoder 256 x 1 layer; the paper's
sizes are settings. The VAE is pretrained at the first cycle (not when the teacher is made, so that checking a
comparison's runs trains nothing), under the teacher's seed with generators of its own, so the adversary's draws
do not depend on it. It is saved in the teacher's state and as ``vae.pt`` beside the run's model; ``vae=PATH``
reuses one (its architecture settings must match).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, ClassVar, cast

import numpy as np
import torch as th
from torch import nn

from curriculum.base import Level, TeacherStopped
from curriculum.paired import PairedTeacher, _init, _seeded
from curriculum.spaces import BoxTaskSpace

LATENT_SCALE = 4.0  # CLUTR's scaled_tanh activation_scalar
DROPOUT = 0.3  # CLUTR's dropout on the decoder's embedded inputs (train.py --dropout)


def kl_weight(iteration: int, total: int = 1_000_000) -> float:
    """CLUTR's annealed KL weight (``utils/functional.py``, ``kld_coef``: centre 3500, width 1000), its centre moved
    to a quarter of the budget (and its width in proportion) when ``total`` iterations are fewer than 14,000, so
    that a short pretraining also ends with the KL term at full weight, as CLUTR's 1M iterations do."""
    centre = min(3500.0, total / 4)
    return (math.tanh((iteration - centre) / (centre * 1000 / 3500)) + 1) / 2


class SequenceVAE(nn.Module):
    """CLUTR's recurrent VAE over placement sequences (see the module docstring)."""

    def __init__(self, n_cells: int, max_len: int, latent: int, embed: int, encoder: int, decoder: int, layers: int) -> None:
        super().__init__()
        self.n_cells, self.max_len, self.latent = n_cells, max_len, latent
        self.go = n_cells + 1
        self.embed = nn.Embedding(n_cells + 2, embed)  # learned from a random start (CLUTR's ClutrEmbedding)
        self.encoder = nn.LSTM(embed, encoder, batch_first=True, bidirectional=True)
        self.mu, self.logvar = nn.Linear(2 * encoder, latent), nn.Linear(2 * encoder, latent)
        self.decoder = nn.LSTM(embed + latent, decoder, num_layers=layers, batch_first=True)
        self.out = nn.Linear(decoder, n_cells + 1)  # cells and the end token 0

    def encode(self, tokens: th.Tensor, lengths: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        embedded = self.embed(tokens)
        packed = nn.utils.rnn.pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, (h, _) = self.encoder(packed)
        context = th.cat([h[0], h[1]], dim=-1)
        return self.mu(context), self.logvar(context)

    def decode_logits(self, z: th.Tensor, embedded: th.Tensor) -> th.Tensor:
        """Logits of every next token, from the embedded decoder inputs (the latent beside each)."""
        x = th.cat([embedded, z[:, None, :].expand(-1, embedded.shape[1], -1)], dim=-1)
        y, _ = self.decoder(x)
        return self.out(y)

    @th.no_grad()
    def decode(self, z: th.Tensor) -> list[list[int]]:
        """Greedy decoding: each latent's tokens up to the end token (at most ``max_len``)."""
        batch = z.shape[0]
        token = th.full((batch, 1), self.go, dtype=th.long)
        state: Any = None
        out: list[list[int]] = [[] for _ in range(batch)]
        ended = np.zeros(batch, dtype=bool)
        for _ in range(self.max_len):
            x = th.cat([self.embed(token), z[:, None, :]], dim=-1)
            y, state = self.decoder(x, state)
            token = self.out(y).argmax(-1)
            for i, t in enumerate(token[:, 0].tolist()):
                if not ended[i]:
                    if t == 0:
                        ended[i] = True
                    else:
                        out[i].append(t)
            if ended.all():
                break
        return out

    def loss(
        self, tokens: th.Tensor, lengths: th.Tensor, generator: th.Generator, kl: float, weight: float
    ) -> tuple[th.Tensor, float]:
        mu, logvar = self.encode(tokens, lengths)
        eps = th.randn(mu.shape, generator=generator)
        z = th.tanh(mu + eps * th.exp(0.5 * logvar)) * LATENT_SCALE
        go = th.full((tokens.shape[0], 1), self.go, dtype=th.long)
        embedded = self.embed(th.cat([go, tokens], dim=1))
        keep = (th.rand(embedded.shape, generator=generator) >= DROPOUT).float() / (1 - DROPOUT)
        targets = th.cat([tokens, th.zeros_like(go)], dim=1)  # each sequence then its end token (0 = padding too)
        mask = th.arange(targets.shape[1])[None, :] <= lengths[:, None]
        logits = self.decode_logits(z, embedded * keep)  # CLUTR's F.dropout on the decoder's embedded inputs
        ce = nn.functional.cross_entropy(logits[mask], targets[mask])
        kld = (-0.5 * (logvar - mu.pow(2) - logvar.exp() + 1).sum(1)).mean()
        return weight * ce + kl * kld, float(ce.detach())

    @th.no_grad()
    def reconstruct(self, tokens: th.Tensor, lengths: th.Tensor) -> list[list[int]]:
        """The decoding of each sequence's mean latent."""
        mu, _ = self.encode(tokens, lengths)
        return self.decode(th.tanh(mu) * LATENT_SCALE)


class VectorVAE(nn.Module):
    """The MLP VAE of a box task space, over the task rescaled to [-1, 1] (see the module docstring)."""

    def __init__(self, dim: int, latent: int, hidden: int = 64) -> None:
        super().__init__()
        self.latent = latent
        self.encoder = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh())
        self.mu, self.logvar = nn.Linear(hidden, latent), nn.Linear(hidden, latent)
        self.decoder = nn.Sequential(
            nn.Linear(latent, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, dim)
        )

    def encode(self, x: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        h = self.encoder(x)
        return self.mu(h), self.logvar(h)

    def decode(self, z: th.Tensor) -> th.Tensor:
        return th.tanh(self.decoder(z))

    def loss(self, x: th.Tensor, generator: th.Generator, kl: float, weight: float) -> tuple[th.Tensor, float]:
        mu, logvar = self.encode(x)
        z = th.tanh(mu + th.randn(mu.shape, generator=generator) * th.exp(0.5 * logvar)) * LATENT_SCALE
        mse = ((self.decode(z) - x) ** 2).mean()
        kld = (-0.5 * (logvar - mu.pow(2) - logvar.exp() + 1).sum(1)).mean()
        return weight * mse + kl * kld, float(mse.detach())


def placements(level: Any, width: int) -> list[int]:
    """A maze level as CLUTR's token sequence: its walls' cells in increasing order, then the goal's and the
    agent's (cell ``(y - 1) * width + (x - 1)``, token = cell + 1)."""
    walls = [int(y * width + x) + 1 for y, x in zip(*np.nonzero(level.walls), strict=True)]
    cell = lambda p: (p[1] - 1) * width + (p[0] - 1) + 1  # noqa: E731
    return [*sorted(walls), cell(level.goal), cell(level.start)]


class ClutrTeacher(PairedTeacher):
    """CLUTR: PAIRED with the adversary in the latent space of a pretrained, frozen task VAE.

    See the module docstring.

    :param flexible: dcd's flexible PAIRED (the better student plays the antagonist's role, per level)
    :param n_blocks: most walls of a level (maze; 0: the env's max_walls)
    :param z_dim: dimension of the random vector z the adversary sees
    :param learning_rate: the adversary's Adam learning rate
    :param entropy_coef: the adversary's entropy bonus (CLUTR's adv_entropy_coef: 0)
    :param n_epochs: PPO epochs per update
    :param gamma: discount of the adversary's episode
    :param gae_lambda: GAE lambda of the adversary (CLUTR's maze script: 0.95)
    :param clip_range: PPO clip range (policy and value)
    :param max_grad_norm: gradient norm clip
    :param vae: a vae.pt saved by an earlier CLUTR run to reuse ('' pretrains one)
    :param latent_dim: the VAE's latent size (CLUTR's 64)
    :param vae_iterations: pretraining batches (CLUTR's script: 1M)
    :param vae_batch_size: levels per pretraining batch (CLUTR's 32)
    :param vae_learning_rate: the VAE's Adam learning rate (CLUTR's 5e-5 over 1M iterations)
    :param recons_weight: weight of the reconstruction loss (CLUTR's 79)
    :param embed_size: token embedding size (CLUTR's 300)
    :param encoder_size: encoder LSTM size (CLUTR's 600)
    :param decoder_size: decoder LSTM size (CLUTR's 800)
    :param decoder_layers: decoder LSTM layers (CLUTR's 2)
    """

    module_attrs: ClassVar[tuple[str, ...]] = ("adversary", "optimizer", "vae")
    state_attrs: ClassVar[tuple[str, ...]] = (*PairedTeacher.state_attrs, "vae_trained", "vae_final_loss")

    def __init__(
        self,
        task_space: BoxTaskSpace,
        seed: int = 0,
        return_bounds: tuple[float, float] | None = None,
        flexible: bool = False,
        n_blocks: int = 0,
        z_dim: int = 50,
        learning_rate: float = 1e-4,
        entropy_coef: float = 0.0,
        n_epochs: int = 5,
        gamma: float = 0.995,
        gae_lambda: float = 0.95,
        clip_range: float = 0.2,
        max_grad_norm: float = 0.5,
        vae: str = "",
        latent_dim: int = 64,
        vae_iterations: int = 3000,
        vae_batch_size: int = 32,
        vae_learning_rate: float = 1e-3,
        recons_weight: float = 79.0,
        embed_size: int = 64,
        encoder_size: int = 128,
        decoder_size: int = 256,
        decoder_layers: int = 1,
    ) -> None:
        self.latent_dim = int(latent_dim)
        super().__init__(
            task_space, seed, return_bounds, adversary="box", flexible=flexible, n_blocks=n_blocks, goal_last=True,
            z_dim=z_dim, learning_rate=learning_rate, entropy_coef=entropy_coef, n_epochs=n_epochs, gamma=gamma,
            gae_lambda=gae_lambda, clip_range=clip_range, max_grad_norm=max_grad_norm,
        )
        self.vae_path, self.vae_iterations, self.vae_batch_size = str(vae), int(vae_iterations), int(vae_batch_size)
        self.vae_learning_rate, self.recons_weight = float(vae_learning_rate), float(recons_weight)
        self.sizes = (int(embed_size), int(encoder_size), int(decoder_size), int(decoder_layers))
        self.vae_trained, self.vae_final_loss = False, math.nan
        self.pretrain_seconds = 0.0
        self._make_vae()

    @property
    def box_dim(self) -> int:
        return self.latent_dim

    def _make_vae(self) -> None:
        generator = _seeded(self.seed + 1)
        if self.builder is not None:
            b = self.builder
            self.vae: nn.Module = SequenceVAE(b.n_actions, b.n_steps, self.latent_dim, *self.sizes)
        else:
            self.vae = VectorVAE(self.task_space.dim, self.latent_dim)
        _init(self.vae, generator)

    def prepare(self, env: Any) -> None:
        """The env's level builder (the maze: a sequence VAE; else a VAE over task vectors), and a saved VAE if
        ``vae`` names one.

        :raises ValueError: ``vae`` names no file, or one of another architecture
        """
        make = getattr(getattr(env, "unwrapped", env), "level_builder", None)
        if make is not None:
            self.builder = make(self.n_blocks or None, True)
        self._make_vae()
        if self.vae_path:
            path = Path(self.vae_path).expanduser()
            if not path.is_file():
                raise ValueError(
                    f"vae '{self.vae_path}' is not a file: give a vae.pt saved by a CLUTR run, or vae='' to pretrain one"
                )
            try:
                saved = th.load(path, map_location="cpu", weights_only=True)
            except Exception as exc:
                raise ValueError(f"vae '{self.vae_path}' is not a saved VAE ({type(exc).__name__})") from None
            own = self.vae.state_dict()
            if not isinstance(saved, dict) or set(saved) != set(own):
                raise ValueError(f"vae '{self.vae_path}' is not a VAE of this env's kind ({type(self.vae).__name__})")
            for name, value in own.items():
                if tuple(saved[name].shape) != tuple(value.shape):
                    raise ValueError(
                        f"vae '{self.vae_path}' does not fit these settings: {name} has shape {tuple(saved[name].shape)} "
                        f"there, {tuple(value.shape)} here (latent_dim, the sizes, n_blocks and the env's size must match)"
                    )
            self.vae.load_state_dict(saved)
            self.vae_trained = True

    # -- pretraining ---------------------------------------------------------------------------------------------
    def _random_levels(self, rng: np.random.Generator, n: int) -> tuple[th.Tensor, th.Tensor]:
        """CLUTR's training data: random placement sequences of 0 to n_blocks walls (``gen_training_data.py``)."""
        b = self.builder
        seqs = []
        for _ in range(n):
            count = int(rng.integers(2, b.n_steps + 1))
            cells = rng.choice(b.n_actions, size=count, replace=False) + 1
            seqs.append([*sorted(int(c) for c in cells[:-2]), int(cells[-2]), int(cells[-1])])
        lengths = th.tensor([len(s) for s in seqs])
        tokens = th.zeros((n, b.n_steps), dtype=th.long)
        for i, s in enumerate(seqs):
            tokens[i, : len(s)] = th.tensor(s)
        return tokens, lengths

    def pretrain(self) -> None:
        """Train the VAE on levels from the env's own generator, then freeze it (see the module docstring).

        :raises TeacherStopped: the run was asked to stop (:attr:`stop_requested`, polled every batch); the VAE is
            then as it was before, so that pretraining again gives the same VAE
        """
        start = time.perf_counter()
        before = {k: v.clone() for k, v in self.vae.state_dict().items()}
        rng = np.random.default_rng([self.seed, 1])
        generator = _seeded(self.seed + 2)
        params = [p for p in self.vae.parameters() if p.requires_grad]
        optimizer = th.optim.Adam(params, lr=self.vae_learning_rate)
        recent = []
        for i in range(self.vae_iterations):
            if self.stop_requested():
                self.vae.load_state_dict(before)
                raise TeacherStopped(f"CLUTR's VAE pretraining stopped at batch {i} of {self.vae_iterations}")
            vae = self.vae
            if isinstance(vae, SequenceVAE):
                tokens, lengths = self._random_levels(rng, self.vae_batch_size)
                loss, recon = vae.loss(tokens, lengths, generator, kl_weight(i, self.vae_iterations), self.recons_weight)
            else:
                x = th.as_tensor(rng.uniform(-1.0, 1.0, (self.vae_batch_size, self.task_space.dim)), dtype=th.float32)
                loss, recon = cast(VectorVAE, vae).loss(x, generator, kl_weight(i, self.vae_iterations), self.recons_weight)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            recent.append(recon)
        self.vae.requires_grad_(False)
        self.vae_trained, self.vae_final_loss = True, float(np.mean(recent[-50:])) if recent else math.nan
        self.pretrain_seconds = time.perf_counter() - start

    def begin_rollout(self, n_envs: int) -> str:
        if not self.vae_trained:
            self.pretrain()
        return super().begin_rollout(n_envs)

    # -- levels from latents ---------------------------------------------------------------------------------------
    def _box_levels(self, actions: np.ndarray, seeds: list[int]) -> list[Level]:
        z = th.as_tensor(actions * LATENT_SCALE, dtype=th.float32)
        vae = self.vae
        if isinstance(vae, VectorVAE):
            with th.no_grad():
                return super()._box_levels(vae.decode(z).numpy().astype(np.float64), seeds)
        levels = []
        for tokens, seed in zip(cast(SequenceVAE, vae).decode(z), seeds, strict=True):
            level = self._level_of(tokens)
            levels.append(Level(level.task, seed, structure=level))
        return levels

    def _level_of(self, tokens: list[int]) -> Any:
        """The maze level of a decoded sequence: its walls, then its goal and agent, by the builder's rules."""
        b = self.builder
        cells = [t - 1 for t in tokens[: b.n_steps]]
        while len(cells) < 2:  # no goal or agent decoded: drawn, as a placement on any cell
            cells.append(int(self.rng.integers(b.n_actions)))
        builder = type(b)(b.size, len(cells) - 2, goal_last=True)
        builder.start(int(self.rng.integers(4)))
        for cell in cells:
            builder.step(cell, self.rng)
        return builder.level()

    def _level_stats(self) -> dict[str, float]:
        return {**super()._level_stats(), "clutr/vae_reconstruction_loss": self.vae_final_loss}
