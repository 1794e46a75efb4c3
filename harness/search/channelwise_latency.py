"""The channel-wise search's latency term: E[ticks] of the network under theta, from the board's
measured latency table.

`harness profile --runs` measures every conv2d and fully connected layer of the starting policy's
graph at all its output channels and at half of them, at each weight bits, so a run of n output
channels at b bits costs a_b + s_b * n (harness.measure.latency). Pruned channels also shrink the
consumers' inputs; a layer's ticks are taken as proportional to its kept input channels (the
kernels' work is), and a channel-preserving layer's (depthwise, pools, add) to its kept channels:

    E[ticks of a searched layer] = r * sum_b (a_b * P(some channel at b) + s_b * E[channels at b])
    r = E[kept input channels] / input channels

with P(some channel at b) = 1 - prod_c (1 - theta_cb) (theta_b itself for a layer-wise row), the
channels independent, and the input and output factors independent (different components).
Activation bits are the starting policy's. The per-network overhead is left out: no choice
changes it.
"""
from __future__ import annotations

from dataclasses import dataclass

from harness.errors import HarnessError
from harness.ir.channel_order import CHANNEL_PRESERVING
from harness.ir.graph import Graph
from harness.measure.latency import LatencyTable, half_channels, layer_key, window_key
from harness.zoo.architecture import Architecture


@dataclass(frozen=True)
class LayerLine:
    """A layer's ticks at the starting policy's activation bits: per weight bits (a, s) of
    a + s * output channels for a searched layer, else its measured ticks; and its channels."""

    in_channels: int
    out_channels: int
    lines: dict[int, tuple[float, float]] | None = None  # weight bits -> (a, s)
    ticks: float | None = None


def latency_lines(graph: Graph, table: LatencyTable, searched: set[str]) -> dict[str, LayerLine]:
    """Every layer's LayerLine from the table; HarnessError naming what was not profiled."""
    result = {}
    for layer in graph.layers:
        channels = graph.tensors[layer.output].channels
        in_channels = graph.tensors[layer.input].channels
        if layer.name not in searched:
            ticks = table.entries.get(layer_key(graph, layer))
            if ticks is None:
                raise _unprofiled(table, layer_key(graph, layer))
            result[layer.name] = LayerLine(in_channels, channels, ticks=float(ticks))
            continue
        half, lines = half_channels(graph, layer), {}
        for bits in (2, 4, 8):
            full_key, half_key = window_key(graph, layer, channels, bits), window_key(graph, layer, half, bits)
            for key in (full_key, half_key) if half else (full_key,):
                if key not in table.entries:
                    raise _unprofiled(table, key)
            full = float(table.entries[full_key])
            slope = (full - table.entries[half_key]) / (channels - half) if half else 0.0
            lines[bits] = (full - slope * channels, slope)
        result[layer.name] = LayerLine(in_channels, channels, lines=lines)
    return result


def _unprofiled(table: LatencyTable, key: str) -> HarnessError:
    return HarnessError(f"latency table for {table.board} lacks {key}: run `harness profile --board {table.board} "
                        "--runs` on the starting policy")


def expected_latency(arch: Architecture, mixture, kept: dict, lines: dict[str, LayerLine]):
    """E[ticks] of every layer under theta (a torch scalar); `kept` from
    harness.search.channelwise.expected_channels."""
    import torch

    from harness.search.channelwise import PRECISIONS

    total = torch.tensor(0.0)
    for spec in arch.layers:
        line = lines[spec.name]
        source = arch.sources(spec)[0]
        if spec.name in mixture.components:
            root = mixture.components[spec.name]
            theta = mixture.theta(root)
            rows = line.out_channels if root in mixture.shared else 1
            cost = torch.tensor(0.0)
            for k, bits in enumerate(PRECISIONS):
                if bits == 0:
                    continue
                a, s = line.lines[bits]
                present = theta[0, k] if root in mixture.shared else 1.0 - torch.prod(1.0 - theta[:, k])
                cost = cost + a * present + s * theta[:, k].sum() * rows
            total = total + cost * kept[source] / line.in_channels
        elif spec.op in CHANNEL_PRESERVING:
            total = total + line.ticks * kept[spec.name] / line.out_channels
        else:
            total = total + line.ticks * kept[source] / line.in_channels
    return total
