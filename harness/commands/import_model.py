"""`harness import MODEL.{onnx,tflite} [--out policy.json] [--name N] [--board B]`: a starter policy.

Imports the model (an unsupported construct: one line naming the node and op, exit 2, nothing
written), then writes a policy with every tensor at 8 bits, the board's memory budget and the
input range (--input-range, or the input quantization of a quantized TFLite file of the same
network, --input-range-from; else [0, 1]), and prints
the per-layer table of `harness policy check`. onnx / tflite load only when the command runs.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from rich.console import Console

from harness.backends import load_board
from harness.boards import DEFAULT_BOARD
from harness.commands.policy import layer_table, print_budget, print_policy
from harness.errors import HarnessError
from harness.files import write_atomic

DEFAULT_RANGE = (0.0, 1.0)
INPUT_BITS = 8


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("import", help="import an ONNX or TFLite model: write a starter 8-bit policy",
                                   description="Import an .onnx or .tflite float model and write a policy for it: every "
                                               "tensor at 8 bits, the board's budget; edit the bits, then `policy check`, "
                                               "`build`, `measure`, `evaluate`.")
    parser.add_argument("model", type=Path, help="model file (.onnx or .tflite, float)")
    parser.add_argument("--out", type=Path, help="policy file to write (default: MODEL's name with .json, here)")
    parser.add_argument("--name", help="policy name (default: the model file's stem)")
    parser.add_argument("--board", default=DEFAULT_BOARD, help=f"board whose budget the policy takes (default {DEFAULT_BOARD})")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--input-range", metavar="LOW,HIGH",
                        help="real range of the network input, e.g. 0,255 for raw pixels (default: 0,1)")
    source.add_argument("--input-range-from", type=Path, metavar="QUANTIZED.tflite",
                        help="take the input range from a quantized TFLite file of the same network (its input's "
                             "scale and zero-point, e.g. ic_resnet8_int8.tflite: 0..255)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing --out file")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.frontend.importer import load_model_file
    from harness.ir.memory import memory_report
    from harness.policy import parse_policy
    from harness.quantize.lower import structural_graph

    out = args.out or Path(args.model.stem + ".json")
    if out.exists() and not args.force:
        raise HarnessError(f"{out}: exists (use --force to overwrite)")
    board = load_board(args.board)
    float_graph = load_model_file(args.model)
    low, high, range_source = _input_range(args)
    arch = float_graph.architecture
    document = {
        "name": args.name or args.model.stem,
        "description": f"starter policy from harness import {args.model.name}: every tensor at 8 bits, "
                       f"the {board.name} budget; input range from {range_source}",
        "model": {"file": os.path.relpath(args.model.resolve(), out.resolve().parent)},
        "input": {"bits": INPUT_BITS, "range": [low, high]},
        "layers": {spec.name: ({"w_bits": 8} if spec.has_weights else {})
                   | ({} if spec.name == arch.classifier else {"a_bits": 8}) for spec in arch.layers},
        "budget": {"flash": board.budget.flash, "ram": board.budget.ram},
    }
    policy = parse_policy(document, source=str(out), base_dir=out.resolve().parent)
    _write(out, document)
    console = Console(highlight=False)
    for note in float_graph.notes:
        console.print(f"note: {note}", style="dim")
    if range_source == "the default":
        console.print(f"note: the file gives no input range: assumed [{low:g}, {high:g}]; "
                      "pass --input-range LOW,HIGH if the model takes other values", style="yellow")
    report = memory_report(structural_graph(policy))
    print_policy(console, policy)
    console.print(layer_table(report))
    print_budget(console, report, policy.budget)
    console.print(f"policy written to {out}")
    return 0


def _input_range(args: argparse.Namespace) -> tuple[float, float, str]:
    """(low, high, where they came from)."""
    if args.input_range is not None:
        try:
            low, high = (float(part) for part in args.input_range.split(","))
        except ValueError:
            raise HarnessError(f"--input-range: expected LOW,HIGH (e.g. 0,255), got {args.input_range!r}") from None
        return low, high, "--input-range"
    if args.input_range_from is not None:
        from harness.frontend.tflite_import import input_range

        try:
            declared = input_range(args.input_range_from.read_bytes())
        except OSError as error:
            raise HarnessError(f"{args.input_range_from}: cannot read: {error.strerror}") from None
        if declared is None:
            raise HarnessError(f"{args.input_range_from}: its input is not quantized: no range to take")
        return declared[0], declared[1], f"the input quantization of {args.input_range_from.name}"
    return DEFAULT_RANGE[0], DEFAULT_RANGE[1], "the default"


def _write(path: Path, document: dict) -> None:
    """Write to a temporary sibling, then rename: no half-written policy."""
    write_atomic(path, json.dumps(document, indent=2) + "\n")
