"""Where a model comes from: zoo architectures in torch, trained or random weights, checkpoints."""
