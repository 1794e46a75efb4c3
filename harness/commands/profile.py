"""`harness profile --board B --policy-or-model POLICY.json|ZOO_NAME`: fill the board's latency table.

Every layer of the model is measured alone at every bit configuration a search may choose
(harness.measure.profile); what the cached table (harness.measure.latency) already holds is not measured again.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from harness.backends import load_board
from harness.errors import HarnessError
from harness.pytest_plugin import DEFAULT_BOARD


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "profile", help="measure every layer of a model at every bit configuration on a board",
        description="Build profiling firmware of single-layer models, run each on the board and cache the "
                    "per-layer ticks in the board's latency table (used by `harness search --method haq`).")
    parser.add_argument("--board", default=DEFAULT_BOARD, help=f"board name (default {DEFAULT_BOARD})")
    parser.add_argument("--policy-or-model", required=True, metavar="POLICY_OR_MODEL",
                        help="a policy.json (its model and input quantization) or a zoo model name")
    parser.add_argument("--model-args", default="{}", help="zoo model arguments as JSON (with a zoo name)")
    parser.set_defaults(func=run)


def model_graph(policy_or_model: str, model_args: str = "{}"):
    """The structural graph (all 8 bits) of a policy file's model or of a zoo model."""
    from harness import zoo
    from harness.quantize.lower import structural_graph
    from harness.policy import load_policy
    from harness.search.documents import uniform_policy

    if policy_or_model.endswith(".json") or Path(policy_or_model).is_file():
        policy = load_policy(policy_or_model)
        return structural_graph(uniform_policy(policy.name, policy.model.zoo, policy.model.args,
                                               policy.architecture, 8, policy.document["budget"],
                                               input_quant=policy.document["input"]))
    try:
        args = json.loads(model_args)
    except json.JSONDecodeError as error:
        raise HarnessError(f"--model-args: not valid JSON: {error.msg}") from None
    if not isinstance(args, dict):
        raise HarnessError("--model-args: must be a JSON object")
    architecture = zoo.build(policy_or_model, args)
    return structural_graph(uniform_policy(policy_or_model, policy_or_model, args, architecture, 8,
                                           {"flash": "2MB", "ram": "512kB"}))


def run(args: argparse.Namespace) -> int:
    from harness.measure.profile import profile

    board = load_board(args.board)
    graph = model_graph(args.policy_or_model, args.model_args)
    console = Console(stderr=True)
    with Progress(TextColumn("[bold]profiling {task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task(f"{graph.name} on {board.name}", total=None)
        table, measured = profile(graph, board, lambda done, total: bar.update(task, completed=done, total=total))
    Console(highlight=False).print(
        f"{measured} configurations measured, {len(table.entries)} in the table ({table.unit}, "
        f"{table.per_tick:g} per tick; per-network overhead {table.overhead:g} ticks): {table.path}")
    return 0
