"""The numpy reference against a literal, loop-by-loop reading of docs/integer-arithmetic.md.

Every op (conv2d, pointwise, depthwise, fully connected, avg_pool, max_pool, global_avg_pool, add) and the
int32 logits, in plain Python integers: no numpy arithmetic, each formula as the doc writes it.
Seeds are fixed and part of the test id (`...-s<seed>`), so a failure reruns as it failed.
"""
import numpy as np
import pytest

from harness.errors import HarnessError
from harness.ir import reference
from harness.ir.graph import Graph, Layer
from harness.ir.random_graphs import BIT_COMBOS, KERNEL_OPS, random_add_graph, random_input, random_layer_graph

COMBOS = BIT_COMBOS[::4] + BIT_COMBOS[-1:]


def _requant(acc: int, mult: int, shift: int, bits: int) -> int:
    """"Requantization": y = clamp((acc * mult + 2^(shift-1)) >> shift, 0, 2^b - 1); logits: y = acc."""
    if bits == 32:
        return acc
    return min(max((acc * mult + 2 ** (shift - 1)) // 2 ** shift, 0), 2 ** bits - 1)


def naive_layer(graph: Graph, layer: Layer, x: list) -> list:
    """One single-input layer, one output value at a time; x and the result are nested lists [h][w][c]."""
    out = graph.tensors[layer.output]
    off = graph.in_offset(layer)
    h, w, cin = graph.tensors[layer.input].shape
    ho, wo, co = out.shape
    kh, kw = layer.kernel
    sh, sw = layer.stride
    pt, pl = layer.padding[:2]
    weights = None if layer.weights is None else layer.weights.tolist()
    bias, mult, shift = layer.bias.tolist(), layer.mult.tolist(), layer.shift.tolist()

    def taps(oy: int, ox: int):
        """(ky, kx, iy, ix) of the window's in-bounds taps: the others are left out (real zero)."""
        for ky in range(kh):
            for kx in range(kw):
                iy, ix = oy * sh - pt + ky, ox * sw - pl + kx
                if 0 <= iy < h and 0 <= ix < w:
                    yield ky, kx, iy, ix

    y = [[[0] * co for _ in range(wo)] for _ in range(ho)]
    for oy in range(ho):
        for ox in range(wo):
            for o in range(co):
                acc = bias[o]
                if layer.op == "fully_connected":  # the input flattened in H, W, C order
                    flat = [x[yy][xx][i] for yy in range(h) for xx in range(w) for i in range(cin)]
                    acc += sum(weights[o][j] * (flat[j] + off) for j in range(len(flat)))
                elif layer.op == "global_avg_pool":
                    acc += sum(x[yy][xx][o] + off for yy in range(h) for xx in range(w))
                elif layer.op == "conv2d":
                    acc += sum(weights[o][ky][kx][i] * (x[iy][ix][i] + off)
                               for ky, kx, iy, ix in taps(oy, ox) for i in range(cin))
                elif layer.op == "depthwise_conv2d":
                    acc += sum(weights[ky][kx][o] * (x[iy][ix][o] + off) for ky, kx, iy, ix in taps(oy, ox))
                elif layer.op == "avg_pool":
                    acc += sum(x[iy][ix][o] + off for _, _, iy, ix in taps(oy, ox))
                elif layer.op == "max_pool":  # padding takes no part: the largest in-bounds tap
                    acc += max((x[iy][ix][o] + off for _, _, iy, ix in taps(oy, ox)), default=0)
                else:
                    raise AssertionError(f"no literal reading of {layer.op}")
                y[oy][ox][o] = _requant(acc, mult[o], shift[o], out.bits)
    return y


def naive_add(graph: Graph, layer: Layer, x1: list, x2: list) -> list:
    """"add": acc = (x1 + off1)*m1 + (x2 + off2)*m2 + 2^(sh-1); out = clamp(floor(acc / 2^sh) + bias, 0, 2^b - 1)."""
    off1, off2 = -graph.tensors[layer.input].zero_point, -graph.tensors[layer.input2].zero_point
    m1, m2 = layer.mult.tolist()
    sh, bias, bits = int(layer.shift[0]), int(layer.bias[0]), graph.tensors[layer.output].bits
    h, w, c = graph.tensors[layer.output].shape
    return [[[min(max(((x1[yy][xx][i] + off1) * m1 + (x2[yy][xx][i] + off2) * m2 + 2 ** (sh - 1)) // 2 ** sh + bias,
                      0), 2 ** bits - 1) for i in range(c)] for xx in range(w)] for yy in range(h)]


def naive_run(graph: Graph, x: np.ndarray) -> np.ndarray:
    values = {graph.input: np.asarray(x).tolist()}
    for layer in graph.layers:
        if layer.op == "add":
            values[layer.output] = naive_add(graph, layer, values[layer.input], values[layer.input2])
        else:
            values[layer.output] = naive_layer(graph, layer, values[layer.input])
    return np.array(values[graph.output], dtype=np.int64)


def _cases() -> list:
    """(op, bits, seed, overrides): every op at a spread of bit combinations, the int32 logits,
    and windows with padding over an input with a zero-point (padding must be real zero)."""
    cases = [(op, combo, {}) for op in KERNEL_OPS for combo in COMBOS]
    cases += [(op, (i, w, 32), {}) for op in KERNEL_OPS for i, w in ((8, 8), (4, 2), (2, 4))]
    cases += [(op, (i, None, o), {}) for op in ("avg_pool", "max_pool", "global_avg_pool") for i in (2, 4, 8)
              for o in (2, 4, 8)]
    cases += [(op, (i, w, o), {"in_zero_point": (1 << i) - 1 - i, "kernel": 3})
              for op in ("conv2d", "depthwise_conv2d", "avg_pool", "max_pool")
              for i, w, o in ((8, 8, 8), (4, 4, 2), (2, 8, 4))]
    return [(op, bits, 100 * n + 7, overrides) for n, (op, bits, overrides) in enumerate(cases)]


def _case_id(case) -> str:
    op, (i, w, o), seed, overrides = case
    extra = "-zp-k3" if overrides else ""
    return f"{op}-i{i}w{w}o{o}{extra}-s{seed}"


CASES = _cases()


@pytest.mark.parametrize("case", CASES, ids=map(_case_id, CASES))
def test_reference_matches_naive_loops(case):
    op, bits, seed, overrides = case
    graph = random_layer_graph(op, *bits, seed=seed, **overrides)
    x = random_input(graph, seed=seed + 1)
    np.testing.assert_array_equal(reference.predict(graph, x), naive_run(graph, x))


def test_padding_cases_really_pad_an_input_with_a_zero_point():
    """The zero-point cases are the ones that tell real-zero padding from code-0 padding."""
    padded = [random_layer_graph(op, *bits, seed=seed, **overrides) for op, bits, seed, overrides in CASES if overrides]
    assert padded and all(max(g.layers[0].padding) > 0 and g.in_offset(g.layers[0]) != 0 for g in padded)


ADD_SEEDS = range(6)


@pytest.mark.parametrize("bits", [(8, 8, 8), (4, 2, 8), (2, 8, 4), (8, 4, 2)], ids=lambda b: "i{}i{}o{}".format(*b))
@pytest.mark.parametrize("seed", ADD_SEEDS, ids=lambda s: f"s{s}")
def test_add_matches_the_literal_formula(bits, seed):
    graph = random_add_graph(*bits, seed=seed)
    x = random_input(graph, seed=seed + 1)
    np.testing.assert_array_equal(reference.predict(graph, x), naive_run(graph, x))


WINDOW_CASES = [(op, combo, 5000 + 10 * n) for n, (op, combo) in enumerate(
    (op, combo) for op in ("max_pool", "conv2d", "depthwise_conv2d", "fully_connected") for combo in COMBOS)]


@pytest.mark.parametrize("case", WINDOW_CASES, ids=lambda c: "{}-i{}w{}o{}-s{}".format(c[0], *c[1], c[2]))
def test_rectangular_windows_max_pool_and_flattening_match_naive_loops(case):
    """kh x kw kernels, (sh, sw) strides, four paddings; max_pool (padding takes no part); a
    fully connected layer over an H x W x C map."""
    op, combo, seed = case
    kind = {"fully_connected": dict(spatial_fc=True)}.get(op, dict(asymmetric=True))
    graph = random_layer_graph(op, *combo, seed=seed, **kind)
    x = random_input(graph, seed=seed + 1)
    np.testing.assert_array_equal(reference.predict(graph, x), naive_run(graph, x))


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
