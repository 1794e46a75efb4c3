"""A model architecture as data: a chain of MobileNet-style layers.

The same description drives float training (harness.train.FloatNet), quantization-aware
training, lowering to the integer IR and the memory model, so a zoo model is written once, as a
list of LayerSpec. No torch here: validating a policy and the memory model stay light.
"""
from __future__ import annotations

from dataclasses import dataclass

from harness.ir import conv_output_size

CONV_OPS = ("conv2d", "depthwise_conv2d")
SPEC_OPS = CONV_OPS + ("global_avg_pool", "fully_connected")


@dataclass(frozen=True)
class LayerSpec:
    """One layer. Convolutions use symmetric padding; `out_channels` is ignored by ops that keep
    the channel count (depthwise_conv2d, global_avg_pool)."""

    name: str
    op: str
    out_channels: int = 0
    kernel: int = 1
    stride: int = 1
    padding: int = 0

    @property
    def has_weights(self) -> bool:
        return self.op != "global_avg_pool"


@dataclass(frozen=True)
class Architecture:
    """A chain of layers from an H x W x C input to the classifier's logits (the last layer)."""

    name: str
    input_shape: tuple[int, int, int]
    layers: tuple[LayerSpec, ...]

    def __post_init__(self) -> None:
        unknown = [spec.op for spec in self.layers if spec.op not in SPEC_OPS]
        if unknown:
            raise ValueError(f"{self.name}: unknown layer ops {unknown}")
        if not self.layers or self.layers[-1].op != "fully_connected":
            raise ValueError(f"{self.name}: the last layer must be the fully_connected classifier")

    @property
    def classifier(self) -> str:
        return self.layers[-1].name

    @property
    def num_classes(self) -> int:
        return self.layers[-1].out_channels

    def shapes(self) -> dict[str, tuple[int, int, int]]:
        """H x W x C of the input ("input") and of every layer's output (by layer name)."""
        shapes = {"input": self.input_shape}
        h, w, c = self.input_shape
        for spec in self.layers:
            if spec.op in CONV_OPS:
                h = conv_output_size(h, spec.kernel, spec.stride, spec.padding, spec.padding)
                w = conv_output_size(w, spec.kernel, spec.stride, spec.padding, spec.padding)
                c = spec.out_channels if spec.op == "conv2d" else c
            elif spec.op == "global_avg_pool":
                h = w = 1
            else:
                h = w = 1
                c = spec.out_channels
            shapes[spec.name] = (h, w, c)
        return shapes

    def input_channels(self) -> dict[str, int]:
        """Channels each layer reads."""
        shapes = self.shapes()
        previous = ["input"] + [spec.name for spec in self.layers[:-1]]
        return {spec.name: shapes[prev][2] for spec, prev in zip(self.layers, previous)}
