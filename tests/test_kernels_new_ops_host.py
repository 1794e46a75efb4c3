"""The C kernels of the residual networks' and users' ops (avg_pool, max_pool, add), the depthwise
geometries they need (5x5, stride 2), rectangular windows with (sh, sw) strides and four
different paddings, and fully connected layers over a flattened H x W x C input, built for the
host, bit-exact against harness.ir.reference at every bit combination, never writing past their
output, refusing bad arguments."""
import ctypes
import itertools
from dataclasses import replace

import numpy as np
import pytest
from support.host_kernels import (
    CANARY,
    impls_of,
    CANARY_BYTES,
    MPQ_ERR_ARG,
    MPQ_OK,
    Dims,
    KernelCall,
    Requant,
    build_library,
    expected_output,
)
from support.pool_graphs import POOL_CASES, case_id, lane_limit_graph, pool_graph, pool_input, whole_map_avg_pool

from harness.ir import reference
from harness.ir.packing import BITS, pack
from harness.ir.random_graphs import BIT_COMBOS, random_add_graph, random_input, random_layer_graph

IMPLS = ("", "_ref")
CALLERS = ("", "_unchecked", "_ref", "_m7")  # "" is the wrapper (the _m7 as shipped), "_unchecked" without checks
REFUSERS = ("", "_check", "_ref", "_m7")  # what refuses bad arguments


class AddParams(ctypes.Structure):
    _fields_ = [("in1_offset", ctypes.c_int32), ("in2_offset", ctypes.c_int32), ("mult1", ctypes.c_int32),
                ("mult2", ctypes.c_int32), ("shift", ctypes.c_int32), ("out_offset", ctypes.c_int32)]


@pytest.fixture(scope="module")
def kernels(tmp_path_factory):
    """The host builds of support.host_kernels, with the signatures of add and the pools declared."""
    kernels = build_library(tmp_path_factory.mktemp("mpq_kernels_new_ops"))
    vp, dims = ctypes.c_void_p, ctypes.POINTER(Dims)
    for impl in CALLERS + ("_check",):
        lib = kernels.lib_for(impl)
        names = [(f"mpq_{pool}{impl}", [dims, vp, vp, vp, dims, vp]) for pool in POOLS]
        names.append((f"mpq_add{impl}", [dims, vp, dims, vp, ctypes.POINTER(AddParams), dims, vp]))
        for name, argtypes in names:
            getattr(lib, name).argtypes = argtypes
            getattr(lib, name).restype = ctypes.c_int
    return kernels


POOLS = ("avg_pool", "max_pool")


def run_pool(lib, pool: str, call: KernelCall, impl: str) -> tuple[int, bytes, bool]:
    """mpq_<pool><impl>: (return code, output bytes, whether it wrote past the output)."""
    y = np.full(call.out_nbytes + CANARY_BYTES, CANARY, dtype=np.uint8)
    rq = Requant(call.bias.ctypes.data, call.mult.ctypes.data, call.shift.ctypes.data)
    rc = getattr(lib.lib_for(impl), f"mpq_{pool}{impl}")(ctypes.byref(call.in_dims), call.x.ctypes.data,
                                                        ctypes.byref(call.window), ctypes.byref(rq),
                                                        ctypes.byref(call.out_dims), y.ctypes.data)
    return rc, y[:call.out_nbytes].tobytes(), bool((y[call.out_nbytes:] != CANARY).any())


@pytest.mark.parametrize("asymmetric", [False, True], ids=["square", "rectangular"])
@pytest.mark.parametrize("pool", POOLS)
@pytest.mark.parametrize("out_bits", BITS)
@pytest.mark.parametrize("in_bits", BITS)
def test_pools_match_reference(kernels, in_bits, out_bits, pool, asymmetric):
    """Odd sizes, > 32 channels (the chunks), zero-points, and (max_pool always, avg_pool when
    rectangular) kernels kh x kw, strides (sh, sw) and four different paddings."""
    for seed in range(6):
        graph = random_layer_graph(pool, in_bits, None, out_bits, seed, asymmetric=asymmetric)
        x = random_input(graph, seed)
        call = KernelCall.from_graph(pool, graph, x)
        for impl in CALLERS:
            rc, got, overrun = run_pool(kernels, pool, call, impl)
            assert rc == MPQ_OK and not overrun, f"mpq_{pool}{impl} on {graph.name}: rc {rc}, overrun {overrun}"
            assert got == expected_output(graph, x), f"mpq_{pool}{impl} on {graph.name} differs"


@pytest.mark.parametrize("case", [c for c in POOL_CASES if max(c[:2]) <= 255], ids=case_id)
def test_an_average_pool_over_the_whole_map_is_the_global_pool(kernels, case):
    """The avg_pool whose one window is the map runs the global pool's lane sums (_m7): exact at
    input zero-points 0 and 77, and with every lane sum at its limit, outputs mid-range."""
    graphs = [whole_map_avg_pool(pool_graph(*case, zero_point)) for zero_point in (0, 77)]
    for graph in graphs + [whole_map_avg_pool(lane_limit_graph(*case))]:
        x = pool_input(graph, 0)
        call = KernelCall.from_graph("avg_pool", graph, x)
        for impl in CALLERS:
            rc, got, overrun = run_pool(kernels, "avg_pool", call, impl)
            assert rc == MPQ_OK and not overrun, f"mpq_avg_pool{impl} on {graph.name}: rc {rc}, overrun {overrun}"
            assert got == expected_output(graph, x), f"mpq_avg_pool{impl} on {graph.name} differs"


def test_max_pool_of_equal_bits_and_scale_is_the_maximum(kernels):
    """With the identity requantization (mult 2^30, shift 30, bias 0) max_pool outputs exactly the
    largest in-bounds code: padding never wins, even over a window of zeros."""
    for bits in BITS:
        graph = random_layer_graph("max_pool", bits, None, bits, 7, in_zero_point=0)
        layer = graph.layers[0]
        c = graph.tensors["y"].channels
        layer.bias, layer.mult, layer.shift = np.zeros(c, np.int32), np.full(c, 2**30, np.int32), np.full(c, 30, np.int8)
        x = random_input(graph, 1)
        x[: x.shape[0] // 2] = 0
        call = KernelCall.from_graph("max_pool", graph, x)
        expected = expected_output(graph, x)
        (kh, kw), (pt, pl) = layer.kernel, layer.padding[:2]
        first_window = x[:kh - pt, :kw - pl].reshape(-1, c).max(axis=0)  # its in-bounds taps
        assert (reference.predict(graph, x)[0, 0] == first_window).all()
        for impl in CALLERS:
            assert run_pool(kernels, "max_pool", call, impl)[1] == expected, f"max_pool{impl} at {bits} bits"


@pytest.mark.parametrize("op", ["conv2d", "depthwise_conv2d"])
@pytest.mark.parametrize("combo", BIT_COMBOS, ids=lambda c: "i{}w{}o{}".format(*c))
def test_rectangular_windows_match_reference(kernels, combo, op):
    """conv2d and depthwise with kh != kw, (sh, sw) strides and top/left/bottom/right paddings all
    different (what imported models have): every implementation, bit-exact."""
    for seed in range(3):
        graph = random_layer_graph(op, *combo, seed, asymmetric=True)
        x = random_input(graph, seed)
        call = KernelCall.from_graph(op, graph, x)
        for impl in impls_of(op):
            outcome = call.run(kernels, impl)
            assert outcome.rc == MPQ_OK and not outcome.output_overrun and not outcome.scratch_overrun, graph.name
            assert outcome.output == expected_output(graph, x), f"{op}{impl} {graph.name}"


@pytest.mark.parametrize("combo", BIT_COMBOS, ids=lambda c: "i{}w{}o{}".format(*c))
def test_fully_connected_over_a_flattened_map_matches_reference(kernels, combo):
    """A classifier reading an H x W x C map (C * bits a multiple of 8) is the fully connected
    kernel on 1 x 1 x (H * W * C): the packed bytes are the flattened vector."""
    for seed in range(3):
        graph = random_layer_graph("fully_connected", *combo, seed, spatial_fc=True)
        assert graph.tensors["x"].shape[:2] != (1, 1)
        x = random_input(graph, seed)
        call = KernelCall.from_graph("fully_connected", graph, x)
        for impl in impls_of("fully_connected"):
            outcome = call.run(kernels, impl)
            assert outcome.rc == MPQ_OK and not outcome.output_overrun and not outcome.scratch_overrun, graph.name
            assert outcome.output == expected_output(graph, x), f"fully_connected{impl} {graph.name}"


class AddCall:
    """mpq_add on the add layer of a random_add_graph, with random values for both inputs."""

    def __init__(self, graph, seed: int):
        self.graph = graph
        layer = graph.layers[1]
        self.layer = layer
        rng = np.random.default_rng(seed)
        self.values = {name: rng.integers(0, 1 << graph.tensors[name].bits, size=graph.tensors[name].shape)
                       for name in (layer.input, layer.input2)}
        self.packed = {name: np.ascontiguousarray(pack(v, graph.tensors[name].bits, signed=False), np.uint8)
                       for name, v in self.values.items()}
        self.dims = {name: Dims(*graph.tensors[name].shape, graph.tensors[name].bits)
                     for name in (layer.input, layer.input2, layer.output)}
        t1, t2 = graph.tensors[layer.input], graph.tensors[layer.input2]
        self.params = AddParams(-t1.zero_point, -t2.zero_point, int(layer.mult[0]), int(layer.mult[1]),
                                int(layer.shift[0]), int(layer.bias[0]))

    def expected(self) -> bytes:
        y = reference.run_add(self.graph, self.layer, self.values[self.layer.input], self.values[self.layer.input2])
        return pack(y, self.graph.tensors[self.layer.output].bits, signed=False).tobytes()

    def run(self, lib, impl: str) -> tuple[int, bytes, bool]:
        n = self.graph.tensors[self.layer.output].nbytes
        y = np.full(n + CANARY_BYTES, CANARY, dtype=np.uint8)
        a, b, o = self.layer.input, self.layer.input2, self.layer.output
        rc = getattr(lib.lib_for(impl), f"mpq_add{impl}")(ctypes.byref(self.dims[a]), self.packed[a].ctypes.data,
                                            ctypes.byref(self.dims[b]), self.packed[b].ctypes.data,
                                            ctypes.byref(self.params), ctypes.byref(self.dims[o]), y.ctypes.data)
        return rc, y[:n].tobytes(), bool((y[n:] != CANARY).any())


@pytest.mark.parametrize("combo", BIT_COMBOS, ids=lambda c: "a{}b{}o{}".format(*c))
def test_add_matches_reference(kernels, combo):
    for seed in range(5):
        call = AddCall(random_add_graph(*combo, seed), seed)
        for impl in CALLERS:
            rc, got, overrun = call.run(kernels, impl)
            assert rc == MPQ_OK and not overrun, f"mpq_add{impl} on {call.graph.name}: rc {rc}, overrun {overrun}"
            assert got == call.expected(), f"mpq_add{impl} on {call.graph.name} differs"


def test_add_extreme_multipliers_and_negative_sums(kernels):
    """Largest multipliers and offsets, shifts at both ends: the int64 floor and clamps."""
    for (m1, m2), shift, zp in itertools.product(((2**31 - 1, 2**31 - 1), (0, 2**31 - 1), (1, 3)),
                                                 (1, 9, 10, 31, 32, 33, 62), (0, 100, 255)):
        graph = random_add_graph(8, 8, 8, 3)
        layer = graph.layers[1]
        layer.mult, layer.shift, layer.bias = (np.array([m1, m2], np.int32), np.array([shift], np.int8),
                                               np.array([zp], np.int32))
        graph.tensors["x"].zero_point, graph.tensors["t"].zero_point = 255, 128
        call = AddCall(graph, 0)
        for impl in CALLERS:
            rc, got, _ = call.run(kernels, impl)
            assert rc == MPQ_OK and got == call.expected(), f"mpq_add{impl} m=({m1},{m2}) shift {shift} zp {zp}"


@pytest.mark.parametrize("combo", BIT_COMBOS, ids=lambda c: "a{}b{}o{}".format(*c))
@pytest.mark.parametrize("shape", [(16, 20, 32), (9, 9, 13)], ids=str)
def test_add_of_long_and_odd_rows_matches_reference(kernels, combo, shape):
    """mpq_add_m7 takes whole-byte rows as one vector in chunks of the work buffer (16x20x32 is
    more than one chunk) and other rows (13 channels) pixel by pixel."""
    graph = random_add_graph(*combo, 0)
    for name in ("x", "t", "y"):
        graph.tensors[name] = replace(graph.tensors[name], shape=shape)
    call = AddCall(graph, 1)
    for impl in CALLERS:
        rc, got, overrun = call.run(kernels, impl)
        assert rc == MPQ_OK and not overrun and got == call.expected(), f"mpq_add{impl} {shape} {combo}"


BAD_ADD = {
    "channels differ": lambda c: setattr(c.dims["t"], "c", c.dims["t"].c + 1),
    "output bits 32": lambda c: setattr(c.dims["y"], "bits", 32),
    "input bits 3": lambda c: setattr(c.dims["x"], "bits", 3),
    "shift 0": lambda c: setattr(c.params, "shift", 0),
    "shift 63": lambda c: setattr(c.params, "shift", 63),
    "negative mult": lambda c: setattr(c.params, "mult2", -1),
    "positive offset": lambda c: setattr(c.params, "in1_offset", 1),
    "output zero-point beyond the range": lambda c: setattr(c.params, "out_offset", 1 << c.dims["y"].bits),
}


@pytest.mark.parametrize("problem", BAD_ADD)
def test_add_refuses_bad_arguments_without_writing(kernels, problem):
    call = AddCall(random_add_graph(4, 4, 4, 1), 1)
    assert call.run(kernels, "")[0] == MPQ_OK
    BAD_ADD[problem](call)
    for impl in REFUSERS:
        rc, got, overrun = call.run(kernels, impl)
        assert rc == MPQ_ERR_ARG and set(got) <= {CANARY} and not overrun, f"mpq_add{impl}: {problem}"


@pytest.mark.parametrize("pool", POOLS)
def test_pools_refuse_padding_as_large_as_the_kernel(kernels, pool):
    graph = random_layer_graph(pool, 4, None, 4, 0)
    call = KernelCall.from_graph(pool, graph, random_input(graph, 0))
    call.window.pad_top = call.window.kh
    for impl in REFUSERS:
        assert run_pool(kernels, pool, call, impl)[0] == MPQ_ERR_ARG


@pytest.mark.parametrize("problem", ["output bits 32", "channels differ", "input bits 3"])
def test_max_pool_refuses_bad_arguments(kernels, problem):
    graph = random_layer_graph("max_pool", 4, None, 4, 0)
    call = KernelCall.from_graph("max_pool", graph, random_input(graph, 0))
    {"output bits 32": lambda: setattr(call.out_dims, "bits", 32),
     "channels differ": lambda: setattr(call.out_dims, "c", call.out_dims.c + 1),
     "input bits 3": lambda: setattr(call.in_dims, "bits", 3)}[problem]()
    for impl in REFUSERS:
        rc, got, overrun = run_pool(kernels, "max_pool", call, impl)
        assert rc == MPQ_ERR_ARG and set(got) <= {CANARY} and not overrun, f"max_pool{impl}: {problem}"


@pytest.mark.parametrize("kernel_size,stride", [(5, 1), (5, 2), (3, 2)])
@pytest.mark.parametrize("combo", BIT_COMBOS, ids=lambda c: "i{}w{}o{}".format(*c))
def test_depthwise_5x5_and_stride_2_match_reference(kernels, combo, kernel_size, stride):
    """MobileNetV2 / MNasNet's depthwise layers: the generic depthwise kernel handles them."""
    for seed in range(3):
        graph = random_layer_graph("depthwise_conv2d", *combo, seed, kernel=kernel_size, stride=stride)
        x = random_input(graph, seed)
        call = KernelCall.from_graph("depthwise_conv2d", graph, x)
        for impl in IMPLS:
            outcome = call.run(kernels, impl)
            assert outcome.rc == MPQ_OK and not outcome.output_overrun and not outcome.scratch_overrun
            assert outcome.output == expected_output(graph, x), f"depthwise{impl} {graph.name}"
