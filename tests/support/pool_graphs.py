"""Global average pool layers of chosen sizes for the _m7 kernel (firmware/kernels/src/
mpq_global_avg_pool_m7.c), shared by its host and device tests. It sums a group of channels (8,
or 16 at 2 bits) in 16-bit lanes, which hold 257 8-bit, 4369 4-bit or 21845 2-bit values, and
runs the portable kernel for anything else: POOL_CASES holds, at each input width, maps within,
at and one past that limit and channel counts that are and are not whole groups;
lane_limit_graph the input that fills every lane sum to its limit; whole_map_avg_pool the same
pools as an average pool over the whole map (mpq_avg_pool_m7.c)."""
import dataclasses

import numpy as np

from harness.ir import reference
from harness.ir.graph import Graph, Layer, Tensor
from harness.ir.random_graphs import _calibrate_on, random_input

# (h, w, c, input bits). 8 bits: the _m7 kernel's (VWW's 3x3x256, some shifts at or below 32; 256
# pixels; exactly 257), then the portable kernel's (258 pixels; 272 pixels and 9 channels; 3
# channels; 12 channels). 4 and 2 bits: within, at and one past the limit, then a partial group.
POOL_CASES = ((3, 3, 256, 8), (16, 16, 16, 8), (257, 1, 8, 8), (43, 6, 8, 8), (17, 16, 9, 8), (1, 1, 3, 8),
              (5, 5, 12, 8),
              (5, 5, 64, 4), (17, 257, 8, 4), (2, 2185, 8, 4), (5, 5, 12, 4),
              (8, 8, 64, 2), (85, 257, 16, 2), (2, 10923, 16, 2), (3, 3, 24, 2))


def case_id(case: tuple[int, int, int, int]) -> str:
    return "{}x{}x{}-{}bit".format(*case)


def pool_graph(h: int, w: int, c: int, bits: int, zero_point: int, seed: int = 0) -> Graph:
    """One global average pool of an h x w x c map of `bits`-wide values (a zero-point that is
    not a code of that width is taken modulo its range), 8-bit outputs calibrated to spread."""
    x = Tensor("x", (h, w, c), bits, 1.0, zero_point % (1 << bits))
    y = Tensor("y", (1, 1, c), 8, 1.0)
    zeros = np.zeros(c, dtype=np.int32)
    layer = Layer("layer0", "global_avg_pool", "x", "y", bias=zeros, mult=zeros, shift=zeros.astype(np.int8))
    graph = Graph(f"gap_{h}x{w}x{c}_i{bits}_z{x.zero_point}", {"x": x, "y": y}, [layer], "x", "y")
    _calibrate_on(graph, layer, random_input(graph, seed), np.random.default_rng(seed))
    graph.validate()
    return graph


def whole_map_avg_pool(graph: Graph) -> Graph:
    """pool_graph's pool as an avg_pool whose one window is the map (what ResNet-8 ends with)."""
    h, w, _ = graph.tensors[graph.input].shape
    layer = dataclasses.replace(graph.layers[0], op="avg_pool", kernel=(h, w))
    pool = dataclasses.replace(graph, name=graph.name.replace("gap_", "avg_"), layers=[layer])
    pool.validate()
    return pool


def all_top(graph: Graph, seed: int = 0) -> np.ndarray:
    """The input of every value the top code: each lane sum of the most pixels it holds at its
    limit, 65,535."""
    x = graph.tensors[graph.input]
    return np.full(x.shape, (1 << x.bits) - 1, dtype=np.int32)


def lane_limit_graph(h: int, w: int, c: int, bits: int) -> Graph:
    """pool_graph at input zero-point 0 with the bias moved so all_top's outputs sit mid-range
    instead of saturating: a lane sum that wraps or drops a value moves them."""
    graph = pool_graph(h, w, c, bits, 0)
    layer = graph.layers[0]
    random_sums = reference.accumulate(graph, layer, random_input(graph, 0))
    full_sums = reference.accumulate(graph, layer, all_top(graph))
    layer.bias = (layer.bias + np.rint(random_sums.mean()) - full_sums.reshape(-1)).astype(np.int32)
    graph.name = f"gap_{h}x{w}x{c}_i{bits}_full"
    graph.validate()
    return graph


def pool_input(graph: Graph, seed: int) -> np.ndarray:
    """all_top for a lane_limit_graph, a random input for any other."""
    return all_top(graph) if graph.name.endswith("_full") else random_input(graph, seed)
