"""Quantization-aware training of a policy, starting from the float checkpoint.

Batch-norm is folded into the convolutions once, before QAT; the folded convolutions (weights
and bias) are then fine-tuned with fake quantization, so what is trained is exactly what is
lowered. Weights: symmetric, signed, narrow range +-(2^(b-1)-1), one scale per output channel
whose clip ratio is fixed by minimum squared error at the start (the classifier uses one scale
for all outputs, so the argmax of its int32 logits is the prediction). Bias: rounded to int32
steps of s_in * s_w. Activations: PACT, a learned clip alpha, then unsigned b-bit fake
quantization with scale alpha/(2^b-1). Input: the policy's fixed scale and zero-point.
See docs/quantization.md.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from harness.policy import InputQuantization, Policy
from harness.frontend.train import FloatNet, Progress, configure_torch, fit, nchw, training_split
from harness.zoo.architecture import CONV_OPS, Architecture, LayerSpec

CLIP_RATIOS = torch.linspace(0.2, 1.0, 17).tolist()  # candidate clips, fractions of max |v|
MIN_ALPHA = 1e-3
CALIBRATION_VALUES = 200_000  # activation values sampled per layer to initialize alpha
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def best_clip_ratio(rows: torch.Tensor, qmin: int, qmax: int) -> torch.Tensor:
    """Per row of `rows` [R, N], the ratio r in CLIP_RATIOS whose clip c = r * max|row| minimizes
    the squared error of quantizing the row with step c / qmax to integers in [qmin, qmax]."""
    absmax = rows.abs().amax(dim=1)
    best, best_err = torch.ones_like(absmax), torch.full_like(absmax, float("inf"))
    for ratio in CLIP_RATIOS:
        step = (absmax * ratio / qmax).clamp_min(torch.finfo(torch.float32).tiny)[:, None]
        err = ((torch.clamp(torch.round(rows / step), qmin, qmax) * step - rows) ** 2).sum(dim=1)
        better = err < best_err
        best, best_err = torch.where(better, ratio, best), torch.where(better, err, best_err)
    return best


def weight_scale(weight: torch.Tensor, bits: int, clip_ratio: torch.Tensor) -> torch.Tensor:
    """float32 scale per output channel (axis 0): clip_ratio * max|w| / (2^(b-1)-1). A
    one-element clip_ratio means one scale (the max over all channels) shared by every channel.
    A channel of zeros gets scale 1 (its integers are 0 whatever the scale)."""
    qmax = (1 << (bits - 1)) - 1
    absmax = weight.detach().reshape(clip_ratio.numel(), -1).abs().amax(dim=1)
    clip = absmax * clip_ratio
    scale = torch.where(clip > 0, clip / qmax, torch.ones_like(clip))
    return scale.expand(weight.shape[0]).contiguous()


class QuantLayer(nn.Module):
    """conv2d, depthwise_conv2d or fully_connected with BN folded in: fake-quantized weights
    (per output channel, or one scale when not per_channel) and bias (int32 steps of s_in * s_w).

    The weight scale follows the weights during training; the clip ratio that sets it is fixed
    at calibration (minimum squared error)."""

    def __init__(self, spec: LayerSpec, in_channels: int, w_bits: int, per_channel: bool):
        super().__init__()
        self.spec = spec
        self.w_bits = w_bits
        if spec.op in CONV_OPS:
            depthwise = spec.op == "depthwise_conv2d"
            out_channels = in_channels if depthwise else spec.out_channels
            self.groups = in_channels if depthwise else 1
            shape = (out_channels, 1 if depthwise else in_channels, spec.kernel, spec.kernel)
        else:
            shape = (spec.out_channels, in_channels)
        self.weight = nn.Parameter(torch.zeros(shape))
        self.bias = nn.Parameter(torch.zeros(shape[0]))
        self.register_buffer("clip_ratio", torch.ones(shape[0] if per_channel else 1))

    @property
    def qmax(self) -> int:
        return (1 << (self.w_bits - 1)) - 1

    def weight_scale(self) -> torch.Tensor:
        return weight_scale(self.weight, self.w_bits, self.clip_ratio)

    def calibrate(self) -> None:
        """Set the clip ratios to the minimum-error ones for the current weights."""
        rows = self.weight.detach().reshape(self.clip_ratio.numel(), -1)
        self.clip_ratio.copy_(best_clip_ratio(rows, -self.qmax, self.qmax))

    def quantized_weight(self, scale: torch.Tensor) -> torch.Tensor:
        """Fake-quantized weights for per-channel `scale` (straight-through gradient)."""
        zero_points = torch.zeros(self.weight.shape[0], dtype=torch.int32)
        return torch.fake_quantize_per_channel_affine(self.weight, scale, zero_points, 0, -self.qmax, self.qmax)

    def bias_codes(self, input_scale: float, scale: torch.Tensor) -> torch.Tensor:
        """The int32 bias (as float values): round(b / (s_in * s_w)), saturated."""
        return torch.clamp(torch.round(self.bias.detach() / (input_scale * scale)), INT32_MIN, INT32_MAX)

    def forward(self, x: torch.Tensor, input_scale: float) -> torch.Tensor:
        scale = self.weight_scale()
        weight = self.quantized_weight(scale)
        codes = self.bias_codes(input_scale, scale)
        bias = self.bias + (codes * (input_scale * scale) - self.bias).detach()
        if self.spec.op in CONV_OPS:
            return F.conv2d(x, weight, bias, self.spec.stride, self.spec.padding, groups=self.groups)
        return F.linear(x, weight, bias)


class PACT(nn.Module):
    """ReLU clipped at a learned alpha, then unsigned `bits`-bit fake quantization.

    The clip is torch.minimum(relu(x), alpha), so alpha receives PACT's gradient (from the
    values clipped to it); the rounding is straight-through."""

    def __init__(self, bits: int, alpha: float = 1.0):
        super().__init__()
        self.bits = bits
        self.alpha = nn.Parameter(torch.tensor(float(alpha)))

    @property
    def levels(self) -> int:
        return (1 << self.bits) - 1

    def clip(self) -> torch.Tensor:
        return self.alpha.clamp(min=MIN_ALPHA)

    def scale(self) -> float:
        """alpha / (2^b - 1) in float32: the activation's scale in the integer graph."""
        return (self.clip().detach() / self.levels).item()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        clipped = torch.minimum(torch.relu(x), self.clip())
        return torch.fake_quantize_per_tensor_affine(clipped, self.scale(), 0, 0, self.levels)


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
        in_channels = arch.input_channels()
        for spec in arch.layers:
            bits = policy.layers[spec.name]
            if spec.has_weights:
                per_channel = spec.name != arch.classifier
                self.layers[spec.name] = QuantLayer(spec, in_channels[spec.name], bits.w_bits, per_channel)
            if bits.a_bits is not None:
                self.activations[spec.name] = PACT(bits.a_bits)

    def tensor_scales(self) -> dict[str, float]:
        """Scale of the input ("input") and of every quantized activation, by producing layer."""
        scales = {"input": self.input_quant.quant.scale}
        scales.update({name: quant.scale() for name, quant in self.activations.items()})
        return scales

    def input_scale(self, layer: str) -> float:
        """Scale of the tensor `layer` reads."""
        names = [spec.name for spec in self.arch.layers]
        previous = "input" if layer == names[0] else names[names.index(layer) - 1]
        return self.tensor_scales()[previous]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scales = self.tensor_scales()
        x, previous = self.input_quant(x), "input"
        for spec in self.arch.layers:
            if spec.op == "global_avg_pool":
                x = x.mean(dim=(2, 3))
            else:
                x = self.layers[spec.name](x, scales[previous])
            if spec.name in self.activations:
                x = self.activations[spec.name](x)
            previous = spec.name
        return x


def fold_batch_norm(conv: nn.Conv2d | nn.Linear, bn: nn.BatchNorm2d | nn.BatchNorm1d) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights and bias of the convolution (or linear layer) followed by BN in eval mode (running statistics)."""
    gain = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    weight = conv.weight * gain.reshape(-1, *[1] * (conv.weight.dim() - 1))
    bias = bn.bias - bn.running_mean * gain
    if conv.bias is not None:
        bias = bias + conv.bias * gain
    return weight.detach(), bias.detach()


@torch.no_grad()
def from_float(float_net: FloatNet, policy: Policy, calibration: torch.Tensor) -> QATNet:
    """A QATNet with BN-folded float weights, minimum-error weight clips, and each alpha set to
    the minimum-error clip of the float activations on `calibration` (NCHW)."""
    net = QATNet(float_net.arch, policy)
    for name, layer in net.layers.items():
        block = float_net.blocks[name]
        if isinstance(block, nn.Linear):
            weight, bias = block.weight.detach(), block.bias.detach()
        else:
            weight, bias = fold_batch_norm(block[0], block[1])
        layer.weight.copy_(weight)
        layer.bias.copy_(bias)
        layer.calibrate()
    float_net.eval()
    outputs = float_net.activations(calibration)
    for name, quant in net.activations.items():
        values = outputs[name].flatten()
        values = values[:: max(1, values.numel() // CALIBRATION_VALUES)]
        alpha = float(best_clip_ratio(values[None, :], 0, quant.levels)[0] * values.max())
        quant.alpha.fill_(alpha if alpha > MIN_ALPHA else 1.0)
    return net


def run_qat(policy: Policy, float_net: FloatNet, progress: Progress | None = None) -> QATNet:
    """Fold, calibrate and fine-tune the policy's fake-quant model (deterministic given the seed)."""
    configure_torch(policy.qat.seed)
    split = training_split(policy.architecture, policy.data, policy.preprocess)
    train_images = split.real(split.train_images, policy.input)
    net = from_float(float_net, policy, nchw(train_images))
    fit(net, net.parameters(), train_images, split.train_labels, policy.qat.epochs, policy.qat.lr, policy.qat.seed,
        progress)
    return net
