"""Profiling firmware: the configurations it measures, how it batches them, and on the board,
that the table predicts a whole network's ticks."""
import numpy as np
import pytest

from harness.ir.memory import CODE_FLASH_BYTES
from harness import zoo

from harness.ir import reference
from harness.build.codegen import model_hash
from harness.link.device import open_device, pack_tensor
from harness.build.firmware import build_graphs
from harness.measure.latency import LatencyTable, layer_key, run_keys
from harness.quantize.lower import structural_graph
from harness.ir.packing import BITS
from harness.measure.profile import MAX_MODELS_PER_IMAGE, batches, bit_configs, profile, profile_graphs, single_layer_graph
from harness.ir.random_graphs import random_add_graph, random_chain_graph, random_input
from harness.search.documents import uniform_policy


def _digits_graph():
    arch = zoo.build("digits-cnn")
    return structural_graph(uniform_policy("d", "digits-cnn", {}, arch, 8, {"flash": "2MB", "ram": "512kB"}))


def test_every_bit_configuration_a_search_can_choose():
    graph = _digits_graph()
    counts = {layer.name: len(bit_configs(graph, layer)) for layer in graph.layers}
    # first layer: input bits fixed; pool: no weights; classifier: int32 output
    assert counts == {"conv1": 9, "dw1": 27, "pw1": 27, "dw2": 27, "pw2": 27, "pool": 9, "fc": 9}
    first = bit_configs(graph, graph.layers[0])
    assert {c.in_bits for c in first} == {8} and {c.w_bits for c in first} == set(BITS)
    assert {c.out_bits for c in bit_configs(graph, graph.layers[-1])} == {32}


def test_each_configuration_is_measured_once_and_known_ones_are_skipped():
    graph = _digits_graph()
    graphs = profile_graphs(graph)
    keys = [layer_key(g, g.layers[0]) for g in graphs]
    assert len(keys) == len(set(keys)) == 135
    table = LatencyTable("b", "f", entries={key: 1 for key in keys[:100]})
    assert len(profile_graphs(graph, table)) == 35


def test_runs_add_half_width_configurations_for_windowed_layers_only():
    from harness.measure.latency import half_channels
    from harness.measure.profile import config_key, narrowed, profiled_key

    graph = _digits_graph()
    plain = {profiled_key(s) for s in profile_graphs(graph)}
    with_runs = {profiled_key(s) for s in profile_graphs(graph, runs=True)}
    windowed = [layer for layer in graph.layers if narrowed(graph, layer) is not None]
    assert [layer.name for layer in windowed] == ["conv1", "pw1", "pw2", "fc"]  # not depthwise, not pools
    half = set()
    for layer in windowed:
        view, cut = narrowed(graph, layer)
        assert view.tensors[layer.output].channels == half_channels(graph, layer) > 0
        half |= {config_key(view, cut, config) for config in bit_configs(graph, layer)}
    assert not half & plain and with_runs == plain | half


def test_profiled_layers_requantize_like_a_relu_network():
    graph = _digits_graph()
    for layer in graph.layers[:-1]:
        for config in bit_configs(graph, layer)[::4]:
            single = single_layer_graph(graph, layer, config, seed=3)
            y = reference.predict(single, random_input(single, single.meta["input_seed"]))
            zeros = float(np.mean(y == 0))
            assert 0.25 <= zeros <= 0.8, (layer.name, config, zeros)  # about half clipped by the "ReLU"
            assert y.max() >= (1 << config.out_bits) // 2, (layer.name, config)  # the rest spread out


def test_batches_respect_the_model_count_and_the_flash_budget():
    graphs = profile_graphs(_digits_graph())
    many = graphs * 3
    groups = batches(many, 2 * 1024 * 1024)
    assert [len(g) for g in groups] == [MAX_MODELS_PER_IMAGE, len(many) - MAX_MODELS_PER_IMAGE]
    small = batches(graphs, 88 * 1024)  # 88 kB flash: 6 kB left for weights after the code estimate
    assert len(small) > 1 and sum(len(g) for g in small) == len(graphs)
    for group in small:
        flash = sum(g.weight_bytes(g.layers[0]) + g.param_bytes(g.layers[0]) for g in group)
        assert flash <= 88 * 1024 * 0.8 - CODE_FLASH_BYTES


@pytest.mark.device
def test_profiled_table_predicts_whole_network_ticks_within_5_percent(board, tmp_path, monkeypatch):
    monkeypatch.setenv("MPQ_HARNESS_CACHE", str(tmp_path))  # an empty table: everything is measured
    graph = random_chain_graph(11, blocks=2)
    table, measured = profile(graph, board)
    assert measured == len(profile_graphs(graph)) and not table.missing(graph)
    assert profile(graph, board)[1] == 0, "a second profile must measure nothing"
    _assert_predicts_the_run(graph, table, board)


def _assert_predicts_the_run(graph, table, board):
    """The table's prediction is within 5 % of the whole graph's RUN on the board."""
    build = build_graphs([graph], board)
    with open_device(board, build.elf_path, expected_hash=model_hash([graph])) as device:
        device.load(0, pack_tensor(random_input(graph, 0), graph.tensors[graph.input]))
        run = device.run(0)
    assert run.ok
    actual = run.total_ticks * table.per_tick
    assert abs(table.predict(graph) - actual) <= 0.05 * actual


def test_a_residual_add_is_profiled_at_both_inputs_bits():
    """resnet8's adds: 27 configurations each (first input, second input, output), measured in a
    two-layer graph whose key is the network's."""
    from harness.commands.profile import model_graph
    from harness.measure.profile import profiled_key

    graph = model_graph("mlperf_ic_resnet8")
    add = next(layer for layer in graph.layers if layer.op == "add")
    configs = bit_configs(graph, add)
    assert len(configs) == 27 and {c.in2_bits for c in configs} == set(BITS)
    singles = [single_layer_graph(graph, add, config, seed=n) for n, config in enumerate(configs)]
    assert all(len(s.layers) == 2 and s.layers[s.meta["profiled"]].op == "add" for s in singles)
    assert len({profiled_key(s) for s in singles}) == 27
    assert layer_key(graph, add) in {profiled_key(s) for s in singles}


@pytest.mark.device
def test_profiled_table_predicts_a_residual_network(board, tmp_path, monkeypatch):
    monkeypatch.setenv("MPQ_HARNESS_CACHE", str(tmp_path))
    graph = random_add_graph(4, 8, 4, seed=3, shape=(8, 8, 16))
    table, measured = profile(graph, board)
    assert measured == len(profile_graphs(graph)) and not table.missing(graph)
    _assert_predicts_the_run(graph, table, board)


@pytest.mark.device
@pytest.mark.slow
def test_profiled_runs_predict_a_channel_wise_network(board, tmp_path, monkeypatch):
    """Runs never measured at their own width are priced a + b * channels; the whole graph's
    prediction stays within 5 % of its RUN."""
    from harness.ir.channel_order import reorder
    from harness.ir.random_graphs import random_channelwise_graph

    monkeypatch.setenv("MPQ_HARNESS_CACHE", str(tmp_path))
    graph = reorder(random_channelwise_graph(3))
    table, _ = profile(graph, board, runs=True)
    assert not table.missing(graph)
    keys = [key for layer in graph.layers for key in run_keys(graph, layer)]
    assert any(key not in table.entries for key in keys), "some run must be priced by the line"
    _assert_predicts_the_run(graph, table, board)


@pytest.mark.device
@pytest.mark.slow
def test_cli_prices_a_channel_wise_policy_only_with_runs(board_name, tmp_path, monkeypatch, capsys):
    """`harness profile` of a channel-wise policy prints its predicted latency, which without
    --runs the table cannot give (its runs' widths were never measured)."""
    from harness.cli import main
    from harness.paths import POLICIES_DIR

    monkeypatch.setenv("MPQ_HARNESS_CACHE", str(tmp_path))
    args = ["profile", "--board", board_name, "--policy-or-model", str(POLICIES_DIR / "digits-channelwise.json"),
            "--heatmap", str(tmp_path / "h.png")]
    assert main(args) == 0
    assert "profile with --runs to price them" in " ".join(capsys.readouterr().out.split())  # rich wraps lines
    assert main([*args, "--runs"]) == 0
    assert "policy digits-channelwise: predicted" in " ".join(capsys.readouterr().out.split())


def test_cli_rejects_unknown_models_missing_policies_and_bad_arguments(capsys):
    from harness.cli import main

    for args, message in ((["--policy-or-model", "no-such-model"], "unknown model"),
                          (["--policy-or-model", "missing.json"], "no such policy file"),
                          (["--policy-or-model", "digits-cnn", "--model-args", "[1]"], "--model-args")):
        assert main(["profile", "--board", "qemu-m7", *args]) == 2
        assert message in capsys.readouterr().err


def test_profiled_costs_read_every_configuration_back_and_the_table_fits_80_columns():
    from rich.console import Console

    from harness.commands.profile import _chosen, cost_table
    from harness.measure.profile import profiled_costs

    graph = _digits_graph()
    singles = profile_graphs(graph)
    entries = {layer_key(g, g.layers[0]): 10 * n + 1 for n, g in enumerate(singles)}
    table = LatencyTable("b", "f", unit="instructions", per_tick=40.0, entries=entries)
    costs = profiled_costs(graph, table)
    assert sum(len(row) for row in costs.values()) == 135
    assert sorted(v for row in costs.values() for v in row.values()) == sorted(40.0 * v for v in entries.values())
    conv1 = costs["conv1"]  # input fixed at 8 bits: a search's "2-bit input" choice still costs the 8-bit one
    assert conv1[_chosen(conv1, (2, 4, 4))] == conv1[_chosen(conv1, (8, 4, 4))]
    console = Console(width=80, record=True)
    console.print(cost_table(graph.name, costs, "instructions"))
    text = console.export_text()
    assert all(len(line) <= 80 for line in text.splitlines()) and "pw2" in text and "…" not in text
