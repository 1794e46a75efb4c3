"""`harness farm up --boards qemu-m7:2` / `harness farm status [ADDRESS]` / `harness farm down`:
a local Ray cluster of boards for `--farm ADDRESS` (docs/farm.md; other hosts join with `ray start`)."""
from __future__ import annotations

import argparse

from rich.console import Console

DEFAULT_PORT = 6379


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "farm", help="start, inspect or stop a local Ray cluster of boards (`--farm ADDRESS` uses it)",
        description="A Ray cluster whose hosts advertise their boards as resources board:<name>; measure, "
                    "profile and search run on it with --farm ADDRESS. See docs/farm.md for several hosts.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    up = actions.add_parser("up", help="start the cluster's head on this host with emulated or attached boards")
    up.add_argument("--boards", required=True, metavar="NAME:N[,NAME:N]",
                    help="boards this host offers, e.g. qemu-m7:2 (see `harness boards`)")
    up.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"the head's port (default {DEFAULT_PORT})")
    up.set_defaults(func=_up)
    status = actions.add_parser("status", help="the boards a cluster offers")
    status.add_argument("address", nargs="?", default="auto",
                        help="HOST:PORT of the head (default: the cluster running on this host)")
    status.set_defaults(func=_status)
    down = actions.add_parser("down", help="stop the Ray processes of this host (`ray stop`)")
    down.set_defaults(func=_down)


def _up(args: argparse.Namespace) -> int:
    from harness.errors import HarnessError
    from harness.farm.cluster import parse_boards, start_head

    if not 1 <= args.port <= 65535:
        raise HarnessError(f"--port must be 1 .. 65535, got {args.port}")
    boards = parse_boards(args.boards)
    start_head(boards, args.port)
    listed = ", ".join(f"{count} {name}" for name, count in boards.items())
    Console(highlight=False).print(
        f"farm up: {listed} on this host; on this host use --farm auto; other hosts join with "
        f"RAY_AUTH_MODE=token RAY_AUTH_TOKEN=<`ray get-auth-token`> ray start --address THIS_HOST:{args.port} "
        "--resources '{\"board:NAME\": N}' (docs/farm.md); stop with: harness farm down")
    return 0


def _status(args: argparse.Namespace) -> int:
    from harness.farm.cluster import connected
    from harness.farm.pool import farm_boards

    with connected(args.address, {}):
        boards = farm_boards()
    Console(highlight=False).print("\n".join(boards) if boards else "the farm offers no boards")
    return 0


def _down(args: argparse.Namespace) -> int:
    from harness.farm.cluster import stop_local

    stop_local()
    Console(highlight=False).print("farm down: this host's Ray processes stopped")
    return 0
