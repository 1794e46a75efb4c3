"""Post-training lowering: float weights (batch-norm folded) + calibration inputs -> integer graph.

No training and no labels. Used for `--random-weights` (latency and memory of a zoo network
without its weights) and for user checkpoints of zoo networks that have no QAT recipe here.
The arithmetic is docs/integer-arithmetic.md; how the numbers are chosen:

- weights: symmetric, narrow range +-(2^(b-1)-1), one scale per output channel (max |w|); the
  classifier uses one scale for all outputs so its int32 logits compare (as QAT does);
- bias: round(b / (s_in * s_w)), saturated to int32;
- every output's real range comes from the calibration inputs, run layer by layer through the
  integer reference (so each layer is calibrated on exactly the integers it will see); with
  lo / hi the 0.1st / 99.9th percentiles of the real values: ReLU [0, hi], ReLU6
  [0, min(hi, 6)], linear [min(lo, 0), max(hi, 0)] with a zero-point;
  the scale is range / (2^b - 1); multipliers and shifts follow from the scales, a zero-point
  is folded into the bias ("Zero-points of activations"); add uses two multipliers.
"""
from __future__ import annotations


import numpy as np

from harness.ir import reference
from harness.errors import HarnessError
from harness.frontend.float_graph import FloatGraph, FloatLayer
from harness.ir.graph import Graph, Layer, Tensor
from harness.quantize.lower import (
    INPUT,
    INT32_MAX,
    INT32_MIN,
    LOGIT_BITS,
    LayerValues,
    check_accumulators,
    compact,
    fold_zero_point,
    ir_layer,
    max_pool_values,
    pruned_channels,
)
from harness.policy import Policy
from harness.ir.requant import add_multipliers, quantize_multipliers
from harness.zoo.architecture import LayerSpec

MIN_RANGE = 1e-6  # a real range never collapses to zero width
RELU6_LIMIT = 6.0
CALIBRATION_PERCENTILE = 99.9  # ranges clip the 0.1 % most extreme calibration values at each end


def lower_float(policy: Policy, float_graph: FloatGraph, calibration_inputs: np.ndarray, meta: dict) -> Graph:
    """The policy's integer graph for a float graph, calibrated on integer inputs [N, H, W, C]
    (the float graph's source and notes go into the graph's meta)."""
    if float_graph.architecture.layers != policy.architecture.layers:
        raise HarnessError(f"the float graph ({float_graph.source}) is not the architecture of policy {policy.name}")
    weights, calibration = float_graph.layers, calibration_inputs
    meta = {"source": float_graph.source} | ({"notes": list(float_graph.notes)} if float_graph.notes else {}) | meta
    arch = policy.architecture
    shapes = arch.shapes()
    q = policy.input
    tensors = {INPUT: Tensor(INPUT, shapes[INPUT], q.bits, q.scale, q.zero_point)}
    graph = Graph(policy.name, tensors, [], INPUT, arch.classifier,
                  {"policy": policy.name, "policy_hash": policy.hash} | meta)
    values = {INPUT: [np.asarray(x, dtype=np.int32) for x in calibration]}
    last_use = {source: index for index, spec in enumerate(arch.layers) for source in arch.sources(spec)}
    pruned = pruned_channels(arch, policy)
    for index, spec in enumerate(arch.layers):
        bits = policy.layers[spec.name]
        sources = arch.sources(spec)
        out = Tensor(spec.name, shapes[spec.name], bits.a_bits or LOGIT_BITS, 1.0)
        graph.tensors[spec.name] = out
        try:
            if spec.op == "add":
                layer = _add_layer(graph, spec, sources, values)
            else:
                layer = _requantized_layer(graph, spec, sources[0], bits.w_bits, weights.get(spec.name), values,
                                           pruned.get(spec.name))
        except HarnessError as error:
            raise HarnessError(f"layer {spec.name}: {error}") from None
        graph.layers.append(layer)
        values[spec.name] = [_run(graph, layer, values, k) for k in range(len(calibration))]
        for source in sources:  # free what no later layer reads
            if last_use[source] == index:
                values.pop(source, None)
    graph.validate()
    check_accumulators(graph)
    return compact(graph)


def _run(graph: Graph, layer: Layer, values: dict, k: int) -> np.ndarray:
    if layer.op == "add":
        return reference.run_add(graph, layer, values[layer.input][k], values[layer.input2][k])
    return reference.run_layer(graph, layer, values[layer.input][k])


def _requantized_layer(graph: Graph, spec: LayerSpec, source: str, w_bits: int | tuple[int, ...] | None,
                       float_layer: FloatLayer | None, values: dict, pruned: np.ndarray | None = None) -> Layer:
    """A conv / depthwise / fully connected / pooling layer calibrated on `values[source]`;
    `pruned` channels (0 bits, or after a pruned producer) get zero weights and bias."""
    inp, out = graph.tensors[source], graph.tensors[spec.name]
    channels = out.channels
    classifier = spec.name == graph.output
    if spec.op == "max_pool":  # keeps its input's range: nothing to calibrate
        v = max_pool_values(inp, out.bits)
        out.scale, out.zero_point = v.out_scale, v.out_zero_point
        return ir_layer(spec, (source,), None, v)
    if spec.has_weights:
        if float_layer is None:
            raise HarnessError("no float weights")
        codes, weight_scale = _quantize_weights(spec, float_layer.weight, w_bits, per_channel=not classifier)
        bias = np.clip(np.rint(float_layer.bias / (inp.scale * weight_scale)), INT32_MIN, INT32_MAX).astype(np.int32)
        if pruned is not None:
            bias[pruned] = 0
            if spec.op == "depthwise_conv2d":
                codes[..., pruned] = 0
            else:
                codes[pruned] = 0
        acc_scale = inp.scale * weight_scale
    else:
        codes = None
        taps = inp.shape[0] * inp.shape[1] if spec.op == "global_avg_pool" else int(np.prod(spec.kernel_hw))
        bias = np.zeros(channels, np.int32)
        acc_scale = np.full(channels, inp.scale / taps)
    placeholder = LayerValues(codes, bias, np.zeros(channels, np.int32), np.ones(channels, np.int8), 1.0)
    layer = ir_layer(spec, (source,), w_bits, placeholder)
    if classifier:
        out.scale = float(acc_scale[0])
        return layer
    accs = np.stack([reference.accumulate(graph, layer, x) for x in values[source]])
    out.scale, out.zero_point = _output_quantization(accs * acc_scale, spec.activation, out.bits)
    rescale = acc_scale / out.scale
    layer.mult, layer.shift = quantize_multipliers(rescale)
    layer.bias = fold_zero_point(layer.bias, rescale, out.zero_point)
    return layer


def _add_layer(graph: Graph, spec: LayerSpec, sources: tuple[str, ...], values: dict) -> Layer:
    """add: the real sum's calibrated range gives the output scale, then (m1, m2, shift)."""
    t1, t2 = (graph.tensors[name] for name in sources)
    out = graph.tensors[spec.name]
    real = np.stack([t1.scale * (a.astype(np.float64) - t1.zero_point) + t2.scale * (b.astype(np.float64) - t2.zero_point)
                     for a, b in zip(values[sources[0]], values[sources[1]])])
    out.scale, out.zero_point = _output_quantization(real, spec.activation, out.bits)
    m1, m2, shift = add_multipliers(t1.scale / out.scale, t2.scale / out.scale)
    return ir_layer(spec, sources, None, LayerValues(None, np.array([out.zero_point], np.int32),
                                                     np.array([m1, m2], np.int32), np.array([shift], np.int8),
                                                     out.scale))


def _quantize_weights(spec: LayerSpec, weight: np.ndarray, bits: int | tuple[int, ...], per_channel: bool
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(int32 codes in the IR layout, float64 scale per output channel); `bits` one value or one
    per output channel (a 0-bit channel's codes come out as 0 through its caller's pruning)."""
    qmax = np.maximum((1 << np.maximum(np.asarray(bits), 1) - 1) - 1, 1).astype(np.float64)
    weight = np.asarray(weight, dtype=np.float64)
    rows = weight.reshape(-1, weight.shape[-1]).T if spec.op == "depthwise_conv2d" else weight.reshape(weight.shape[0], -1)
    absmax = np.abs(rows).max(axis=1)
    if not per_channel:
        absmax = np.full_like(absmax, absmax.max())
    scale = np.where(absmax > 0, absmax / qmax, 1.0)
    shape = (-1,) if spec.op == "depthwise_conv2d" else (-1, *[1] * (weight.ndim - 1))
    limit = np.broadcast_to(qmax, scale.shape).reshape(shape)
    codes = np.clip(np.rint(weight / scale.reshape(shape)), -limit, limit).astype(np.int32)
    return codes, scale


def _output_quantization(real: np.ndarray, activation: str, bits: int) -> tuple[float, int]:
    """(scale, zero-point) of an output whose calibration values are `real`."""
    levels = (1 << bits) - 1
    low, high = (float(v) for v in np.percentile(real, [100 - CALIBRATION_PERCENTILE, CALIBRATION_PERCENTILE]))
    if activation == "linear":
        low, high = min(low, 0.0), max(high, 0.0)
    else:
        low, high = 0.0, max(high, 0.0)
        if activation == "relu6":
            high = min(high, RELU6_LIMIT)
    high = max(high, low + MIN_RANGE)
    scale = (high - low) / levels
    return float(scale), int(min(max(round(-low / scale), 0), levels))
