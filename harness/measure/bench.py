"""Kernel and network benchmarks on a board: instructions (emulators) or cycles (hardware) per MAC.

`bench_kernels` builds one firmware holding the fixed suite (SUITE: four layer shapes, each at
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
from dataclasses import asdict, dataclass

import numpy as np

from harness.ir import reference
from harness.boards import Board
from harness.build.firmware import build_firmware
from harness.build.codegen import generate, model_hash
from harness.link.device import open_device, pack_tensor, undisturbed, unpack_tensor
from harness.link.protocol import RunResult
from harness.errors import HarnessError
from harness.ir.graph import Graph, Layer, Tensor, conv_output_size
from harness.measure.run import TickUnit
from harness.ir.packing import BITS, value_range
from harness.paths import cache_dir
from harness.ir.random_graphs import _calibrate_on, random_input

IMPLS = {"m7": {}, "ref": {"EXTRA_CFLAGS": "-DMPQ_FORCE_REF"}}  # implementation -> make variables
DEFAULT_PERF_RUNS = 2
BIT_COMBOS = tuple(itertools.product(BITS, BITS, BITS))  # (input, weight, output)


@dataclass(frozen=True)
class BenchShape:
    """One layer shape of the suite and the CMSIS-NN int8 figure it is held to (instructions/MAC
    on QEMU mps2-an500, -icount shift=0, issue 5)."""

    name: str
    title: str
    op: str  # IR op: conv2d (pointwise is a 1x1 conv2d) or depthwise_conv2d
    h: int
    w: int
    cin: int
    cout: int
    k: int
    stride: int
    pad: int
    cmsis_int8: float

    @property
    def out_hw(self) -> tuple[int, int]:
        return (conv_output_size(self.h, self.k, self.stride, self.pad, self.pad),
                conv_output_size(self.w, self.k, self.stride, self.pad, self.pad))

    @property
    def macs(self) -> int:
        """Multiply-accumulates of the layer, padded taps included (the usual count)."""
        ho, wo = self.out_hw
        per_output = self.k * self.k * (1 if self.op == "depthwise_conv2d" else self.cin)
        return ho * wo * self.cout * per_output


SUITE = (
    BenchShape("pointwise", "pointwise 1x1, 16x16x64 -> 128", "conv2d", 16, 16, 64, 128, 1, 1, 0, 2.03),
    BenchShape("conv3x3", "conv 3x3, s1, pad 1, 16x16x32 -> 32", "conv2d", 16, 16, 32, 32, 3, 1, 1, 1.93),
    BenchShape("depthwise", "depthwise 3x3, s1, pad 1, 16x16x128", "depthwise_conv2d", 16, 16, 128, 128, 3, 1, 1, 8.39),
    BenchShape("conv3x3_s2", "conv 3x3, s2, pad 1, 32x32x8 -> 16", "conv2d", 32, 32, 8, 16, 3, 2, 1, 2.89),
)


def shape_graph(shape: BenchShape, bits: tuple[int, int, int], seed: int = 0) -> Graph:
    """The shape as a one-layer graph at (input, weight, output) bits: random weights, input
    zero-point 0, bias and multipliers calibrated so outputs spread over the output range."""
    in_bits, w_bits, out_bits = bits
    rng = np.random.default_rng(seed)
    ho, wo = shape.out_hw
    x = Tensor("x", (shape.h, shape.w, shape.cin), in_bits, 1.0)
    y = Tensor("y", (ho, wo, shape.cout), out_bits, 1.0)
    lo, hi = value_range(w_bits, signed=True)
    wshape = ((shape.k, shape.k, shape.cin) if shape.op == "depthwise_conv2d"
              else (shape.cout, shape.k, shape.k, shape.cin))
    zeros = np.zeros(shape.cout, dtype=np.int32)
    layer = Layer("layer0", shape.op, "x", "y", (shape.k, shape.k), (shape.stride, shape.stride), (shape.pad,) * 4,
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
    """Run the suite on the board and return the report (JSON-able): unit, meaning, results."""
    cases = [(shape, bits, shape_graph(shape, bits)) for shape in shapes for bits in combos]
    graphs = [graph for _, _, graph in cases]
    build = build_for_impl(graphs, board, impl)
    results = []
    with open_device(board, build.elf_path, expected_hash=model_hash(graphs), run_timeout=120.0) as device:
        unit = TickUnit.of(device.info())
        for index, (shape, bits, graph) in enumerate(cases):
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
            result = KernelResult(shape.name, *bits, shape.macs, perf.mean_ticks, cost / shape.macs, shape.cmsis_int8)
            results.append(result)
            on_result(result)
    return {"board": board.name, "impl": impl, "unit": unit.name, "meaning": unit.meaning, "runs": runs,
            "shapes": [asdict(s) | {"macs": s.macs} for s in shapes],
            "results": [asdict(r) | {"meets_target": r.meets_target} for r in results]}


def bench_network(graph: Graph, inputs: np.ndarray, board: Board, impls: Sequence[str] = ("ref", "m7")) -> dict:
    """Whole-network cost of `graph` on each input with each kernel implementation; every output
    is checked bit-exactly against harness.ir.reference."""
    expected = [reference.predict(graph, x) for x in inputs]
    report: dict = {"board": board.name, "model": graph.name, "model_hash": graph.hash(), "images": len(inputs),
                    "impls": {}}
    for impl in impls:
        build = build_for_impl([graph], board, impl, f"network-{impl}")
        totals = []
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
        report["unit"], report["meaning"] = unit.name, unit.meaning
        report["impls"][impl] = {"median": statistics.median(totals), "min": min(totals), "max": max(totals)}
    return report
