"""The one float network: any architecture (harness.zoo.architecture) as a torch module, and
its float graph (harness.frontend.float_graph) with batch norm folded.

`FloatNet(arch)` runs every spec op on NCHW inputs in the model's real domain: conv2d and
depthwise_conv2d (any kernel, (sh, sw) strides, four-sided padding through F.pad), fully
connected (over a 1 x 1 x C vector or an H x W x C map, flattened in H, W, C order as the IR
reads it), global_avg_pool, avg_pool (padding counts as zeros), max_pool (padding never wins),
add, and the relu / relu6 / linear activations. Its state_dict convention, the one every
checkpoint follows:

- a convolution is `layers.<name>.0` (Conv2d, no bias) + `layers.<name>.1` (BatchNorm2d);
- a hidden fully connected layer is `layers.<name>.0` (Linear) + `layers.<name>.1` (BatchNorm1d);
- the classifier is `layers.<name>` (Linear).

max_pool applies no activation: it keeps its input's range (docs/integer-arithmetic.md).
The graph walk and the weightless ops are shared with the fake-quant model (harness.quantize.qat).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from harness.errors import HarnessError
from harness.frontend.float_graph import FloatGraph, FloatLayer
from harness.policy import Policy
from harness.zoo.architecture import CONV_OPS, INPUT, Architecture, LayerSpec

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": F.relu, "relu6": lambda x: torch.clamp(x, 0.0, 6.0), "linear": lambda x: x}
OLD_PREFIX = "blocks."  # the state_dict prefix of checkpoints from before the one convention


def conv_module(spec: LayerSpec, in_channels: int, bias: bool) -> nn.Conv2d:
    """The torch convolution of a conv2d or depthwise_conv2d spec (padding applied by `pad`
    when it is not symmetric)."""
    depthwise = spec.op == "depthwise_conv2d"
    out_channels = in_channels if depthwise else spec.out_channels
    return nn.Conv2d(in_channels, out_channels, spec.kernel_hw, spec.stride_hw, spec.symmetric_padding or 0,
                     groups=in_channels if depthwise else 1, bias=bias)


def pad(spec: LayerSpec, x: torch.Tensor, value: float = 0.0, always: bool = False) -> torch.Tensor:
    """x padded (top, left, bottom, right) by the spec, when torch's own symmetric padding cannot
    do it (or `always`)."""
    if spec.symmetric_padding is not None and not always:
        return x
    top, left, bottom, right = spec.padding_tlbr
    return F.pad(x, (left, right, top, bottom), value=value) if any(spec.padding_tlbr) else x


def flatten_hwc(x: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] -> [N, H * W * C] in H, W, C order (the IR's NHWC memory order)."""
    return x.permute(0, 2, 3, 1).flatten(1)


def as_map(x: torch.Tensor) -> torch.Tensor:
    """[N, C] -> [N, C, 1, 1]: every layer output is a feature map."""
    return x.reshape(*x.shape, 1, 1)


def weightless(spec: LayerSpec, inputs: list[torch.Tensor]) -> torch.Tensor:
    """The pools and add, exactly as the IR defines them (before any activation)."""
    if spec.op == "global_avg_pool":
        return inputs[0].mean(dim=(2, 3), keepdim=True)
    if spec.op == "avg_pool":  # padded taps are zeros, the divisor always kh * kw
        return F.avg_pool2d(pad(spec, inputs[0], always=True), spec.kernel_hw, spec.stride_hw)
    if spec.op == "max_pool":  # padded taps take no part
        return F.max_pool2d(pad(spec, inputs[0], float("-inf"), always=True), spec.kernel_hw, spec.stride_hw)
    if spec.op == "add":
        return inputs[0] + inputs[1]
    raise ValueError(f"{spec.name}: {spec.op} has weights")


def walk(arch: Architecture, x: torch.Tensor,
         layer: Callable[[LayerSpec, list[torch.Tensor]], torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every tensor of the architecture by name ("input" included): each layer applied to the
    tensors its `sources` name."""
    values = {INPUT: x}
    for spec in arch.layers:
        values[spec.name] = layer(spec, [values[source] for source in arch.sources(spec)])
    return values


class FloatNet(nn.Module):
    """The float model of an architecture; inputs NCHW in the real domain, output the logits."""

    def __init__(self, arch: Architecture):
        super().__init__()
        self.arch = arch
        in_channels, shapes = arch.input_channels(), arch.shapes()
        self.layers = nn.ModuleDict()
        for spec in arch.layers:
            if spec.op in CONV_OPS:
                conv = conv_module(spec, in_channels[spec.name], bias=False)
                self.layers[spec.name] = nn.Sequential(conv, nn.BatchNorm2d(conv.out_channels))
            elif spec.op == "fully_connected":
                linear = nn.Linear(in_channels[spec.name], shapes[spec.name][2])
                self.layers[spec.name] = linear if spec.name == arch.classifier else \
                    nn.Sequential(linear, nn.BatchNorm1d(linear.out_features))

    def _layer(self, spec: LayerSpec, inputs: list[torch.Tensor]) -> torch.Tensor:
        if spec.op in CONV_OPS:
            y = self.layers[spec.name](pad(spec, inputs[0]))
        elif spec.op == "fully_connected":
            y = as_map(self.layers[spec.name](flatten_hwc(inputs[0])))
        else:
            y = weightless(spec, inputs)
        if spec.name == self.arch.classifier or spec.op == "max_pool":
            return y
        return ACTIVATIONS[spec.activation](y)

    def activations(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every layer's output by name (NCHW, after its activation; the classifier's is the logits)."""
        values = walk(self.arch, x, self._layer)
        del values[INPUT]
        return values

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activations(x)[self.arch.classifier].flatten(1)


def fold_batch_norm(conv: nn.Conv2d | nn.Linear, bn: nn.BatchNorm2d | nn.BatchNorm1d) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights and bias of the convolution (or linear layer) followed by BN in eval mode (running statistics)."""
    gain = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    weight = conv.weight * gain.reshape(-1, *[1] * (conv.weight.dim() - 1))
    bias = bn.bias - bn.running_mean * gain
    if conv.bias is not None:
        bias = bias + conv.bias * gain
    return weight.detach(), bias.detach()


def ir_layout(spec: LayerSpec, weights: np.ndarray) -> np.ndarray:
    """torch layout -> docs layout: conv [O][kh][kw][I], depthwise [kh][kw][C], fc [O][I]."""
    if spec.op == "conv2d":
        return np.ascontiguousarray(weights.transpose(0, 2, 3, 1))
    if spec.op == "depthwise_conv2d":
        return np.ascontiguousarray(weights[:, 0].transpose(1, 2, 0))
    return weights


def torch_layout(spec: LayerSpec, weights: np.ndarray) -> np.ndarray:
    """docs layout -> torch layout (the inverse of ir_layout)."""
    if spec.op == "conv2d":
        return np.ascontiguousarray(weights.transpose(0, 3, 1, 2))
    if spec.op == "depthwise_conv2d":
        return np.ascontiguousarray(weights.transpose(2, 0, 1)[:, None])
    return weights


@torch.no_grad()
def float_graph(net: FloatNet, source: str, notes: tuple[str, ...] = ()) -> FloatGraph:
    """The float graph of a FloatNet: batch norm folded (running statistics), IR layouts."""
    layers = {}
    for spec in net.arch.layers:
        if not spec.has_weights:
            continue
        block = net.layers[spec.name]
        weight, bias = (block.weight.detach(), block.bias.detach()) if isinstance(block, nn.Linear) else \
            fold_batch_norm(block[0], block[1])
        layers[spec.name] = FloatLayer(ir_layout(spec, weight.double().numpy()), bias.double().numpy())
    return FloatGraph(net.arch, layers, source, notes)


def load_checkpoint(arch: Architecture, path: str | Path) -> FloatNet:
    """A FloatNet with the state_dict saved at `path` (or under its "state_dict" key), in eval
    mode; keys `blocks.*` of older checkpoints read as `layers.*`."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many error types for a missing, foreign or truncated file
        raise HarnessError(f"{path}: cannot load checkpoint: {str(error).splitlines()[0][:200]}") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise HarnessError(f"{path}: not a state_dict")
    state = {("layers." + key[len(OLD_PREFIX):] if key.startswith(OLD_PREFIX) else key): value
             for key, value in state.items()}
    net = FloatNet(arch)
    expected = net.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    if missing or unexpected:
        raise HarnessError(f"{path}: does not match {arch.name}: missing {missing[:3]}{'...' if len(missing) > 3 else ''}"
                           f", unexpected {unexpected[:3]}{'...' if len(unexpected) > 3 else ''}")
    try:
        net.load_state_dict(state)
    except RuntimeError as error:
        raise HarnessError(f"{path}: does not match {arch.name}: {str(error).splitlines()[-1].strip()}") from None
    return net.eval()


def real_inputs(policy: Policy, inputs: np.ndarray) -> torch.Tensor:
    """Integer inputs [N, H, W, C] as the float network sees them: (q - z) * s, NCHW."""
    q = policy.input
    return torch.from_numpy(((inputs.astype(np.float64) - q.zero_point) * q.scale).astype(np.float32)).permute(0, 3, 1, 2)


def checkpoint_float_graph(arch: Architecture, path: str | Path) -> FloatGraph:
    """The float graph of a checkpoint of `arch` (state_dict keys as FloatNet's)."""
    return float_graph(load_checkpoint(arch, path), f"checkpoint {path}")
