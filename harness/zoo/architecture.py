"""A model architecture as data: layers in execution order, each reading the previous layer
or named earlier layers (residual networks: `add` reads two).

The same description drives float training (harness.frontend.train.FloatNet), quantization-aware
training, lowering to the integer IR and the memory model, so a zoo model is written once, as a
list of LayerSpec. No torch here: validating a policy and the memory model stay light.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.ir.graph import conv_output_size, pair, padding_tlbr

CONV_OPS = ("conv2d", "depthwise_conv2d")
POOL_OPS = ("avg_pool", "max_pool")  # sliding windows that keep the channels
SPEC_OPS = CONV_OPS + ("global_avg_pool", "fully_connected", "add") + POOL_OPS
WEIGHTLESS_OPS = ("global_avg_pool", "add") + POOL_OPS
# What follows a layer's output (the classifier has none: int32 logits). "relu": unsigned
# activations; "relu6": the same, clipped at 6; "linear": signed real values, stored unsigned
# with a zero-point (docs/integer-arithmetic.md, "Zero-points of activations").
ACTIVATIONS = ("relu", "relu6", "linear")
INPUT = "input"


@dataclass(frozen=True)
class LayerSpec:
    """One layer. `out_channels` is ignored by ops that keep the channel count (depthwise_conv2d,
    global_avg_pool, the pools, add). `inputs` names the layers read ("input" is the network
    input); empty means the previous layer. `activation` is one of ACTIVATIONS.
    A fully_connected layer may read an H x W x C tensor: it sees it flattened in H, W, C order
    (NHWC memory order), so its weights are [O][H * W * C]. max_pool applies no activation: it
    keeps its input's range (docs/integer-arithmetic.md, "max_pool")."""

    name: str
    op: str
    out_channels: int = 0
    kernel: int | tuple[int, int] = 1  # k, or (kh, kw)
    stride: int | tuple[int, int] = 1  # s, or (sh, sw)
    # p; (rows above and below, columns left and right); or (top, left, bottom, right)
    padding: int | tuple[int, int] | tuple[int, int, int, int] = 0
    inputs: tuple[str, ...] = ()
    activation: str = "relu"

    @property
    def has_weights(self) -> bool:
        return self.op not in WEIGHTLESS_OPS

    @property
    def kernel_hw(self) -> tuple[int, int]:
        return pair(self.kernel)

    @property
    def stride_hw(self) -> tuple[int, int]:
        return pair(self.stride)

    @property
    def padding_tlbr(self) -> tuple[int, int, int, int]:
        """Padding as (top, left, bottom, right), the IR's order."""
        return padding_tlbr(self.padding)

    @property
    def symmetric_padding(self) -> tuple[int, int] | None:
        """(rows, columns) when top = bottom and left = right (what torch's conv takes), else None."""
        top, left, bottom, right = self.padding_tlbr
        return (top, left) if (top, left) == (bottom, right) else None


@dataclass(frozen=True)
class Architecture:
    """Layers in execution order from an H x W x C input to the classifier's logits (the last
    layer); each reads the previous layer unless its `inputs` say otherwise."""

    name: str
    input_shape: tuple[int, int, int]
    layers: tuple[LayerSpec, ...]
    dataset: str | None = None  # the dataset spec (harness.datasets.registry) it is trained on here

    def __post_init__(self) -> None:
        unknown = [spec.op for spec in self.layers if spec.op not in SPEC_OPS]
        if unknown:
            raise ValueError(f"{self.name}: unknown layer ops {unknown}")
        if not self.layers or self.layers[-1].op != "fully_connected":
            raise ValueError(f"{self.name}: the last layer must be the fully_connected classifier")
        seen = {INPUT}
        for spec in self.layers:
            sources = self.sources(spec)
            if spec.name in seen or any(source not in seen for source in sources):
                raise ValueError(f"{self.name}: layer {spec.name} is a duplicate or reads a later layer {sources}")
            if len(sources) != (2 if spec.op == "add" else 1) or spec.activation not in ACTIVATIONS:
                raise ValueError(f"{self.name}: layer {spec.name}: bad inputs {sources} or activation")
            seen.add(spec.name)

    @property
    def classifier(self) -> str:
        return self.layers[-1].name

    @property
    def num_classes(self) -> int:
        return self.layers[-1].out_channels

    def sources(self, spec: LayerSpec) -> tuple[str, ...]:
        """The tensors a layer reads: its `inputs`, or the previous layer's output."""
        if spec.inputs:
            return spec.inputs
        index = self.layers.index(spec)
        return (self.layers[index - 1].name if index else INPUT,)

    def shapes(self) -> dict[str, tuple[int, int, int]]:
        """H x W x C of the input ("input") and of every layer's output (by layer name)."""
        shapes = {INPUT: self.input_shape}
        for spec in self.layers:
            sources = self.sources(spec)
            h, w, c = shapes[sources[0]]
            if spec.op == "add":
                if len({shapes[source] for source in sources}) != 1:
                    raise ValueError(f"{self.name}: add {spec.name} of shapes {[shapes[s] for s in sources]}")
            elif spec.op in CONV_OPS + POOL_OPS:
                (kh, kw), (sh, sw), (pt, pl, pb, pr) = spec.kernel_hw, spec.stride_hw, spec.padding_tlbr
                h = conv_output_size(h, kh, sh, pt, pb)
                w = conv_output_size(w, kw, sw, pl, pr)
                c = spec.out_channels if spec.op == "conv2d" else c
            elif spec.op == "global_avg_pool":
                h = w = 1
            else:
                h = w = 1
                c = spec.out_channels
            shapes[spec.name] = (h, w, c)
        return shapes

    def input_channels(self) -> dict[str, int]:
        """Channels each layer reads (its first input's); a fully_connected layer reads its whole
        input flattened, H * W * C values."""
        shapes = self.shapes()
        return {spec.name: int(np.prod(shapes[self.sources(spec)[0]])) if spec.op == "fully_connected"
                else shapes[self.sources(spec)[0]][2] for spec in self.layers}
