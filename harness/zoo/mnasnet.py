"""MNasNet-B1 (Tan et al. 2019), the variant without squeeze-and-excitation: torchvision's
`mnasnet1_0` layer for layer (ReLU, inverted residuals with 3x3 and 5x5 depthwise layers),
batch-norm folded. Depths scale with `width` as torchvision's `_get_depths`."""
from __future__ import annotations

from harness.zoo import register
from harness.zoo.architecture import Architecture, LayerSpec
from harness.zoo.mobilenet import inverted_residual, make_divisible

MNASNET_WIDTHS = (0.5, 0.75, 1.0)
BASE_DEPTHS = (32, 16, 24, 40, 80, 96, 192, 320)
# (kernel, first stride, expansion, repeats) of the six stacks, outputs BASE_DEPTHS[2:]
MNASNET_STACKS = ((3, 2, 3, 3), (5, 2, 3, 3), (5, 2, 6, 3), (3, 1, 6, 2), (5, 2, 6, 4), (3, 1, 6, 1))


@register("mnasnet")
def mnasnet(width: float = 1.0, resolution: int = 224, num_classes: int = 1000) -> Architecture:
    """MNasNet-B1 at `width` in MNASNET_WIDTHS (1.0 is torchvision's mnasnet1_0)."""
    if width not in MNASNET_WIDTHS:
        raise ValueError(f"width must be one of {MNASNET_WIDTHS}, got {width}")
    if not 32 <= resolution <= 512 or resolution % 32 or num_classes < 2:
        raise ValueError("resolution must be a multiple of 32 in 32 .. 512 and num_classes >= 2")
    depths = [make_divisible(d * width, 8) for d in BASE_DEPTHS]
    layers = [
        LayerSpec("conv1", "conv2d", depths[0], kernel=3, stride=2, padding=1),
        LayerSpec("dw1", "depthwise_conv2d", kernel=3, stride=1, padding=1),
        LayerSpec("pw1", "conv2d", depths[1], activation="linear"),
    ]
    channels, block = depths[1], 0
    for (kernel, stride, expansion, repeats), out in zip(MNASNET_STACKS, depths[2:]):
        for repeat in range(repeats):
            block += 1
            layers += inverted_residual(f"b{block}", layers[-1].name, channels, out, expansion, kernel,
                                        stride if repeat == 0 else 1, "relu")
            channels = out
    layers += [LayerSpec("conv_last", "conv2d", 1280), LayerSpec("pool", "global_avg_pool"),
               LayerSpec("fc", "fully_connected", num_classes)]
    return Architecture(f"mnasnet_{width}_{resolution}", (resolution, resolution, 3), tuple(layers))
