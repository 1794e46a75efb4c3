"""Channel-wise layers, host and device: the reorder pass keeps the dense graph's values, the
kernels' output-channel windows (portable and Cortex-M7, built for the host) compute each run of
equal bits into a shared output row, and the firmware of a reordered graph is bit-exact with the
unpermuted dense reference on the --board target."""
import dataclasses

import numpy as np
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from support.host_kernels import CANARY, CANARY_BYTES, MPQ_ERR_ARG, MPQ_OK, Dims, KernelCall, build_library

from harness.build.codegen import model_hash
from harness.errors import HarnessError
from harness.ir import reference
from harness.ir.channel_order import reorder
from harness.ir.graph import weight_runs
from harness.ir.packing import pack, value_range
from harness.ir.planner import kernel_for
from harness.ir.random_graphs import random_channelwise_graph, random_input, random_layer_graph
from harness.link.device import open_device, pack_tensor, unpack_tensor
from harness.measure.bench import build_for_impl

seeds = st.integers(0, 2**20)
WINDOW_KERNELS = ("conv2d", "pointwise", "fully_connected")


@pytest.fixture(scope="module")
def kernels(tmp_path_factory):
    return build_library(tmp_path_factory.mktemp("mpq_kernels_cw"))


def dense_values_in_storage_order(dense, compact, x) -> dict[str, np.ndarray]:
    """Every tensor of the dense graph, its channels picked and ordered as the compact graph stores them."""
    order = compact.meta["channel_order"]
    return {name: value[..., order[name]] if name in order else value for name, value in reference.run(dense, x).items()}


@given(seeds, seeds)
@settings(max_examples=40)
def test_reordered_graph_computes_the_dense_values(seed, input_seed):
    dense = random_channelwise_graph(seed)
    compact = reorder(dense)
    x = random_input(dense, input_seed)
    expected = dense_values_in_storage_order(dense, compact, x)
    got = reference.run(compact, x)
    for name in dense.tensors:
        assert np.array_equal(got[name], expected[name]), name
    for layer in compact.layers:  # equal bits contiguous: at most one run per distinct precision
        if isinstance(layer.w_bits, list) and layer.name != "fc":
            runs = weight_runs(layer, compact.tensors[layer.output].channels)
            assert len(runs) == len(set(layer.w_bits)) or layer.name == "pw_b", layer.name  # sorted by pw_a first
    assert compact.tensors[compact.output].shape == dense.tensors[dense.output].shape


def run_windowed(kernels, impl: str, graph, layer, x: np.ndarray, prefill: np.ndarray) -> bytes:
    """The layer as codegen runs it: one kernel call per run of equal bits into one output buffer
    pre-filled with `prefill` (out_nbytes bytes; canary bytes after it must stay)."""
    single = dataclasses.replace(graph, layers=[layer], input=layer.input, output=layer.output,
                                 tensors={n: graph.tensors[n] for n in (layer.input, layer.output)})
    out = graph.tensors[layer.output]
    y = np.concatenate([prefill, np.full(CANARY_BYTES, CANARY, np.uint8)])
    for run in weight_runs(layer, out.channels):
        rows = layer.weights[run.start:run.start + run.count]
        part = dataclasses.replace(layer, w_bits=run.bits, weights=rows,
                                   bias=layer.bias[run.start:run.start + run.count],
                                   mult=layer.mult[run.start:run.start + run.count],
                                   shift=layer.shift[run.start:run.start + run.count])
        part_out = dataclasses.replace(out, shape=(*out.shape[:2], run.count), name="window")
        call = KernelCall.from_graph(kernel_for(layer), dataclasses.replace(
            single, layers=[dataclasses.replace(part, output="window")], output="window",
            tensors={layer.input: graph.tensors[layer.input], "window": part_out}), x)
        h, w, c = out.shape
        call.out_dims = Dims(h, w, run.count, out.bits, run.start, c)
        call.out_nbytes = out.nbytes
        outcome = call.run(kernels, impl, y=y)
        assert outcome.rc == MPQ_OK, f"{layer.name} run {run}: rc {outcome.rc}"
        assert not outcome.output_overrun and not outcome.scratch_overrun, f"{layer.name} run {run}"
    return y[:out.nbytes].tobytes()


def packed(graph, name: str, value: np.ndarray) -> bytes:
    tensor = graph.tensors[name]
    return value.astype("<i4").tobytes() if tensor.bits == 32 else pack(value, tensor.bits, signed=False).tobytes()


@pytest.mark.tools("cc")
@pytest.mark.parametrize("impl", ["_ref", "_m7", "_unchecked"])
@given(seed=seeds)
@settings(max_examples=12)
def test_reordered_graph_runs_bit_exact_through_the_host_kernels(kernels, impl, seed):
    """Every conv2d / pointwise / fully connected layer of a reordered random graph, run one call
    per run of equal bits on a row pre-filled with canary bytes, equals the dense reference."""
    dense = random_channelwise_graph(seed)
    compact = reorder(dense)
    values = dense_values_in_storage_order(dense, compact, random_input(dense, seed + 1))
    for layer in compact.layers:
        if kernel_for(layer) not in WINDOW_KERNELS:
            continue
        out = compact.tensors[layer.output]
        got = run_windowed(kernels, impl, compact, layer, values[layer.input], np.full(out.nbytes, CANARY, np.uint8))
        assert got == packed(compact, layer.output, values[layer.output]), f"{layer.name} ({impl})"


@pytest.mark.tools("cc")
@pytest.mark.parametrize("impl", ["_ref", "_m7"])
@pytest.mark.parametrize("kernel", WINDOW_KERNELS)
@pytest.mark.parametrize("out_bits", [2, 4, 8, 32])
@given(seed=seeds, data=st.data())
@settings(max_examples=6)
def test_window_runs_fill_a_prefilled_row_exactly(kernels, impl, kernel, out_bits, seed, data):
    """Runs at unaligned 2- and 4-bit offsets, one-channel runs, a row pre-filled with random
    bytes: every run writes only its channels, the last one the row's padding bits too."""
    op = "conv2d" if kernel == "pointwise" else kernel
    graph = random_layer_graph(op, int(data.draw(st.sampled_from([2, 4, 8]))), 8, out_bits, seed=seed,
                               **({"kernel": 1, "stride": 1} if kernel == "pointwise" else {}))
    (layer,) = graph.layers
    cout = graph.tensors[layer.output].channels
    bits = data.draw(st.lists(st.sampled_from([2, 4, 8]), min_size=cout, max_size=cout))
    for c, b in enumerate(bits):  # channel c's weights in its bits' range
        lo, hi = value_range(b, signed=True)
        layer.weights[c] = np.clip(layer.weights[c], lo, hi)
    layer.w_bits = bits if len(set(bits)) > 1 else bits[0]
    x = random_input(graph, seed)
    expected = packed(graph, layer.output, reference.predict(graph, x))
    prefill = np.random.default_rng(seed).integers(0, 256, graph.tensors[layer.output].nbytes).astype(np.uint8)
    assert run_windowed(kernels, impl, graph, layer, x, prefill) == expected


@pytest.mark.tools("cc")
def test_window_outside_the_row_is_refused(kernels):
    graph = random_layer_graph("conv2d", 8, 8, 4, seed=3, kernel=1, stride=1)
    call = KernelCall.from_graph("pointwise", graph, random_input(graph, 0))
    h, w, c = graph.tensors["y"].shape
    for dims in (Dims(h, w, c, 4, 1, c), Dims(h, w, c, 4, 1, 0)):
        call.out_dims = dims
        for impl in ("_ref", "_m7", "", "_check"):
            assert call.run(kernels, impl).rc == MPQ_ERR_ARG, impl


def test_reorder_refuses_what_would_change_values():
    dense = random_channelwise_graph(5)
    stem = dense.layers[0]
    pruned = [c for c, b in enumerate(stem.w_bits) if b == 0]
    if not pruned:
        stem.w_bits[0] = 0
        pruned = [0]
    broken = random_channelwise_graph(5)
    broken.layers[0].w_bits = list(stem.w_bits)
    broken.layers[0].bias[pruned[0]] = 2**30  # requantizes to the top code, not the zero-point
    with pytest.raises(HarnessError, match="zero weights and zero bias"):
        reorder(broken)
    add_mismatch = random_channelwise_graph(6)
    pw_a = next(layer for layer in add_mismatch.layers if layer.name == "pw_a")
    pw_b = next(layer for layer in add_mismatch.layers if layer.name == "pw_b")
    keep = next(c for c, b in enumerate(pw_a.w_bits) if b)
    pw_a.w_bits[keep] = 0
    pw_a.weights[keep] = 0
    pw_a.bias[keep] = 0
    assert pw_b.w_bits[keep] != 0
    with pytest.raises(HarnessError, match="must prune the same channels"):
        reorder(add_mismatch)
    classifier = random_channelwise_graph(7)
    classifier.layers[-1].w_bits[0] = 0
    with pytest.raises(HarnessError, match="feeds the network output"):
        reorder(classifier)


@pytest.mark.device
@pytest.mark.parametrize("impl", ["m7", "ref"])
@given(st.lists(seeds, min_size=6, max_size=6, unique=True))
@settings(max_examples=1, phases=[Phase.generate])  # one firmware build: no shrinking by rebuilds
def test_reordered_graphs_are_bit_exact_on_the_board(board, impl, graph_seeds):
    """One firmware holding six reordered random graphs; every output equals the dense graph's."""
    dense = [random_channelwise_graph(seed) for seed in graph_seeds]
    compact = [reorder(graph) for graph in dense]
    build = build_for_impl(compact, board, impl, "channelwise-tests")
    with open_device(board, build.elf_path, expected_hash=model_hash(compact)) as device:
        for index, (d, c) in enumerate(zip(dense, compact)):
            for input_seed in (0, 1):
                x = random_input(d, input_seed)
                device.load(index, pack_tensor(x, c.tensors[c.input]))
                run = device.run(index)
                assert run.ok, f"{d.name}: firmware status {run.status}"
                got = unpack_tensor(device.read_output(index), c.tensors[c.output])
                assert np.array_equal(got, reference.predict(d, x)), f"{d.name} input {input_seed}"
