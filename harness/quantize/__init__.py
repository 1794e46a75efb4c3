"""Float model -> integer graph: quantization-aware training, post-training calibration, lowering."""
