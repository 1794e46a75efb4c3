"""Kernel and network benchmarks on a board: instructions (emulators) or cycles (hardware) per MAC.

`bench_kernels` builds firmware holding the fixed suite (SUITE: seven layer shapes, each at
every (input, weight, output) bit combination, random weights calibrated like
harness.ir.random_graphs), checks each layer's output bit-exactly against harness.ir.reference, then
times it with PERF (no I/O in the timed region) and divides by the layer's MACs.

`bench_network` measures a lowered network (e.g. the digits policy) with the Cortex-M7 kernels
and with the portable ones (firmware built with -DMPQ_FORCE_REF), on the same test images.

Kernel choice is a build flag: IMPLS maps an implementation name to its make variables.
"""
from __future__ import annotations

import itertools
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np

from harness.ir import reference
from harness.boards import Board
from harness.build.firmware import build_firmware
from harness.build.codegen import generate, model_hash
from harness.link.device import open_device, pack_tensor, undisturbed, unpack_tensor
from harness.link.protocol import RunResult
from harness.errors import HarnessError
from harness.ir.graph import Graph, Layer, Tensor, conv_output_size, pair, padding_tlbr
from harness.measure.run import TickUnit
from harness.ir.packing import BITS, value_range
from harness.paths import cache_dir
from harness.ir.random_graphs import _calibrate_on, random_input

IMPLS = {"m7": {}, "ref": {"EXTRA_CFLAGS": "-DMPQ_FORCE_REF"}}  # implementation -> make variables
DEFAULT_PERF_RUNS = 2
BIT_COMBOS = tuple(itertools.product(BITS, BITS, BITS))  # (input, weight, output)


@dataclass(frozen=True)
class BenchShape:
    """One layer shape and the figure it is held to (`cmsis_int8`: the CMSIS-NN s8 figure of its
    class, instructions/MAC on QEMU mps2-an500, -icount shift=0, issues 5 and 13). `k` and
    `stride` are k or (kh, kw); `pad` is p or (top, left, bottom, right). A fully_connected
    shape reads its h x w x cin input flattened."""

    name: str
    title: str
    op: str  # IR op: conv2d (pointwise is a 1x1 conv2d), depthwise_conv2d or fully_connected
    h: int
    w: int
    cin: int
    cout: int
    k: int | tuple[int, int]
    stride: int | tuple[int, int]
    pad: int | tuple[int, int, int, int]
    cmsis_int8: float

    @property
    def kernel_hw(self) -> tuple[int, int]:
        return pair(self.k)

    @property
    def stride_hw(self) -> tuple[int, int]:
        return pair(self.stride)

    @property
    def padding_tlbr(self) -> tuple[int, int, int, int]:
        return padding_tlbr(self.pad)

    @property
    def out_hw(self) -> tuple[int, int]:
        if self.op == "fully_connected":
            return (1, 1)
        (kh, kw), (sh, sw), (pt, pl, pb, pr) = self.kernel_hw, self.stride_hw, self.padding_tlbr
        return conv_output_size(self.h, kh, sh, pt, pb), conv_output_size(self.w, kw, sw, pl, pr)

    @property
    def macs(self) -> int:
        """Multiply-accumulates of the layer, padded taps included (the usual count)."""
        if self.op == "fully_connected":
            return self.h * self.w * self.cin * self.cout
        ho, wo = self.out_hw
        kh, kw = self.kernel_hw
        return ho * wo * self.cout * kh * kw * (1 if self.op == "depthwise_conv2d" else self.cin)


SUITE = (
    BenchShape("pointwise", "pointwise 1x1, 16x16x64 -> 128", "conv2d", 16, 16, 64, 128, 1, 1, 0, 2.03),
    BenchShape("conv3x3", "conv 3x3, s1, pad 1, 16x16x32 -> 32", "conv2d", 16, 16, 32, 32, 3, 1, 1, 1.93),
    BenchShape("depthwise", "depthwise 3x3, s1, pad 1, 16x16x128", "depthwise_conv2d", 16, 16, 128, 128, 3, 1, 1, 8.39),
    BenchShape("conv3x3_s2", "conv 3x3, s2, pad 1, 32x32x8 -> 16", "conv2d", 32, 32, 8, 16, 3, 2, 1, 2.89),
    # issue 13's layer classes, held to issue 13's CMSIS-NN s8 figures
    BenchShape("fc", "fully connected 640 -> 128", "fully_connected", 1, 1, 640, 128, 1, 1, 0, 2.0),
    BenchShape("pointwise_wide", "pointwise 1x1, 7x7x512 -> 512", "conv2d", 7, 7, 512, 512, 1, 1, 0, 1.5),
    BenchShape("depthwise_s2", "depthwise 3x3, s2, pad 1, 48x48x16", "depthwise_conv2d", 48, 48, 16, 16, 3, 2, 1, 9.0),
)

# The networks whose every layer geometry `bench kernels --shapes zoo` runs: the MLPerf Tiny
# reference networks and MobileNetV1 1.0 at 224 (zoo name, builder arguments).
ZOO_NETWORKS = (("mlperf_ad_autoencoder", {}), ("mlperf_kws_dscnn", {}), ("mlperf_vww_mobilenet", {}),
                ("mlperf_ic_resnet8", {}), ("mobilenet_v1", {"width": 1.0, "resolution": 224}))
ZOO_MAP_BYTES = 256 * 1024  # largest input + output of a zoo shape at 8 bits; taller maps lose rows
WIDE_POINTWISE_CIN = 256  # a pointwise layer reading this many channels or more is "wide"
# CMSIS-NN s8 figures (issue 13's table, and issue 5's for the four suite shapes) by layer class
CMSIS_FC, CMSIS_WIDE_POINTWISE, CMSIS_DEPTHWISE_S2 = 2.0, 1.5, 9.0


def zoo_target(op: str, kernel: tuple[int, int], stride: tuple[int, int], cin: int) -> float:
    """The CMSIS-NN s8 figure a layer of this class is held to."""
    if op == "fully_connected":
        return CMSIS_FC
    if op == "depthwise_conv2d":
        return CMSIS_DEPTHWISE_S2 if stride != (1, 1) else SUITE[2].cmsis_int8
    if kernel == (1, 1):
        return CMSIS_WIDE_POINTWISE if cin >= WIDE_POINTWISE_CIN else SUITE[0].cmsis_int8
    return SUITE[3].cmsis_int8 if stride != (1, 1) else SUITE[1].cmsis_int8


def _map_bytes(shape: BenchShape) -> int:
    ho, wo = shape.out_hw
    return shape.h * shape.w * shape.cin + ho * wo * shape.cout


def _crop_rows(shape: BenchShape) -> BenchShape:
    """The shape with input rows taken away (a stride at a time) until its 8-bit input and output
    fit ZOO_MAP_BYTES: the cost per MAC hardly depends on the number of rows, the board's RAM does."""
    sh, kh = shape.stride_hw[0], shape.kernel_hw[0]
    rows = shape.h
    while rows - sh >= kh and _map_bytes(replace(shape, h=rows)) > ZOO_MAP_BYTES:
        rows -= sh
    if rows == shape.h:
        return shape
    return replace(shape, h=rows, title=f"{shape.title} (rows cropped to {rows} of {shape.h})")


def _geometry_title(op: str, h: int, w: int, cin: int, cout: int, kernel, stride, padding) -> str:
    if op == "fully_connected":
        return f"fully connected {h * w * cin} -> {cout}"
    kind = {"depthwise_conv2d": "depthwise"}.get(op, "pointwise" if kernel == (1, 1) else "conv")
    window = "" if kernel == (1, 1) and stride == (1, 1) else f" {kernel[0]}x{kernel[1]}"
    strides = f" s{stride[0]}" if stride[0] == stride[1] else f" s{stride[0]}x{stride[1]}"
    pad = f" pad {'/'.join(map(str, padding))}" if any(padding) and len(set(padding)) > 1 else (
        f" pad {padding[0]}" if any(padding) else "")
    channels = f"{h}x{w}x{cin}" if op == "depthwise_conv2d" else f"{h}x{w}x{cin} -> {cout}"
    return f"{kind}{window}{strides if stride != (1, 1) or window else ''}{pad}, {channels}"


def zoo_shapes(networks=ZOO_NETWORKS) -> tuple[BenchShape, ...]:
    """Every distinct geometry of a conv2d, depthwise or fully connected layer of the networks,
    in order of first appearance, each held to the CMSIS-NN figure of its class (zoo_target)."""
    from harness import zoo

    shapes: dict[tuple, BenchShape] = {}
    for model, args in networks:
        arch = zoo.build(model, args)
        sizes = arch.shapes()
        for spec in arch.layers:
            if spec.op not in ("conv2d", "depthwise_conv2d", "fully_connected"):
                continue
            h, w, cin = sizes[arch.sources(spec)[0]]
            cout = cin if spec.op == "depthwise_conv2d" else spec.out_channels
            kernel, stride, padding = spec.kernel_hw, spec.stride_hw, spec.padding_tlbr
            if spec.op == "fully_connected":
                kernel, stride, padding = (1, 1), (1, 1), (0, 0, 0, 0)
            key = (spec.op, h, w, cin, cout, kernel, stride, padding)
            if key not in shapes:
                name = f"zoo{len(shapes) + 1:02d}"
                title = _geometry_title(spec.op, h, w, cin, cout, kernel, stride, padding)
                shape = BenchShape(name, f"{title} ({arch.name} {spec.name})", spec.op, h, w, cin, cout, kernel,
                                   stride, padding, zoo_target(spec.op, kernel, stride, h * w * cin if
                                                               spec.op == "fully_connected" else cin))
                shapes[key] = _crop_rows(shape)
    return tuple(shapes.values())


def shape_graph(shape: BenchShape, bits: tuple[int, int, int], seed: int = 0, zero_point: int = 0) -> Graph:
    """The shape as a one-layer graph at (input, weight, output) bits: random weights, the input
    zero-point (0 unless given), bias and multipliers calibrated so outputs spread over the output
    range."""
    in_bits, w_bits, out_bits = bits
    rng = np.random.default_rng(seed)
    ho, wo = shape.out_hw
    x = Tensor("x", (shape.h, shape.w, shape.cin), in_bits, 1.0, zero_point)
    y = Tensor("y", (ho, wo, shape.cout), out_bits, 1.0)
    lo, hi = value_range(w_bits, signed=True)
    kh, kw = shape.kernel_hw
    wshape = {"depthwise_conv2d": (kh, kw, shape.cin),
              "fully_connected": (shape.cout, shape.h * shape.w * shape.cin)}.get(shape.op,
                                                                                 (shape.cout, kh, kw, shape.cin))
    zeros = np.zeros(shape.cout, dtype=np.int32)
    layer = Layer("layer0", shape.op, "x", "y", (kh, kw), shape.stride_hw, shape.padding_tlbr,
                  w_bits, rng.integers(lo, hi + 1, size=wshape).astype(np.int32), zeros, zeros, zeros.astype(np.int8))
    graph = Graph(f"bench_{shape.name}_i{in_bits}w{w_bits}o{out_bits}", {"x": x, "y": y}, [layer], "x", "y")
    _calibrate_on(graph, layer, random_input(graph, seed + 1), rng)
    graph.validate()
    return graph


@dataclass(frozen=True)
class KernelResult:
    """One (shape, bits) of the suite as measured."""

    shape: str
    in_bits: int
    w_bits: int
    out_bits: int
    macs: int
    ticks: float
    per_mac: float  # in the unit of the report (instructions or cycles)
    target: float  # the CMSIS-NN int8 figure of the shape

    @property
    def meets_target(self) -> bool:
        return self.per_mac <= self.target


def build_for_impl(graphs: list[Graph], board: Board, impl: str, label: str = "bench"):
    """Generated C for `graphs`, built (cached) with the kernels of `impl` (a key of IMPLS)."""
    if impl not in IMPLS:
        raise HarnessError(f"unknown kernel implementation {impl!r}; choose one of {', '.join(IMPLS)}")
    gen_dir = cache_dir("generated", f"{model_hash(graphs)}-{label}-{impl}")
    generate(graphs, gen_dir)
    return build_firmware(board, gen_dir, make_vars=IMPLS[impl])


def bench_kernels(board: Board, impl: str = "m7", shapes: Sequence[BenchShape] = SUITE,
                  combos: Sequence[tuple[int, int, int]] = BIT_COMBOS, runs: int = DEFAULT_PERF_RUNS,
                  on_result: Callable[[KernelResult], None] = lambda r: None) -> dict:
    """Run the shapes at the combinations on the board and return the report (JSON-able): unit,
    meaning, results. The layers go into as few firmware images as the board's flash allows."""
    from harness.measure.profile import batches

    cases = {shape_graph(shape, bits).name: (shape, bits) for shape in shapes for bits in combos}
    graphs = [shape_graph(shape, bits) for shape, bits in cases.values()]
    results = []
    for group in batches(graphs, board.budget.flash):
        build = build_for_impl(group, board, impl)
        with open_device(board, build.elf_path, expected_hash=model_hash(group), run_timeout=120.0) as device:
            unit = TickUnit.of(device.info())
            for index, graph in enumerate(group):
                shape, bits = cases[graph.name]
                result = _bench_layer(device, index, graph, shape, bits, runs, unit)
                results.append(result)
                on_result(result)
    return {"board": board.name, "impl": impl, "unit": unit.name, "meaning": unit.meaning, "runs": runs,
            "shapes": [asdict(s) | {"macs": s.macs} for s in shapes],
            "results": [asdict(r) | {"meets_target": r.meets_target} for r in results]}


def _bench_layer(device, index: int, graph: Graph, shape: BenchShape, bits: tuple[int, int, int], runs: int,
                 unit: TickUnit) -> KernelResult:
    """Model `index` on the device: one RUN checked against harness.ir.reference, then PERF."""
    x = random_input(graph, 7)
    device.load(index, pack_tensor(x, graph.tensors[graph.input]))
    run, _ = undisturbed(lambda: device.run(index), graph.name)
    if not run.ok:
        raise HarnessError(f"{graph.name}: firmware status {run.status}")
    got = unpack_tensor(device.read_output(index), graph.tensors[graph.output])
    if not np.array_equal(got, reference.predict(graph, x)):
        raise HarnessError(f"{graph.name}: the device output differs from harness.ir.reference")
    perf, _ = undisturbed(lambda: device.perf(index, runs), graph.name)
    if not perf.ok:
        raise HarnessError(f"{graph.name}: PERF status {perf.status}")
    cost = perf.mean_ticks * unit.per_tick
    return KernelResult(shape.name, *bits, shape.macs, perf.mean_ticks, cost / shape.macs, shape.cmsis_int8)


def bench_network(graph: Graph, inputs: np.ndarray, board: Board, impls: Sequence[str] = ("ref", "m7")) -> dict:
    """Whole-network cost of `graph` on each input with each kernel implementation, and each
    layer's (median over the inputs, with its MACs); every output is checked bit-exactly against
    harness.ir.reference. The network's MACs are those of its conv2d, depthwise and fully
    connected layers (harness.zoo.counts: pools and adds multiply nothing)."""
    expected = [reference.predict(graph, x) for x in inputs]
    macs = sum(graph.macs(layer) for layer in graph.layers if layer.weights is not None)
    report: dict = {"board": board.name, "model": graph.name, "model_hash": graph.hash(), "images": len(inputs),
                    "macs": macs, "impls": {}}
    for impl in impls:
        build = build_for_impl([graph], board, impl, f"network-{impl}")
        totals, layers = [], []
        with open_device(board, build.elf_path, expected_hash=graph.hash()) as device:
            unit = TickUnit.of(device.info())
            for index, (x, want) in enumerate(zip(inputs, expected)):
                packed = pack_tensor(x, graph.tensors[graph.input])

                def load_and_run() -> RunResult:  # an input_reused model's run consumes its input
                    device.load(0, packed)
                    return device.run(0)

                run, _ = undisturbed(load_and_run, f"{impl}: image {index}")
                if not run.ok:
                    raise HarnessError(f"{impl}: firmware status {run.status} on image {index}")
                got = unpack_tensor(device.read_output(0), graph.tensors[graph.output])
                if not np.array_equal(got, want):
                    raise HarnessError(f"{impl}: image {index} differs from harness.ir.reference")
                totals.append(run.total_ticks * unit.per_tick)
                layers.append([ticks * unit.per_tick for ticks in run.layer_ticks])
        report["unit"], report["meaning"] = unit.name, unit.meaning
        median = statistics.median(totals)
        report["impls"][impl] = {"median": median, "min": min(totals), "max": max(totals),
                                 "per_mac": median / macs if macs else None,
                                 "layers": [_layer_cost(graph, layer, [run[i] for run in layers])
                                            for i, layer in enumerate(graph.layers)]}
    return report


def _layer_cost(graph: Graph, layer: Layer, costs: list[float]) -> dict:
    macs = graph.macs(layer)
    cost = statistics.median(costs)
    return {"layer": layer.name, "op": layer.op, "in_bits": graph.tensors[layer.input].bits, "w_bits": layer.w_bits,
            "out_bits": graph.tensors[layer.output].bits, "macs": macs, "cost": cost,
            "per_mac": cost / macs if macs else None}
