"""Channel-wise layers: reorder channels offline so equal weight bits are contiguous, drop pruned ones.

A dense graph may give a conv2d or fully connected layer one weight bit-width per output channel
(`w_bits` a list, 0 = pruned: zero weights and zero bias, so the channel's value is exactly 0).
Tensors linked by channel-preserving ops (depthwise, add, pools) form a *component* that shares
one storage order: its pruned channels are dropped and the rest sorted by their producers' bits,
so every producer runs one kernel call per run of equal bits. The components holding the network
input or output keep their order (and may not prune). The pass permutes, offline, each producer's
weight rows, bias and requantization, its consumers' input-channel axis and the depthwise and pool
arrays; the integer arithmetic is unchanged, so the compact graph computes the dense graph's values
on the kept channels (docs/channelwise.md).
"""
from __future__ import annotations

import copy

import numpy as np

from harness.errors import HarnessError
from harness.ir.graph import Graph, Layer
from harness.ir.requant import requantize
from harness.zoo.architecture import INPUT

CHANNEL_PRESERVING = ("depthwise_conv2d", "add", "avg_pool", "max_pool", "global_avg_pool")
PRODUCERS = ("conv2d", "fully_connected")


def linked_channels(ops: list[tuple[str, tuple[str, ...], str]], tensors) -> dict[str, str]:
    """tensor -> a representative of its component, for ops given as (op, inputs, output): the
    union of every channel-preserving op's inputs and output (a graph's layers, or a policy's
    architecture before it is lowered)."""
    parent = {name: name for name in tensors}

    def find(name: str) -> str:
        while parent[name] != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    for op, inputs, output in ops:
        if op in CHANNEL_PRESERVING:
            for source in inputs:
                parent[find(source)] = find(output)
    return {name: find(name) for name in tensors}


def architecture_components(arch) -> dict[str, str]:
    """As `components`, for a policy's architecture before it is lowered: the network input
    (INPUT) and every layer's output, by name."""
    ops = [(spec.op, arch.sources(spec), spec.name) for spec in arch.layers]
    return linked_channels(ops, [INPUT] + [spec.name for spec in arch.layers])


def fixed_components(arch) -> set[str]:
    """The architecture's components that keep every channel: the network input's and output's."""
    comp = architecture_components(arch)
    return {comp[INPUT], comp[arch.classifier]}


def components(graph: Graph) -> dict[str, str]:
    """tensor -> a representative tensor of its component in the integer graph."""
    ops = [(layer.op, tuple(t for t in (layer.input, layer.input2) if t is not None), layer.output)
           for layer in graph.layers]
    return linked_channels(ops, graph.tensors)


def channel_bits(layer: Layer, channels: int) -> list[int]:
    """Per-output-channel weight bits of a producer (a layer-wise one repeats its bits)."""
    return list(layer.w_bits) if isinstance(layer.w_bits, list) else [layer.w_bits] * channels


def storage_orders(graph: Graph) -> dict[str, np.ndarray]:
    """component representative -> the original channel indices in storage order (kept only).
    Raises HarnessError when the producers of a component disagree on what is pruned, or when a
    component fixed in order (network input or output) prunes."""
    comp = components(graph)
    producers: dict[str, list[Layer]] = {}
    for layer in graph.layers:
        if layer.op in PRODUCERS:
            producers.setdefault(comp[layer.output], []).append(layer)
    fixed = {comp[graph.input], comp[graph.output]}
    orders = {}
    for root in set(comp.values()):
        channels = graph.tensors[root].channels
        bits = [channel_bits(layer, channels) for layer in producers.get(root, [])]
        pruned = [{c for c in range(channels) if b[c] == 0} for b in bits]
        if any(p != pruned[0] for p in pruned[1:]):
            names = ", ".join(layer.name for layer in producers[root])
            raise HarnessError(f"layers {names} feed one residual add (or channel-preserving chain) "
                               "and must prune the same channels")
        dropped = pruned[0] if pruned else set()
        if root in fixed:
            if dropped:
                where = "the network output" if root == comp[graph.output] else "the network input"
                names = ", ".join(layer.name for layer in producers[root])
                raise HarnessError(f"layer {names}: no channel may be pruned (0 bits) in what feeds {where}")
            orders[root] = np.arange(channels)
            continue
        kept = [c for c in range(channels) if c not in dropped]
        orders[root] = np.array(sorted(kept, key=lambda c: tuple(b[c] for b in bits)), dtype=np.int64)
    return orders


def reorder(graph: Graph) -> Graph:
    """The compact graph: pruned channels dropped, channels of each component in storage order
    (graph.meta["channel_order"] maps each reordered tensor to its original channel indices).
    The dense graph is checked first: a pruned channel must compute exactly 0."""
    graph.validate()
    orders = storage_orders(graph)
    comp = components(graph)
    _check_pruned_zero(graph, comp, orders)
    out = copy.deepcopy(graph)
    order_of = {name: orders[comp[name]] for name in graph.tensors}
    for name, tensor in out.tensors.items():
        h, w, _ = tensor.shape
        tensor.shape = (h, w, len(order_of[name]))
    for layer in out.layers:
        _permute_layer(graph, layer, order_of)
    out.meta = dict(out.meta) | {"channel_order": {
        name: order.tolist() for name, order in order_of.items()
        if len(order) != graph.tensors[name].channels or (order != np.arange(len(order))).any()}}
    out.validate()
    return out


def _permute_layer(dense: Graph, layer: Layer, order_of: dict[str, np.ndarray]) -> None:
    """Permute one layer's arrays in place (the layer is the compact graph's copy)."""
    if layer.op == "add":
        return
    o = order_of[layer.output]
    if layer.op == "conv2d":
        layer.weights = layer.weights[o][..., order_of[layer.input]]
    elif layer.op == "fully_connected":
        h, w, c = dense.tensors[layer.input].shape
        cout = layer.weights.shape[0]
        layer.weights = layer.weights.reshape(cout, h, w, c)[o][..., order_of[layer.input]].reshape(len(o), -1)
    elif layer.op == "depthwise_conv2d":
        layer.weights = layer.weights[..., o]
    layer.bias, layer.mult, layer.shift = layer.bias[o], layer.mult[o], layer.shift[o]
    if isinstance(layer.w_bits, list):
        bits = [layer.w_bits[c] for c in o]
        layer.w_bits = bits[0] if len(set(bits)) == 1 else bits


def _check_pruned_zero(graph: Graph, comp: dict[str, str], orders: dict[str, np.ndarray]) -> None:
    """A dropped channel must hold the real value 0 (its tensor's zero-point) wherever it is
    computed: zero weights, and a bias that requantizes to the zero-point, in its producers and
    in the depthwise and pool layers it passes (an add of two such channels gives its own
    zero-point by definition)."""
    for layer in graph.layers:
        out = graph.tensors[layer.output]
        dropped = np.setdiff1d(np.arange(out.channels), orders[comp[layer.output]])
        if dropped.size == 0 or layer.op == "add":
            continue
        weights_nonzero = layer.weights is not None and np.any(
            layer.weights[dropped] if layer.op in PRODUCERS else layer.weights[..., dropped])
        value = requantize(layer.bias[dropped].astype(np.int64), layer.mult[dropped], layer.shift[dropped], out.bits)
        if weights_nonzero or np.any(value != out.zero_point):
            raise HarnessError(f"layer {layer.name}: pruned channels {dropped.tolist()} need zero weights "
                               "and zero bias (their value must be exactly 0)")
