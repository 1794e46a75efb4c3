"""The numpy reference against a literal, loop-by-loop reading of docs/integer-arithmetic.md."""
import numpy as np
import pytest

from harness.errors import HarnessError
from harness.ir import reference
from harness.ir.graph import Graph
from harness.ir.random_graphs import BIT_COMBOS, KERNEL_OPS, random_input, random_layer_graph


def _requant(acc: int, mult: int, shift: int, bits: int) -> int:
    return min(max((acc * mult + (1 << (shift - 1))) >> shift, 0), (1 << bits) - 1)


def naive_layer(graph: Graph, x: np.ndarray) -> np.ndarray:
    """Direct transcription of the formulas, one output value at a time."""
    (layer,) = graph.layers
    out = graph.tensors[layer.output]
    off = graph.in_offset(layer)
    h, w, _ = x.shape
    ho, wo, co = out.shape
    kh, kw = layer.kernel
    sh, sw = layer.stride
    pt, pl = layer.padding[:2]
    y = np.zeros(out.shape, dtype=np.int64)
    for oy in range(ho):
        for ox in range(wo):
            for o in range(co):
                acc = int(layer.bias[o])
                if layer.op == "fully_connected":  # the input flattened in H, W, C order
                    flat = x.reshape(-1)
                    acc += sum(int(layer.weights[o, i]) * (int(flat[i]) + off) for i in range(flat.size))
                taps = []
                for ky in range(kh):
                    for kx in range(kw):
                        iy, ix = oy * sh - pt + ky, ox * sw - pl + kx
                        if layer.op == "fully_connected" or not (0 <= iy < h and 0 <= ix < w):
                            continue
                        if layer.op == "conv2d":
                            acc += sum(int(layer.weights[o, ky, kx, i]) * (int(x[iy, ix, i]) + off)
                                       for i in range(x.shape[2]))
                        elif layer.op == "max_pool":
                            taps.append(int(x[iy, ix, o]) + off)
                        else:
                            acc += int(layer.weights[ky, kx, o]) * (int(x[iy, ix, o]) + off)
                acc += max(taps) if taps else 0
                y[oy, ox, o] = _requant(acc, int(layer.mult[o]), int(layer.shift[o]), out.bits)
    return y


@pytest.mark.parametrize("op", KERNEL_OPS)
@pytest.mark.parametrize("combo", BIT_COMBOS[::4] + BIT_COMBOS[-1:], ids=str)
def test_reference_matches_naive_loops(op, combo):
    graph = random_layer_graph(op, *combo, seed=hash((op, combo)) % 1000)
    x = random_input(graph, seed=7)
    np.testing.assert_array_equal(reference.predict(graph, x), naive_layer(graph, x))


@pytest.mark.parametrize("case", ["max_pool", "conv2d", "depthwise_conv2d", "fully_connected"])
@pytest.mark.parametrize("combo", BIT_COMBOS[::4] + BIT_COMBOS[-1:], ids=str)
def test_rectangular_windows_max_pool_and_flattening_match_naive_loops(case, combo):
    """kh x kw kernels, (sh, sw) strides, four paddings; max_pool (padding takes no part); a
    fully connected layer over an H x W x C map."""
    kind = {"fully_connected": dict(spatial_fc=True)}.get(case, dict(asymmetric=True))
    graph = random_layer_graph(case, *combo, seed=hash((case, combo)) % 1000, **kind)
    x = random_input(graph, seed=7)
    np.testing.assert_array_equal(reference.predict(graph, x), naive_layer(graph, x))


def test_fully_connected_over_a_map_with_padded_rows_is_refused():
    """3 channels at 4 bits leave 4 padding bits per pixel: the bytes are not the flat vector."""
    graph = random_layer_graph("fully_connected", 8, 8, 8, seed=1, spatial_fc=True)
    x = graph.tensors["x"]
    x.shape, x.bits = (2, 2, 3), 4
    graph.layers[0].weights = np.zeros((graph.tensors["y"].channels, 12), np.int32)
    with pytest.raises(HarnessError, match=r"^layer layer0: fully connected over x \(2x2x3 at 4 bits\) needs .*8 bits"):
        graph.validate()


def test_outputs_spread_over_the_range():
    """Random test graphs are useful only if their outputs are not all clipped."""
    graph = random_layer_graph("conv2d", 8, 8, 4, seed=3)
    y = reference.predict(graph, random_input(graph, 3))
    assert len(np.unique(y)) >= 8


def test_graph_save_load_round_trip(tmp_path):
    graph = random_layer_graph("depthwise_conv2d", 4, 2, 8, seed=11)
    loaded = Graph.load(graph.save(tmp_path / "g"))
    assert loaded.hash() == graph.hash()
    x = random_input(graph, 1)
    np.testing.assert_array_equal(reference.predict(loaded, x), reference.predict(graph, x))
