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



def test_suite_is_the_four_shapes_of_the_issue_at_every_bit_combination():
    assert [(s.name, s.cmsis_int8) for s in SUITE] == [
        ("pointwise", 2.03), ("conv3x3", 1.93), ("depthwise", 8.39), ("conv3x3_s2", 2.89)]
    assert len(BIT_COMBOS) == 27
    assert [s.macs for s in SUITE] == [16 * 16 * 64 * 128, 16 * 16 * 32 * 32 * 9, 16 * 16 * 128 * 9,
                                       16 * 16 * 16 * 8 * 9]


@pytest.mark.parametrize("shape", SUITE, ids=lambda s: s.name)
def test_shape_graph_has_the_exact_shape_and_spread_outputs(shape):
    graph = shape_graph(shape, (4, 2, 8))
    (layer,) = graph.layers
    assert graph.tensors["x"].shape == (shape.h, shape.w, shape.cin)
    assert graph.tensors["y"].shape == (*shape.out_hw, shape.cout)
    assert (layer.kernel, layer.stride, layer.padding) == ((shape.k,) * 2, (shape.stride,) * 2, (shape.pad,) * 4)
    assert kernel_for(layer) == ("pointwise" if shape.name == "pointwise" else layer.op)
    y = reference.predict(graph, random_input(graph, 7))
    assert len(np.unique(y)) > 100, "outputs must spread over the range, or requantization is not exercised"


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
