"""Lowering: a trained fake-quant model (QATNet) -> the integer graph (harness.ir.graph.Graph).

Exactly docs/integer-arithmetic.md: the weights are the integers the fake quantization produced,
the bias the int32 codes QAT trained with (plus an output zero-point folded in), (mult, shift)
per output channel represent s_in * s_w[c] / s_out (global_avg_pool: s_in / (s_out * H * W),
avg_pool: s_in / (s_out * kh * kw)), an add's (m1, m2, shift) represent s1 / s_out and
s2 / s_out of the scales the fake-quant model used, max_pool keeps its input's range, and the
classifier outputs its int32 accumulators. `structural_graph` builds the same graph with zero weights from the policy
alone, for the memory model.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

from harness.errors import HarnessError
from harness.frontend.float_graph import weight_shape
from harness.ir.channel_order import CHANNEL_PRESERVING
from harness.ir.graph import Graph, Layer, Tensor
from harness.ir.requant import add_multipliers, quantize_multipliers
from harness.policy import Policy
from harness.zoo.architecture import Architecture, LayerSpec

if TYPE_CHECKING:  # torch is imported only when a trained model is lowered: policy checks stay fast
    from harness.quantize.qat import QATNet, QuantLayer

INPUT = "input"
LOGIT_BITS = 32
ACC_LIMIT = 2**31
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


@dataclass
class LayerValues:
    """What lowering decides for one layer: integer arrays and the output tensor's scale."""

    weights: np.ndarray | None
    bias: np.ndarray
    mult: np.ndarray
    shift: np.ndarray
    out_scale: float
    out_zero_point: int = 0


def max_pool_quantization(scale: float, zero_point: int, in_bits: int, out_bits: int) -> tuple[float, int]:
    """max_pool's output (scale, zero-point): it keeps the real range of its input
    (docs/integer-arithmetic.md, "max_pool"), stretched to the output bits."""
    stretch = _stretch(in_bits, out_bits)
    return scale * stretch, round(zero_point / stretch)


def _stretch(in_bits: int, out_bits: int) -> float:
    return ((1 << in_bits) - 1) / ((1 << out_bits) - 1)


def max_pool_values(inp: Tensor, out_bits: int) -> LayerValues:
    """max_pool's integer values: at equal bits the identity on the window's largest code
    (mult 2^30, shift 30, bias = z)."""
    scale, zero_point = max_pool_quantization(inp.scale, inp.zero_point, inp.bits, out_bits)
    stretch = _stretch(inp.bits, out_bits)
    c = inp.channels
    mult, shift = quantize_multipliers(np.full(c, 1.0 / stretch))
    bias = np.full(c, round(zero_point * stretch), np.int32)
    return LayerValues(None, bias, mult, shift, scale, zero_point)


def lower(net: QATNet, policy: Policy, meta: dict | None = None) -> Graph:
    """The integer graph of a trained QATNet; HarnessError if a layer cannot be represented."""
    quantization = net.tensor_quantization()

    def values(spec: LayerSpec, inputs: list[Tensor]) -> LayerValues:
        inp = inputs[0]
        if spec.op == "max_pool":
            return max_pool_values(inp, policy.layers[spec.name].a_bits)
        out_scale, out_zero_point = quantization.get(spec.name, (1.0, 0))
        if spec.op == "add":
            m1, m2, shift = add_multipliers(inputs[0].scale / out_scale, inputs[1].scale / out_scale)
            return LayerValues(None, np.array([out_zero_point], np.int32), np.array([m1, m2], np.int32),
                               np.array([shift], np.int8), out_scale, out_zero_point)
        if spec.op in ("global_avg_pool", "avg_pool"):
            c = inp.channels
            taps = inp.shape[0] * inp.shape[1] if spec.op == "global_avg_pool" else int(np.prod(spec.kernel_hw))
            rescale = np.full(c, inp.scale / (out_scale * taps))
            bias = fold_zero_point(np.zeros(c, np.int32), rescale, out_zero_point)
            return LayerValues(None, bias, *quantize_multipliers(rescale), out_scale, out_zero_point)
        layer = net.layers[spec.name]
        weights, weight_scale, bias = _integer_parameters(layer, inp.scale)
        if spec.name == net.arch.classifier:  # int32 logits: no requantization
            c = len(bias)
            return LayerValues(weights, bias, np.zeros(c, np.int32), np.ones(c, np.int8),
                               inp.scale * float(weight_scale[0]))
        rescale = inp.scale * weight_scale / out_scale
        bias = fold_zero_point(bias, rescale, out_zero_point)
        return LayerValues(weights, bias, *quantize_multipliers(rescale), out_scale, out_zero_point)

    return _assemble(policy, values, meta or {})


def fold_zero_point(bias: np.ndarray, rescale: np.ndarray, zero_point: int) -> np.ndarray:
    """The bias of a layer whose output carries `zero_point`: bias[c] + round(z / m[c]), so the
    requantized code is v / s_out + z (docs/integer-arithmetic.md, "Zero-points of activations")."""
    if not zero_point:
        return bias
    shifted = bias.astype(np.float64) + np.where(rescale > 0, zero_point / np.maximum(rescale, 1e-300), 0)
    return np.clip(np.rint(shifted), INT32_MIN, INT32_MAX).astype(np.int32)


def structural_graph(policy: Policy) -> Graph:
    """The policy's graph with zero weights and unit scales: shapes, bits and bytes, no training."""

    shapes = policy.architecture.shapes()

    def values(spec: LayerSpec, inputs: list[Tensor]) -> LayerValues:
        c = shapes[spec.name][2]
        if spec.op == "add":  # one requantization for the tensor: [zero-point], [m1, m2], [shift]
            return LayerValues(None, np.zeros(1, np.int32), np.zeros(2, np.int32), np.ones(1, np.int8), 1.0)
        return LayerValues(_zero_weights(spec, inputs[0], c), np.zeros(c, np.int32),
                           np.zeros(c, np.int32), np.ones(c, np.int8), 1.0)

    return _assemble(policy, values, {"structural": True})


def check_accumulators(graph: Graph) -> None:
    """Raise HarnessError if any layer's worst case |bias| + sum|w| * max|x + in_offset| reaches 2^31."""
    for layer in graph.layers:
        inp = graph.tensors[layer.input]
        largest_input = max(inp.zero_point, (1 << inp.bits) - 1 - inp.zero_point)
        if layer.op == "add":  # int64 arithmetic by definition (docs/integer-arithmetic.md, "add")
            continue
        if layer.op in ("global_avg_pool", "avg_pool", "max_pool"):
            window = {"global_avg_pool": inp.shape[0] * inp.shape[1], "avg_pool": int(np.prod(layer.kernel)),
                      "max_pool": 1}[layer.op]
            taps = np.full(inp.channels, window, dtype=np.int64)
        else:
            weights = np.abs(layer.weights.astype(np.int64))
            taps = weights.sum(axis=(0, 1)) if layer.op == "depthwise_conv2d" else \
                weights.reshape(weights.shape[0], -1).sum(axis=1)
        worst = np.abs(layer.bias.astype(np.int64)) + taps * largest_input
        if worst.max() >= ACC_LIMIT:
            channel = int(worst.argmax())
            raise HarnessError(f"layer {layer.name}: worst-case accumulator {int(worst[channel])} of channel "
                               f"{channel} overflows int32; use fewer input bits or a smaller bias")


def _assemble(policy: Policy, values: Callable[[LayerSpec, list[Tensor]], LayerValues], meta: dict) -> Graph:
    """Tensors and layers of the policy's architecture, with each layer's integer values."""
    arch = policy.architecture
    shapes = arch.shapes()
    q = policy.input
    tensors = {INPUT: Tensor(INPUT, shapes[INPUT], q.bits, q.scale, q.zero_point)}
    layers = []
    for spec in arch.layers:
        bits = policy.layers[spec.name]
        sources = arch.sources(spec)
        try:
            v = values(spec, [tensors[source] for source in sources])
        except HarnessError as error:
            raise HarnessError(f"layer {spec.name}: {error}") from None
        tensors[spec.name] = Tensor(spec.name, shapes[spec.name], bits.a_bits or LOGIT_BITS, float(v.out_scale),
                                    v.out_zero_point)
        layers.append(ir_layer(spec, sources, bits.w_bits, v))
    graph = Graph(policy.name, tensors, layers, INPUT, arch.classifier,
                  {"policy": policy.name, "policy_hash": policy.hash} | meta)
    graph.validate()
    check_accumulators(graph)
    return compact(graph)


def ir_layer(spec: LayerSpec, sources: tuple[str, ...], w_bits: int | tuple[int, ...] | None, v: LayerValues) -> Layer:
    """The IR layer of a spec reading `sources` (two for add), with its integer values (per-channel
    bits become the IR's list, 0 = pruned, until harness.ir.channel_order.reorder drops them)."""
    return Layer(spec.name, spec.op, sources[0], spec.name, spec.kernel_hw, spec.stride_hw, spec.padding_tlbr,
                 list(w_bits) if isinstance(w_bits, tuple) else w_bits, v.weights, v.bias, v.mult, v.shift,
                 input2=sources[1] if len(sources) > 1 else None)


def pruned_channels(arch: Architecture, policy: Policy) -> dict[str, np.ndarray]:
    """Layer -> its pruned output channels (bool), for channel-wise producers and the
    channel-preserving layers after them (a depthwise layer prunes where its producer does)."""
    pruned: dict[str, np.ndarray] = {}
    for spec in arch.layers:
        bits = policy.layers[spec.name]
        if bits.channel_wise and 0 in bits.w_bits:
            pruned[spec.name] = np.array([b == 0 for b in bits.w_bits])
        elif spec.op in CHANNEL_PRESERVING and arch.sources(spec)[0] in pruned:
            pruned[spec.name] = pruned[arch.sources(spec)[0]]
    return pruned


def compact(graph: Graph) -> Graph:
    """The graph as deployed: channel-wise layers reordered and their pruned channels dropped
    (harness.ir.channel_order); a layer-wise graph unchanged."""
    if not any(isinstance(layer.w_bits, list) for layer in graph.layers):
        return graph
    from harness.ir.channel_order import reorder

    return reorder(graph)


def _integer_parameters(layer: QuantLayer, input_scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(weights in the IR layout, float64 weight scales, int32 bias) exactly as QAT used them."""
    import torch

    from harness.frontend.float_net import ir_layout

    with torch.no_grad():
        scale = layer.weight_scale()
        fake = layer.quantized_weight(scale)
        per_row = scale.reshape(-1, *[1] * (fake.dim() - 1))
        codes = torch.round(fake / per_row)
        if not torch.equal(codes * per_row, fake):
            raise HarnessError(f"layer {layer.spec.name}: fake-quantized weights are not integers times their scale")
        bias = layer.bias_codes(input_scale, scale).to(torch.int64).numpy().astype(np.int32)
    return ir_layout(layer.spec, codes.to(torch.int32).numpy()), scale.double().numpy(), bias


def _zero_weights(spec: LayerSpec, inp: Tensor, out_channels: int) -> np.ndarray | None:
    if not spec.has_weights:
        return None
    in_channels = inp.size if spec.op == "fully_connected" else inp.channels
    return np.zeros(weight_shape(spec, in_channels, out_channels), dtype=np.int32)
