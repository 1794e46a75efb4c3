"""MobileNetV1 (Howard et al. 2017) and MobileNetV2 (Sandler et al. 2018) with their real layer
shapes, for ImageNet (1000 classes) or any other head.

Batch-norm is folded into each convolution (one bias per output channel). Channel counts follow
the reference implementations: MobileNetV1 `int(c * width)` (Keras `alpha`); MobileNetV2
torchvision's `_make_divisible(c * width, 8)`, with the last 1x1 conv at 1280 channels up to
width 1.0. Convolutions pad symmetrically (k // 2), as torch does; TensorFlow's "same" pads
stride-2 layers at the bottom/right only, which changes no shape and no count.
"""
from __future__ import annotations

from harness.zoo import register
from harness.zoo.architecture import Architecture, LayerSpec

MOBILENET_V1_WIDTHS = (0.25, 0.5, 0.75, 1.0)
MOBILENET_V1_RESOLUTIONS = (128, 160, 192, 224)
# (output channels, stride) of the 13 depthwise-separable blocks
MOBILENET_V1_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
                       (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))
MOBILENET_V2_WIDTHS = (0.35, 0.5, 0.75, 1.0)
# (expansion t, output channels c, repeats n, first stride s) of the inverted-residual stages
MOBILENET_V2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                       (6, 160, 3, 2), (6, 320, 1, 1))


def make_divisible(value: float, divisor: int = 8) -> int:
    """torchvision's _make_divisible: round to a multiple of divisor, never below 90 % of value."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _check(width: float, widths: tuple[float, ...], resolution: int, num_classes: int) -> None:
    if width not in widths:
        raise ValueError(f"width must be one of {widths}, got {width}")
    if not 32 <= resolution <= 512 or resolution % 32:
        raise ValueError(f"resolution must be a multiple of 32 in 32 .. 512, got {resolution}")
    if num_classes < 2:
        raise ValueError("num_classes must be >= 2")


def mobilenet_v1_layers(width: float) -> list[LayerSpec]:
    """The convolutional body: 3x3 stem, 13 depthwise + pointwise blocks, global average pool."""
    layers = [LayerSpec("conv1", "conv2d", int(32 * width), kernel=3, stride=2, padding=1)]
    for index, (channels, stride) in enumerate(MOBILENET_V1_BLOCKS, start=1):
        layers += [LayerSpec(f"dw{index}", "depthwise_conv2d", kernel=3, stride=stride, padding=1),
                   LayerSpec(f"pw{index}", "conv2d", int(channels * width))]
    return layers + [LayerSpec("pool", "global_avg_pool")]


@register("mobilenet_v1")
def mobilenet_v1(width: float = 0.25, resolution: int = 128, num_classes: int = 1000) -> Architecture:
    """MobileNetV1 at `width` (alpha) in MOBILENET_V1_WIDTHS and input `resolution`."""
    _check(width, MOBILENET_V1_WIDTHS, resolution, num_classes)
    layers = mobilenet_v1_layers(width) + [LayerSpec("fc", "fully_connected", num_classes)]
    return Architecture(f"mobilenet_v1_{width}_{resolution}", (resolution, resolution, 3), tuple(layers))


def inverted_residual(name: str, source: str, in_channels: int, out_channels: int, expansion: int, kernel: int,
                      stride: int, activation: str) -> list[LayerSpec]:
    """Expand 1x1 (skipped when expansion is 1) -> depthwise k x k -> linear project 1x1, plus the
    residual add when the block keeps its shape (MobileNetV2 and MNasNet)."""
    hidden = in_channels * expansion
    layers = []
    if expansion != 1:
        layers.append(LayerSpec(f"{name}_expand", "conv2d", hidden, inputs=(source,), activation=activation))
    layers += [
        LayerSpec(f"{name}_dw", "depthwise_conv2d", kernel=kernel, stride=stride, padding=kernel // 2,
                  inputs=() if layers else (source,), activation=activation),
        LayerSpec(f"{name}_project", "conv2d", out_channels, activation="linear"),
    ]
    if stride == 1 and in_channels == out_channels:
        layers.append(LayerSpec(f"{name}_add", "add", inputs=(source, f"{name}_project"), activation="linear"))
    return layers


@register("mobilenet_v2")
def mobilenet_v2(width: float = 0.35, resolution: int = 96, num_classes: int = 1000) -> Architecture:
    """MobileNetV2 at `width` in MOBILENET_V2_WIDTHS (ReLU6, linear bottlenecks, residual adds)."""
    _check(width, MOBILENET_V2_WIDTHS, resolution, num_classes)
    channels = make_divisible(32 * width)
    layers = [LayerSpec("conv1", "conv2d", channels, kernel=3, stride=2, padding=1, activation="relu6")]
    block = 0
    for expansion, out, repeats, first_stride in MOBILENET_V2_STAGES:
        out_channels = make_divisible(out * width)
        for repeat in range(repeats):
            block += 1
            layers += inverted_residual(f"b{block}", layers[-1].name, channels, out_channels, expansion, 3,
                                        first_stride if repeat == 0 else 1, "relu6")
            channels = out_channels
    last = make_divisible(1280 * max(1.0, width))
    layers += [LayerSpec("conv_last", "conv2d", last, activation="relu6"), LayerSpec("pool", "global_avg_pool"),
               LayerSpec("fc", "fully_connected", num_classes)]
    return Architecture(f"mobilenet_v2_{width}_{resolution}", (resolution, resolution, 3), tuple(layers))
