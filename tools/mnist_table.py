"""The MNIST accuracy table: float / fake-quant / integer accuracy of the shipped MNIST policies,
and bit-exactness on a board.

For each model (lenet5-mnist, dsnet-mnist): train the float model on the mnist train part
(`--float-epochs`), run each policy's QAT (policies/<model>-{int8,int4,mixed}.json), evaluate
float, fake-quant and the integer reference on the test part, and (with --board) stream
`--images` test images to the board, counting bit-exact outputs. Writes JSON (`--out`) and a
Markdown table beside it (.md), which docs/models.md quotes.

    python tools/mnist_table.py --board qemu-m7            # the full table (a few minutes)
    python tools/mnist_table.py --models lenet5-mnist --kinds int8 --float-epochs 1 --qat-epochs 1 \\
        --no-board --out /tmp/t.json                       # a bounded run (tests/test_mnist_table.py)
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODELS = ("lenet5-mnist", "dsnet-mnist")
KINDS = ("int8", "int4", "mixed")
DEFAULT_OUT = REPO / "results" / "mnist-table.json"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    parser.add_argument("--float-epochs", type=int, default=15)
    parser.add_argument("--qat-epochs", type=int, default=None, help="override the policies' qat.epochs")
    parser.add_argument("--board", default="qemu-m7")
    parser.add_argument("--no-board", action="store_true", help="host accuracy only")
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return parser.parse_args(argv)


def policy_for(model: str, kind: str, qat_epochs: int | None):
    from harness.policy import load_policy

    policy = load_policy(REPO / "policies" / f"{model}-{kind}.json")
    return policy if qat_epochs is None else policy.with_qat_epochs(qat_epochs)


def float_model(model: str, epochs: int) -> float:
    """Train the float checkpoint unless one of `epochs` epochs is cached; its test accuracy."""
    import torch

    from harness.frontend.checkpoints import checkpoint_path
    from harness.frontend.train import train_float
    from harness.policy import ModelRef

    path = checkpoint_path(ModelRef(model))
    if path.is_file():
        saved = torch.load(path, map_location="cpu", weights_only=True)
        if saved.get("epochs") == epochs and saved.get("data") == "mnist":
            return float(saved["test_accuracy"])
    return train_float(ModelRef(model), epochs)[1]


def on_board(policy, graph, board_name: str, images: int) -> dict:
    from harness.backends import load_board
    from harness.datasets.measured import measured_inputs
    from harness.measure.log import RunLog
    from harness.measure.run import measure

    board = load_board(board_name)
    inputs, labels = measured_inputs(policy, graph, images)
    with tempfile.TemporaryDirectory() as scratch, RunLog(Path(scratch) / "log.jsonl") as log:
        report = measure(policy, graph, board, inputs, labels, log)
    return {"board": board.name, "images": report["images"], "bit_exact": report["bit_exact"],
            "device_accuracy": report["device_accuracy"], "median_" + report["latency"]["unit"]:
            report["latency"]["median"], "flash_bytes": report["memory"]["flash_bytes"],
            "ram_bytes": report["memory"]["ram_bytes"]}


def markdown(rows: list[dict], meta: dict) -> str:
    lines = [f"MNIST ({meta['split']}); float {meta['float_epochs']} epochs; `{meta['command']}`", "",
             "| model | policy | float | fake-quant | integer | integer - fake-quant | float - integer | bit-exact |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        exact = f"{row['board']['bit_exact']}/{row['board']['images']} ({row['board']['board']})" if row.get("board") else "-"
        lines.append(f"| {row['model']} | {row['policy']} | {row['float']:.2%} | {row['fake_quant']:.2%} | "
                     f"{row['integer']:.2%} | {100 * (row['integer'] - row['fake_quant']):+.2f} pp | "
                     f"{100 * (row['float'] - row['integer']):+.2f} pp | {exact} |")
    return "\n".join(lines) + "\n"


def write(out: Path, rows: list[dict], meta: dict) -> None:
    """The JSON results and the Markdown table beside them (rewritten after every row)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(rows, meta))


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(REPO))
    from harness.datasets import registry
    from harness.quantize.pipeline import evaluate

    args = parse_args(argv)
    split = registry.load("mnist", (28, 28, 1))
    meta = {"split": f"{len(split.train_labels)} train / {len(split.val_labels)} val / {len(split.test_labels)} test, "
                     f"stratified, seed {registry.SPLIT_SEED}",
            "float_epochs": args.float_epochs, "command": "python tools/mnist_table.py " + " ".join(argv or sys.argv[1:])}
    rows = []
    for model in args.models:
        started = time.time()
        float_accuracy = float_model(model, args.float_epochs)
        for kind in args.kinds:
            policy = policy_for(model, kind, args.qat_epochs)
            evaluation, graph = evaluate(policy)
            row = {"model": model, "policy": policy.name, "policy_hash": policy.hash, "graph_hash": graph.hash(),
                   "qat_epochs": policy.qat.epochs, "float": evaluation.float_accuracy,
                   "fake_quant": evaluation.fake_quant_accuracy, "integer": evaluation.integer_accuracy,
                   "argmax_agreement": evaluation.argmax_agreement, "n_test": evaluation.n_test}
            assert abs(row["float"] - float_accuracy) < 1e-9, "the evaluated float model is not the trained one"
            if not args.no_board:
                row["board"] = on_board(policy, graph, args.board, args.images)
            rows.append(row)
            write(args.out, rows, meta)
            print(json.dumps(row), flush=True)
        print(f"{model}: {time.time() - started:.0f} s", file=sys.stderr)
    print(f"written {args.out} and {args.out.with_suffix('.md')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
