"""Random float weights for a zoo architecture (`--random-weights`): latency and memory runs that
need no trained model and no dataset.

Weights are He-normal (std sqrt(2 / fan_in); the classifier sqrt(1 / fan_in)), biases small
normal, all from a seeded generator. Predictions are meaningless: every report says so
(NOTE; "random_weights": true). The quantizer (harness.quantize.pipeline) calibrates and caches
the integer graph.
"""
from __future__ import annotations

import numpy as np

from harness.frontend.float_graph import FloatGraph, FloatLayer, weight_shape
from harness.zoo.architecture import Architecture

NOTE = ("random weights: predictions and accuracy are meaningless; latency, memory and bit-exactness are real")
BIAS_STD = 0.05


def random_float_graph(arch: Architecture, seed: int) -> FloatGraph:
    """He-normal float weights and small biases for every weighted layer of `arch`."""
    rng = np.random.default_rng(seed)
    shapes, in_channels = arch.shapes(), arch.input_channels()
    weights = {}
    for spec in arch.layers:
        if not spec.has_weights:
            continue
        shape = weight_shape(spec, in_channels[spec.name], shapes[spec.name][2])
        fan_in = int(np.prod(shape[1:])) if spec.op != "depthwise_conv2d" else int(np.prod(shape[:2]))
        gain = 1.0 if spec.name == arch.classifier else 2.0
        weights[spec.name] = FloatLayer(rng.normal(0.0, np.sqrt(gain / fan_in), size=shape),
                                        rng.normal(0.0, BIAS_STD, size=shapes[spec.name][2]))
    return FloatGraph(arch, weights, f"random weights (seed {seed})")
