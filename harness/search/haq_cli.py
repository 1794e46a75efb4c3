"""The `harness search --method haq` front end: progress bars and the result table."""
from __future__ import annotations

import argparse
import time
from contextlib import nullcontext
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness.backends import load_board
from harness.commands.options import farm_pool
from harness.search.haq import HaqSettings, search
from harness.units import parse_latency

DEFAULT_OUT = Path("runs") / "search-haq"


def run_haq(args: argparse.Namespace, model_args: dict) -> int:
    board = load_board(args.board)
    target = None if args.target_latency is None else parse_latency(args.target_latency, board.clock_for_estimates)
    settings = HaqSettings(args.model, model_args, args.flash, args.ram, args.board, args.episodes,
                           args.latency_weight, target, args.seed, args.top_k, args.verify_images, args.method,
                           args.data, args.finetune_epochs, args.finetune_images, args.val_images,
                           not args.no_pin_ends, args.random_weights, args.warmup)
    settings.check()
    out_dir = args.out or DEFAULT_OUT
    console = Console(stderr=True)
    started = time.monotonic()
    with farm_pool(args, board.name, console) if args.farm is not None else nullcontext() as pool, \
            Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                     TextColumn("{task.fields[note]}"), TimeElapsedColumn(), console=console) as bar:
        profiling = bar.add_task(f"profiling layers on {board.name}", total=None, note="")
        episodes = bar.add_task("episodes", total=settings.episodes, note="")
        verifying = bar.add_task(f"verifying on {board.name}", total=settings.top_k, note="")
        best = [float("-inf")]

        def on_episode(record: dict) -> None:
            best[0] = max(best[0], record["reward"])
            accuracy = "-" if record["accuracy"] is None else f"{record['accuracy']:.3f}"
            bar.update(episodes, advance=1, note=f"acc {accuracy} lat {record['predicted_latency']:,.0f} "
                                                 f"best reward {best[0]:.4f}")

        summary = search(
            settings, out_dir, board,
            on_start=lambda done, total: bar.update(episodes, completed=done),
            on_episode=on_episode,
            on_verified=lambda record: bar.update(verifying, advance=1,
                                                  note=f"error {record['prediction_error']:+.2%}"),
            on_profiled=lambda done, total: bar.update(profiling, completed=done, total=total), pool=pool)
    out = Console(highlight=False)
    out.print(reference_line(summary["reference"]))
    out.print(result_table(summary))
    console.print(f"{summary['episodes']} episodes in {time.monotonic() - started:.0f} s this run; best policy: "
                  f"{summary['policy']}; Pareto: {summary['pareto_csv']}, {summary['pareto_png']}; "
                  f"log: {out_dir / 'search.jsonl'}")
    return 0


def reference_line(reference: dict) -> str:
    """The all-8-bit policy every search is measured against."""
    accuracy = "no accuracy (random weights)" if reference["accuracy"] is None else f"val. acc {reference['accuracy']:.3f}"
    measured = (f"measured {reference['measured_latency']:,.0f}" if reference["measured_latency"] is not None
                else f"not measured: {reference['not_measured']}")
    return (f"all-8-bit reference: {accuracy}, predicted {reference['predicted_latency']:,.0f} "
            f"{reference['latency_unit']}, {measured}")


def _fraction(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def result_table(summary: dict) -> Table:
    unit = summary["latency_unit"]
    table = Table(title=f"verified candidates ({unit}; all-8-bit predicted {summary['reference_latency']:,.0f})")
    for column in ("policy", "episode", "val. acc", "device acc", "bit-exact", "predicted", "measured", "error",
                   "flash B", "RAM B", "fits", "reward"):
        table.add_column(column, justify="left" if column == "policy" else "right")
    best = summary["best"]["policy_hash"]
    for r in summary["verified"]:
        table.add_row(r["policy_hash"] + (" *" if r["policy_hash"] == best else ""), str(r["episode"]),
                      _fraction(r["accuracy"]), _fraction(r["device_accuracy"]), f"{r['bit_exact']}/{r['images']}",
                      f"{r['predicted_latency']:,.0f}", f"{r['measured_latency']:,.0f}",
                      f"{r['prediction_error']:+.2%}", str(r["elf_flash_bytes"]), str(r["elf_ram_bytes"]),
                      "yes" if r["fits"] else "NO", f"{r['reward_measured']:.4f}")
    return table
