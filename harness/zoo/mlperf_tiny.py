"""The MLPerf Tiny v1.0 reference networks (github.com/mlcommons/tiny, training/), layer for layer,
batch-norm folded:

- `mlperf_ic_resnet8`: image classification, CIFAR-10 32x32x3, ResNet-8 (three residual stacks
  of 16/32/64 channels; the 2nd and 3rd downsample, with a 1x1 stride-2 convolution on the
  shortcut), 8x8 average pool, 10 classes;
- `mlperf_vww_mobilenet`: visual wake words, MobileNetV1 width 0.25 at 96x96x3, 2 classes;
- `mlperf_kws_dscnn`: keyword spotting, DS-CNN on 49x10 MFCC (10x4 stride-2 conv, four
  depthwise-separable blocks of 64 channels, average pool over the whole 25x5 map), 12 classes;
- `mlperf_ad_autoencoder`: anomaly detection, the fully connected autoencoder on 640 log-mel
  values (5 frames x 128 bins): 4 x 128, bottleneck 8, 4 x 128, 640 outputs.

TensorFlow's "same" padding is asymmetric at stride 2; here padding is symmetric with the same
output sizes (DS-CNN's 10x4 stem pads 5 rows and 1 column each side), which changes no count.
"""
from __future__ import annotations

from harness.zoo import register
from harness.zoo.architecture import Architecture, LayerSpec
from harness.zoo.mobilenet import mobilenet_v1_layers

RESNET8_STACKS = ((16, 1), (32, 2), (64, 2))  # (channels, stride of the first conv)
KWS_CLASSES = 12
AUTOENCODER_INPUT = 640
AUTOENCODER_HIDDEN = 128
AUTOENCODER_BOTTLENECK = 8


@register("mlperf_ic_resnet8")
def mlperf_ic_resnet8(num_classes: int = 10) -> Architecture:
    """ResNet-8 for CIFAR-10 (MLPerf Tiny image classification)."""
    layers = [LayerSpec("conv1", "conv2d", 16, kernel=3, padding=1)]
    source, channels = "conv1", 16
    for stack, (out, stride) in enumerate(RESNET8_STACKS, start=1):
        name = f"s{stack}"
        layers += [LayerSpec(f"{name}_conv1", "conv2d", out, kernel=3, stride=stride, padding=1, inputs=(source,)),
                   LayerSpec(f"{name}_conv2", "conv2d", out, kernel=3, padding=1, activation="linear")]
        shortcut = source
        if stride != 1 or out != channels:
            shortcut = f"{name}_shortcut"
            layers.append(LayerSpec(shortcut, "conv2d", out, stride=stride, inputs=(source,), activation="linear"))
        layers.append(LayerSpec(f"{name}_add", "add", inputs=(shortcut, f"{name}_conv2")))
        source, channels = f"{name}_add", out
    layers += [LayerSpec("pool", "avg_pool", kernel=8, stride=8), LayerSpec("fc", "fully_connected", num_classes)]
    return Architecture("mlperf_ic_resnet8", (32, 32, 3), tuple(layers))


@register("mlperf_vww_mobilenet")
def mlperf_vww_mobilenet(resolution: int = 96) -> Architecture:
    """MobileNetV1 0.25 for visual wake words (person / no person)."""
    layers = mobilenet_v1_layers(0.25) + [LayerSpec("fc", "fully_connected", 2)]
    return Architecture("mlperf_vww_mobilenet", (resolution, resolution, 3), tuple(layers))


@register("mlperf_kws_dscnn")
def mlperf_kws_dscnn(num_classes: int = KWS_CLASSES) -> Architecture:
    """DS-CNN for keyword spotting on 49 frames x 10 MFCC."""
    layers = [LayerSpec("conv1", "conv2d", 64, kernel=(10, 4), stride=2, padding=(5, 1))]
    for block in range(1, 5):
        layers += [LayerSpec(f"dw{block}", "depthwise_conv2d", kernel=3, padding=1),
                   LayerSpec(f"pw{block}", "conv2d", 64)]
    layers += [LayerSpec("pool", "global_avg_pool"), LayerSpec("fc", "fully_connected", num_classes)]
    return Architecture("mlperf_kws_dscnn", (49, 10, 1), tuple(layers))


@register("mlperf_ad_autoencoder")
def mlperf_ad_autoencoder() -> Architecture:
    """The anomaly-detection autoencoder: dense layers only, on a 1x1x640 input; the last layer
    outputs the int32 reconstruction."""
    widths = [AUTOENCODER_HIDDEN] * 4 + [AUTOENCODER_BOTTLENECK] + [AUTOENCODER_HIDDEN] * 4
    layers = [LayerSpec(f"fc{index}", "fully_connected", width) for index, width in enumerate(widths, start=1)]
    layers.append(LayerSpec("output", "fully_connected", AUTOENCODER_INPUT))
    return Architecture("mlperf_ad_autoencoder", (1, 1, AUTOENCODER_INPUT), tuple(layers))
