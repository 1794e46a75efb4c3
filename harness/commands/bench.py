"""`harness bench kernels --board B [--out FILE]` and `harness bench network POLICY --board B`."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness.backends import load_board
from harness.boards import DEFAULT_BOARD
from harness.commands.options import add_model_source_options, checked_policy_graph, policy_with_data

DEFAULT_NETWORK_IMAGES = 20


def register(subparsers) -> None:
    parser = subparsers.add_parser("bench", help="benchmark kernels or a network on a board",
                                   description="Measure kernels or a whole network on a board.")
    modes = parser.add_subparsers(dest="mode", metavar="MODE", required=True)

    kernels = modes.add_parser(
        "kernels", help="instructions (emulator) or cycles (hardware) per MAC of the kernel suite",
        description="Build firmware holding the suite (pointwise, conv 3x3, depthwise 3x3, conv 3x3 s2, each "
                    "at all 27 input/weight/output bit combinations) or every layer geometry of the zoo's "
                    "networks (--shapes zoo: the MLPerf Tiny networks and MobileNetV1, at 8/8/8 unless --bits "
                    "all), check every output against the host reference, time each layer with PERF and print "
                    "the cost per MAC.")
    kernels.add_argument("--board", default=DEFAULT_BOARD, help=f"board name (default {DEFAULT_BOARD})")
    kernels.add_argument("--impl", default="m7", choices=("m7", "ref"),
                         help="kernels the firmware uses: m7 (Cortex-M7 DSP, default) "
                              "or ref (portable, -DMPQ_FORCE_REF)")
    kernels.add_argument("--shapes", default="suite", choices=("suite", "zoo"),
                         help="suite: the four shapes of the suite (default); zoo: every conv, depthwise and fully "
                              "connected geometry of the MLPerf Tiny networks and MobileNetV1 1.0 224")
    kernels.add_argument("--bits", choices=("all", "8/8/8"),
                         help="bit combinations: all 27 (the suite's default) or 8/8/8 (the zoo's default)")
    kernels.add_argument("--runs", type=_positive, default=2, help="PERF runs per layer (default 2)")
    kernels.add_argument("--out", type=Path, help="write the results as JSON here")
    kernels.add_argument("--heatmap", type=Path, help="write a PNG heatmap of cost per MAC (shapes x bits) here")
    kernels.set_defaults(func=run_kernels)

    network = modes.add_parser(
        "network", help="whole-network cost of a policy with the portable and the Cortex-M7 kernels",
        description="Build the policy's network twice (-DMPQ_FORCE_REF and default), run the same test images "
                    "on both, check every output against the host reference and compare the cost.")
    network.add_argument("policy", type=Path, help="policy.json")
    network.add_argument("--board", default=DEFAULT_BOARD, help=f"board name (default {DEFAULT_BOARD})")
    network.add_argument("--images", type=_positive, default=DEFAULT_NETWORK_IMAGES,
                         help=f"test images (default {DEFAULT_NETWORK_IMAGES})")
    network.add_argument("--impl", choices=("both", "m7", "ref"), default="both",
                         help="kernels: both builds (default), or only the Cortex-M7 or the portable one")
    network.add_argument("--layers", action="store_true",
                         help="also print each layer's cost per MAC (always in the JSON)")
    network.add_argument("--out", type=Path, help="write the results as JSON here")
    add_model_source_options(network)
    network.set_defaults(func=run_network)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def run_kernels(args: argparse.Namespace) -> int:
    from harness.measure.bench import BIT_COMBOS, SUITE, bench_kernels, zoo_shapes
    board = load_board(args.board)
    shapes = SUITE if args.shapes == "suite" else zoo_shapes()
    bits = args.bits or ("all" if args.shapes == "suite" else "8/8/8")
    combos = BIT_COMBOS if bits == "all" else ((8, 8, 8),)
    console = Console(stderr=True, log_path=False)
    with console.status(f"kernel {args.shapes} on {board.name}") as status:
        def progress(r) -> None:
            status.update(f"measured {r.shape} i{r.in_bits}w{r.w_bits}o{r.out_bits}")

        report = bench_kernels(board, args.impl, shapes, combos, runs=args.runs, on_result=progress)
    report["shape_set"] = args.shapes
    _write(args.out, report, board)
    Console().print(kernel_table(report, shapes) if args.shapes == "suite" and bits == "all"
                    else shape_table(report, shapes))
    if args.heatmap:
        args.heatmap.parent.mkdir(parents=True, exist_ok=True)
        args.heatmap.write_bytes(kernel_heatmap(report))
        console.print(f"heatmap: {args.heatmap}")
    return 0


def kernel_heatmap(report: dict) -> bytes:
    """Shapes x (in/w/out bits) coloured by cost per MAC."""
    from harness.report.plots import heatmap

    shapes = list(dict.fromkeys(r["shape"] for r in report["results"]))
    combos = sorted({(r["in_bits"], r["w_bits"], r["out_bits"]) for r in report["results"]})
    per_mac = {(r["shape"], r["in_bits"], r["w_bits"], r["out_bits"]): r["per_mac"] for r in report["results"]}
    return heatmap(shapes, [f"{i}/{w}/{o}" for i, w, o in combos],
                   [[per_mac.get((shape, *combo)) for combo in combos] for shape in shapes],
                   f"{report['unit']} per MAC on {report['board']} ({report['impl']} kernels), in/w/out bits",
                   f"{report['unit']} per MAC")


def kernel_table(report: dict, shapes) -> Table:
    """Bit combinations x shapes, cost per MAC; green at or below the shape's CMSIS-NN int8 figure."""
    unit = report["unit"]
    per_mac = {(r["shape"], r["in_bits"], r["w_bits"], r["out_bits"]): r["per_mac"] for r in report["results"]}
    names = [s.name for s in shapes if any(key[0] == s.name for key in per_mac)]
    table = Table(title=f"{unit} per MAC on {report['board']} ({report['impl']} kernels)", caption=report["meaning"])
    table.add_column("in/w/out bits")
    for shape in shapes:
        if shape.name in names:
            table.add_column(f"{shape.name}\n(CMSIS-NN int8 {shape.cmsis_int8})", justify="right")
    combos = sorted({key[1:] for key in per_mac}, reverse=True)
    targets = {s.name: s.cmsis_int8 for s in shapes}
    for combo in combos:
        cells = []
        for name in names:
            value = per_mac.get((name, *combo))
            style = "green" if value is not None and value <= targets[name] else "red"
            cells.append("-" if value is None else f"[{style}]{value:.2f}[/{style}]")
        table.add_row("{}/{}/{}".format(*combo), *cells)
    return table


def shape_table(report: dict, shapes) -> Table:
    """One row per (shape, bits): cost per MAC against the shape's CMSIS-NN figure (green at or below)."""
    titles = {s.name: s.title for s in shapes}
    table = Table(title=f"{report['unit']} per MAC on {report['board']} ({report['impl']} kernels)",
                  caption=report["meaning"])
    for column in ("shape", "bits", "MACs", "per MAC", "CMSIS-NN"):
        table.add_column(column, justify="left" if column == "shape" else "right")
    for r in report["results"]:
        style = "green" if r["per_mac"] <= r["target"] else "red"
        table.add_row(f"{r['shape']} {titles.get(r['shape'], '')}", "{}/{}/{}".format(r["in_bits"], r["w_bits"],
                      r["out_bits"]), f"{r['macs']:,}", f"[{style}]{r['per_mac']:.2f}[/{style}]", f"{r['target']:.2f}")
    return table


def run_network(args: argparse.Namespace) -> int:
    from harness.datasets.measured import measured_inputs
    from harness.measure.bench import bench_network
    from harness.policy import load_policy
    console = Console(stderr=True, log_path=False)
    policy = policy_with_data(load_policy(args.policy), args)
    board = load_board(args.board)
    graph = checked_policy_graph(policy, board, args, console)
    inputs, _ = measured_inputs(policy, graph, args.images)
    with console.status(f"{policy.name} on {board.name}, portable then Cortex-M7 kernels"):
        impls = ("ref", "m7") if args.impl == "both" else (args.impl,)
        report = bench_network(graph, inputs[: args.images], board, impls)
    report["policy"] = policy.name
    _write(args.out, report, board)
    table = Table(title=f"{policy.name} on {board.name}: {report['unit']} per inference ({report['images']} images)",
                  caption=report["meaning"])
    for column in ("kernels", "median", "min", "max", "per MAC"):
        table.add_column(column, justify="right")
    for impl, stats in report["impls"].items():
        table.add_row(impl, *(f"{stats[key]:,.0f}" for key in ("median", "min", "max")),
                      "-" if stats["per_mac"] is None else f"{stats['per_mac']:.2f}")
    if {"ref", "m7"} <= report["impls"].keys():
        table.add_row("speed-up", f"{report['impls']['ref']['median'] / report['impls']['m7']['median']:.2f}x", "", "",
                      "")
    Console().print(table)
    if args.layers:
        for impl, stats in report["impls"].items():
            Console().print(layer_table(report, impl))
    return 0


def layer_table(report: dict, impl: str) -> Table:
    """Each layer of one build: bits, MACs, cost and cost per MAC (median over the images)."""
    table = Table(title=f"{report['model']}, {impl} kernels: {report['unit']} per layer", caption=report["meaning"])
    for column in ("layer", "op", "bits i/w/o", "MACs", report["unit"], "per MAC"):
        table.add_column(column, justify="left" if column in ("layer", "op") else "right")
    for row in report["impls"][impl]["layers"]:
        bits = "{}/{}/{}".format(row["in_bits"], row["w_bits"] or "-", row["out_bits"])
        table.add_row(row["layer"], row["op"], bits, f"{row['macs']:,}", f"{row['cost']:,.0f}",
                      "-" if not row["macs"] else f"{row['per_mac']:.2f}")
    return table


def _write(path: Path | None, report: dict, board) -> None:
    from harness.measure.provenance import provenance

    if path is not None:
        report["provenance"] = provenance(board)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=1) + "\n")
