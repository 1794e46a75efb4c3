"""`harness policy check FILE`: validate a policy and check it against its memory budget.

Needs no training: the memory model runs on the structural graph (zero weights); a checkpoint
the policy names is loaded and matched against the model's layer names and shapes. Exit codes:
0 fits, 1 does not fit its budget (says which), 2 malformed policy (one line naming the field).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness.quantize.lower import structural_graph
from harness.ir.graph import WINDOW_OPS
from harness.ir.memory import LayerMemory, MemoryReport, memory_report
from harness.policy import Budget, Policy, load_policy
from harness.units import format_size


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("policy", help="validate and inspect quantization policies")
    actions = parser.add_subparsers(dest="policy_action", metavar="ACTION", required=True)
    check = actions.add_parser("check", help="validate a policy and check its memory budget (no training)")
    check.add_argument("file", type=Path, help="policy JSON file")
    check.set_defaults(func=run_check)


def run_check(args: argparse.Namespace) -> int:
    policy = load_policy(args.file)
    if policy.model.checkpoint is not None:  # torch loads only for a policy that names a checkpoint
        from harness.frontend.float_net import load_checkpoint
        load_checkpoint(policy.architecture, policy.model.checkpoint)
    report = memory_report(structural_graph(policy))
    console = Console(highlight=False)
    print_policy(console, policy)
    console.print(layer_table(report))
    print_budget(console, report, policy.budget)
    problems = report.over_budget(policy.budget)
    if problems:
        print(f"error: {args.file}: does not fit its budget: {'; '.join(problems)}", file=sys.stderr)
        return 1
    return 0


def print_policy(console: Console, policy: Policy) -> None:
    q = policy.input
    h, w, c = policy.architecture.input_shape
    console.print(f"[bold]{policy.name}[/bold]  policy hash {policy.hash}  model {policy.model.label}"
                  f"{' ' + str(policy.model.args) if policy.model.args else ''}")
    console.print(f"input {h}x{w}x{c} at {q.bits} bits, range [{q.low:g}, {q.high:g}] -> scale {q.scale:.6g},"
                  f" zero-point {q.zero_point}")


def layer_table(report: MemoryReport) -> Table:
    """Per-layer rows and a total row."""
    table = Table(show_footer=True)
    columns = [("layer", "total"), ("op", ""), ("params", f"{sum(r.params for r in report.layers)}"),
               ("MACs", f"{report.macs}"), ("w_bits", ""), ("a_bits", ""),
               ("flash B", f"{report.weight_bytes + report.param_bytes}"),
               ("act. B", f"{sum(r.activation_bytes for r in report.layers)}")]
    for header, footer in columns:
        table.add_column(header, footer, justify="left" if header in ("layer", "op") else "right")
    for row in report.layers:
        table.add_row(row.name, op_label(row), str(row.params), str(row.macs), weight_bits_label(row.w_bits), str(row.a_bits),
                      str(row.flash_bytes), str(row.activation_bytes))
    return table


def op_label(row: LayerMemory) -> str:
    """Short kernel name with geometry: "conv 3x3/1", "dw 3x3/2", "pw", "maxpool 3x3/2", "fc"."""
    short = {"conv2d": "conv", "depthwise_conv2d": "dw", "pointwise": "pw",
             "global_avg_pool": "avgpool", "fully_connected": "fc", "avg_pool": "avgpool", "max_pool": "maxpool",
             "add": "add"}[row.op]
    if row.op in WINDOW_OPS:
        return f"{short} {row.kernel[0]}x{row.kernel[1]}/{row.stride[0]}"
    return short


def print_budget(console: Console, report: MemoryReport, budget: Budget) -> None:
    """Flash and RAM against the budget, with what each total is made of."""
    lines = (
        ("flash", report.flash_bytes, budget.flash,
         f"weights {report.weight_bytes} B + params {report.param_bytes} B + code estimate {report.code_bytes} B"),
        ("RAM", report.ram_bytes, budget.ram,
         f"arena {report.arena_bytes} B (simple bound {report.simple_bound_bytes} B; the {report.input_bytes} B "
         f"input {'kept' if report.input_survives else 'reused after its last consumer'})"
         f" + kernel work buffer (scratch) {report.work_buffer_bytes} B + runtime estimate {report.runtime_ram_bytes} B"),
    )
    for name, used, limit, parts in lines:
        verdict = "[green]fits[/green]" if used <= limit else "[red]EXCEEDS[/red]"
        console.print(f"{name:5} {format_size(used):>9} of {format_size(limit):>7} ({used / limit:6.1%}) {verdict}")
        console.print(f"      = {parts}", style="dim")


def weight_bits_label(w_bits) -> str:
    """A layer's weight bits for a table: "4", or per channel "21x2 15x4 3x8" (count x bits)."""
    if isinstance(w_bits, list):
        return " ".join(f"{w_bits.count(b)}x{b}" for b in sorted(set(w_bits)))
    return str(w_bits or "-")
