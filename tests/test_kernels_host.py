"""The C kernels (firmware/kernels: portable _ref and Cortex-M7 _m7), built for the host, against harness.ir.reference:
bit-exact for every op x (input, weight, output) bits, never writing past their buffers,
refusing bad arguments, and compiling warning-free for the Cortex-M7 with a small stack."""
import itertools
import subprocess

import numpy as np
import pytest
from support.pool_graphs import POOL_CASES, all_top, case_id, lane_limit_graph, pool_graph
from support.requant_edges import BOUND_EDGE_OPS, M7_REQUANT_CASES, bound_edge_graph, m7_requant_edge_graph
from support.streamed_shapes import FEW_ROW_SHAPES, SHORT_ROW_SHAPES, with_shift_32
from support.thin_pointwise import ENGINE, THIN, takes_thin_path
from support.host_kernels import (
    CANARY,
    KERNELS,
    MPQ_ERR_ARG,
    MPQ_OK,
    SOURCES,
    KernelCall,
    build_library,
    expected_output,
    impls_of,
)

from harness.ir import reference
from harness.ir.graph import Graph, Layer, Tensor, conv_output_size
from harness.ir.packing import BITS, value_range
from harness.measure.bench import SUITE, BenchShape, shape_graph
from harness.ir.planner import layer_scratch_bytes
from harness.ir.random_graphs import BIT_COMBOS, KERNEL_OPS, random_input, random_layer_graph
from harness.ir.requant import quantize_multipliers

SEEDS = (0, 1, 2, 3, 4)
ARM_CFLAGS = ("-mcpu=cortex-m7", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-d16", "-O2", "-std=c11",
              "-Wall", "-Wextra", "-Werror", "-ffunction-sections", "-fdata-sections")
MAX_STACK_BYTES = 512  # per kernel function; the device has 512 kB RAM shared with the arena


@pytest.fixture(scope="session")
def kernels(tmp_path_factory):
    return build_library(tmp_path_factory.mktemp("mpq_kernels"))


def _first_difference(got: bytes, expected: bytes) -> str:
    i = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), min(len(got), len(expected)))
    return f"byte {i} of {len(expected)} differs: got {got[i:i + 4].hex()}, expected {expected[i:i + 4].hex()}"


def impls(kernel: str) -> tuple[str, ...]:
    """The wrapper, the wrapper without its checks, and every implementation of the kernel."""
    return ("", "_unchecked") + impls_of(kernel)


def refusers(kernel: str) -> tuple[str, ...]:
    """What refuses bad arguments: the wrapper, its checks alone and every implementation."""
    return ("", "_check") + impls_of(kernel)


def assert_calls_match(lib, call: KernelCall, expected: bytes, name: str) -> None:
    """Wrapper (checked and unchecked), _ref and (where there is one) _m7 kernel return MPQ_OK and
    the expected bytes, in bounds; mpq_<kernel>_check accepts the call."""
    assert call.run(lib, "_check").rc == MPQ_OK, f"mpq_{call.kernel}_check refused {name}"
    for impl in impls(call.kernel):
        what = f"mpq_{call.kernel}{impl} on {name}"
        outcome = call.run(lib, impl)
        assert outcome.rc == MPQ_OK, f"{what}: returned {outcome.rc}"
        assert not outcome.output_overrun, f"{what}: wrote past the output"
        assert not outcome.scratch_overrun, f"{what}: wrote past the scratch buffer"
        assert outcome.output == expected, f"{what}: {_first_difference(outcome.output, expected)}"


def assert_bit_exact(lib, kernel: str, graph: Graph, input_seed: int = 7) -> None:
    """The kernel computes the graph's only layer exactly as harness.ir.reference does."""
    x = random_input(graph, input_seed)
    assert_calls_match(lib, KernelCall.from_graph(kernel, graph, x), expected_output(graph, x), graph.name)


def seeded_graphs(op: str, in_bits: int, w_bits: int | None, out_bits: int):
    """A few random layers (zero-point random), plus one with the largest input zero-point."""
    for seed in SEEDS:
        yield random_layer_graph(op, in_bits, w_bits, out_bits, seed)
    yield random_layer_graph(op, in_bits, w_bits, out_bits, len(SEEDS), in_zero_point=(1 << in_bits) - 1)


@pytest.mark.parametrize("combo", BIT_COMBOS, ids=lambda c: "i{}w{}o{}".format(*c))
@pytest.mark.parametrize("op", KERNEL_OPS)
def test_kernel_matches_reference(kernels, op, combo):
    for graph in seeded_graphs(op, *combo):
        assert_bit_exact(kernels, op, graph)


@pytest.mark.parametrize("in_bits,w_bits", list(itertools.product(BITS, BITS)), ids=str)
@pytest.mark.parametrize("op", KERNEL_OPS)
def test_int32_logits_match_reference(kernels, op, in_bits, w_bits):
    for graph in seeded_graphs(op, in_bits, w_bits, 32):
        assert_bit_exact(kernels, op, graph)


@pytest.mark.parametrize("out_bits", BITS + (32,))
@pytest.mark.parametrize("in_bits", BITS)
def test_global_avg_pool_matches_reference(kernels, in_bits, out_bits):
    for graph in seeded_graphs("global_avg_pool", in_bits, None, out_bits):
        assert_bit_exact(kernels, "global_avg_pool", graph)


@pytest.mark.parametrize("case", POOL_CASES, ids=case_id)
def test_global_avg_pool_sums_large_maps_and_odd_channel_counts(kernels, case):
    """The _m7 pool sums a group of channels (8, or 16 at 2 bits) in 16-bit lanes, which hold 257
    8-bit, 4369 4-bit or 21845 2-bit values: exact at any input zero-point, and with every lane sum
    at its limit (all the top code, the outputs mid-range); maps past the limit and partial
    groups take the portable kernel, also exact."""
    for zero_point in (0, 77, 255):
        assert_bit_exact(kernels, "global_avg_pool", pool_graph(*case, zero_point))
    graph = lane_limit_graph(*case)
    x = all_top(graph)
    outputs = reference.predict(graph, x)
    assert 0 < outputs.min() and outputs.max() < 255  # nothing saturates: a wrong sum shows
    assert_calls_match(kernels, KernelCall.from_graph("global_avg_pool", graph, x), expected_output(graph, x),
                       graph.name)


def odd_window_graph(op: str, in_bits: int, w_bits: int, out_bits: int) -> Graph:
    """A 3x5 window, stride (2, 1), padding (top, left, bottom, right) = (0, 2, 1, 1): nothing
    square or symmetric, so swapped axes or a wrong padding side show up."""
    rng = np.random.default_rng(5)
    (h, w, c), kernel, stride, padding = (7, 6, 5), (3, 5), (2, 1), (0, 2, 1, 1)
    cout = c if op == "depthwise_conv2d" else 3
    (pt, pl, pb, pr), (kh, kw), (sh, sw) = padding, kernel, stride
    x = Tensor("x", (h, w, c), in_bits, 1.0, (1 << in_bits) // 3)
    y = Tensor("y", (conv_output_size(h, kh, sh, pt, pb), conv_output_size(w, kw, sw, pl, pr), cout), out_bits, 1.0)
    lo, hi = value_range(w_bits, signed=True)
    wshape = kernel + (c,) if op == "depthwise_conv2d" else (cout,) + kernel + (c,)
    zeros = np.zeros(cout, dtype=np.int32)
    layer = Layer("layer0", op, "x", "y", kernel, stride, padding, w_bits,
                  rng.integers(lo, hi + 1, size=wshape).astype(np.int32), zeros, zeros, zeros.astype(np.int8))
    graph = Graph(f"{op}_odd_window_i{in_bits}w{w_bits}o{out_bits}", {"x": x, "y": y}, [layer], "x", "y")
    acc = reference.accumulate(graph, layer, random_input(graph, 7))
    levels = 1 << min(out_bits, 8)
    m = levels / (4 * acc.std() + 1)  # outputs centred in the range, about +-2 std wide
    layer.bias = np.full(cout, np.rint(levels / 2 / m - acc.mean()), dtype=np.int32)
    layer.mult, layer.shift = quantize_multipliers(np.full(cout, m))
    graph.validate()
    return graph


@pytest.mark.parametrize("bits", [(8, 8, 8), (4, 2, 4), (2, 4, 32)], ids=str)
@pytest.mark.parametrize("op", ["conv2d", "depthwise_conv2d"])
def test_non_square_window_and_asymmetric_padding(kernels, op, bits):
    graph = odd_window_graph(op, *bits)
    if bits[2] != 32:
        y = reference.predict(graph, random_input(graph, 7))
        assert len(np.unique(y)) > 2, "test graph saturates: it would not check the arithmetic"
    assert_bit_exact(kernels, op, graph)


@pytest.mark.parametrize("out_bits", BITS)
def test_requantization_edge_cases(kernels, out_bits):
    """Accumulators at the int32 limits and around rounding ties, with extreme multipliers and
    shifts, through global_avg_pool of a zero 1x1 input (so each accumulator is its bias)."""
    accs = [-(2**31) + 1, -(2**20) - 1, -3, -2, -1, 0, 1, 2, 3, 2**20 + 1, 2**31 - 1]
    mults = [0, 1, 3, 2**30, 2**31 - 1]
    shifts = [1, 2, 31, 32, 62]
    acc, mult, shift = (np.array(v) for v in zip(*itertools.product(accs, mults, shifts)))
    c = acc.size
    x = Tensor("x", (1, 1, c), 8, 1.0)
    y = Tensor("y", (1, 1, c), out_bits, 1.0)
    layer = Layer("layer0", "global_avg_pool", "x", "y", bias=acc.astype(np.int32), mult=mult.astype(np.int32),
                  shift=shift.astype(np.int8))
    graph = Graph(f"requant_edges_o{out_bits}", {"x": x, "y": y}, [layer], "x", "y")
    graph.validate()
    zeros = np.zeros((1, 1, c), dtype=np.int32)
    call = KernelCall.from_graph("global_avg_pool", graph, zeros)
    assert_calls_match(kernels, call, expected_output(graph, zeros), graph.name)


@pytest.mark.parametrize("op", BOUND_EDGE_OPS)
def test_accumulators_at_the_bound_of_the_bounded_requantization(kernels, op):
    """The depthwise windows' and the matrix engine's bounded path (no clamp before the left shift)
    at its bound and one past it (support.requant_edges), on an input of all 255."""
    graph = bound_edge_graph(op)
    graph.validate()
    full = np.full(graph.tensors[graph.input].shape, 255, dtype=np.int32)
    assert np.abs(reference.accumulate(graph, graph.layers[0], full)).max() == 2**22 + 999
    call = KernelCall.from_graph(op, graph, full)
    assert_calls_match(kernels, call, expected_output(graph, full), graph.name)


@pytest.mark.parametrize("out_bits", BITS)
@pytest.mark.parametrize("case", M7_REQUANT_CASES)
def test_requantization_edge_cases_of_the_m7_kernels(kernels, case, out_bits):
    """Accumulator, multiplier and shift extremes through the _m7 kernels' own requantization
    paths (support.requant_edges), on an input of ones: every channel's accumulator is its bias + 1."""
    kernel, graph = m7_requant_edge_graph(case, out_bits)
    ones = np.ones(graph.tensors[graph.input].shape, dtype=np.int32)
    call = KernelCall.from_graph(kernel, graph, ones)
    assert_calls_match(kernels, call, expected_output(graph, ones), graph.name)


# -- argument checks --------------------------------------------------------------------------

def _set_offset(call: KernelCall, value: int) -> None:
    call.in_offset = call.window.in_offset = value


BAD_ARGUMENTS = {  # name -> (kernels it applies to, change to the call, extra run() arguments)
    "input bits 3": (KERNELS, lambda c: setattr(c.in_dims, "bits", 3), {}),
    "input bits 16": (KERNELS, lambda c: setattr(c.in_dims, "bits", 16), {}),
    "input bits 32": (KERNELS, lambda c: setattr(c.in_dims, "bits", 32), {}),
    "weight bits 0": (KERNEL_OPS, lambda c: setattr(c, "w_bits", 0), {}),
    "weight bits 1": (KERNEL_OPS, lambda c: setattr(c, "w_bits", 1), {}),
    "weight bits 16": (KERNEL_OPS, lambda c: setattr(c, "w_bits", 16), {}),
    "weight bits 32": (KERNEL_OPS, lambda c: setattr(c, "w_bits", 32), {}),
    "output bits 1": (KERNELS, lambda c: setattr(c.out_dims, "bits", 1), {}),
    "output bits 16": (KERNELS, lambda c: setattr(c.out_dims, "bits", 16), {}),
    "output bits 0": (KERNELS, lambda c: setattr(c.out_dims, "bits", 0), {}),
    "positive in_offset": (KERNELS, lambda c: _set_offset(c, 1), {}),
    "in_offset beyond the input range": (KERNELS, lambda c: _set_offset(c, -(1 << c.in_dims.bits)), {}),
    "shift 0": (KERNELS, lambda c: np.put(c.shift, -1, 0), {}),
    "shift 63": (KERNELS, lambda c: np.put(c.shift, 0, 63), {}),
    "negative mult": (KERNELS, lambda c: np.put(c.mult, -1, -5), {}),
    "no channels": (KERNELS, lambda c: setattr(c.in_dims, "c", 0), {}),
    "output channels differ": (("depthwise_conv2d", "global_avg_pool"),
                               lambda c: setattr(c.out_dims, "c", c.out_dims.c - 1), {}),
    "output taller than the window allows": (("conv2d", "depthwise_conv2d", "pointwise"),
                                             lambda c: setattr(c.out_dims, "h", c.out_dims.h + 2), {}),
    "output not 1x1": (("fully_connected", "global_avg_pool"), lambda c: setattr(c.out_dims, "w", 2), {}),
    "fully connected input not 1x1": (("fully_connected",), lambda c: setattr(c.in_dims, "h", 2), {}),
    "padding as large as the kernel": (("conv2d", "depthwise_conv2d"), lambda c: setattr(c.window, "pad_top", 3), {}),
    "zero stride": (("conv2d", "depthwise_conv2d"), lambda c: setattr(c.window, "sw", 0), {}),
    "no scratch": (KERNEL_OPS, lambda c: None, {"null_scratch": True}),
    "misaligned scratch": (KERNEL_OPS, lambda c: None, {"scratch_misalign": 2}),
}
BAD_CASES = [(kernel, name) for name, (applies_to, _, _) in BAD_ARGUMENTS.items() for kernel in applies_to]


def valid_layer(kernel: str) -> Graph:
    """A layer each kernel accepts (4-bit input and output, 2-bit weights); windows are 3x5."""
    if kernel in ("conv2d", "depthwise_conv2d"):
        return odd_window_graph(kernel, 4, 2, 4)
    return random_layer_graph(kernel, 4, 2, 4, seed=0)


@pytest.mark.parametrize("kernel,problem", BAD_CASES, ids=lambda v: v)
def test_bad_arguments_are_refused_without_writing(kernels, kernel, problem):
    graph = valid_layer(kernel)
    _, change, run_args = BAD_ARGUMENTS[problem]
    call = KernelCall.from_graph(kernel, graph, random_input(graph, 7))
    assert call.run(kernels).rc == MPQ_OK, "the unaltered call must succeed, or the test proves nothing"
    change(call)
    for impl in refusers(kernel):
        outcome = call.run(kernels, impl, **run_args)
        assert outcome.rc == MPQ_ERR_ARG, f"mpq_{kernel}{impl}: {problem} returned {outcome.rc}"
        assert set(outcome.output) <= {CANARY} and not outcome.output_overrun, f"{problem}: output written"


SEVEN_CHANNELS = {  # the shifts are checked four to a word, then one by one: a word and a tail of three
    "conv2d": BenchShape("c", "conv 3x3", "conv2d", 4, 4, 3, 7, 3, 1, 1, 0.0),
    "pointwise": BenchShape("p", "pointwise", "conv2d", 2, 3, 5, 7, 1, 1, 0, 0.0),
    "depthwise_conv2d": BenchShape("d", "depthwise", "depthwise_conv2d", 4, 4, 7, 7, 3, 1, 1, 0.0),
    "fully_connected": BenchShape("f", "fully connected", "fully_connected", 1, 1, 9, 7, 1, 1, 0, 0.0),
}


@pytest.mark.parametrize("kernel", KERNEL_OPS)
def test_every_channel_s_shift_and_multiplier_is_checked(kernels, kernel):
    graph = shape_graph(SEVEN_CHANNELS[kernel], (8, 8, 8))
    call = KernelCall.from_graph(kernel, graph, random_input(graph, 3))
    good_shift, good_mult = call.shift.copy(), call.mult.copy()
    for channel in range(7):
        for shift, mult in [(s, None) for s in (0, -1, -128, 63, 64, 127)] + [(None, -1), (None, -(2 ** 31))]:
            call.shift[:], call.mult[:] = good_shift, good_mult
            if shift is not None:
                call.shift[channel] = shift
            else:
                call.mult[channel] = mult
            for impl in refusers(kernel):
                rc = call.run(kernels, impl).rc
                assert rc == MPQ_ERR_ARG, f"mpq_{kernel}{impl}: shift {shift}, mult {mult} on channel {channel}: {rc}"
        for shift in (1, 62):  # the ends of the range are accepted
            call.shift[:], call.mult[:] = good_shift, good_mult
            call.shift[channel] = shift
            assert all(call.run(kernels, impl).rc == MPQ_OK for impl in refusers(kernel)), f"shift {shift} refused"


# -- the same sources for the device -----------------------------------------------------------

@pytest.mark.tools("arm-none-eabi-gcc")
@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_compiles_for_cortex_m7_with_a_small_stack(source, tmp_path):
    obj = tmp_path / "kernel.o"
    cmd = ["arm-none-eabi-gcc", *ARM_CFLAGS, f"-I{source.parent.parent / 'include'}", "-fstack-usage",
           "-c", str(source), "-o", str(obj)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and not result.stderr, result.stderr
    for line in (tmp_path / "kernel.su").read_text().splitlines():
        function, size, kind = line.split("\t")
        assert kind == "static" and int(size) <= MAX_STACK_BYTES, f"{function}: {size} bytes of stack ({kind})"


@pytest.mark.tools("arm-none-eabi-gcc")
@pytest.mark.parametrize("flags", [("-O0",), ("-O2", "-fno-omit-frame-pointer", "-DMPQ_M7_NO_ASM")], ids=" ".join)
def test_compiles_for_cortex_m7_unoptimized_or_with_a_frame_pointer(flags, tmp_path):
    # the exported library is built with the user's flags: the inline assembly must not stop it
    for source in SOURCES:
        cmd = ["arm-none-eabi-gcc", *(f for f in ARM_CFLAGS if f != "-O2"), *flags,
               f"-I{source.parent.parent / 'include'}", "-c", str(source), "-o", str(tmp_path / "kernel.o")]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0 and not result.stderr, f"{source.name}: {result.stderr}"


@pytest.mark.parametrize("bits", [(8, 8, 8), (2, 4, 4), (4, 2, 32)], ids=str)
def test_m7_weight_chunks_match_reference(kernels, bits):
    """A conv whose unpacked weights exceed the _m7 work buffer: 67 output channels in chunks of
    10 (the last one odd), an odd number of pixels, each column rebuilt once per chunk."""
    shape = BenchShape("chunked", "conv 3x3 5x5x96 -> 67", "conv2d", 5, 5, 96, 67, 3, 1, 1, 0.0)
    assert_bit_exact(kernels, "conv2d", shape_graph(shape, bits))


@pytest.mark.parametrize("bits", [(8, 8, 8), (4, 2, 4), (2, 4, 8), (2, 2, 4)], ids=str)
def test_m7_wide_pointwise_on_either_engine_matches_reference(kernels, bits):
    """A pointwise layer at the engines' border: 768 input channels give matrix-engine chunks of
    12 channels (12 + 12 + 5 of 29), which the matrix engine takes at 4- and 8-bit inputs and at
    2-bit inputs under 4-bit weights, two pixels a batch with a lone last one of 25, and the
    streaming engine at 2-bit inputs under 2- or 8-bit weights."""
    shape = BenchShape("border", "pointwise 5x5x768 -> 29", "conv2d", 5, 5, 768, 29, 1, 1, 0, 0.0)
    assert_bit_exact(kernels, "pointwise", shape_graph(shape, bits))


def test_thin_pointwise_cases_reach_the_paths_they_are_named_for():
    assert all(takes_thin_path(g) for g in THIN.values())
    assert not any(takes_thin_path(g) for g in ENGINE.values())


@pytest.mark.parametrize("case", list(THIN | ENGINE))
def test_m7_thin_pointwise_matches_reference(kernels, case):
    """8-bit inputs of 4 or 8 channels: the thin path (a pixel's column in registers, the channels
    streamed past it) and the layers it leaves to the matrix engine, in bounds and bit-exact."""
    assert_bit_exact(kernels, "pointwise", (THIN | ENGINE)[case])


@pytest.mark.parametrize("shape", [
    BenchShape("wide_pointwise", "pointwise 1x3x3100 -> 3", "conv2d", 1, 3, 3100, 3, 1, 1, 0, 0.0),
    BenchShape("long_depthwise", "depthwise 3x3 2x800x17", "depthwise_conv2d", 2, 800, 17, 17, 3, 1, 1, 0.0),
    BenchShape("blocked_depthwise", "depthwise 3x3 3x300x17", "depthwise_conv2d", 3, 300, 17, 17, 3, 1, 1, 0.0),
], ids=lambda s: s.name)
def test_m7_beyond_its_work_buffer(kernels, shape):
    """Layers whose _m7 working set exceeds MPQ_M7_WORK_BYTES are still computed, bit-exactly: in
    channel blocks (depthwise: 8 + 8 + 1 channels at 300 columns) or by the portable kernel."""
    op = "pointwise" if shape.k == 1 else shape.op
    assert_bit_exact(kernels, op, shape_graph(shape, (4, 4, 8)))


# -- the planner's copy of the scratch formulas ---------------------------------------------------

@pytest.mark.parametrize("op", KERNEL_OPS)
def test_planner_scratch_is_what_both_builds_ask_for(kernels, op):
    """harness.ir.planner reserves exactly what get_buffer_size() asks for in the shipped build (_m7
    kernels) and in the -DMPQ_FORCE_REF build (_ref kernels), which ask for the same, for random
    shapes and the benchmark's large ones."""
    graphs = [random_layer_graph(op, 4, 2, 8, seed) for seed in range(40)]
    if op != "fully_connected":
        shapes = [s for s in SUITE if (s.name == "pointwise") == (op == "pointwise") and
                  (s.op == "depthwise_conv2d") == (op == "depthwise_conv2d")]
        graphs += [shape_graph(shape, (8, 8, 8)) for shape in shapes]
    for graph in graphs:
        call = KernelCall.from_graph(op, graph, random_input(graph, 0))
        asked = {call.buffer_size(kernels.shipped), call.buffer_size(kernels.forced_ref)}
        assert asked == {layer_scratch_bytes(graph, graph.layers[0])}, graph.name


# -- the weight-streaming engine (fully connected, wide pointwise) ---------------------------------

STREAMED_SHAPES = (  # cin not a multiple of 4, 8 or 16 (a partial last weight word), odd channel counts,
    # short rows (the registers-only path), few rows, one channel, a last chunk of one channel
    *FEW_ROW_SHAPES,
    BenchShape("fc_odd", "fully connected 645 -> 37", "fully_connected", 1, 1, 645, 37, 1, 1, 0, 0.0),
    BenchShape("fc_short", "fully connected 3 -> 5", "fully_connected", 1, 1, 3, 5, 1, 1, 0, 0.0),
    BenchShape("fc_flat", "fully connected 2x3x12 -> 9", "fully_connected", 2, 3, 12, 9, 1, 1, 0, 0.0),
    BenchShape("pw_wide", "pointwise 1x3x1030 -> 37", "conv2d", 1, 3, 1030, 37, 1, 1, 0, 0.0),
    *SHORT_ROW_SHAPES,
    BenchShape("fc_one", "fully connected 16 -> 1", "fully_connected", 1, 1, 16, 1, 1, 1, 0, 0.0),
    BenchShape("pw_one", "pointwise 1x3x20 -> 1", "conv2d", 1, 3, 20, 1, 1, 1, 0, 0.0),
    BenchShape("fc_chunk_of_one", "fully connected 20 -> 65", "fully_connected", 1, 1, 20, 65, 1, 1, 0, 0.0),
)


@pytest.mark.parametrize("combo", BIT_COMBOS + tuple((i, w, 32) for i in BITS for w in BITS),
                         ids=lambda c: "i{}w{}o{}".format(*c))
@pytest.mark.parametrize("shape", STREAMED_SHAPES, ids=lambda s: s.name)
def test_streamed_weights_match_reference(kernels, shape, combo):
    """The _m7 fully connected and wide pointwise kernels read each weight word once and widen it
    in registers (mpq_matvec_m7.c): every bit combination, partial last words, a lone last output
    channel and a lone last pixel, against the reference."""
    op = "pointwise" if shape.op == "conv2d" else shape.op
    assert_bit_exact(kernels, op, shape_graph(shape, combo))


@pytest.mark.parametrize("channel", range(7))
def test_short_rows_fall_back_on_a_shift_of_32_at_any_channel(kernels, channel):
    """The engine's short-row path requantizes without a branch, which needs every shift above 32;
    one channel at 32 (its multiplier scaled to match), in a whole word of shifts or in the last,
    partial one, sends the layer to the general path, and the outputs stay exact."""
    assert_bit_exact(kernels, "fully_connected", with_shift_32(shape_graph(SHORT_ROW_SHAPES[1], (8, 8, 8)), channel))


@pytest.mark.parametrize("zero_point", (0, 77, 255))
@pytest.mark.parametrize("shape", FEW_ROW_SHAPES, ids=lambda s: s.name)
def test_few_rows_add_the_input_offset_and_fall_back_on_a_shift_of_32(kernels, shape, zero_point):
    """The few-row path widens the raw input with its offset in registers: exact at any input
    zero-point, with 8-bit outputs and with int32 ones (logits), and a shift of 32 in the last
    channel sends the layer to the general path."""
    graph = shape_graph(shape, (8, 8, 8), zero_point=zero_point)
    assert_bit_exact(kernels, "fully_connected", graph)
    assert_bit_exact(kernels, "fully_connected", shape_graph(shape, (8, 8, 32), zero_point=zero_point))
    assert_bit_exact(kernels, "fully_connected", with_shift_32(graph, shape.cout - 1))
