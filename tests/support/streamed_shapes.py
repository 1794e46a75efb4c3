"""Layers of the weight-streaming engine's special paths (firmware/kernels/src/mpq_matvec_m7.c),
shared by its host and device tests, and the edit that sends a layer off them."""
from harness.ir.graph import Graph
from harness.measure.bench import BenchShape

# Rows of 8 and 12 inputs: at 8-bit weights and outputs with every shift above 32, the short-row
# path (registers only); a shift of 32 or less takes the general path.
SHORT_ROW_SHAPES = (
    BenchShape("fc_rows_8", "fully connected 8 -> 6", "fully_connected", 1, 1, 8, 6, 1, 1, 0, 0.0),
    BenchShape("fc_rows_12", "fully connected 12 -> 7", "fully_connected", 1, 1, 12, 7, 1, 1, 0, 0.0),
)
# Few output channels (at most 12) of a whole number of input words: at 8/8/8 with every shift
# above 32, the few-row path (input read raw): an odd number of words and an odd last channel,
# three whole groups of four, one pair.
FEW_ROW_SHAPES = (
    BenchShape("fc_few_9", "fully connected 36 -> 9", "fully_connected", 1, 1, 36, 9, 1, 1, 0, 0.0),
    BenchShape("fc_few_12", "fully connected 40 -> 12", "fully_connected", 1, 1, 40, 12, 1, 1, 0, 0.0),
    BenchShape("fc_few_2", "fully connected 24 -> 2", "fully_connected", 1, 1, 24, 2, 1, 1, 0, 0.0),
)


def with_shift_32(graph: Graph, channel: int) -> Graph:
    """The one-layer graph (every shift above 32) with one channel's shift at 32, its multiplier
    scaled to match: the outputs barely move, but the layer leaves the paths that need shifts above 32."""
    layer = graph.layers[0]
    assert min(layer.shift) > 32
    drop = int(layer.shift[channel]) - 32
    layer.mult[channel] = int(layer.mult[channel]) >> drop
    layer.shift[channel] = 32
    return graph
