"""Training: the plan, the loop, checkpoints, metrics, the run directory and the grow recipe."""
