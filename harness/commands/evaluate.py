"""`harness evaluate POLICY`: float vs fake-quant vs integer-reference accuracy, and memory.

Trains what is missing (float checkpoint, QAT) and caches it, so a second run is quick; `--data
SPEC` picks the dataset (harness.datasets.registry). A policy naming a model file needs `--data`
(e.g. a sample folder) and is scored post-training on its test images; `--reference
MODEL.tflite` (repeatable: the fp32 and the int8 file) adds the TFLite interpreter's predictions and their agreement with ours (harness.measure.cross_check).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness.commands.options import add_data_options, policy_with_data
from harness.commands.policy import layer_table, print_budget, print_policy
from harness.errors import HarnessError
from harness.ir.memory import memory_report
from harness.policy import load_policy


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("evaluate", help="accuracy of a policy's float, fake-quant and integer models")
    parser.add_argument("policy", type=Path, help="policy JSON file")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the results to FILE as JSON")
    add_data_options(parser)
    parser.add_argument("--reference", type=Path, action="append", default=[], metavar="MODEL.tflite",
                        help="also run this TFLite file with the TFLite interpreter on the --data images (repeatable; "
                             "needs the `reference` extra, ai-edge-litert)")
    parser.add_argument("--calibration", type=Path, metavar="DIR",
                        help="images to calibrate a model file's policy post-training (a sample folder or ImageFolder)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    policy = policy_with_data(load_policy(args.policy), args)
    if policy.model.file is not None or args.reference:
        return run_cross_check(args, policy)
    from harness.quantize.pipeline import evaluate  # torch: imported only when a command needs it

    console = Console(highlight=False)
    evaluation, graph = evaluate(policy, progress=lambda message: console.print(message, style="dim", markup=False))
    report = memory_report(graph)
    print_policy(console, policy)
    console.print(layer_table(report))
    table = Table(title=f"accuracy on {evaluation.n_test} test images of {policy.data}")
    table.add_column("model")
    table.add_column("accuracy", justify="right")
    table.add_row("float", f"{evaluation.float_accuracy:.2%}")
    table.add_row("fake-quant (QAT)", f"{evaluation.fake_quant_accuracy:.2%}")
    table.add_row("integer reference", f"{evaluation.integer_accuracy:.2%}")
    table.add_row("argmax agreement integer / fake-quant", f"{evaluation.argmax_agreement:.2%}")
    console.print(table)
    console.print(f"integer graph {graph.hash()}")
    print_budget(console, report, policy.budget)
    if args.json:
        result = {
            "policy": {"name": policy.name, "hash": policy.hash, "file": str(args.policy)},
            "graph_hash": graph.hash(),
            "data": policy.data,
            "accuracy": evaluation.to_dict(),
            "memory": report.to_dict(),
            "budget": {"flash_bytes": policy.budget.flash, "ram_bytes": policy.budget.ram},
            "fits": not report.over_budget(policy.budget),
        }
        _write_json(args.json, result, console)
    return 0


def run_cross_check(args: argparse.Namespace, policy) -> int:
    """Top-1 of ours and of the reference files on the --data images."""
    from harness.quantize.pipeline import policy_graph
    from harness.measure.cross_check import cross_check

    if policy.data is None:
        raise HarnessError(f"{args.policy}: give --data SPEC (e.g. a sample folder) to evaluate a model file or compare "
                           "with --reference")
    console = Console(highlight=False)
    graph = policy_graph(policy, False, progress=lambda message: console.print(message, style="dim", markup=False),
                         calibration_dir=args.calibration)
    check = cross_check(policy, graph, args.reference)
    print_policy(console, policy)
    table = Table(title=f"top-1 on the {check.images} images of {policy.data}")
    for column in ("model", "top-1", "agrees with our integer"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for column in check.ours:
        table.add_row(column.name, f"{column.top1(check.labels)}/{check.images}", "")
    integer = check.ours[-1]
    for column in check.references:
        if column.predictions is None:
            table.add_row(column.name, f"missing: {column.missing}", "")
        else:
            table.add_row(column.name, f"{column.top1(check.labels)}/{check.images}",
                          f"{integer.agreement(column)}/{check.images}")
    console.print(table)
    console.print(f"integer graph {graph.hash()}")
    if args.json:
        result = {"policy": {"name": policy.name, "hash": policy.hash, "file": str(args.policy)},
                  "graph_hash": graph.hash(), "data": policy.data, "cross_check": check.to_dict()}
        _write_json(args.json, result, console)
    return 0


def _write_json(path: Path, result: dict, console: Console) -> None:
    try:
        path.write_text(json.dumps(result, indent=1) + "\n")
    except OSError as error:
        raise HarnessError(f"cannot write {path}: {error.strerror}") from None
    console.print(f"results written to {path}")
