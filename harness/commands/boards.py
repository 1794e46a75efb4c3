"""`harness boards`: the boards this checkout knows and whether this machine can run them."""
from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.backends import get_backend
from harness.backends import load_boards
from harness.build.firmware import toolchain_status
from harness.units import format_size


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("boards", help="list the boards and whether their tools are installed",
                                   description="List boards/*.toml with budgets, backend and tool status.")
    parser.add_argument("--json", action="store_true", help="print the list as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    rows = [board_row(board) for board in load_boards()]
    toolchain = toolchain_status()
    if args.json:
        print(json.dumps({"boards": rows, "toolchain": {"present": toolchain.present, "detail": toolchain.detail}},
                         indent=1))
        return 0
    console = Console()
    console.print(boards_table(rows))
    for row in rows:  # tool details below the table: they are sentences, not cells
        state = "[green]ok[/green]" if row["tools_present"] else "[red]missing[/red]"
        console.print(f"[bold]{row['name']}[/bold] ({row['backend']}): {state} {escape(row['tools'])}")
    state = "[green]ok[/green]" if toolchain.present else "[red]missing[/red]"
    console.print(f"[bold]firmware toolchain[/bold]: {state} {escape(toolchain.detail)}")
    return 0


def board_row(board) -> dict:
    status = get_backend(board.backend).tool_status()
    return {"name": board.name, "description": board.description, "cpu": board.cpu,
            "core_clock_hz": board.core_clock_hz, "flash_budget": board.budget.flash, "ram_budget": board.budget.ram,
            "backend": board.backend, "counter": board.counter.kind, "tools_present": status.present,
            "tools": status.detail}


def boards_table(rows: list[dict]) -> Table:
    """One short row per board: fits 80 columns with full names."""
    table = Table(title="boards", box=None, pad_edge=False, header_style="bold")
    for column in ("board", "clock", "flash", "ram", "backend", "counts", "tools"):
        table.add_column(column, no_wrap=True)
    for row in rows:  # the cpu is in --json (every board here is a Cortex-M7)
        table.add_row(row["name"], f"{row['core_clock_hz'] / 1e6:g} MHz", format_size(row["flash_budget"]),
                      format_size(row["ram_budget"]), row["backend"], row["counter"],
                      "[green]ok[/green]" if row["tools_present"] else "[red]missing[/red]")
    return table
