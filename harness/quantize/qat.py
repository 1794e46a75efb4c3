"""Quantization-aware training of a policy, starting from its float graph.

The float graph (harness.frontend.float_graph) has batch norm folded already; its layers (weights
and bias) are fine-tuned with fake quantization, so what is trained is exactly what is lowered.
QATNet runs the architecture's DAG (each layer reads its `sources`: residual adds, pools, fully
connected layers over a flattened map), sharing the graph walk and the weightless ops with the
float network (harness.frontend.float_net). Weights: symmetric, signed, narrow range
+-(2^(b-1)-1), one scale per output channel whose clip ratio is fixed by minimum squared error at
the start (the classifier uses one scale for all outputs, so the argmax of its int32 logits is the
prediction). Bias: rounded to int32 steps of s_in * s_w. Activation outputs:
- relu / relu6: PACT, a learned clip alpha (at most 6 for relu6), then unsigned b-bit fake
  quantization with scale alpha/(2^b-1), zero-point 0;
- linear (no ReLU: a projection, a residual branch before its add): PACT on both sides, a learned
  range [lo, hi] around 0, then b-bit fake quantization with scale (hi-lo)/(2^b-1) and the
  zero-point round(-lo/scale) (docs/integer-arithmetic.md, "Zero-points of activations");
- max_pool: no quantizer of its own: it keeps its input's scale and zero-point, stretched to its
  output bits (the lowering's max_pool_values);
- add: the real sum of its two fake-quantized inputs, then its own output quantizer, so the
  lowering's (m1, m2, shift) are s1/s_out, s2/s_out of exactly these scales.
Input: the policy's fixed scale and zero-point. See docs/quantization.md.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from harness.frontend.float_graph import FloatGraph
from harness.frontend.float_net import ACTIVATIONS, as_map, flatten_hwc, pad, torch_layout, walk, weightless
from harness.frontend.train import Progress, configure_torch, fit, nchw
from harness.quantize.lower import max_pool_quantization, pruned_channels
from harness.policy import InputQuantization, Policy
from harness.zoo.architecture import CONV_OPS, INPUT, Architecture, LayerSpec

CLIP_RATIOS = torch.linspace(0.2, 1.0, 17).tolist()  # candidate clips, fractions of max |v|
MIN_ALPHA = 1e-3
CALIBRATION_VALUES = 200_000  # activation values sampled per layer to initialize alpha
LINEAR_PERCENTILE = 99.9  # a linear output's initial range clips the 0.1 % most extreme values at each end
RELU6_LIMIT = 6.0
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def best_clip_ratio(rows: torch.Tensor, qmin: int | torch.Tensor, qmax: int | torch.Tensor) -> torch.Tensor:
    """Per row of `rows` [R, N], the ratio r in CLIP_RATIOS whose clip c = r * max|row| minimizes
    the squared error of quantizing the row with step c / qmax to integers in [qmin, qmax]
    (qmin, qmax: one value, or one per row)."""
    absmax = rows.abs().amax(dim=1)
    best, best_err = torch.ones_like(absmax), torch.full_like(absmax, float("inf"))
    low, high = (torch.as_tensor(q, dtype=rows.dtype).expand(absmax.shape)[:, None] for q in (qmin, qmax))
    for ratio in CLIP_RATIOS:
        step = (absmax * ratio / high[:, 0]).clamp_min(torch.finfo(torch.float32).tiny)[:, None]
        err = ((torch.clamp(torch.round(rows / step), low, high) * step - rows) ** 2).sum(dim=1)
        better = err < best_err
        best, best_err = torch.where(better, ratio, best), torch.where(better, err, best_err)
    return best


def weight_scale(weight: torch.Tensor, qmax: int | torch.Tensor, clip_ratio: torch.Tensor) -> torch.Tensor:
    """float32 scale per output channel (axis 0): clip_ratio * max|w| / qmax, qmax = 2^(b-1)-1
    (one value, or one per channel). A one-element clip_ratio means one scale (the max over all
    channels, at the largest qmax) shared by every channel. A channel of zeros gets scale 1 (its
    integers are 0 whatever the scale)."""
    absmax = weight.detach().reshape(clip_ratio.numel(), -1).abs().amax(dim=1)
    if clip_ratio.numel() == 1 and isinstance(qmax, torch.Tensor):
        qmax = qmax.max()
    clip = absmax * clip_ratio
    scale = torch.where(clip > 0, clip / qmax, torch.ones_like(clip)).to(torch.float32)
    return scale.expand(weight.shape[0]).contiguous()


def fake_quantize_channels(weight: torch.Tensor, scale: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """Symmetric narrow-range fake quantization of each output channel (axis 0) at its own bits
    (straight-through gradient inside the range); channels of 0 bits become zero."""
    zero_points = torch.zeros(weight.shape[0], dtype=torch.int32)
    distinct = torch.unique(bits).tolist()
    if len(distinct) == 1 and distinct[0] > 0:  # a layer-wise layer: one call, as before channel-wise bits
        qmax = (1 << (distinct[0] - 1)) - 1
        return torch.fake_quantize_per_channel_affine(weight, scale, zero_points, 0, -qmax, qmax)
    result = torch.zeros_like(weight)
    rows = bits.reshape(-1, *[1] * (weight.dim() - 1))
    for b in distinct:
        if b == 0:
            continue
        qmax = (1 << (b - 1)) - 1
        quantized = torch.fake_quantize_per_channel_affine(weight, scale, zero_points, 0, -qmax, qmax)
        result = torch.where(rows == b, quantized, result)
    return result


class QuantLayer(nn.Module):
    """conv2d, depthwise_conv2d or fully_connected with BN folded in: fake-quantized weights
    (per output channel, or one scale when not per_channel) and bias (int32 steps of s_in * s_w).

    `w_bits` is one value, or one per output channel (channel-wise, docs/channelwise.md): each
    channel is fake-quantized at its own bits, and a 0-bit (pruned) channel, like every channel
    of `pruned` (a depthwise layer after a pruned producer), has zero weights and zero bias.
    The weight scale follows the weights during training; the clip ratio that sets it is fixed
    at calibration (minimum squared error)."""

    def __init__(self, spec: LayerSpec, in_channels: int, w_bits: int | tuple[int, ...], per_channel: bool,
                 pruned: np.ndarray | None = None):
        super().__init__()
        self.spec = spec
        if spec.op in CONV_OPS:
            depthwise = spec.op == "depthwise_conv2d"
            out_channels = in_channels if depthwise else spec.out_channels
            self.groups = in_channels if depthwise else 1
            shape = (out_channels, 1 if depthwise else in_channels, *spec.kernel_hw)
        else:
            shape = (spec.out_channels, in_channels)
        self.w_bits = w_bits
        bits = torch.tensor(w_bits if isinstance(w_bits, tuple) else (w_bits,) * shape[0])
        if pruned is not None:
            bits = torch.where(torch.from_numpy(pruned), 0, bits)
        self.register_buffer("channel_bits", bits, persistent=False)  # from the policy, not trained
        self.weight = nn.Parameter(torch.zeros(shape))
        self.bias = nn.Parameter(torch.zeros(shape[0]))
        self.register_buffer("clip_ratio", torch.ones(shape[0] if per_channel else 1))
        self.mixture = None  # a channel-wise search's mix over precisions (harness.search.channelwise)

    @property
    def qmax(self) -> torch.Tensor:
        """2^(b-1) - 1 per output channel (1 for a pruned one: its values are zeroed anyway)."""
        return torch.where(self.channel_bits > 0, (1 << (self.channel_bits.clamp(min=1) - 1)) - 1, 1)

    def weight_scale(self) -> torch.Tensor:
        return weight_scale(self.weight, self.qmax, self.clip_ratio)

    def calibrate(self) -> None:
        """Set the clip ratios to the minimum-error ones for the current weights."""
        rows = self.weight.detach().reshape(self.clip_ratio.numel(), -1)
        qmax = int(self.qmax.max()) if self.clip_ratio.numel() == 1 else self.qmax
        self.clip_ratio.copy_(best_clip_ratio(rows, -qmax, qmax))

    def quantized_weight(self, scale: torch.Tensor) -> torch.Tensor:
        """Fake-quantized weights for per-channel `scale` (straight-through gradient), each
        channel at its bits, pruned channels zero (during a channel-wise search: the mixture's
        expectation over precisions)."""
        if self.mixture is not None:
            return self.mixture.weight(self)
        return fake_quantize_channels(self.weight, scale, self.channel_bits)

    def bias_codes(self, input_scale: float, scale: torch.Tensor) -> torch.Tensor:
        """The int32 bias (as float values): round(b / (s_in * s_w)), saturated; 0 when pruned."""
        codes = torch.clamp(torch.round(self.bias.detach() / (input_scale * scale)), INT32_MIN, INT32_MAX)
        return torch.where(self.channel_bits > 0, codes, 0.0)

    def forward(self, x: torch.Tensor, input_scale: float, fake_quant: bool = True) -> torch.Tensor:
        """The layer on NCHW x (fake_quant False: the float layer, for calibration)."""
        weight, bias = self.weight, self.bias
        if fake_quant:
            scale = self.weight_scale()
            weight = self.quantized_weight(scale)
            codes = self.bias_codes(input_scale, scale)
            bias = self.bias + (codes * (input_scale * scale) - self.bias).detach()
            if self.mixture is not None:
                bias = bias * self.mixture.keep(self)
        elif bool((self.channel_bits == 0).any()):
            keep = (self.channel_bits > 0).to(weight.dtype)
            weight, bias = weight * keep.reshape(-1, *[1] * (weight.dim() - 1)), bias * keep
        spec = self.spec
        if spec.op in CONV_OPS:
            return F.conv2d(pad(spec, x), weight, bias, spec.stride_hw, spec.symmetric_padding or 0, groups=self.groups)
        return as_map(F.linear(flatten_hwc(x), weight, bias))


class PACT(nn.Module):
    """ReLU clipped at a learned alpha, then unsigned `bits`-bit fake quantization.

    The clip is torch.minimum(relu(x), alpha), so alpha receives PACT's gradient (from the
    values clipped to it); the rounding is straight-through."""

    def __init__(self, bits: int, alpha: float = 1.0, limit: float | None = None):
        super().__init__()
        self.bits = bits
        self.limit = limit  # relu6: the clip never exceeds 6
        self.alpha = nn.Parameter(torch.tensor(float(alpha)))

    @property
    def levels(self) -> int:
        return (1 << self.bits) - 1

    def clip(self) -> torch.Tensor:
        return self.alpha.clamp(min=MIN_ALPHA, max=self.limit)

    def scale(self) -> float:
        """alpha / (2^b - 1) in float32: the activation's scale in the integer graph."""
        return (self.clip().detach() / self.levels).item()

    def zero_point(self) -> int:
        return 0

    def initialize(self, values: torch.Tensor) -> None:
        """alpha = the minimum-error clip of sampled float outputs `values`."""
        alpha = float(best_clip_ratio(values[None, :], 0, self.levels)[0] * values.max())
        self.alpha.fill_(min(alpha, self.limit or alpha) if alpha > MIN_ALPHA else 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        clipped = torch.minimum(torch.relu(x), self.clip())
        return torch.fake_quantize_per_tensor_affine(clipped, self.scale(), 0, 0, self.levels)


class LinearQuant(nn.Module):
    """A linear (signed) output: clipped to a learned range [lo, hi] that contains 0 (PACT's clip
    on both sides), then unsigned `bits`-bit fake quantization with a zero-point."""

    def __init__(self, bits: int):
        super().__init__()
        self.bits = bits
        self.low = nn.Parameter(torch.tensor(-1.0))
        self.high = nn.Parameter(torch.tensor(1.0))

    @property
    def levels(self) -> int:
        return (1 << self.bits) - 1

    def _range(self) -> tuple[torch.Tensor, torch.Tensor]:
        low = self.low.clamp(max=0.0)
        return low, torch.maximum(self.high.clamp(min=0.0), low + MIN_ALPHA)

    def scale(self) -> float:
        low, high = self._range()
        return ((high - low).detach() / self.levels).item()

    def zero_point(self) -> int:
        return int(min(max(round(-float(self._range()[0].detach()) / self.scale()), 0), self.levels))

    def initialize(self, values: torch.Tensor) -> None:
        """The range of sampled float outputs `values`, their 0.1 % extremes clipped."""
        low, high = np.percentile(values.numpy(), [100 - LINEAR_PERCENTILE, LINEAR_PERCENTILE])
        self.low.fill_(min(float(low), 0.0))
        self.high.fill_(max(float(high), float(low) + MIN_ALPHA, MIN_ALPHA))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low, high = self._range()
        clipped = torch.maximum(torch.minimum(x, high), low)
        return torch.fake_quantize_per_tensor_affine(clipped, self.scale(), self.zero_point(), 0, self.levels)


def output_quantizer(spec: LayerSpec, bits: int) -> nn.Module:
    """The fake quantization of a layer's output activation."""
    if spec.activation == "linear":
        return LinearQuant(bits)
    return PACT(bits, limit=RELU6_LIMIT if spec.activation == "relu6" else None)


class InputQuant(nn.Module):
    """The network input's fixed fake quantization (scale and zero-point from the policy)."""

    def __init__(self, quant: InputQuantization):
        super().__init__()
        self.quant = quant

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = self.quant
        return torch.fake_quantize_per_tensor_affine(x, q.scale, q.zero_point, 0, q.levels)


class QATNet(nn.Module):
    """The fake-quant model of a policy; inputs NCHW in the real domain, output real logits."""

    def __init__(self, arch: Architecture, policy: Policy):
        super().__init__()
        self.arch = arch
        self.input_quant = InputQuant(policy.input)
        self.layers = nn.ModuleDict()
        self.activations = nn.ModuleDict()
        self.bits = {INPUT: policy.input.bits} | {spec.name: policy.layers[spec.name].a_bits for spec in arch.layers}
        in_channels = arch.input_channels()
        pruned = pruned_channels(arch, policy)
        for spec in arch.layers:
            bits = policy.layers[spec.name]
            if spec.has_weights:
                per_channel = spec.name != arch.classifier
                inherited = pruned.get(arch.sources(spec)[0]) if spec.op == "depthwise_conv2d" else None
                self.layers[spec.name] = QuantLayer(spec, in_channels[spec.name], bits.w_bits, per_channel, inherited)
            if bits.a_bits is not None and spec.op != "max_pool":
                self.activations[spec.name] = output_quantizer(spec, bits.a_bits)

    def tensor_quantization(self) -> dict[str, tuple[float, int]]:
        """(scale, zero-point) of the input ("input") and of every quantized activation, by
        producing layer (the classifier's int32 logits have none)."""
        q = self.input_quant.quant
        result = {INPUT: (q.scale, q.zero_point)}
        for spec in self.arch.layers:
            if spec.name in self.activations:
                quant = self.activations[spec.name]
                result[spec.name] = (quant.scale(), quant.zero_point())
            elif spec.op == "max_pool":
                source = self.arch.sources(spec)[0]
                result[spec.name] = max_pool_quantization(*result[source], self.bits[source], self.bits[spec.name])
        return result

    def tensor_scales(self) -> dict[str, float]:
        """Scale of the input ("input") and of every quantized activation, by producing layer."""
        return {name: scale for name, (scale, _) in self.tensor_quantization().items()}

    def values(self, x: torch.Tensor, fake_quant: bool = True) -> dict[str, torch.Tensor]:
        """Every tensor by name (NCHW): fake-quantized, or (fake_quant False) the float network of
        the same weights, activations as the specs say (to calibrate the quantizers)."""
        quantization = self.tensor_quantization() if fake_quant else {}

        def layer(spec: LayerSpec, inputs: list[torch.Tensor]) -> torch.Tensor:
            if spec.has_weights:
                source = self.arch.sources(spec)[0]
                y = self.layers[spec.name](inputs[0], quantization.get(source, (1.0, 0))[0], fake_quant)
            else:
                y = weightless(spec, inputs)
            if spec.name == self.arch.classifier:
                return y
            if spec.op == "max_pool":
                if not fake_quant:
                    return y
                scale, zero_point = quantization[spec.name]
                return torch.fake_quantize_per_tensor_affine(y, scale, zero_point, 0, (1 << self.bits[spec.name]) - 1)
            return self.activations[spec.name](y) if fake_quant else ACTIVATIONS[spec.activation](y)

        return walk(self.arch, self.input_quant(x) if fake_quant else x, layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.values(x)[self.arch.classifier].flatten(1)


@torch.no_grad()
def from_float_graph(float_graph: FloatGraph, policy: Policy, calibration: torch.Tensor) -> QATNet:
    """A QATNet with the float graph's weights, minimum-error weight clips, and each output
    quantizer set from the float activations on `calibration` (NCHW, real domain)."""
    net = QATNet(float_graph.architecture, policy)
    for name, layer in net.layers.items():
        float_layer = float_graph.layers[name]
        layer.weight.copy_(torch.from_numpy(torch_layout(layer.spec, np.asarray(float_layer.weight, np.float32))))
        layer.bias.copy_(torch.from_numpy(np.asarray(float_layer.bias, np.float32)))
        layer.calibrate()
    outputs = net.values(calibration, fake_quant=False)
    for name, quant in net.activations.items():
        values = outputs[name].flatten()
        quant.initialize(values[:: max(1, values.numel() // CALIBRATION_VALUES)])
    return net


def run_qat(policy: Policy, float_graph: FloatGraph, train_images: np.ndarray, train_labels: np.ndarray,
            progress: Progress | None = None) -> QATNet:
    """Calibrate and fine-tune the policy's fake-quant model on images NHWC (float, the model's
    real domain) and their labels; deterministic given the policy's QAT seed."""
    configure_torch(policy.qat.seed)
    net = from_float_graph(float_graph, policy, nchw(train_images))
    fit(net, net.parameters(), train_images, train_labels, policy.qat.epochs, policy.qat.lr, policy.qat.seed, progress,
        f"QAT of {policy.name}")
    return net
