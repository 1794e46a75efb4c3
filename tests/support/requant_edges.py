"""One-layer graphs that drive the _m7 kernels' requantization paths through extreme values.

Each channel's accumulator is its bias + 1 on an input of ones (weights: a single 1 per output
channel): the product of accumulators, multipliers and shifts below reaches every path, the
32-bit steps, the short path for shift > 32, the bounded one (matrix engine and depthwise
windows) for shifts 3 to 32 whose accumulators cannot reach 2^(shift-2), and the general one.
Pointwise (one pixel) and fully connected run the streaming engine; pointwise over 4x4 pixels and conv2d (3x3, padded, only the centre tap 1, two
output pixels) the matrix engine, which stores pixel pairs on their own path; depthwise (the same
window, stride 1 and 2, two output pixels) the unrolled 3x3 windows. The engine and the windows
pick one path per channel pair: the shifts change from channel to channel (an odd count), so
pairs mix shifts above and below 32, and biases too large for the bounded path.
"""
import itertools

import numpy as np

from harness.ir.graph import Graph, Layer, Tensor

ACCUMULATORS = [-(2**31) + 1, -(2**20) - 1, -3, -2, -1, 0, 1, 2, 3, 7, 8, 1023, 1024, 2**20 + 1, 2**31 - 2]
MULTIPLIERS = [0, 1, 3, 2**30, 2**31 - 1]
SHIFTS = [1, 2, 3, 5, 12, 31, 32, 33, 34, 40, 62]
M7_REQUANT_CASES = ("pointwise", "pointwise_4x4", "fully_connected", "conv2d", "depthwise_conv2d",
                    "depthwise_conv2d_s2")


def m7_requant_edge_graph(case: str, out_bits: int) -> tuple[str, Graph]:
    """(kernel name, graph) of one of M7_REQUANT_CASES at out_bits."""
    acc, mult, shift = (np.array(v) for v in zip(*itertools.product(ACCUMULATORS, MULTIPLIERS, SHIFTS)))
    c = acc.size
    in_shape, out_shape = (1, 1, 1), (1, 1, c)
    kernel = "depthwise_conv2d" if case.startswith("depthwise") else case.removesuffix("_4x4")
    op = "conv2d" if kernel == "pointwise" else kernel
    if kernel == "depthwise_conv2d":
        stride = 2 if case.endswith("_s2") else 1
        in_shape, out_shape = (1, 2 * stride, c), (1, 2, c)
        weights = np.zeros((3, 3, c), dtype=np.int32)
        weights[1, 1, :] = 1
        window = {"kernel": (3, 3), "stride": (stride, stride), "padding": (1, 1, 1, 1)}
    elif kernel == "conv2d":
        weights = np.zeros((c, 3, 3, 1), dtype=np.int32)
        weights[:, 1, 1, 0] = 1
        window = {"kernel": (3, 3), "padding": (1, 1, 1, 1)}
        in_shape, out_shape = (1, 2, 1), (1, 2, c)
    else:
        weights, window = np.ones((c, 1, 1, 1) if op == "conv2d" else (c, 1), dtype=np.int32), {}
        if case.endswith("_4x4"):
            in_shape, out_shape = (4, 4, 1), (4, 4, c)
    x, y = Tensor("x", in_shape, 8, 1.0), Tensor("y", out_shape, out_bits, 1.0)
    layer = Layer("layer0", op, "x", "y", w_bits=2, weights=weights, bias=(acc - 1).astype(np.int32),
                  mult=mult.astype(np.int32), shift=shift.astype(np.int8), **window)
    return kernel, Graph(f"m7_requant_edges_{case}_o{out_bits}", {"x": x, "y": y}, [layer], "x", "y")


BOUND_EDGE_OPS = ("depthwise_conv2d", "conv2d")


def bound_edge_graph(op: str) -> Graph:
    """A 3x3 layer (3x4 input, no padding, two output pixels, four channels) whose accumulators, on
    an input of all 255, sit at the bound of the bounded requantization (mpq_m7_bounded_ok) at
    shift 24, i.e. 2^22: the depthwise windows bound |bias| + 255 * sum |w|, the matrix engine
    |bias| + 255 * 128 * k at 8-bit weights. Channel 0 (weights 127) and channel 1 (weights -128)
    reach the bound less one, so their pair takes the bounded path; channel 2 reaches 2^22 + 999
    (its pair must take the general path, where the left shift by 9 would overflow); channel 3
    has a shift above 32."""
    taps, top = 9, 2**22 - 1
    w0 = 127 if op == "depthwise_conv2d" else 128  # the weight bound of each engine
    bias = np.array([top - 255 * taps * w0, -top + 255 * taps * 128, top + 1000 - 255 * taps * 127, 5])
    weights = np.full((3, 3, 4), 127, dtype=np.int32)
    weights[:, :, 1] = -128
    cin = 4 if op == "depthwise_conv2d" else 1
    if op == "conv2d":
        weights = weights.transpose(2, 0, 1)[..., None]  # [cout][kh][kw][cin]
    x, y = Tensor("x", (3, 4, cin), 8, 1.0), Tensor("y", (1, 2, 4), 8, 1.0)
    layer = Layer("layer0", op, "x", "y", w_bits=8, weights=np.ascontiguousarray(weights), bias=bias.astype(np.int32),
                  mult=np.full(4, 2**30, dtype=np.int32), shift=np.array([24, 24, 24, 40], dtype=np.int8),
                  kernel=(3, 3))
    return Graph(f"m7_bound_edges_{op}", {"x": x, "y": y}, [layer], "x", "y")
