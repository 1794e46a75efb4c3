"""Two CNNs for MNIST 28x28 (harness.datasets.registry `mnist`), built from the ops every stage
handles: convolutions (a strided 2x2 convolution stands in for pooling), a global average pool
over a 1x1 map (the flatten) and the classifier.

- lenet5-mnist, LeNet-5's layout (LeCun et al. 1998): 5x5 conv (8) -> 2x2/2 conv -> 5x5 conv (16)
  -> 2x2/2 conv -> 5x5 conv to 1x1 (120) -> 1x1 conv (84) -> pool -> fc (10); about 62 k weights,
  0.6 M multiply-accumulates.
- dsnet-mnist, depthwise-separable: 3x3 conv (16) then three (depthwise 3x3/2, pointwise) blocks
  doubling the channels (32, 64, 128) -> pool -> fc (10); about 12 k weights, 0.5 M MACs.
"""
from __future__ import annotations

from harness.zoo import register
from harness.zoo.architecture import Architecture, LayerSpec

MNIST_SHAPE = (28, 28, 1)


@register("lenet5-mnist")
def lenet5_mnist(num_classes: int = 10) -> Architecture:
    return Architecture(
        name="lenet5-mnist",
        input_shape=MNIST_SHAPE,
        layers=(
            LayerSpec("c1", "conv2d", 8, kernel=5, padding=2),
            LayerSpec("s2", "conv2d", 8, kernel=2, stride=2),
            LayerSpec("c3", "conv2d", 16, kernel=5),
            LayerSpec("s4", "conv2d", 16, kernel=2, stride=2),
            LayerSpec("c5", "conv2d", 120, kernel=5),
            LayerSpec("f6", "conv2d", 84),
            LayerSpec("flatten", "global_avg_pool"),
            LayerSpec("fc", "fully_connected", num_classes),
        ),
        dataset="mnist",
    )


@register("dsnet-mnist")
def dsnet_mnist(width: int = 16, num_classes: int = 10) -> Architecture:
    """`width` channels after the first conv, doubled by each pointwise layer."""
    if width < 1:
        raise ValueError("width >= 1 is required")
    layers = [LayerSpec("conv1", "conv2d", width, kernel=3, padding=1)]
    for block in (1, 2, 3):
        layers += [LayerSpec(f"dw{block}", "depthwise_conv2d", kernel=3, stride=2, padding=1),
                   LayerSpec(f"pw{block}", "conv2d", width << block)]
    layers += [LayerSpec("pool", "global_avg_pool"), LayerSpec("fc", "fully_connected", num_classes)]
    return Architecture(name="dsnet-mnist", input_shape=MNIST_SHAPE, layers=tuple(layers), dataset="mnist")
