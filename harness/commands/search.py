"""`harness search --method memory-driven|haq|channelwise --model ZOO_NAME ...`: choose bits.

memory-driven: the rules of Rusci et al. 2020 (harness.search.memory_driven), no training;
writes a policy.json (--out) and prints the per-layer table.
haq: HAQ's DDPG agent whose reward adds accuracy and the latency measured on the board
(harness.search.haq); random: the same loop with uniform random bits (the baseline, same number
of evaluations); --out is a folder for the log, the best policy, the Pareto CSV and plot.
channelwise: per-output-channel weight bits {0, 2, 4, 8} by a differentiable search
(harness.search.channelwise); --out is a folder for the log, the resumable state and policy.json.
pareto: layer-wise memory-driven against channel-wise policies, accuracy x weight bytes over seeds.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console

from harness.boards import DEFAULT_BOARD
from harness.commands.options import add_farm_options, parse_json_object
from harness.search.channelwise import COSTS

METHODS = ("memory-driven", "haq", "random", "channelwise", "pareto")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "search", help="search the bits of every layer (memory-driven rules, a HAQ agent or random search)",
        description="Choose 2/4/8 bits for every weight and activation tensor under the flash/RAM budget.")
    parser.add_argument("--method", choices=METHODS, required=True)
    parser.add_argument("--model", default="digits-cnn", help="zoo model (default digits-cnn)")
    parser.add_argument("--policy", type=Path, metavar="POLICY",
                        help="memory-driven: start from this policy's model and input instead of --model (e.g. the "
                             "starter policy `harness import` wrote for an .onnx / .tflite file)")
    parser.add_argument("--model-args", default="{}", help='zoo model arguments as JSON, e.g. \'{"width": 0.75}\'')
    parser.add_argument("--flash", default="2MB", help="flash budget (default 2MB)")
    parser.add_argument("--ram", default="512kB", help="RAM budget (default 512kB)")
    parser.add_argument("--data", metavar="SPEC",
                        help="the dataset (digits, mnist, imagefolder:DIR, samples:DIR), checked against the model: "
                             "memory-driven names it in the written policy; haq/random fine-tune, score and "
                             "measure on it; default: the model's own")
    parser.add_argument("--out", type=Path,
                        help="memory-driven: the policy.json to write; "
                             "haq/random: the output folder (default runs/search-haq)")
    haq = parser.add_argument_group("haq and random")
    haq.add_argument("--board", default=DEFAULT_BOARD, help=f"board that measures latency (default {DEFAULT_BOARD})")
    haq.add_argument("--episodes", type=int, default=600, help="episodes = evaluations (default 600, as HAQ)")
    haq.add_argument("--warmup", type=int, default=20, help="haq: random episodes before the agent learns (default 20)")
    haq.add_argument("--latency-weight", type=float, default=1.0,
                     help="weight of the latency term in the reward (default 1.0)")
    haq.add_argument("--target-latency", default=None, metavar="LATENCY",
                     help="latency below which the latency term is 0: board units (900000) or time at the board "
                          "clock (2.5ms); default: none, latency / all-8-bit latency always pays")
    haq.add_argument("--seed", type=int, default=0, help="seed of the agent (default 0)")
    haq.add_argument("--top-k", type=int, default=3, help="best policies built and measured on the board (default 3)")
    haq.add_argument("--verify-images", type=int, default=50, help="test images per measured policy (default 50)")
    haq.add_argument("--finetune-epochs", type=int, default=1,
                     help="QAT epochs per scored policy (default 1; 0: calibration only, post-training)")
    haq.add_argument("--finetune-images", type=int, default=400, help="training images of that fine-tune (default 400)")
    haq.add_argument("--val-images", type=int, default=400, help="held-out training images it is scored on (default 400)")
    haq.add_argument("--no-pin-ends", action="store_true",
                     help="let the search choose the first and last layer's bits too (default: 8 bits, as HAQ)")
    haq.add_argument("--random-weights", action="store_true",
                     help="no trained model: random weights, reward from latency (and memory) only")
    add_farm_options(haq, "profile and verify the candidates")
    channelwise = parser.add_argument_group("channelwise")
    channelwise.add_argument("--start-policy", type=Path, default=None,
                             help="layer-wise policy to start from (its activation bits are kept; default all 8 bits)")
    channelwise.add_argument("--epochs", type=int, default=6, help="search epochs (default 6)")
    channelwise.add_argument("--strength", type=float, default=1.0,
                             help="weight of the expected-flash term, relative to all 8 bits (default 1.0)")
    channelwise.add_argument("--latency-strength", type=float, default=0.0,
                             help="weight of the expected latency, relative to all 8 bits, from --board's latency "
                                  "table (profiled with --runs first; default 0: flash only)")
    channelwise.add_argument("--cost", choices=COSTS, default="flash",
                             help="what the flash term and --weight-budget count: flash = weights + parameters "
                                  "(9 bytes per kept channel), weights = the weight bytes alone (default flash; "
                                  "pareto always uses weights, the bytes it compares)")
    channelwise.add_argument("--weight-budget", default=None,
                             help="hard limit on the --cost bytes, e.g. 2kB (default none)")
    pareto = parser.add_argument_group("pareto (layer-wise against channel-wise, accuracy x weight bytes)")
    pareto.add_argument("--seeds", type=int, default=3, help="seeds of every policy's QAT and search (default 3)")
    pareto.add_argument("--qat-epochs", type=int, default=4, help="QAT epochs of every policy (default 4)")
    pareto.add_argument("--strengths", default="0.5,1,2,4", help="channel-wise strengths (default 0.5,1,2,4)")
    pareto.add_argument("--fractions", default="1,0.75,0.55,0.4,0.3,0.26",
                        help="layer-wise flash budgets as fractions of the all-8-bit weight bytes, one memory-driven "
                             "search each (default 1,0.75,0.55,0.4,0.3,0.26)")
    pareto.add_argument("--haq-episodes", type=int, default=100,
                        help="episodes of each HAQ search (latency weight 0, at the two smallest memory-driven flash "
                             "budgets it can meet, latency profiled on --board; default 100; 0: no HAQ points)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    model_args = parse_json_object(args.model_args, "--model-args", example='{"width": 16}')
    if args.method == "memory-driven":
        if args.farm is not None:
            from harness.errors import HarnessError
            raise HarnessError("--farm works with --method haq (memory-driven measures nothing)")
        return _memory_driven(args, model_args)
    if args.method == "pareto":
        return _pareto(args)
    if args.method == "channelwise":
        from harness.search.channelwise_cli import run_channelwise  # torch loads only here
        return run_channelwise(args, model_args)
    from harness.search.haq_cli import run_haq  # torch, gymnasium and scipy load only here
    return run_haq(args, model_args)


def _memory_driven(args: argparse.Namespace, model_args: dict) -> int:
    from harness.commands.policy import layer_table, print_budget
    from harness.search.memory_driven import search

    console = Console(highlight=False)
    out = args.out
    if args.policy is not None:
        result = _search_from_policy(args, out)
        out = out or Path(f"{result.policy.name}.json")
    else:
        if args.data:  # refused in one line before the search when it cannot feed the model
            from harness import zoo
            from harness.datasets.registry import check_fits

            check_fits(args.data, zoo.build(args.model, model_args))
        result = search(args.model, model_args, args.flash, args.ram)
    if args.data:
        result.policy = result.policy.with_data(args.data)
    console.print(layer_table(result.report))
    for cut in result.cuts:
        what = "weights of" if cut.phase == "weights" else f"{cut.phase} sweep at {cut.layer}: activation"
        console.print(f"  cut {what} {cut.tensor}: {cut.bits[0]} -> {cut.bits[1]} bits", style="dim")
    print_budget(console, result.report, result.policy.budget)
    out = out or Path(f"{result.policy.name}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result.policy.document, indent=1) + "\n")
    console.print(f"policy {result.policy.hash}: {out}")
    return 0


def _search_from_policy(args: argparse.Namespace, out: Path | None):
    """memory-driven from a policy file. The model's file or checkpoint path is rewritten relative
    to where the new policy goes, so the written policy loads from there."""
    import os

    from harness.policy import load_policy, parse_policy
    from harness.search.memory_driven import search_from

    start = load_policy(args.policy)
    target_dir = (out or Path(f"{start.name}-memory-driven.json")).resolve().parent
    target_dir.mkdir(parents=True, exist_ok=True)  # where the policy goes: its paths are relative to it
    model = dict(start.document["model"])
    for key, path in (("file", start.model.file), ("checkpoint", start.model.checkpoint)):
        if path is not None:
            model[key] = Path(os.path.relpath(path.resolve(), target_dir)).as_posix()
    moved = parse_policy(start.document | {"model": model}, source=str(args.policy), base_dir=target_dir)
    return search_from(moved, args.flash, args.ram, base_dir=target_dir)


def _numbers(text: str, option: str) -> tuple[float, ...]:
    from harness.errors import HarnessError

    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise HarnessError(f"{option} must be numbers separated by commas, got {text!r}") from None


def _pareto(args: argparse.Namespace) -> int:
    from harness.errors import HarnessError
    from harness.paths import cache_dir
    from harness.search.compare import Experiment, run as run_experiment

    strengths = _numbers(args.strengths, "--strengths")
    fractions = _numbers(args.fractions, "--fractions")
    if not all(0 < f <= 1 for f in fractions):
        raise HarnessError(f"--fractions must lie in (0, 1], got {args.fractions!r}")
    if args.seeds < 1 or args.qat_epochs < 1 or args.epochs < 1:
        raise HarnessError("--seeds, --qat-epochs and --epochs must be at least 1")
    if args.haq_episodes < 0:
        raise HarnessError(f"--haq-episodes must not be negative, got {args.haq_episodes}")
    if args.haq_episodes:
        from harness.backends import load_board

        load_board(args.board)  # an unknown board: one line before any training
    from harness import zoo
    from harness.datasets.registry import check_fits

    architecture = zoo.build(args.model, {})
    data = args.data or architecture.dataset
    if data is None:
        raise HarnessError(f"model {args.model} has no dataset of its own here: give --data")
    check_fits(data, architecture)
    experiment = Experiment(model=args.model, data=data, seeds=tuple(range(args.seeds)), strengths=strengths,
                            weight_fractions=fractions,
                            search_epochs=args.epochs, qat_epochs=args.qat_epochs, ram=args.ram,
                            haq_episodes=args.haq_episodes, board=args.board)
    console = Console(highlight=False)
    out = args.out or Path("results")
    result = run_experiment(experiment, out, cache_dir("channelwise-search"), on_point=lambda p: console.print(
        f"{p['method']:<26} {p['policy']:<22} seed {p['seed']}: {p['integer_accuracy']:.2%}, "
        f"{p['weight_bytes']} weight bytes", markup=False))
    c = result["comparison"]
    if c is None:
        console.print("no layer-wise policy scored")
    elif c["channelwise"] is None:
        console.print(f"no channel-wise policy reached {c['target_accuracy']:.2%}")
    else:
        change = f"{c['reduction']:.1%} fewer" if c["reduction"] > 0 else f"{-c['reduction']:.1%} more"
        console.print(f"at {c['target_accuracy']:.2%}: layer-wise {c['layerwise']['weight_bytes']:.0f} B, "
                      f"channel-wise {c['channelwise']['weight_bytes']:.0f} B: {change}")
    return 0
