"""Profile a model's layers on a board: every layer at every bit configuration a search may pick.

For each layer of the model and each (input bits, weight bits, output bits) it can take, a
single-layer graph with the layer's geometry and random weights is generated; configurations
already in the board's latency table (harness.measure.latency), or shared by two layers of the same
geometry, are measured once. The graphs go into as few firmware images as the limits allow
(at most 255 models per image, the protocol's model index; their weights within the board's
flash budget), each image is started on the board, and every model is LOADed with the random
input its requantization was set for and RUN once: its layer's ticks go into the table, and
the RUN's total minus the layer's ticks is recorded as a sample of the per-network overhead.
The table is saved after each image, so an interrupted profile keeps what it measured.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from harness.ir import reference
from harness.boards import Board
from harness.build.codegen import model_hash
from harness.link.device import open_device, pack_tensor, undisturbed
from harness.link.protocol import Device
from harness.errors import HarnessError
from harness.build.firmware import build_graphs
from harness.ir.graph import Graph, Layer
from harness.measure.latency import LatencyTable, half_channels, layer_key
from harness.measure.run import TickUnit
from harness.ir.memory import CODE_FLASH_BYTES, memory_report
from harness.ir.packing import BITS, value_range
from harness.ir.random_graphs import random_add_graph, random_input
from harness.ir.requant import quantize_multipliers

MAX_MODELS_PER_IMAGE = 255
WINDOWED = ("conv2d", "fully_connected")  # ops whose kernels take an output-channel window (channel-wise runs)
FLASH_HEADROOM = 0.8  # share of the flash budget the profiled weights may take (descriptors, code)


@dataclass(frozen=True)
class BitConfig:
    in_bits: int
    w_bits: int | None
    out_bits: int
    in2_bits: int | None = None  # an add's second input


def bit_configs(graph: Graph, layer: Layer) -> list[BitConfig]:
    """Every configuration a search may give the layer: the network input's and output's bits are
    fixed (the logits are int32), a weightless layer has no weight bits, an add has two inputs; the rest is
    each of 2/4/8 bits."""
    def choices(tensor: str) -> tuple[int, ...]:
        return (graph.tensors[graph.input].bits,) if tensor == graph.input else BITS

    out_choices = (graph.tensors[graph.output].bits,) if layer.output == graph.output else BITS
    w_choices = (None,) if layer.weights is None else BITS
    in2_choices = (None,) if layer.input2 is None else choices(layer.input2)
    return [BitConfig(i, w, o, i2) for i, w, o, i2 in
            itertools.product(choices(layer.input), w_choices, out_choices, in2_choices)]


def config_key(graph: Graph, layer: Layer, config: BitConfig) -> str:
    return layer_key(graph, layer, (config.in_bits, config.w_bits, config.out_bits), config.in2_bits)


def profiled_costs(graph: Graph, table: LatencyTable) -> dict[str, dict[BitConfig, float]]:
    """Per layer of `graph`, the table's cost (in the table's unit) of every configuration it holds."""
    costs = {}
    for layer in graph.layers:
        row = {}
        for config in bit_configs(graph, layer):
            key = config_key(graph, layer, config)
            if key in table.entries:
                row[config] = table.entries[key] * table.per_tick
        costs[layer.name] = row
    return costs


def relu_like_requantization(graph: Graph, layer: Layer, x: np.ndarray) -> None:
    """Bias and multipliers for input x as in a trained ReLU network: each channel's accumulators
    centred on 0, so about half requantize to 0 (the optimized kernels return early for
    acc <= 0), the positive half spread over the output range. Measured on digits-cnn with the
    Cortex-M7 kernels, profiling with outputs centred in the range instead over-predicted the
    network by ~8 %, with mostly-zero outputs under-predicted a 2-bit layer by ~11 %."""
    layer.bias = np.zeros(graph.tensors[layer.output].channels, dtype=np.int32)
    acc = reference.accumulate(graph, layer, x).reshape(-1, layer.bias.size).astype(np.float64)
    levels = (1 << min(graph.tensors[layer.output].bits, 8)) - 1  # int32 logits ignore the multipliers
    if acc.shape[0] < 4:  # a 1x1 output (pool, fully connected): statistics over all channels
        acc = acc.reshape(-1, 1)
    ones = np.ones(layer.bias.size)
    layer.bias = np.rint(-acc.mean(axis=0) * ones).astype(np.int32)
    layer.mult, layer.shift = quantize_multipliers(levels / (2.0 * np.maximum(acc.std(axis=0), 1.0)) * ones)


def single_layer_graph(graph: Graph, layer: Layer, config: BitConfig, seed: int) -> Graph:
    """The layer alone at `config` with random weights, its requantization set by
    relu_like_requantization on its profiling input (random, seed graph.meta["input_seed"]).
    An add gets its second input from a 1x1 average pool of the first (harness.ir.random_graphs),
    so the graph has two layers; meta["profiled"] is the measured layer's index."""
    if layer.input2 is not None:
        single = random_add_graph(config.in_bits, config.in2_bits, config.out_bits, seed,
                                  graph.tensors[layer.output].shape)
        x = graph.tensors[layer.input]
        single.tensors["x"] = replace(single.tensors["x"], zero_point=x.zero_point)  # the key's zp flag
        single.meta.update(input_seed=seed, profiled=1)
        single.validate()
        return single
    rng = np.random.default_rng(seed)
    inp = replace(graph.tensors[layer.input], name="x", bits=config.in_bits, scale=1.0)
    out = replace(graph.tensors[layer.output], name="y", bits=config.out_bits, scale=1.0)
    weights = None
    if layer.weights is not None:
        low, high = value_range(config.w_bits, signed=True)
        weights = rng.integers(low, high + 1, size=layer.weights.shape).astype(np.int32)
    zeros = np.zeros(out.channels, dtype=np.int32)
    single = Layer("layer", layer.op, "x", "y", layer.kernel, layer.stride, layer.padding, config.w_bits,
                   weights, zeros, zeros, zeros.astype(np.int8))
    profiled = Graph(f"profile {layer.op}", {"x": inp, "y": out}, [single], "x", "y",
                     {"input_seed": seed, "profiled": 0})
    relu_like_requantization(profiled, single, random_input(profiled, seed))
    profiled.validate()
    return profiled


def narrowed(graph: Graph, layer: Layer) -> tuple[Graph, Layer] | None:
    """The layer cut to its first half_channels output channels (the second width of a + b * channels
    for channel-wise runs), in a graph of its input and that output; None for a layer whose kernel
    takes no output-channel window or that has a single output channel."""
    half = half_channels(graph, layer)
    if layer.op not in WINDOWED or half == 0:
        return None
    out = graph.tensors[layer.output]
    window = replace(out, shape=(*out.shape[:2], half))
    cut = replace(layer, w_bits=8, weights=layer.weights[:half])
    return Graph(graph.name, {layer.input: graph.tensors[layer.input], layer.output: window}, [cut],
                 layer.input, layer.output), cut


def profile_graphs(graph: Graph, table: LatencyTable | None = None, ram_limit: int | None = None,
                   runs: bool = False) -> list[Graph]:
    """Single-layer graphs of every (layer, configuration) of `graph` the table lacks, each key once;
    with `ram_limit`, not those whose layer alone needs more RAM (no policy within it can use them);
    with `runs`, also every windowed layer at half its output channels (narrowed), so the table
    prices any run of a channel-wise layer as a + b * channels."""
    wanted: dict[str, Graph] = {}
    for index, layer in enumerate(graph.layers):
        widths = [(graph, layer)]
        if runs and narrowed(graph, layer) is not None:
            widths.append(narrowed(graph, layer))
        for number, ((view, one), config) in enumerate(itertools.product(widths, bit_configs(graph, layer))):
            single = single_layer_graph(view, one, config, seed=index * 1000 + number)
            key = profiled_key(single)
            if key in wanted or (table is not None and key in table.entries):
                continue
            if ram_limit is None or memory_report(single).ram_bytes <= ram_limit:
                wanted[key] = single
    return list(wanted.values())


def profiled_key(single: Graph) -> str:
    """The table key of the layer a profiling graph measures."""
    return layer_key(single, single.layers[single.meta["profiled"]])


def batches(graphs: list[Graph], flash_budget: int, max_models: int = MAX_MODELS_PER_IMAGE) -> list[list[Graph]]:
    """Consecutive groups of at most `max_models` (at most 255) graphs whose weights and parameters
    fit the flash headroom."""
    limit = flash_budget * FLASH_HEADROOM - CODE_FLASH_BYTES
    groups: list[list[Graph]] = [[]]
    used = 0
    for graph in graphs:
        size = sum(graph.weight_bytes(layer) + graph.param_bytes(layer) for layer in graph.layers)
        if size > limit:
            raise HarnessError(f"a single layer ({profiled_key(graph)}) needs {size} B of flash, "
                               f"more than the {int(limit)} B a profiling image may use")
        if len(groups[-1]) == min(max_models, MAX_MODELS_PER_IMAGE) or used + size > limit:
            groups.append([])
            used = 0
        groups[-1].append(graph)
        used += size
    return [group for group in groups if group]


@dataclass(frozen=True)
class ProfiledGroup:
    """What one profiling image measured: the tick unit, per layer key its layer's ticks, and the
    per-network overhead samples."""

    unit: str
    per_tick: float
    layer_ticks: dict[str, int]
    overheads: list[int]


def profile(graph: Graph, board: Board,
            on_measured: Callable[[int, int], None] = lambda done, total: None,
            runs: bool = False) -> tuple[LatencyTable, int]:
    """Measure every configuration of `graph`'s layers the board's table lacks (with `runs`, at
    half width too: profile_graphs); (table, measured)."""
    table = LatencyTable.for_board(board)
    todo = profile_graphs(graph, table, board.budget.ram, runs)
    done = 0
    on_measured(done, len(todo))

    def one_more() -> None:
        nonlocal done
        done += 1
        on_measured(done, len(todo))

    for group in batches(todo, board.budget.flash):
        build = build_graphs(group, board, "profile")
        with open_device(board, build.elf_path, expected_hash=model_hash(group)) as device:
            add_to_table(table, profile_on_device(device, group, one_more))
    return table, len(todo)


def profile_on_device(device: Device, group: list[Graph], on_model: Callable[[], None] = lambda: None) -> ProfiledGroup:
    """RUN each single-layer model of `group` (model index = position) once on the started firmware."""
    unit = TickUnit.of(device.info())
    layer_ticks, overheads = {}, []
    for index, single in enumerate(group):
        x = random_input(single, single.meta["input_seed"])
        device.load(index, pack_tensor(x, single.tensors["x"]))
        run, _ = undisturbed(lambda: device.run(index), f"profiling model {index}")
        if not run.ok:
            raise HarnessError(f"profiling model {index} ({profiled_key(single)}) "
                               f"returned status {run.status}")
        layer_ticks[profiled_key(single)] = int(run.layer_ticks[single.meta["profiled"]])
        if len(single.layers) == 1:  # the per-network overhead of a one-layer model
            overheads.append(int(run.total_ticks - run.layer_ticks[0]))
        on_model()
    return ProfiledGroup(unit.name, unit.per_tick, layer_ticks, overheads)


def add_to_table(table: LatencyTable, measured: ProfiledGroup) -> None:
    """Record one image's measurements in the table and save it (an interrupted profile keeps them)."""
    table.unit, table.per_tick = measured.unit, measured.per_tick
    table.entries.update(measured.layer_ticks)
    table.overheads.extend(measured.overheads)
    table.save()
