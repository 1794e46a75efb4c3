"""The latency table: keys, the on-disk cache and the whole-network prediction."""
from dataclasses import replace

import pytest

from harness.backends import load_board
from harness.errors import HarnessError
from harness.measure.latency import LatencyTable, firmware_digest, layer_key
from harness.ir.random_graphs import random_chain_graph


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MPQ_HARNESS_CACHE", str(tmp_path))
    return tmp_path


def test_key_names_kernel_geometry_bits_and_zero_point():
    graph = random_chain_graph(3)
    first = graph.layers[0]
    key = layer_key(graph, first)
    assert key.startswith(("conv2d|", "pointwise|")) and "|zp 1|" in key
    out = graph.tensors[first.output]
    graph.tensors[first.output] = replace(out, bits=2 if out.bits != 2 else 4)
    assert layer_key(graph, first) != key
    keys = [layer_key(graph, layer) for layer in graph.layers]
    assert len(set(keys)) == len(keys)


def test_table_round_trips_and_predicts_layers_plus_overhead(cache):
    board = load_board("qemu-m7")
    graph = random_chain_graph(5)
    table = LatencyTable(board.name, firmware_digest(board), unit="instructions", per_tick=40.0)
    for ticks, layer in enumerate(graph.layers, 1):
        table.entries[layer_key(graph, layer)] = 100 * ticks
    table.overheads = [3, 2, 2, 9]
    table.save()
    assert table.path.parent == cache / "latency"
    loaded = LatencyTable.for_board(board)
    assert (loaded.entries, loaded.overheads, loaded.unit, loaded.per_tick) == \
        (table.entries, table.overheads, "instructions", 40.0)
    n = len(graph.layers)
    assert loaded.predict(graph) == (100 * n * (n + 1) / 2 + 2.5) * 40.0  # median overhead 2.5 ticks


def test_two_processes_profiling_at_once_keep_each_others_entries(cache):
    board = load_board("qemu-m7")
    LatencyTable(board.name, firmware_digest(board), "instructions", 40.0, {"old": 1}, [5]).save()
    first, second = LatencyTable.for_board(board), LatencyTable.for_board(board)  # both read the same file
    first.entries["a"], second.entries["b"] = 2, 3
    first.overheads.append(6)
    first.save()
    second.overheads.append(7)
    second.save()
    first.save()  # saving again adds nothing twice
    merged = LatencyTable.for_board(board)
    assert merged.entries == {"old": 1, "a": 2, "b": 3}
    assert sorted(merged.overheads) == [5, 6, 7] and merged.unit == "instructions"


def test_missing_configurations_are_named(cache):
    graph = random_chain_graph(1)
    table = LatencyTable("qemu-m7", "abc", entries={layer_key(graph, graph.layers[0]): 5}, overheads=[1])
    assert len(table.missing(graph)) == len(graph.layers) - 1
    with pytest.raises(HarnessError, match="harness profile --board qemu-m7"):
        table.predict(graph)


def test_table_without_overhead_refuses_to_predict(cache):
    graph = random_chain_graph(1)
    table = LatencyTable("b", "f", entries={layer_key(graph, layer): 1 for layer in graph.layers})
    with pytest.raises(HarnessError, match="no measured overhead"):
        table.predict(graph)


def test_board_table_is_empty_until_profiled_and_keyed_by_firmware(cache):
    board = load_board("qemu-m7")
    digest = firmware_digest(board)
    assert len(digest) == 16 and digest == firmware_digest(board)
    table = LatencyTable.for_board(board)
    assert table.entries == {} and table.firmware == digest and table.path.name == f"qemu-m7-{digest}.json"


def test_a_channel_wise_layer_costs_the_sum_of_its_runs():
    from harness.ir.channel_order import reorder
    from harness.ir.random_graphs import random_channelwise_graph
    from harness.measure.latency import LatencyTable, layer_key, run_keys

    graph = reorder(random_channelwise_graph(3))
    table = LatencyTable("qemu-m7", "test", entries={}, overheads=[10])
    for layer in graph.layers:
        for key in run_keys(graph, layer):
            table.entries[key] = len(key)  # distinct geometries and bits: distinct values
    assert not table.missing(graph)
    layered = [layer for layer in graph.layers if isinstance(layer.w_bits, list)]
    assert layered
    for layer, ticks in zip(graph.layers, table.layer_ticks(graph)):
        keys = run_keys(graph, layer)
        assert ticks == sum(len(key) for key in keys)
        if layer in layered:
            assert len(keys) == len(set(layer.w_bits)) or layer.name in ("pw_b", "fc")
            assert all(key != layer_key(graph, layer) for key in keys)


def test_an_unmeasured_run_is_priced_linearly_between_the_two_profiled_widths():
    from harness.ir.channel_order import reorder
    from harness.ir.graph import weight_runs
    from harness.ir.random_graphs import random_channelwise_graph
    from harness.measure.latency import half_channels, window_key

    graph = reorder(random_channelwise_graph(3))
    layer = next(layer for layer in graph.layers if isinstance(layer.w_bits, list) and len(set(layer.w_bits)) > 1)
    channels, half = graph.tensors[layer.output].channels, half_channels(graph, layer)
    table = LatencyTable("qemu-m7", "test", entries={}, overheads=[0])
    a, b = {2: 100, 4: 150, 8: 200}, {2: 3, 4: 5, 8: 7}  # a + b * channels per weight bits
    for bits in (2, 4, 8):
        for width in (channels, half):
            table.entries[window_key(graph, layer, width, bits)] = a[bits] + b[bits] * width
    runs = weight_runs(layer, channels)
    assert table.run_ticks(graph, layer) == [a[r.bits] + b[r.bits] * r.count for r in runs]
    del table.entries[window_key(graph, layer, half, runs[0].bits)]  # one width only: no line
    exact = window_key(graph, layer, runs[0].count, runs[0].bits)
    if exact not in table.entries:
        assert table.run_ticks(graph, layer)[0] is None and exact in table.missing(graph)
