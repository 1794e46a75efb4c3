"""Parameter and multiply-accumulate counts of an architecture, as papers report them.

Parameters: weights plus one bias per output channel of every conv2d, depthwise_conv2d and
fully_connected layer (batch-norm folded in). MACs: the multiply-accumulates of those layers
(`Ho · Wo · Cout · Kh · Kw · Cin`, depthwise without `Cin`); pooling and adds multiply nothing
and are left out, as in the MobileNet papers.
"""
from __future__ import annotations

from dataclasses import dataclass

from harness.zoo.architecture import Architecture


@dataclass(frozen=True)
class Counts:
    params: int
    weights: int  # params without the biases
    macs: int
    layers: int


def counts(arch: Architecture) -> Counts:
    shapes = arch.shapes()
    in_channels = arch.input_channels()
    params = weights = macs = 0
    for spec in arch.layers:
        if not spec.has_weights:
            continue
        ho, wo, co = shapes[spec.name]
        kh, kw = spec.kernel_hw if spec.op != "fully_connected" else (1, 1)
        taps = kh * kw * (1 if spec.op == "depthwise_conv2d" else in_channels[spec.name])
        weights += co * taps
        params += co * taps + co
        macs += ho * wo * co * taps
    return Counts(params, weights, macs, len(arch.layers))
