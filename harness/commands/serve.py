"""`harness serve POLICY --board B --protocol mlperf-tiny`: build the policy's firmware, start it
and keep it running until Ctrl-C, printing the serial port an outside host program opens (QEMU:
a pseudo-terminal; a board on a probe: its serial port). docs/mlperf-tiny.md shows MLPerf
Tiny's runner attached to it."""
from __future__ import annotations

import argparse
import signal
import time

from rich.console import Console

from harness.backends import load_board
from harness.commands.options import add_policy_and_board, add_protocol_options, build_with_front_end
from harness.errors import HarnessError
from harness.policy import load_policy

_WATCH_S = 0.5


def register(subparsers) -> None:
    parser = subparsers.add_parser("serve", help="start a policy's firmware and keep it running for an outside host",
                                   description="Build and start the firmware, print its serial port (QEMU: a "
                                               "pseudo-terminal), and keep it running until Ctrl-C.")
    add_policy_and_board(parser)
    parser.add_argument("--port", help="serial port of a board on a debug probe, e.g. /dev/ttyACM0 (default: found by USB id)")
    parser.add_argument("--baud", type=int, help="the link's baud rate on a board with a real UART (default: the board "
                                                 "file's [backend] baud); the firmware is built for it")
    add_protocol_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.backends import open_link
    from harness.backends.qemu import QemuBackend, open_pty_link
    console = Console(stderr=True, log_path=False)
    policy = load_policy(args.policy)
    board = load_board(args.board).with_serial_port(args.port).with_baud(args.baud)
    _, build = build_with_front_end(args, policy, board, console)
    opener = open_pty_link if board.backend == QemuBackend.name else open_link
    # Ctrl-C (SIGINT) is how serve stops, also when it was started with SIGINT ignored (a background
    # job of a non-interactive shell inherits that, and Python then leaves it ignored)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with opener(board, build.elf_path) as link:
        print(f"serial port: {link.url}", flush=True)
        console.print(f"{policy.name} ({args.protocol}) runs on {link.description}; Ctrl-C stops it")
        try:
            while link.alive():
                time.sleep(_WATCH_S)
        except KeyboardInterrupt:
            console.print("stopped")
            return 0
        raise HarnessError(f"{link.description}: {link.failure()}")
