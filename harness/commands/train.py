"""`harness train`: train a zoo model's float weights (the start of every policy's QAT)."""
from __future__ import annotations

import argparse

from rich.console import Console

from harness import zoo
from harness.datasets.registry import check_fits
from harness.errors import HarnessError
from harness.policy import ModelRef

DEFAULT_EPOCHS = 30  # harness.frontend.train.FLOAT_EPOCHS, repeated so `harness --help` need not import torch
DEFAULT_SEED = 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train the float model and save its checkpoint")
    parser.add_argument("--model", default="digits-cnn", help="zoo model (default: digits-cnn)")
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, help="epochs (default %(default)s)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (default %(default)s)")
    parser.add_argument("--data", metavar="SPEC", help="dataset (harness.datasets.registry): digits, mnist, "
                        "imagefolder:DIR; default: the model's own")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.frontend.checkpoints import checkpoint_path
    from harness.frontend.train import train_float  # torch: imported only when training

    if args.epochs < 1:
        raise HarnessError(f"--epochs must be at least 1, got {args.epochs}")
    architecture = zoo.build(args.model)  # unknown names fail here, before any work
    data = args.data or architecture.dataset
    if data is None:
        raise HarnessError(f"model {args.model} has no dataset of its own here: give --data")
    check_fits(data, architecture)
    console = Console(highlight=False)
    model = ModelRef(args.model)
    _, accuracy = train_float(model, args.epochs, args.seed, data=data,
                              progress=lambda message: console.print(message, style="dim", markup=False))
    console.print(f"float test accuracy on {data} [bold]{accuracy:.2%}[/bold]  checkpoint {checkpoint_path(model, data)}")
    return 0
