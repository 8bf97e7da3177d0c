"""Training: the shared loop, checkpoints, encoder pre-training."""
