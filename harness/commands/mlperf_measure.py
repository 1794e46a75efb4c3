"""`harness measure --protocol mlperf-tiny`: the measurement through the MLPerf Tiny front end
(harness.measure.mlperf_run); this module registers no command of its own."""
from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.table import Table

from harness.backends import load_board
from harness.boards import DEFAULT_BOARD
from harness.commands.options import checked_policy_graph
from harness.errors import HarnessError
from harness.policy import load_policy

_NOT_WITH = ("resume", "link_faults", "log")


def measure_through_mlperf_tiny(args: argparse.Namespace, console: Console) -> int:
    """Run the inputs through the DUT protocol; exit 0 when every m-results equals the host's."""
    from harness.measure.mlperf_run import measure_mlperf

    given = [f"--{name.replace('_', '-')}" for name in _NOT_WITH if getattr(args, name, None)]
    if given:
        raise HarnessError(f"--protocol mlperf-tiny does not take {', '.join(given)}")
    if args.policy is None:
        raise HarnessError("measure: give a policy file")
    runs, warmups = args.infer
    if runs < 1 or warmups < 0:
        raise HarnessError(f"--infer N W: N must be at least 1 and W at least 0, got {runs} {warmups}")
    policy = load_policy(args.policy)
    board = load_board(args.board or DEFAULT_BOARD).with_serial_port(args.port)
    graph = checked_policy_graph(policy, board, args, console)
    report = measure_mlperf(policy, graph, board, args.images, args.data, runs, warmups, args.model_id)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    table = Table(title=f"{policy.name} on {board.name} through MLPerf Tiny's DUT protocol ({report['model']})",
                  show_header=False)
    table.add_row("m-results equal to the host reference", f"{report['equal']}/{report['images']}")
    if report["accuracy"] is not None:
        table.add_row("top-1 from m-results", f"{report['accuracy']:.2%}")
    table.add_row(f"m-lap-us per inference (median, infer {runs} {warmups})", f"{report['median_us_per_inference']:,.1f} µs")
    table.add_row("what the lap counts", report["lap_us_meaning"])
    Console().print(table)
    return 0 if report["equal"] == report["images"] else 1
