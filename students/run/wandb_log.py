"""Weights & Biases beside TensorBoard, for a run with ``--wandb PROJECT`` (the ``wandb`` extra; never required).

Through SB3's integration: the W&B run mirrors the run's TensorBoard folder (``sync_tensorboard``), so it gets
everything TensorBoard gets, the curriculum's scalars and task images included, and SB3's ``WandbCallback`` adds
the algorithm's settings to the W&B config beside the run's ``config.yaml``. The W&B run's id is derived from the
run folder, so a resumed run continues the same W&B run. ``WANDB_MODE=offline`` logs into the run folder's
``wandb/`` without a network or an account (the tests do).
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback

MISSING = "--wandb needs the wandb package: pip install 'teachrl[wandb]' (or leave --wandb out)"


def wandb_problem(project: str) -> str | None:
    """Why ``--wandb project`` cannot log (the package is not installed), or ``None``."""
    if project and importlib.util.find_spec("wandb") is None:
        return MISSING
    return None


def run_id(out: Path) -> str:
    """A W&B run id that stays the same for one run folder (so that a resume continues its W&B run)."""
    return hashlib.sha256(str(Path(out).resolve()).encode()).hexdigest()[:16]


@contextmanager
def wandb_run(config: Any, out: Path) -> Iterator[list[BaseCallback]]:
    """The W&B run of one training session, with SB3's callback for it; nothing (no callbacks) without
    ``config.wandb``. The W&B run ends when the session does, whatever happens."""
    if not config.wandb:
        yield []
        return
    import wandb
    from wandb.integration.sb3 import WandbCallback

    run = wandb.init(
        project=config.wandb,
        id=run_id(out),
        resume="allow",
        name=f"{config.env}/{config.teacher}/{config.student}/seed{config.seed}",
        group=str(config.env),
        dir=str(out),
        config=asdict(config),
        sync_tensorboard=True,
    )
    try:
        yield [WandbCallback(gradient_save_freq=0)]
    finally:
        run.finish()
