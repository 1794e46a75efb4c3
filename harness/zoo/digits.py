"""digits-cnn: a compact MobileNet-style CNN for scikit-learn's 8x8 digits (upsampled).

Layers: standard 3x3 conv, depthwise 3x3 stride 2, pointwise 1x1, depthwise 3x3, pointwise 1x1,
global average pool, fully connected. With the defaults (16x16 input, width 16) it has about
0.23 M multiply-accumulates and 4 k weights, so it runs in well under a second on an emulated MCU.
"""
from __future__ import annotations

from harness.zoo import register
from harness.zoo.architecture import Architecture, LayerSpec


@register("digits-cnn")
def digits_cnn(width: int = 16, input_size: int = 16, num_classes: int = 10) -> Architecture:
    """`width` channels after the first conv, doubled by each pointwise layer."""
    if width < 1 or input_size < 4 or num_classes < 2:
        raise ValueError("width >= 1, input_size >= 4 and num_classes >= 2 are required")
    return Architecture(
        name="digits-cnn",
        input_shape=(input_size, input_size, 1),
        layers=(
            LayerSpec("conv1", "conv2d", width, kernel=3, stride=1, padding=1),
            LayerSpec("dw1", "depthwise_conv2d", kernel=3, stride=2, padding=1),
            LayerSpec("pw1", "conv2d", 2 * width),
            LayerSpec("dw2", "depthwise_conv2d", kernel=3, stride=1, padding=1),
            LayerSpec("pw2", "conv2d", 4 * width),
            LayerSpec("pool", "global_avg_pool"),
            LayerSpec("fc", "fully_connected", num_classes),
        ),
        dataset="digits",
    )
