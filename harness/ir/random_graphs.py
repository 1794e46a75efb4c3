"""Random single-layer graphs for kernel tests: every op at every (input, weight, output) bits."""
from __future__ import annotations

import itertools

import numpy as np

from harness.ir import reference
from harness.ir.graph import Graph, Layer, Tensor, conv_output_size, pair, padding_tlbr
from harness.ir.packing import BITS, value_range
from harness.ir.requant import quantize_multiplier

KERNEL_OPS = ("conv2d", "pointwise", "depthwise_conv2d", "fully_connected")
BIT_COMBOS = tuple(itertools.product(BITS, BITS, BITS))  # (input, weight, output)


def _geometry(op: str, rng: np.random.Generator) -> dict:
    """Odd sizes and channel counts on purpose: they exercise row padding and SIMD tails."""
    if op == "conv2d":
        k = int(rng.choice([1, 3, 5]))
        s = int(rng.choice([1, 2]))
        return dict(h=int(rng.integers(3, 9)), w=int(rng.integers(3, 9)), cin=int(rng.integers(1, 12)),
                    cout=int(rng.integers(1, 12)), k=k, s=s, p=k // 2)
    if op == "pointwise":
        return dict(h=int(rng.integers(1, 7)), w=int(rng.integers(1, 7)), cin=int(rng.integers(1, 24)),
                    cout=int(rng.integers(1, 24)), k=1, s=1, p=0)
    if op == "depthwise_conv2d":
        c = int(rng.integers(1, 20))
        return dict(h=int(rng.integers(3, 10)), w=int(rng.integers(3, 10)), cin=c, cout=c,
                    k=3, s=int(rng.choice([1, 2])), p=1)
    if op == "global_avg_pool":
        c = int(rng.integers(1, 80))  # > 64 channels crosses the C kernel's chunk size
        return dict(h=int(rng.integers(1, 9)), w=int(rng.integers(1, 9)), cin=c, cout=c, k=1, s=1, p=0)
    if op == "avg_pool":
        c, k = int(rng.integers(1, 80)), int(rng.choice([2, 3]))
        return dict(h=int(rng.integers(3, 9)), w=int(rng.integers(3, 9)), cin=c, cout=c, k=k,
                    s=int(rng.choice([1, 2])), p=int(rng.integers(0, k)))
    return dict(h=1, w=1, cin=int(rng.integers(1, 40)), cout=int(rng.integers(1, 20)), k=1, s=1, p=0)


def _asymmetric_window(g: dict, rng: np.random.Generator) -> dict:
    """The window of `g` made rectangular: kernel (kh, kw), stride (sh, sw) and four paddings
    drawn independently (each below its kernel side), the input at least a kernel large."""
    k = (int(rng.integers(1, 6)), int(rng.integers(1, 6)))
    s = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    p = (int(rng.integers(0, k[0])), int(rng.integers(0, k[1])), int(rng.integers(0, k[0])), int(rng.integers(0, k[1])))
    return g | dict(k=k, s=s, p=p, h=max(g["h"], k[0] + 1), w=max(g["w"], k[1] + 1))


def random_layer_graph(op: str, in_bits: int, w_bits: int | None, out_bits: int, seed: int,
                       in_zero_point: int | None = None, kernel: int | None = None,
                       stride: int | None = None, asymmetric: bool = False, spatial_fc: bool = False) -> Graph:
    """One layer with random weights, bias and multipliers chosen so outputs span the range.

    `op` is one of KERNEL_OPS, "global_avg_pool", "avg_pool" or "max_pool" (weightless:
    `w_bits` is ignored); `out_bits` may be 32 (raw int32 logits). `kernel` / `stride` override
    the random window of windowed ops (padding kernel // 2); `asymmetric` draws a rectangular
    window with (sh, sw) strides and four different paddings instead (max_pool always does).
    `spatial_fc` gives a fully connected layer an H x W x C input it reads flattened (C chosen
    so C * in_bits is a multiple of 8).
    """
    rng = np.random.default_rng(seed)
    g = _geometry("avg_pool" if op == "max_pool" else op, rng)
    if kernel is not None:
        g.update(k=kernel, p=kernel // 2, h=max(g["h"], kernel), w=max(g["w"], kernel))
    if stride is not None:
        g["s"] = stride
    if asymmetric or op == "max_pool":
        g = _asymmetric_window(g, rng)
    if spatial_fc:
        g.update(h=int(rng.integers(1, 5)), w=int(rng.integers(2, 5)), cin=8 // in_bits * int(rng.integers(1, 6)))
    ir_op = "conv2d" if op == "pointwise" else op
    (kh, kw), (sh, sw) = pair(g["k"]), pair(g["s"])
    padding = padding_tlbr(g["p"])
    if op in ("global_avg_pool", "fully_connected"):
        ho = wo = 1
    else:
        ho = conv_output_size(g["h"], kh, sh, padding[0], padding[2])
        wo = conv_output_size(g["w"], kw, sw, padding[1], padding[3])
    if in_zero_point is None:
        in_zero_point = int(rng.integers(0, 1 << in_bits)) if rng.random() < 0.5 else 0
    x = Tensor("x", (g["h"], g["w"], g["cin"]), in_bits, 1.0, in_zero_point)
    y = Tensor("y", (ho, wo, g["cout"]), out_bits, 1.0)
    if op in ("global_avg_pool", "avg_pool", "max_pool"):
        weights, w_bits = None, None
    else:
        lo, hi = value_range(w_bits, signed=True)
        wshape = {"conv2d": (g["cout"], kh, kw, g["cin"]),
                  "depthwise_conv2d": (kh, kw, g["cin"]),
                  "fully_connected": (g["cout"], x.size)}[ir_op]
        weights = rng.integers(lo, hi + 1, size=wshape).astype(np.int32)
    cout = g["cout"]
    placeholder = np.zeros(cout, dtype=np.int32)
    layer = Layer("layer0", ir_op, "x", "y", (kh, kw), (sh, sw), padding, w_bits,
                  weights, placeholder, placeholder, placeholder.astype(np.int8))
    graph = Graph(f"{op}_i{in_bits}w{w_bits}o{out_bits}_s{seed}", {"x": x, "y": y}, [layer], "x", "y")
    _calibrate(graph, layer, rng)
    graph.validate()
    return graph


def _calibrate(graph: Graph, layer: Layer, rng: np.random.Generator) -> None:
    """Pick bias and multipliers so a random input's outputs spread over the whole output range
    (a few saturate at both ends), with per-channel variation."""
    _calibrate_on(graph, layer, random_input(graph, int(rng.integers(1 << 30))), rng)


def _calibrate_on(graph: Graph, layer: Layer, x: np.ndarray, rng: np.random.Generator) -> None:
    """_calibrate for the layer's input values x (the activations that reach it in a chain)."""
    acc = reference.accumulate(graph, layer, x)
    acc = acc.reshape(-1, acc.shape[-1]).astype(np.float64)
    out_bits = graph.tensors[layer.output].bits
    levels = float(1 << out_bits) if out_bits != 32 else 256.0
    if acc.shape[0] < 4:  # too few pixels per channel (fully connected): use whole-tensor statistics
        acc = acc.reshape(-1, 1)
    std = np.maximum(acc.std(axis=0), 1.0) * np.ones(layer.bias.shape)
    m = levels / (4.0 * std) * rng.uniform(0.7, 1.4, size=std.shape)
    layer.bias = np.rint(-acc.mean(axis=0) + (levels / 2) / m).astype(np.int32)
    mult, shift = zip(*(quantize_multiplier(float(v)) for v in m))
    layer.mult = np.array(mult, dtype=np.int32)
    layer.shift = np.array(shift, dtype=np.int8)


def random_chain_graph(seed: int, blocks: int = 3) -> Graph:
    """A small MobileNet-like chain for end-to-end tests: conv stem -> `blocks` blocks, each
    (depthwise 3x3 -> pointwise) or a plain conv -> global_avg_pool -> fully_connected with
    int32 logits. Bits are random per tensor and per layer's weights, the input has a non-zero
    zero-point, and every layer is calibrated on the activations that actually reach it, so
    values spread over every output range."""
    rng = np.random.default_rng(seed)
    in_bits = int(rng.choice(BITS))
    shape = (int(rng.integers(6, 17)), int(rng.integers(6, 17)), int(rng.choice([1, 3, 4])))
    tensors = {"input": Tensor("input", shape, in_bits, 1.0, int(rng.integers(1, 1 << in_bits)))}
    layers: list[Layer] = []

    def add(name: str, op: str, cout: int, k: int = 1, s: int = 1, p: int = 0, bits: int | None = None) -> None:
        src = tensors[layers[-1].output if layers else "input"]
        h, w, cin = src.shape
        if op in ("fully_connected", "global_avg_pool"):
            out_shape = (1, 1, cout)
        else:
            out_shape = (conv_output_size(h, k, s, p, p), conv_output_size(w, k, s, p, p), cout)
        out = Tensor(f"t{len(layers) + 1}", out_shape, bits or int(rng.choice(BITS)), 1.0)
        tensors[out.name] = out
        w_bits = int(rng.choice(BITS))
        lo, hi = value_range(w_bits, signed=True)
        wshape = {"conv2d": (cout, k, k, cin), "depthwise_conv2d": (k, k, cin), "fully_connected": (cout, cin)}
        weights = rng.integers(lo, hi + 1, size=wshape[op]).astype(np.int32) if op in wshape else None
        zeros = np.zeros(cout, dtype=np.int32)
        layers.append(Layer(name, op, src.name, out.name, (k, k), (s, s), (p,) * 4,
                            w_bits if weights is not None else None, weights, zeros, zeros, zeros.astype(np.int8)))

    add("stem", "conv2d", int(rng.integers(4, 17)), k=3, s=int(rng.choice([1, 2])), p=1)
    for block in range(1, blocks + 1):
        channels = tensors[layers[-1].output].channels
        if rng.random() < 0.7:
            add(f"b{block}_dw", "depthwise_conv2d", channels, k=3, s=int(rng.choice([1, 2])), p=1)
            add(f"b{block}_pw", "conv2d", int(rng.integers(4, 25)))
        else:
            k = int(rng.choice([1, 3]))
            add(f"b{block}_conv", "conv2d", int(rng.integers(4, 25)), k=k, s=int(rng.choice([1, 2])), p=k // 2)
    add("pool", "global_avg_pool", tensors[layers[-1].output].channels)
    add("fc", "fully_connected", int(rng.integers(2, 11)), bits=32)
    graph = Graph(f"chain{blocks}_s{seed}", tensors, layers, "input", layers[-1].output)
    x = random_input(graph, int(rng.integers(1 << 30)))
    for layer in layers:
        _calibrate_on(graph, layer, x, rng)
        x = reference.run_layer(graph, layer, x)
    graph.validate()
    return graph


def random_input(graph: Graph, seed: int) -> np.ndarray:
    t = graph.tensors[graph.input]
    return np.random.default_rng(seed).integers(0, 1 << t.bits, size=t.shape).astype(np.int32)


def random_add_graph(in1_bits: int, in2_bits: int, out_bits: int, seed: int,
                     shape: tuple[int, int, int] | None = None) -> Graph:
    """A residual add with every offset non-trivial: input x (zero-point) -> avg_pool 1x1 ->
    t (a linear activation with a zero-point), then add(x, t) -> y (output zero-point). The
    multipliers come from random scales, so the two inputs weigh differently. `shape`: the
    tensors' H x W x C (default random)."""
    from harness.ir.requant import add_multipliers

    rng = np.random.default_rng(seed)
    random_shape = (int(rng.integers(1, 7)), int(rng.integers(1, 7)), int(rng.integers(1, 80)))
    shape = tuple(shape or random_shape)
    x = Tensor("x", shape, in1_bits, float(rng.uniform(0.01, 0.1)), int(rng.integers(0, 1 << in1_bits)))
    t = Tensor("t", shape, in2_bits, float(rng.uniform(0.01, 0.1)), int(rng.integers(0, 1 << in2_bits)))
    span = (x.scale * ((1 << in1_bits) - 1) + t.scale * ((1 << in2_bits) - 1)) / ((1 << out_bits) - 1)
    y = Tensor("y", shape, out_bits, span * float(rng.uniform(0.4, 1.0)), int(rng.integers(0, 1 << out_bits)) // 2)
    c = shape[2]
    zeros = np.zeros(c, dtype=np.int32)
    pre = Layer("pre", "avg_pool", "x", "t", (1, 1), (1, 1), (0, 0, 0, 0), None, None, zeros, zeros,
                zeros.astype(np.int8))
    m1, m2, shift = add_multipliers(x.scale / y.scale, t.scale / y.scale)
    add = Layer("add", "add", "x", "y", (1, 1), (1, 1), (0, 0, 0, 0), None, None,
                np.array([y.zero_point], np.int32), np.array([m1, m2], np.int32), np.array([shift], np.int8),
                input2="t")
    graph = Graph(f"add_i{in1_bits}i{in2_bits}o{out_bits}_s{seed}", {"x": x, "t": t, "y": y}, [pre, add], "x", "y")
    _calibrate(graph, pre, rng)
    graph.validate()
    return graph


def random_channelwise_graph(seed: int) -> Graph:
    """A dense graph with channel-wise weight bits for the reordering tests: conv stem ->
    depthwise -> two pointwise branches joined by an add -> max_pool -> conv -> global_avg_pool
    -> fully connected (int32 logits). conv2d layers get random bits per output channel from
    {0, 2, 4, 8} (0 = pruned: zero weights and bias), the two add branches prune the same
    channels, the depthwise and pool follow their producer's pruning, the classifier prunes
    nothing. Every layer is calibrated on the activations that reach it."""
    from harness.ir.requant import add_multipliers

    rng = np.random.default_rng(seed)
    in_bits = int(rng.choice(BITS))
    shape = (int(rng.integers(5, 11)), int(rng.integers(5, 11)), int(rng.choice([1, 3])))
    tensors = {"input": Tensor("input", shape, in_bits, 1.0, int(rng.integers(1, 1 << in_bits)))}
    layers: list[Layer] = []

    def channel_bits(cout: int, prune: np.ndarray | None) -> list[int]:
        bits = [int(b) for b in rng.choice(BITS, size=cout)]
        if prune is not None:
            bits = [0 if p else b for b, p in zip(bits, prune)]
        return bits

    def pruning(cout: int) -> np.ndarray:
        prune = rng.random(cout) < 0.3
        prune[int(rng.integers(cout))] = False
        return prune

    def tensor(src: Tensor, name: str, op: str, cout: int, k: int, s: int, p: int, bits: int | None = None) -> Tensor:
        h, w, _ = src.shape
        out_shape = (1, 1, cout) if op in ("fully_connected", "global_avg_pool") else (
            conv_output_size(h, k, s, p, p), conv_output_size(w, k, s, p, p), cout)
        tensors[name] = Tensor(name, out_shape, bits or int(rng.choice(BITS)), 1.0)
        return tensors[name]

    def layer(name: str, op: str, src: str, cout: int, k: int = 1, s: int = 1, p: int = 0,
              w_bits: int | list[int] | None = None, out_bits: int | None = None) -> Layer:
        out = tensor(tensors[src], f"t_{name}", op, cout, k, s, p, out_bits)
        cin = tensors[src].channels
        wshape = {"conv2d": (cout, k, k, cin), "depthwise_conv2d": (k, k, cin), "fully_connected": (cout, cin)}.get(op)
        weights = None
        if wshape is not None:
            lo, hi = value_range(8, signed=True)
            weights = rng.integers(lo, hi + 1, size=wshape).astype(np.int32)
            per_channel = w_bits if isinstance(w_bits, list) else [w_bits] * (wshape[0] if op != "depthwise_conv2d" else cin)
            for c, bits in enumerate(per_channel):  # each channel's weights in its own range
                lo, hi = value_range(bits or 2, signed=True)
                if op == "depthwise_conv2d":
                    weights[..., c] = np.clip(weights[..., c], lo, hi)
                else:
                    weights[c] = np.clip(weights[c], lo, hi)
        zeros = np.zeros(cout, dtype=np.int32)
        new = Layer(name, op, src, out.name, (k, k), (s, s), (p,) * 4, w_bits, weights, zeros, zeros,
                    zeros.astype(np.int8))
        layers.append(new)
        return new

    c1 = int(rng.integers(3, 13))
    prune1 = pruning(c1)
    layer("stem", "conv2d", "input", c1, k=3, s=int(rng.choice([1, 2])), p=1, w_bits=channel_bits(c1, prune1))
    layer("dw", "depthwise_conv2d", "t_stem", c1, k=3, s=1, p=1, w_bits=int(rng.choice(BITS)))
    c2 = int(rng.integers(3, 17))
    prune2 = pruning(c2)
    layer("pw_a", "conv2d", "t_dw", c2, w_bits=channel_bits(c2, prune2))
    layer("pw_b", "conv2d", "t_dw", c2, w_bits=channel_bits(c2, prune2))
    out_bits = int(rng.choice(BITS))
    tensors["t_add"] = Tensor("t_add", tensors["t_pw_a"].shape, out_bits, 1.0)
    m1, m2, shift = add_multipliers(float(rng.uniform(0.3, 0.7)), float(rng.uniform(0.3, 0.7)))
    layers.append(Layer("add", "add", "t_pw_a", "t_add", (1, 1), (1, 1), (0, 0, 0, 0), None, None,
                        np.array([0], np.int32), np.array([m1, m2], np.int32), np.array([shift], np.int8),
                        input2="t_pw_b"))
    layer("pool", "max_pool", "t_add", c2, k=2, s=2, p=0)
    c3 = int(rng.integers(3, 13))
    layer("conv", "conv2d", "t_pool", c3, k=3, s=1, p=1, w_bits=channel_bits(c3, pruning(c3)))
    layer("gap", "global_avg_pool", "t_conv", c3)
    cls = int(rng.integers(2, 9))
    layer("fc", "fully_connected", "t_gap", cls, w_bits=channel_bits(cls, None), out_bits=32)
    graph = Graph(f"channelwise_s{seed}", tensors, layers, "input", "t_fc")
    pruned: dict[str, np.ndarray] = {}  # tensor -> its pruned channels (inherited through depthwise and pools)
    x = random_input(graph, int(rng.integers(1 << 30)))
    values = {"input": x}
    for each in layers:
        if each.op == "add":
            values[each.output] = reference.run_add(graph, each, values[each.input], values[each.input2])
            pruned[each.output] = pruned[each.input]
            continue
        if each.op == "max_pool":
            each.mult = np.full(c2, 1 << 30, np.int32)
            each.shift = np.full(c2, 30, np.int8)
        else:
            _calibrate_on(graph, each, values[each.input], rng)
        prune = np.array([b == 0 for b in each.w_bits]) if isinstance(each.w_bits, list) else pruned.get(each.input)
        if each.op != "fully_connected" and prune is not None:
            pruned[each.output] = prune
        if prune is not None and prune.any():  # a pruned channel computes exactly 0
            each.bias[prune] = 0
            if each.op == "depthwise_conv2d":
                each.weights[..., prune] = 0
            elif each.weights is not None:
                each.weights[prune] = 0
        values[each.output] = reference.run_layer(graph, each, values[each.input])
    graph.validate()
    return graph
