"""One run folder's life: training a run, its checkpoints and lock, and distillation into a run folder."""
