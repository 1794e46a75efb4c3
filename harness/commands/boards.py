"""`harness boards`: the boards this checkout knows and whether this machine can run them."""
from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from harness.backends import get_backend
from harness.backends import load_boards
from harness.build.firmware import toolchain_status
from harness.units import format_size


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("boards", help="list the boards and whether their tools are installed",
                                   description="List boards/*.toml with budgets, backend and tool status.")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    table = Table(title="boards")
    for column in ("board", "cpu", "clock", "flash budget", "ram budget", "backend", "backend tools"):
        table.add_column(column, no_wrap=column != "backend tools")
    for board in load_boards():
        status = get_backend(board.backend).tool_status()
        table.add_row(
            board.name,
            board.cpu,
            f"{board.core_clock_hz / 1e6:g} MHz",
            format_size(board.budget.flash),
            format_size(board.budget.ram),
            board.backend,
            f"[green]ok[/green] {status.detail}" if status.present else f"[red]missing[/red] {status.detail}",
        )
    console = Console()
    console.print(table)
    toolchain = toolchain_status()
    state = "[green]ok[/green]" if toolchain.present else "[red]missing[/red]"
    console.print(f"firmware toolchain: {state} {toolchain.detail}")
    return 0
