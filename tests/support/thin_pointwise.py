"""Single-layer pointwise networks for the thin-input path of mpq_pointwise_m7.c (8-bit inputs of 4
or 8 channels, a pixel's column in registers): THIN reach it, ENGINE must leave it to the matrix
engine. The host and device kernel tests both run them."""
import numpy as np

from harness.ir.requant import quantize_multiplier
from harness.measure.bench import BenchShape, shape_graph

MIN_PIXELS = 16  # MPQ_M7_STREAM_PIXELS: fewer pixels stream through mpq_matvec_m7.c


def _pointwise(h: int, w: int, cin: int, cout: int, bits: tuple[int, int, int], seed: int, zero_point: int = 0):
    return shape_graph(BenchShape("thin", "", "conv2d", h, w, cin, cout, 1, 1, 0, 0.0), bits, seed, zero_point)


def takes_thin_path(graph) -> bool:
    """thin_fits() of mpq_pointwise_m7.c, for the graph's one layer."""
    layer, x, y = graph.layers[0], graph.tensors["x"], graph.tensors["y"]
    h, w, cin = x.shape
    return (x.bits == 8 and cin in (4, 8) and y.bits in (8, 4) and y.shape[2] % 2 == 0 and h * w >= MIN_PIXELS
            and bool(np.all(layer.shift > 32)))


def _with_small_shift(graph):
    """The graph with channel 0 requantized by a multiplier of about 1/2 (shift <= 32)."""
    layer = graph.layers[0]
    mult, shift = quantize_multiplier(0.5)
    layer.mult[0], layer.shift[0] = mult, shift
    return graph


THIN = {
    "c8_i8w8o8": _pointwise(6, 5, 8, 6, (8, 8, 8), 1),
    "c8_i8w2o4": _pointwise(6, 5, 8, 6, (8, 2, 4), 2),
    "c8_i8w4o8": _pointwise(6, 5, 8, 10, (8, 4, 8), 3),
    "c8_i8w8o4_zp": _pointwise(5, 5, 8, 4, (8, 8, 4), 4, zero_point=37),
    "c4_i8w8o8": _pointwise(4, 5, 4, 10, (8, 8, 8), 5),
    "c4_i8w4o4_zp": _pointwise(4, 5, 4, 2, (8, 4, 4), 6, zero_point=200),
}
ENGINE = {
    "c8_i8w8o2": _pointwise(6, 5, 8, 8, (8, 8, 2), 7),
    "c8_i8w8o32": _pointwise(6, 5, 8, 6, (8, 8, 32), 8),
    "c8_odd_cout": _pointwise(6, 5, 8, 7, (8, 8, 8), 9),
    "c8_small_shift": _with_small_shift(_pointwise(6, 5, 8, 6, (8, 8, 8), 10)),
    "c6_i8w8o8": _pointwise(6, 5, 6, 6, (8, 8, 8), 11),
}
