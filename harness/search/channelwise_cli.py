"""The `harness search --method channelwise` front end: progress bars, then the normal QAT
fine-tune and integer evaluation of the policy found."""
from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from harness.errors import HarnessError
from harness.policy import load_policy
from harness.search.channelwise import ChannelwiseSettings
from harness.search.documents import uniform_policy
from harness.units import parse_size

DEFAULT_OUT = Path("runs") / "search-channelwise"


def run_channelwise(args: argparse.Namespace, model_args: dict) -> int:
    from harness.quantize.pipeline import TRAINED_HERE

    settings = ChannelwiseSettings(epochs=args.epochs, strength=args.strength, seed=args.seed,
                                   latency_strength=args.latency_strength, cost=args.cost,
                                   weight_budget=None if args.weight_budget is None else parse_size(args.weight_budget))
    settings.check()
    board = None
    if settings.latency_strength:
        from harness.backends import load_board

        board = load_board(args.board)  # an unknown board: one line before any training
    if args.start_policy is not None:
        start = load_policy(args.start_policy)
    else:
        start = uniform_policy(f"{args.model}-8bit", args.model, model_args, _architecture(args.model, model_args), 8,
                               {"flash": args.flash, "ram": args.ram})
    if args.data:
        from harness.datasets.registry import check_fits

        check_fits(args.data, start.architecture)  # one line before any training
        start = start.with_data(args.data)
    if start.model.zoo not in TRAINED_HERE:
        raise HarnessError(f"the channel-wise search trains the float model, and {start.model.label!r} has no training "
                           f"data here (trainable: {', '.join(TRAINED_HERE)})")
    out_dir = args.out or DEFAULT_OUT
    console = Console(stderr=True)
    from harness.datasets.registry import model_split
    from harness.frontend.float_net import float_graph
    from harness.frontend.train import checkpoint_path, load_float
    from harness.ir.memory import memory_report
    from harness.quantize.pipeline import evaluate
    from harness.search.channelwise import search

    split = model_split(start.architecture, start.data, start.preprocess)
    graph = float_graph(load_float(start.model, data=start.data),
                        f"checkpoint {checkpoint_path(start.model, start.data)}")
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[note]}"), TimeElapsedColumn(), console=console) as bar:
        lines = None if board is None else _latency_lines(start, board, bar)
        epochs = bar.add_task("search epochs", total=settings.epochs, note="")
        steps = bar.add_task("steps", total=None, note="")
        policy = search(
            start, settings, out_dir, split.real(split.train_images, start.input), split.train_labels, graph,
            on_epoch=lambda r: bar.update(epochs, completed=r["epoch"],
                                          note=f"tau {r['tau']:.2f} E[bytes] {r['expected_bytes']:,.0f} "
                                               f"acc {r['accuracy_logit_split']:.3f}"),
            on_step=lambda done, total: bar.update(steps, completed=done, total=total), lines=lines)
    console.print(f"policy {policy.hash}: {out_dir / 'policy.json'}; log: {out_dir / 'search.jsonl'}")
    evaluation, integer_graph = evaluate(policy, progress=lambda m: console.print(m, style="dim", markup=False))
    report = memory_report(integer_graph)
    Console(highlight=False).print(
        f"QAT fine-tuned: integer accuracy {evaluation.integer_accuracy:.2%} on {evaluation.n_test} test images, "
        f"weights {report.weight_bytes} B + parameters {report.param_bytes} B, arena {report.arena_bytes} B; "
        f"build and measure it with `harness measure {out_dir / 'policy.json'}`")
    return 0


def _latency_lines(start, board, bar: Progress) -> dict:
    """The board's a + s * channels lines of the start policy's layers, profiling what its table lacks."""
    from harness.measure.profile import profile
    from harness.quantize.lower import structural_graph
    from harness.search.channelwise import searchable
    from harness.search.channelwise_latency import latency_lines

    graph = structural_graph(start)
    task = bar.add_task(f"profiling on {board.name}", total=None, note="")
    table, _ = profile(graph, board, lambda done, total: bar.update(task, completed=done, total=total), runs=True)
    return latency_lines(graph, table, set(searchable(start.architecture)))


def _architecture(model: str, model_args: dict):
    from harness import zoo

    return zoo.build(model, model_args)
