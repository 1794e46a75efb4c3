"""`harness export POLICY --board B --out DIR`: the policy's model as a C library for the user's firmware."""
from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from harness.backends import load_board
from harness.commands.options import add_policy_and_board, checked_policy_graph
from harness.errors import HarnessError
from harness.policy import load_policy
from harness.units import format_size


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export", help="export a policy's model as a self-contained C library",
        description="Quantize the policy and write its generated model, the kernels, headers, a Makefile "
                    "fragment, CMake files and a README (API, memory) into --out, for your own firmware.")
    add_policy_and_board(parser, board_help="board whose budgets it must fit")
    parser.add_argument("--out", type=Path, required=True, help="new or empty directory to write the library into")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.build.export import export_library  # the pipeline loads only when the command runs

    console = Console(stderr=True, log_path=False)
    policy = load_policy(args.policy)
    board = load_board(args.board)
    if args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
        raise HarnessError(f"--out {args.out}: must be a new or empty directory")  # before quantizing
    graph = checked_policy_graph(policy, board, args, console)
    library = export_library(graph, board, args.out, policy.hash)
    console.print(f"{policy.name}: model {library.model_hash}, constants {format_size(library.const_bytes)} (flash), "
                  f"arena {format_size(library.arena_bytes)} (RAM); see {args.out / 'README.md'}")
    print(library.out_dir)
    return 0
