"""Every kernel at every bit combination, through codegen -> build -> the --board target.

One firmware image per (op, implementation) holds all the op's single-layer test networks (27 bit
combinations with odd sizes and channel counts, int32-logit variants, a zero-point input): the
shipped build (the wrappers pick the Cortex-M7 _m7 kernels) and one built with -DMPQ_FORCE_REF
(the portable _ref kernels), so the suite boots the target a handful of times.
"""
import numpy as np
import pytest
from support.device_checks import device_mismatches
from support.pool_graphs import POOL_CASES, lane_limit_graph, pool_graph, pool_input, whole_map_avg_pool
from support.requant_edges import BOUND_EDGE_OPS, M7_REQUANT_CASES, bound_edge_graph, m7_requant_edge_graph

from harness.measure.bench import build_for_impl
from harness.build.codegen import model_hash
from harness.link.device import open_device
from harness.ir.packing import BITS
from harness.ir.random_graphs import BIT_COMBOS, KERNEL_OPS, random_layer_graph

pytestmark = pytest.mark.device
SEED = 1234
IN_W_BITS = sorted({(i, w) for i, w, _ in BIT_COMBOS})


def _graphs(op: str) -> dict:
    """Test networks of one op, keyed by their test id."""
    if op == "global_avg_pool":
        cases = {f"i{i}o{o}": random_layer_graph(op, i, 8, o, seed=SEED + n)
                 for n, (i, o) in enumerate((i, o) for i in (2, 4, 8) for o in (2, 4, 8))}
        return cases
    cases = {f"i{i}w{w}o{o}": random_layer_graph(op, i, w, o, seed=SEED + n) for n, (i, w, o) in enumerate(BIT_COMBOS)}
    cases |= {f"i{i}w{w}o32": random_layer_graph(op, i, w, 32, seed=SEED + 100 + n) for n, (i, w) in enumerate(IN_W_BITS)}
    return cases


OP_IMPLS = [(op, impl) for op in (*KERNEL_OPS, "global_avg_pool") for impl in ("m7", "ref")]


@pytest.fixture(scope="module", params=OP_IMPLS, ids=lambda p: "-".join(p))
def op_firmware(request, board):
    """(op, test networks, live session) for one op with one kernel implementation."""
    op, impl = request.param
    cases = _graphs(op)
    graphs = list(cases.values())
    build = build_for_impl(graphs, board, impl, "kernel-tests")
    with open_device(board, build.elf_path, expected_hash=model_hash(graphs)) as device:
        yield op, cases, device


def test_every_bit_combination_is_bit_exact(op_firmware):
    op, cases, device = op_firmware
    mismatches = device_mismatches(device, cases)
    assert len(cases) >= 9
    assert not mismatches, f"{op}: " + "; ".join(mismatches)


def test_requantization_edge_cases_are_bit_exact_on_the_device(board):
    """The host test's accumulator, multiplier and shift extremes (support.requant_edges) through
    the device's DSP instructions (USAT, SMMUL, SMMLA), which the host build emulates in C: on an
    input of ones (a random input would overflow the extremes), and the bound edges of the bounded
    requantization on an input of all 255."""
    cases = {f"{case}-o{bits}": m7_requant_edge_graph(case, bits)[1] for case in M7_REQUANT_CASES for bits in BITS}
    bounds = {f"{op}-bound": bound_edge_graph(op) for op in BOUND_EDGE_OPS}
    cases |= bounds
    graphs = list(cases.values())
    build = build_for_impl(graphs, board, "m7", "kernel-tests")

    def extreme_input(graph, seed):
        value = 255 if any(graph is b for b in bounds.values()) else 1
        return np.full(graph.tensors[graph.input].shape, value, dtype=np.int32)

    with open_device(board, build.elf_path, expected_hash=model_hash(graphs)) as device:
        mismatches = device_mismatches(device, cases, seeds=(0,), inputs=extreme_input)
    assert not mismatches, "; ".join(mismatches)


def test_global_avg_pools_are_bit_exact_on_large_maps_and_full_lanes(board):
    """The _m7 pool's lane sums on the device at 8, 4 and 2 bits: maps within, at and past the
    lanes' limit, whole and partial groups of channels, input zero-point 77; and every lane sum at
    its limit. The same pools as average pools over the whole map (mpq_avg_pool_m7) where a
    window holds it."""
    cases = {}
    for case in POOL_CASES:
        for graph in (pool_graph(*case, 77), lane_limit_graph(*case)):
            cases[graph.name] = graph
            if max(case[:2]) <= 255:
                pool = whole_map_avg_pool(graph)
                cases[pool.name] = pool
    graphs = list(cases.values())
    build = build_for_impl(graphs, board, "m7", "kernel-tests")
    with open_device(board, build.elf_path, expected_hash=model_hash(graphs)) as device:
        mismatches = device_mismatches(device, cases, inputs=pool_input)
    assert not mismatches, "; ".join(mismatches)
