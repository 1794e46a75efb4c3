"""Global average pool layers of chosen sizes for the _m7 kernel (firmware/kernels/src/
mpq_global_avg_pool_m7.c), shared by its host and device tests. It sums eight channels at a time
in 16-bit lanes, which hold 257 8-bit values, and runs the portable kernel for anything else:
POOL_SHAPES holds maps at and one past that limit, channel counts that are and are not a
multiple of eight; lane_limit_graph the input that fills every lane sum to its limit;
whole_map_avg_pool the same pools as an average pool over the whole map (mpq_avg_pool_m7.c)."""
import dataclasses

import numpy as np

from harness.ir import reference
from harness.ir.graph import Graph, Layer, Tensor
from harness.ir.random_graphs import _calibrate_on, random_input

# (h, w, c): the _m7 kernel's (VWW's 3x3x256, some shifts at or below 32; 256 pixels; exactly 257),
# then the portable kernel's (258 pixels; 272 pixels and 9 channels; 3 channels; 12 channels)
POOL_SHAPES = ((3, 3, 256), (16, 16, 16), (257, 1, 8), (43, 6, 8), (17, 16, 9), (1, 1, 3), (5, 5, 12))


def pool_graph(h: int, w: int, c: int, zero_point: int, out_bits: int = 8, seed: int = 0) -> Graph:
    """One 8-bit global average pool of an h x w x c map, calibrated so outputs spread."""
    x = Tensor("x", (h, w, c), 8, 1.0, zero_point)
    y = Tensor("y", (1, 1, c), out_bits, 1.0)
    zeros = np.zeros(c, dtype=np.int32)
    layer = Layer("layer0", "global_avg_pool", "x", "y", bias=zeros, mult=zeros, shift=zeros.astype(np.int8))
    graph = Graph(f"gap_{h}x{w}x{c}_z{zero_point}_o{out_bits}", {"x": x, "y": y}, [layer], "x", "y")
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


def all_255(graph: Graph, seed: int = 0) -> np.ndarray:
    """The input of every value 255: each lane sum of 257 pixels at its limit, 65,535."""
    return np.full(graph.tensors[graph.input].shape, 255, dtype=np.int32)


def lane_limit_graph(h: int, w: int, c: int) -> Graph:
    """pool_graph at input zero-point 0 with the bias moved so all_255's outputs sit mid-range
    instead of saturating: a lane sum that wraps or drops a value moves them."""
    graph = pool_graph(h, w, c, 0)
    layer = graph.layers[0]
    random_sums = reference.accumulate(graph, layer, random_input(graph, 0))
    full_sums = reference.accumulate(graph, layer, all_255(graph))
    layer.bias = (layer.bias + np.rint(random_sums.mean()) - full_sums.reshape(-1)).astype(np.int32)
    graph.name = f"gap_{h}x{w}x{c}_full"
    graph.validate()
    return graph


def pool_input(graph: Graph, seed: int) -> np.ndarray:
    """all_255 for a lane_limit_graph, a random input for any other."""
    return all_255(graph) if graph.name.endswith("_full") else random_input(graph, seed)
