"""Host reference executor of the IR in numpy: the golden model every kernel must match.

Values are handled unpacked (int32/int64 arrays); the arithmetic is exactly
docs/integer-arithmetic.md.
"""
from __future__ import annotations

import numpy as np

from harness.ir.graph import Graph, Layer
from harness.ir.requant import add_requantize, requantize


def _patches(x: np.ndarray, layer: Layer, out_hw: tuple[int, int], in_offset: int, pad_value: int = 0) -> np.ndarray:
    """(x + in_offset) gathered per output pixel and tap: [Ho, Wo, Kh, Kw, C]; padded taps hold
    `pad_value` (0: the real value zero)."""
    kh, kw = layer.kernel
    sh, sw = layer.stride
    pt, pl, pb, pr = layer.padding
    ho, wo = out_hw
    shifted = x.astype(np.int64) + in_offset
    padded = np.pad(shifted, ((pt, pb + sh), (pl, pr + sw), (0, 0)), constant_values=pad_value)
    rows = (np.arange(ho) * sh)[:, None] + np.arange(kh)[None, :]  # [Ho, Kh]
    cols = (np.arange(wo) * sw)[:, None] + np.arange(kw)[None, :]  # [Wo, Kw]
    return padded[rows[:, None, :, None], cols[None, :, None, :]]  # [Ho, Wo, Kh, Kw, C]


def accumulate(graph: Graph, layer: Layer, x: np.ndarray) -> np.ndarray:
    """int64 accumulators (bias included) of one layer for unpacked input x [H, W, C]."""
    out = graph.tensors[layer.output]
    off = graph.in_offset(layer)
    bias = layer.bias.astype(np.int64)
    w = None if layer.weights is None else layer.weights.astype(np.int64)
    if layer.op == "conv2d":
        p = _patches(x, layer, out.shape[:2], off)
        return np.einsum("yxhwc,ohwc->yxo", p, w) + bias
    if layer.op == "depthwise_conv2d":
        p = _patches(x, layer, out.shape[:2], off)
        return np.einsum("yxhwc,hwc->yxc", p, w) + bias
    if layer.op == "fully_connected":
        v = x.reshape(-1).astype(np.int64) + off
        return (w @ v + bias).reshape(1, 1, -1)
    if layer.op == "global_avg_pool":
        s = (x.astype(np.int64) + off).sum(axis=(0, 1))
        return (s + bias).reshape(1, 1, -1)
    if layer.op == "avg_pool":
        p = _patches(x, layer, out.shape[:2], off)
        return p.sum(axis=(2, 3)) + bias
    if layer.op == "max_pool":  # padded taps take no part: below every real tap
        p = _patches(x, layer, out.shape[:2], off, pad_value=np.iinfo(np.int64).min)
        return p.max(axis=(2, 3)) + bias
    raise ValueError(f"unknown op {layer.op}")


def run_add(graph: Graph, layer: Layer, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    """The add layer (docs/integer-arithmetic.md, "add") on unpacked inputs."""
    off1, off2 = (-graph.tensors[name].zero_point for name in (layer.input, layer.input2))
    return add_requantize(x1, off1, x2, off2, layer.mult, int(layer.shift[0]), int(layer.bias[0]),
                          graph.tensors[layer.output].bits)


def run_layer(graph: Graph, layer: Layer, x: np.ndarray) -> np.ndarray:
    """Output of one layer (unpacked int32), requantized to its output tensor's bits."""
    acc = accumulate(graph, layer, x)
    if np.abs(acc).max(initial=0) >= 2**31:
        raise OverflowError(f"layer {layer.name}: accumulator exceeds int32")
    return requantize(acc, layer.mult, layer.shift, graph.tensors[layer.output].bits)


def run(graph: Graph, x: np.ndarray) -> dict[str, np.ndarray]:
    """Run the whole graph on an unpacked input [H, W, C]; returns every tensor by name."""
    values = {graph.input: np.asarray(x, dtype=np.int32)}
    for layer in graph.layers:
        if layer.op == "add":
            values[layer.output] = run_add(graph, layer, values[layer.input], values[layer.input2])
        else:
            values[layer.output] = run_layer(graph, layer, values[layer.input])
    return values


def predict(graph: Graph, x: np.ndarray) -> np.ndarray:
    """The graph's output tensor for one input."""
    return run(graph, x)[graph.output]
