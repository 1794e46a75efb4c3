"""`harness profile --board B --policy-or-model POLICY.json|ZOO_NAME`: fill the board's latency table.

Every layer of the model is measured alone at every bit configuration a search may choose
(harness.measure.profile); what the cached table (harness.measure.latency) already holds is not measured again.
"""
from __future__ import annotations

import argparse
import itertools
import json
from contextlib import nullcontext
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from harness.backends import load_board
from harness.boards import DEFAULT_BOARD
from harness.commands.options import add_farm_options, farm_pool
from harness.errors import HarnessError
from harness.ir.packing import BITS


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "profile", help="measure every layer of a model at every bit configuration on a board",
        description="Build profiling firmware of single-layer models, run each on the board and cache the "
                    "per-layer ticks in the board's latency table (used by `harness search --method haq`).")
    parser.add_argument("--board", default=DEFAULT_BOARD, help=f"board name (default {DEFAULT_BOARD})")
    parser.add_argument("--policy-or-model", required=True, metavar="POLICY_OR_MODEL",
                        help="a policy.json (its model and input quantization) or a zoo model name")
    parser.add_argument("--model-args", default="{}", help="zoo model arguments as JSON (with a zoo name)")
    parser.add_argument("--heatmap", type=Path, help="PNG of the layer x bits costs "
                                                     "(default runs/profile-<model>-<board>.png)")
    parser.add_argument("--runs", action="store_true",
                        help="also profile conv2d and fully connected layers at half their output channels, so "
                             "any run of a channel-wise policy is priced as a + b * channels")
    add_farm_options(parser, "run the profiling images")
    parser.set_defaults(func=run)


def model_graph(policy_or_model: str, model_args: str = "{}"):
    """The structural graph (all 8 bits) of a policy file's model or of a zoo model; a channel-wise
    policy's own graph (its pruned channels change the layers' shapes)."""
    from harness import zoo
    from harness.quantize.lower import structural_graph
    from harness.policy import load_policy
    from harness.search.documents import uniform_policy

    if policy_or_model.endswith(".json") or Path(policy_or_model).is_file():
        policy = load_policy(policy_or_model)
        if any(bits.channel_wise for bits in policy.layers.values()):  # its pruned, reordered shapes
            return structural_graph(policy)
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
    from harness.measure.profile import profile, profiled_costs
    from harness.report.plots import heatmap

    board = load_board(args.board)
    graph = model_graph(args.policy_or_model, args.model_args)
    console = Console(stderr=True)
    with farm_pool(args, board.name, console) if args.farm is not None else nullcontext() as pool, \
            Progress(TextColumn("[bold]profiling {task.description}"), BarColumn(), MofNCompleteColumn(),
                     TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task(f"{graph.name} on {board.name}", total=None)
        progress = lambda done, total: bar.update(task, completed=done, total=total)  # noqa: E731
        if pool is None:
            table, measured = profile(graph, board, progress, runs=args.runs)
        else:
            from harness.farm.profile import farm_profile
            table, measured = farm_profile(pool, graph, board, progress, runs=args.runs)
    costs = profiled_costs(graph, table)
    out = Console(highlight=False)
    out.print(cost_table(graph.name, costs, table.unit))
    heatmap_path = args.heatmap or Path("runs") / f"profile-{_file_name(graph.name)}-{board.name}.png"
    heatmap_path.parent.mkdir(parents=True, exist_ok=True)
    choices = list(itertools.product(BITS, BITS, BITS))  # what a search picks: in, weight, out bits
    heatmap_path.write_bytes(heatmap(
        list(costs), [f"{i}/{w}/{o}" for i, w, o in choices],
        [[row.get(_chosen(row, choice)) for choice in choices] for row in costs.values()],
        f"{graph.name} on {board.name}: {table.unit} per layer if a search picks in/w/out bits "
        "(a fixed input or logit width, and a weightless layer, repeat across the choice they lack)", table.unit))
    out.print(f"{measured} configurations measured, {len(table.entries)} in the table ({table.unit}, "
              f"{table.per_tick:g} per tick; per-network overhead {table.overhead:g} ticks): {table.path}")
    out.print(f"heatmap: {heatmap_path}")
    if args.policy_or_model.endswith(".json") or Path(args.policy_or_model).is_file():
        _print_prediction(args.policy_or_model, table, out)
    return 0


def _print_prediction(path: str, table, out: Console) -> None:
    """The policy's own predicted latency, or what the table lacks for it (a channel-wise run
    needs --runs)."""
    from harness.policy import load_policy
    from harness.quantize.lower import structural_graph

    policy = load_policy(path)
    missing = table.missing(structural_graph(policy))
    if missing:
        out.print(f"policy {policy.name}: {len(missing)} of its runs are not in the table (first: {missing[0]}); "
                  "profile with --runs to price them")
        return
    out.print(f"policy {policy.name}: predicted {table.predict(structural_graph(policy)):,.0f} {table.unit} "
              "per inference")


def _chosen(row: dict, choice: tuple[int, int, int]):
    """The layer's configuration when a search picks (in, weight, out) bits: a fixed input or
    logit width stays, a weightless layer has no weight bits."""
    from harness.measure.profile import BitConfig

    configs = list(row)
    if not configs:
        return None
    ins, outs = {c.in_bits for c in configs}, {c.out_bits for c in configs}
    weighted = any(c.w_bits is not None for c in configs)
    seconds = {c.in2_bits for c in configs}
    in_bits, w_bits, out_bits = choice
    return BitConfig(in_bits if len(ins) > 1 else next(iter(ins)), w_bits if weighted else None,
                     out_bits if len(outs) > 1 else next(iter(outs)),
                     in_bits if len(seconds) > 1 else next(iter(seconds)))  # an add: both inputs alike


def _file_name(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def cost_table(name: str, costs: dict, unit: str) -> Table:
    """Per layer: the cost at uniform 2, 4 and 8 bits (the network input and the logits keep their
    bits) and the cheapest and dearest configuration; fits 80 columns."""
    table = Table(title=f"{name}: {unit} per layer", box=None, pad_edge=False, header_style="bold")
    for column in ("layer", "2 bits", "4 bits", "8 bits", "min", "max", "configs"):
        table.add_column(column, justify="left" if column == "layer" else "right", no_wrap=True)
    for layer, row in costs.items():
        values = list(row.values())
        uniform = [row.get(_chosen(row, (bits, bits, bits))) for bits in BITS]
        cells = ["-" if value is None else f"{value:,.0f}" for value in [*uniform, min(values, default=None),
                                                                          max(values, default=None)]]
        table.add_row(layer, *cells, str(len(values)))
    return table
