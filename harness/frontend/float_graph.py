"""The float graph: what every model source (zoo, checkpoint, ONNX, TFLite, random weights)
hands to the quantizer. An architecture (harness.zoo.architecture) plus the float weights of
each weighted layer, batch norm already folded, in the IR's layouts. Nothing after the front
end asks where a model came from."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from harness.zoo.architecture import Architecture, LayerSpec


def weight_shape(spec: LayerSpec, in_channels: int, out_channels: int) -> tuple[int, ...]:
    """The IR layout's weight shape of a weighted layer (`in_channels`: H * W * C for a fully
    connected layer reading a map, Architecture.input_channels())."""
    kh, kw = spec.kernel_hw
    return {"conv2d": (out_channels, kh, kw, in_channels), "depthwise_conv2d": (kh, kw, out_channels),
            "fully_connected": (out_channels, in_channels)}[spec.op]


@dataclass
class FloatLayer:
    """Float weights in the IR layout (conv [O][kh][kw][I], depthwise [kh][kw][C], fc [O][I],
    where a fully connected layer's I runs over its input flattened in H, W, C order) and the
    bias [O], batch norm folded."""

    weight: np.ndarray
    bias: np.ndarray


@dataclass(frozen=True)
class FloatGraph:
    """An architecture and the float weights of every weighted layer (by layer name).
    `source` says where it came from (for reports); `notes` what the importer changed (e.g. a
    final Softmax dropped)."""

    architecture: Architecture
    layers: dict[str, FloatLayer] = field(repr=False)
    source: str
    notes: tuple[str, ...] = ()
