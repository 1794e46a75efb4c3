"""Lowering: a trained fake-quant model (QATNet) -> the integer graph (harness.ir.graph.Graph).

Exactly docs/integer-arithmetic.md: the weights are the integers the fake quantization produced,
the bias the int32 codes QAT trained with, (mult, shift) per output channel represent
s_in * s_w[c] / s_out (global_avg_pool: s_in / (s_out * H * W)), and the classifier outputs its
int32 accumulators. `structural_graph` builds the same graph with zero weights from the policy
alone, for the memory model.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

from harness.errors import HarnessError
from harness.ir.graph import Graph, Layer, Tensor
from harness.policy import Policy
from harness.ir.requant import quantize_multipliers
from harness.zoo.architecture import LayerSpec

if TYPE_CHECKING:  # torch is imported only when a trained model is lowered: policy checks stay fast
    from harness.quantize.qat import QATNet, QuantLayer

INPUT = "input"
LOGIT_BITS = 32
ACC_LIMIT = 2**31


@dataclass
class LayerValues:
    """What lowering decides for one layer: integer arrays and the output tensor's scale."""

    weights: np.ndarray | None
    bias: np.ndarray
    mult: np.ndarray
    shift: np.ndarray
    out_scale: float
    out_zero_point: int = 0


def max_pool_values(inp: Tensor, out_bits: int) -> LayerValues:
    """max_pool keeps the real range of its input (docs/integer-arithmetic.md, "max_pool"): the
    output scale and zero-point are the input's, stretched to the output bits, so at equal bits
    the layer is the identity on the window's largest code (mult 2^30, shift 30, bias = z)."""
    stretch = ((1 << inp.bits) - 1) / ((1 << out_bits) - 1)
    zero_point = round(inp.zero_point / stretch)
    c = inp.channels
    mult, shift = quantize_multipliers(np.full(c, 1.0 / stretch))
    bias = np.full(c, round(zero_point * stretch), np.int32)
    return LayerValues(None, bias, mult, shift, inp.scale * stretch, zero_point)


def lower(net: QATNet, policy: Policy, meta: dict | None = None) -> Graph:
    """The integer graph of a trained QATNet; HarnessError if a layer cannot be represented."""
    activation_scales = net.tensor_scales()

    def values(spec: LayerSpec, inp: Tensor) -> LayerValues:
        if spec.op == "max_pool":
            return max_pool_values(inp, policy.layers[spec.name].a_bits)
        if spec.op == "global_avg_pool":
            h, w, c = inp.shape
            out_scale = activation_scales[spec.name]
            mult, shift = quantize_multipliers(np.full(c, inp.scale / (out_scale * h * w)))
            return LayerValues(None, np.zeros(c, dtype=np.int32), mult, shift, out_scale)
        layer = net.layers[spec.name]
        weights, weight_scale, bias = _integer_parameters(layer, inp.scale)
        if spec.name == net.arch.classifier:  # int32 logits: no requantization
            c = len(bias)
            return LayerValues(weights, bias, np.zeros(c, np.int32), np.ones(c, np.int8),
                               inp.scale * float(weight_scale[0]))
        out_scale = activation_scales[spec.name]
        mult, shift = quantize_multipliers(inp.scale * weight_scale / out_scale)
        return LayerValues(weights, bias, mult, shift, out_scale)

    return _assemble(policy, values, meta or {})


def structural_graph(policy: Policy) -> Graph:
    """The policy's graph with zero weights and unit scales: shapes, bits and bytes, no training."""

    shapes = policy.architecture.shapes()

    def values(spec: LayerSpec, inp: Tensor) -> LayerValues:
        c = shapes[spec.name][2]
        if spec.op == "add":  # one requantization for the tensor: [zero-point], [m1, m2], [shift]
            return LayerValues(None, np.zeros(1, np.int32), np.zeros(2, np.int32), np.ones(1, np.int8), 1.0)
        return LayerValues(_zero_weights(spec, inp.channels, c), np.zeros(c, np.int32),
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


def _assemble(policy: Policy, values: Callable[[LayerSpec, Tensor], LayerValues], meta: dict) -> Graph:
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
            v = values(spec, tensors[sources[0]])
        except HarnessError as error:
            raise HarnessError(f"layer {spec.name}: {error}") from None
        tensors[spec.name] = Tensor(spec.name, shapes[spec.name], bits.a_bits or LOGIT_BITS, float(v.out_scale),
                                    v.out_zero_point)
        layers.append(ir_layer(spec, sources, bits.w_bits, v))
    graph = Graph(policy.name, tensors, layers, INPUT, arch.classifier,
                  {"policy": policy.name, "policy_hash": policy.hash} | meta)
    graph.validate()
    check_accumulators(graph)
    return graph


def ir_layer(spec: LayerSpec, sources: tuple[str, ...], w_bits: int | None, v: LayerValues) -> Layer:
    """The IR layer of a spec reading `sources` (two for add), with its integer values."""
    return Layer(spec.name, spec.op, sources[0], spec.name, spec.kernel_hw, spec.stride_hw, spec.padding_tlbr,
                 w_bits, v.weights, v.bias, v.mult, v.shift, input2=sources[1] if len(sources) > 1 else None)


def _integer_parameters(layer: QuantLayer, input_scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(weights in the IR layout, float64 weight scales, int32 bias) exactly as QAT used them."""
    import torch

    with torch.no_grad():
        scale = layer.weight_scale()
        fake = layer.quantized_weight(scale)
        per_row = scale.reshape(-1, *[1] * (fake.dim() - 1))
        codes = torch.round(fake / per_row)
        if not torch.equal(codes * per_row, fake):
            raise HarnessError(f"layer {layer.spec.name}: fake-quantized weights are not integers times their scale")
        bias = layer.bias_codes(input_scale, scale).to(torch.int64).numpy().astype(np.int32)
    return ir_layout(layer.spec, codes.to(torch.int32).numpy()), scale.double().numpy(), bias


def ir_layout(spec: LayerSpec, weights: np.ndarray) -> np.ndarray:
    """torch layout -> docs layout: conv [O][kh][kw][I], depthwise [kh][kw][C], fc [O][I]."""
    if spec.op == "conv2d":
        return np.ascontiguousarray(weights.transpose(0, 2, 3, 1))
    if spec.op == "depthwise_conv2d":
        return np.ascontiguousarray(weights[:, 0].transpose(1, 2, 0))
    return weights


def _zero_weights(spec: LayerSpec, in_channels: int, out_channels: int) -> np.ndarray | None:
    kh, kw = spec.kernel_hw
    shape = {"conv2d": (out_channels, kh, kw, in_channels), "depthwise_conv2d": (kh, kw, out_channels),
             "fully_connected": (out_channels, in_channels)}.get(spec.op)
    return None if shape is None else np.zeros(shape, dtype=np.int32)
