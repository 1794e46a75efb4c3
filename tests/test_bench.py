"""harness bench: the kernel suite's shapes and graphs, the table, the CLI's input checks, and
(on the --board target) a reduced suite and the network comparison running end to end."""
import io
import json

import numpy as np
import pytest
from rich.console import Console

from harness.ir import reference
from harness.measure.bench import BIT_COMBOS, SUITE, bench_kernels, bench_network, shape_graph
from harness.cli import main
from harness.commands.bench import kernel_table
from harness.ir.planner import kernel_for
from harness.ir.random_graphs import random_chain_graph, random_input



def test_suite_is_the_shapes_of_issues_5_and_13_at_every_bit_combination():
    assert [(s.name, s.cmsis_int8) for s in SUITE] == [
        ("pointwise", 2.03), ("conv3x3", 1.93), ("depthwise", 8.39), ("conv3x3_s2", 2.89), ("fc", 2.0),
        ("pointwise_wide", 1.5), ("depthwise_s2", 9.0)]
    assert len(BIT_COMBOS) == 27
    assert [s.macs for s in SUITE] == [16 * 16 * 64 * 128, 16 * 16 * 32 * 32 * 9, 16 * 16 * 128 * 9,
                                       16 * 16 * 16 * 8 * 9, 640 * 128, 7 * 7 * 512 * 512, 24 * 24 * 16 * 9]


def test_zoo_shapes_cover_every_weighted_layer_geometry_of_the_networks():
    from harness import zoo
    from harness.measure.bench import ZOO_NETWORKS, zoo_shapes

    shapes = zoo_shapes()
    assert len({(s.op, s.cin, s.cout, s.w, s.kernel_hw, s.stride_hw, s.padding_tlbr) for s in shapes}) == len(shapes)
    for model, args in ZOO_NETWORKS:
        arch = zoo.build(model, args)
        weighted = [spec for spec in arch.layers if spec.has_weights]
        assert all(any(f"{arch.name} {spec.name})" in s.title or s.cout == (spec.out_channels or s.cin)
                       for s in shapes) for spec in weighted)
    assert {s.cmsis_int8 for s in shapes if s.op == "fully_connected"} == {2.0}
    assert all(s.h * s.w * s.cin + s.out_hw[0] * s.out_hw[1] * s.cout <= 256 * 1024 for s in shapes)


@pytest.mark.parametrize("shape", SUITE, ids=lambda s: s.name)
def test_shape_graph_has_the_exact_shape_and_spread_outputs(shape):
    graph = shape_graph(shape, (4, 2, 8))
    (layer,) = graph.layers
    assert graph.tensors["x"].shape == (shape.h, shape.w, shape.cin)
    assert graph.tensors["y"].shape == (*shape.out_hw, shape.cout)
    assert (layer.kernel, layer.stride, layer.padding) == (shape.kernel_hw, shape.stride_hw, shape.padding_tlbr)
    assert kernel_for(layer) == ("pointwise" if shape.name.startswith("pointwise") else layer.op)
    y = reference.predict(graph, random_input(graph, 7))
    assert len(np.unique(y)) > min(100, y.size // 2), "outputs must spread over the range, or requantization is not exercised"


def _report(values: dict) -> dict:
    results = [{"shape": shape, "in_bits": i, "w_bits": w, "out_bits": o, "per_mac": v}
               for (shape, i, w, o), v in values.items()]
    return {"board": "qemu-m7", "impl": "m7", "unit": "instructions", "meaning": "m", "results": results}


def test_kernel_table_marks_figures_above_the_target():
    report = _report({("pointwise", 8, 8, 8): 1.5, ("pointwise", 2, 2, 2): 2.5})
    console = Console(record=True, width=120, color_system="standard", file=io.StringIO())
    console.print(kernel_table(report, SUITE))
    text = console.export_text(styles=True)
    assert "8/8/8" in text and "2/2/2" in text
    assert "\x1b[32m1.50" in text, "at or below the target: green"
    assert "\x1b[31m2.50" in text, "above the target: red"
    assert "conv3x3" not in text, "shapes that were not measured get no column"


def test_kernel_heatmap_is_a_png_of_every_measured_cell():
    from harness.commands.bench import kernel_heatmap

    png = kernel_heatmap(_report({("pointwise", 8, 8, 8): 1.5, ("pointwise", 2, 2, 2): 2.5, ("conv3x3", 8, 8, 8): 1.2}))
    assert png.startswith(b"\x89PNG") and len(png) > 5_000


@pytest.mark.parametrize("argv", [["bench"], ["bench", "kernels", "--runs", "0"], ["bench", "kernels", "--impl", "x"],
                                  ["bench", "kernels", "--shapes", "mine"], ["bench", "kernels", "--bits", "4/4/4"],
                                  ["bench", "network", "policies/digits-mixed.json", "--impl", "x"],
                                  ["bench", "network", "policies/digits-mixed.json", "--images", "-3"]])
def test_bad_command_lines_are_refused(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.device
def test_reduced_kernel_suite_runs_on_the_board(board, tmp_path):
    """The suite's real depthwise shape at two bit combinations: each figure is the measured
    ticks in the report's unit per MAC, and meets the CMSIS-NN int8 figure (8.39)."""
    depthwise = next(shape for shape in SUITE if shape.name == "depthwise")
    report = bench_kernels(board, "m7", shapes=[depthwise], combos=[(8, 8, 8), (2, 4, 2)], runs=1)
    assert [(r["in_bits"], r["w_bits"], r["out_bits"]) for r in report["results"]] == [(8, 8, 8), (2, 4, 2)]
    per_tick = {r["per_mac"] * r["macs"] / r["ticks"] for r in report["results"]}
    assert len(per_tick) == 1 or max(per_tick) - min(per_tick) < 1e-9 * max(per_tick)  # one unit for all
    for result in report["results"]:
        assert result["macs"] == depthwise.macs and result["ticks"] > 0
        assert 1.0 < result["per_mac"] <= depthwise.cmsis_int8 and result["meets_target"], result
    json.dumps(report)


@pytest.mark.device
def test_network_comparison_checks_both_builds(board):
    graph = random_chain_graph(3)
    inputs = np.stack([random_input(graph, seed) for seed in range(2)])
    report = bench_network(graph, inputs, board)
    assert set(report["impls"]) == {"ref", "m7"}
    assert report["impls"]["m7"]["median"] < report["impls"]["ref"]["median"]


def test_shape_and_layer_tables_show_cost_per_mac_against_the_target():
    from harness.commands.bench import layer_table, shape_table

    report = {"board": "qemu-m7", "impl": "m7", "unit": "instructions", "meaning": "m", "model": "net",
              "results": [{"shape": "fc", "in_bits": 8, "w_bits": 8, "out_bits": 8, "macs": 81920, "per_mac": 1.9,
                           "target": 2.0}],
              "impls": {"m7": {"layers": [{"layer": "fc1", "op": "fully_connected", "in_bits": 8, "w_bits": 8,
                                           "out_bits": 8, "macs": 1000, "cost": 2500.0, "per_mac": 2.5},
                                          {"layer": "pool", "op": "global_avg_pool", "in_bits": 8, "w_bits": None,
                                           "out_bits": 8, "macs": 0, "cost": 40.0, "per_mac": None}]}}}
    console = Console(record=True, width=160, color_system="standard", file=io.StringIO())
    console.print(shape_table(report, SUITE))
    console.print(layer_table(report, "m7"))
    text = console.export_text(styles=True)
    assert "\x1b[32m1.90" in text and "fully connected 640 -> 128" in text
    assert "2.50" in text and "8/-/8" in text


def test_zoo_maps_too_large_for_the_board_lose_rows_and_say_so():
    from harness.measure.bench import zoo_shapes

    stem = next(s for s in zoo_shapes() if "mobilenet_v1_1.0_224 conv1" in s.title)
    assert stem.w == 224 and stem.cin == 3 and stem.h < 224 and f"rows cropped to {stem.h} of 224" in stem.title
