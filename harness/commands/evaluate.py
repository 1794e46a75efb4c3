"""`harness evaluate POLICY`: float vs fake-quant vs integer-reference accuracy, and memory.

Trains what is missing (float checkpoint, QAT) and caches it, so a second run is quick.
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
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.quantize.pipeline import evaluate  # torch: imported only when a command needs it

    policy = policy_with_data(load_policy(args.policy), args)
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
        try:
            args.json.write_text(json.dumps(result, indent=1) + "\n")
        except OSError as error:
            raise HarnessError(f"cannot write {args.json}: {error.strerror}") from None
        console.print(f"results written to {args.json}")
    return 0
