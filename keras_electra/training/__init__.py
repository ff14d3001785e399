"""Training machinery for any keras_electra model: optimizers and schedules,
callbacks (curves, non-finite losses, checkpoints), the checkpoint format and
distribution. Builds on `models`."""
