"""`harness build POLICY --board B`: quantize, generate C and build the firmware (cached)."""
from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from harness.backends import load_board
from harness.commands.options import add_policy_and_board, add_protocol_options, build_with_front_end, policy_with_data
from harness.policy import load_policy
from harness.units import format_size


def register(subparsers) -> None:
    parser = subparsers.add_parser("build", help="build a policy's firmware for a board",
                                   description="Quantize the policy, generate C and build the ELF (cached by content).")
    add_policy_and_board(parser)
    add_protocol_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # torch and the firmware pipeline load only when the command runs (build_with_front_end): `harness --help` stays fast
    console = Console(stderr=True, log_path=False)
    policy = policy_with_data(load_policy(args.policy), args)
    board = load_board(args.board)
    graph, build = build_with_front_end(args, policy, board, console)
    weights = " with RANDOM weights (latency and memory only)" if graph.meta.get("random_weights") else ""
    table = Table(title=f"{policy.name} for {board.name}{weights}{' (cached)' if build.cached else ''}")
    for column in ("memory", "used", "budget", "share"):
        table.add_column(column)
    for what, used, budget in (("flash", build.flash_bytes, board.budget.flash), ("ram", build.ram_bytes, board.budget.ram)):
        table.add_row(what, format_size(used), format_size(budget), f"{100 * used / budget:.1f}%")
    Console().print(table)
    print(build.elf_path)
    return 0
