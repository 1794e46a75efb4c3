"""`harness measure POLICY --board B [--images N] [--out report.json]`."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness.backends import get_backend
from harness.backends import load_board
from harness.commands.options import add_model_source_options, checked_policy_graph, policy_with_data
from harness.errors import HarnessError
from harness.policy import load_policy
from harness.pytest_plugin import DEFAULT_BOARD
from harness.units import format_size

DEFAULT_IMAGES = 100


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "measure", help="run a policy on a board: predictions, cycles, bit-exact check",
        description="Build the policy's firmware, start it on the board, stream test images over UART and "
                    "check every output bit-exactly against the host reference.")
    parser.add_argument("policy", type=Path, help="policy.json")
    parser.add_argument("--board", default=DEFAULT_BOARD, help=f"board name (default {DEFAULT_BOARD}); see `harness boards`")
    parser.add_argument("--images", type=int, default=DEFAULT_IMAGES, help=f"test images to stream (default {DEFAULT_IMAGES})")
    parser.add_argument("--out", type=Path, help="write the JSON report here (the per-image log goes beside it as .jsonl)")
    parser.add_argument("--log", type=Path, help="per-image JSONL log (default: beside --out, or runs/)")
    parser.add_argument("--port", help="serial port of a board on a debug probe, e.g. /dev/ttyACM0 (default: found by USB id)")
    add_model_source_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # torch and the firmware pipeline load only when the command runs: `harness --help` stays fast
    from harness.datasets.measured import measured_inputs
    from harness.measure.run import measure
    console = Console(stderr=True, log_path=False)
    policy = policy_with_data(load_policy(args.policy), args)
    board = load_board(args.board).with_serial_port(args.port)
    tools = get_backend(board.backend).tool_status()
    if not tools.present:  # before quantizing and building: say at once that the board is not here
        raise HarnessError(f"board {board.name}: {tools.detail}")
    log_path = args.log or _default_log(args.out, policy.name, board.name)
    graph = checked_policy_graph(policy, board, args, console)
    inputs, labels = measured_inputs(policy, graph, args.images)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("bit-exact {task.fields[exact]}"), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task(f"{policy.name} on {board.name}", total=args.images, exact=0)
        exact = 0

        def advance(result) -> None:
            nonlocal exact
            exact += result.bit_exact
            bar.update(task, advance=1, exact=exact)

        report = measure(policy, graph, board, inputs, labels, log_path, on_image=advance)
    report["log"] = str(log_path)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    Console().print(summary_table(report))
    if args.out:
        console.print(f"report: {args.out}   per-image log: {log_path}")
    return 0 if report["bit_exact"] == report["images"] else 1


def summary_table(report: dict) -> Table:
    lat = report["latency"]
    unit = lat["unit"]
    table = Table(title=f"{report['policy']} on {report['board']} ({report['images']} images)", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("bit-exact outputs", f"{report['bit_exact']}/{report['images']}")
    if report.get("random_weights"):
        table.add_row("[yellow]random weights[/yellow]", f"[yellow]{report.get('note', '')}[/yellow]")
    else:
        table.add_row("accuracy device / host", f"{report['device_accuracy']:.2%} / {report['host_accuracy']:.2%}")
    table.add_row(f"{unit} per image min/median/max", f"{lat['min']:,.0f} / {lat['median']:,.0f} / {lat['max']:,.0f}")
    if "median_ms" in lat:
        table.add_row("latency (median)", f"{lat['median_ms']:.3f} ms")
    table.add_row("what is counted", lat["meaning"])
    for layer in sorted(report["layers"], key=lambda row: -row[unit])[:5]:
        table.add_row(f"  {layer['name']} ({layer['op']})", f"{layer[unit]:,.0f} {unit} ({layer['share']:.1%})")
    for what, text in format_memory(report):
        table.add_row(f"{what} used / budget", text)
    return table


def format_memory(report: dict) -> list[tuple[str, str]]:
    """(what, used vs budget) rows for the summary."""
    mem = report["memory"]
    return [(what, f"{format_size(mem[f'{what}_bytes'])} of {format_size(mem[f'{what}_budget'])} "
                   f"({100 * mem[f'{what}_bytes'] / mem[f'{what}_budget']:.1f}%)")
            for what in ("flash", "ram")]


def _default_log(out: Path | None, policy: str, board: str) -> Path:
    if out is not None:
        return out.with_suffix(".jsonl")
    return Path("runs") / f"{policy}-{board}-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
