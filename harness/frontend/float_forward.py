"""A plain numpy float forward pass of a FloatGraph (NHWC, batch 1, no torch): the "float"
column of `harness evaluate --reference`, and the tests' check that an importer's layouts,
padding and folding compute what the source framework computes."""
import numpy as np

from harness.zoo.architecture import INPUT

ACTIVATIONS = {"relu": lambda x: np.maximum(x, 0), "relu6": lambda x: np.clip(x, 0, 6), "linear": lambda x: x}


def _windows(x: np.ndarray, spec, fill: float) -> np.ndarray:
    """[Ho, Wo, kh, kw, C] windows of H x W x C `x` padded with `fill`."""
    (kh, kw), (sh, sw), (pt, pl, pb, pr) = spec.kernel_hw, spec.stride_hw, spec.padding_tlbr
    padded = np.pad(x, ((pt, pb), (pl, pr), (0, 0)), constant_values=fill)
    ho, wo = (padded.shape[0] - kh) // sh + 1, (padded.shape[1] - kw) // sw + 1
    return np.stack([np.stack([padded[i * sh:i * sh + kh, j * sw:j * sw + kw] for j in range(wo)]) for i in range(ho)])


def forward(float_graph, x: np.ndarray) -> np.ndarray:
    """Float outputs of the last layer for one H x W x C input."""
    arch = float_graph.architecture
    values = {INPUT: np.asarray(x, np.float64)}
    for spec in arch.layers:
        inputs = [values[source] for source in arch.sources(spec)]
        layer = float_graph.layers.get(spec.name)
        if spec.op == "conv2d":
            y = np.einsum("hwijc,oijc->hwo", _windows(inputs[0], spec, 0.0), layer.weight) + layer.bias
        elif spec.op == "depthwise_conv2d":
            y = np.einsum("hwijc,ijc->hwc", _windows(inputs[0], spec, 0.0), layer.weight) + layer.bias
        elif spec.op == "fully_connected":
            y = (layer.weight @ inputs[0].reshape(-1) + layer.bias).reshape(1, 1, -1)
        elif spec.op == "avg_pool":
            y = _windows(inputs[0], spec, 0.0).mean(axis=(2, 3))
        elif spec.op == "max_pool":
            y = _windows(inputs[0], spec, -np.inf).max(axis=(2, 3))
        elif spec.op == "global_avg_pool":
            y = inputs[0].mean(axis=(0, 1), keepdims=True)
        else:
            y = inputs[0] + inputs[1]
        values[spec.name] = ACTIVATIONS[spec.activation](y)
    return values[arch.classifier].reshape(-1)
