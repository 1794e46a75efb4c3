"""Regenerate the trained files shipped in the repository, and measure what training costs.

In an empty cache, with no shipped file used: train the digits float model (`harness train`'s
defaults), run the QAT of each policy of harness.frontend.shipped.SHIPPED_POLICIES, evaluate
each on the test split; then copy the float checkpoint and the QAT states into --out-dir with
manifest.json (per file: kind, sha256, the key of the code that made it), and write --results:
the wall seconds of each training, the epochs, CPU count, date, and each policy's accuracy and
memory (the numbers README.md and docs/ quote, through tools/docs.py).

    python tools/ship_checkpoints.py       # the shipped files and their training times (README.md quotes them)
    python tools/ship_checkpoints.py --float-epochs 1 --qat-epochs 1 --policies policies/digits-mixed.json \\
        --out-dir /tmp/s --results /tmp/s.json      # one epoch of each (the bounded run of the tests)
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_RESULTS = REPO / "results" / "shipped-digits.json"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--float-epochs", type=int, default=None, help="default: harness train's")
    parser.add_argument("--qat-epochs", type=int, default=None, help="override the policies' qat.epochs")
    parser.add_argument("--policies", nargs="+", default=None, help="default: harness.frontend.shipped.SHIPPED_POLICIES")
    parser.add_argument("--out-dir", type=Path, default=None, help="default: harness/frontend/shipped")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument("--from-cache", type=Path, metavar="DIR", help="ship what DIR's cache holds (trained there "
                        "with the same recipe: `harness train`, then `harness evaluate POLICY`) instead of training; "
                        "the results then have no training times")
    return parser.parse_args(argv)


def provenance(argv: list[str]) -> dict:
    from harness.measure.provenance import provenance as run_provenance

    block = run_provenance()
    block["command"] = shlex.join(["python", "tools/ship_checkpoints.py", *argv])
    block["cpu_count"] = os.cpu_count()
    block["load_average"] = round(os.getloadavg()[0], 2)  # other jobs on the CPUs when it started
    return block


def train_and_ship(args: argparse.Namespace, out_dir: Path) -> dict:
    """Everything in the cache the caller set (empty, or --from-cache); the results document."""
    import torch

    from harness.errors import HarnessError
    from harness.frontend import shipped
    from harness.frontend.checkpoints import checkpoint_path
    from harness.frontend.train import FLOAT_EPOCHS, FLOAT_SEED, TORCH_THREADS, train_float
    from harness.ir.memory import memory_report
    from harness.policy import ModelRef, load_policy
    from harness.quantize.lower import structural_graph
    from harness.quantize.pipeline import QAT_STATE, evaluate, quantize

    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    model, epochs = ModelRef("digits-cnn"), args.float_epochs or FLOAT_EPOCHS
    float_seconds = None
    if args.from_cache is None:
        started = time.monotonic()
        train_float(model, epochs, progress=log)
        float_seconds = round(time.monotonic() - started, 1)
    checkpoint = checkpoint_path(model)
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True) if checkpoint.is_file() else {}
    if (saved.get("epochs"), saved.get("seed")) != (epochs, FLOAT_SEED):
        raise HarnessError(f"{checkpoint}: not a checkpoint of {epochs} epochs, seed {FLOAT_SEED}")
    files = [{"kind": "float", "name": model.zoo, "file": checkpoint.name,
              "key": shipped.float_key(model, None, epochs), "sha256": shipped.file_sha256(checkpoint)}]
    shutil.copyfile(checkpoint, out_dir / checkpoint.name)
    policies = []
    for relative in args.policies or shipped.SHIPPED_POLICIES:
        policy = load_policy(REPO / relative)
        policy = policy if args.qat_epochs is None else policy.with_qat_epochs(args.qat_epochs)
        state = Path(os.environ["MPQ_HARNESS_CACHE"], "graphs", policy.quantization_hash, files[0]["sha256"][:16],
                     QAT_STATE)
        qat_seconds = None
        if args.from_cache is None:
            started = time.monotonic()
            quantize(policy, log, use_shipped=False)
            qat_seconds = round(time.monotonic() - started, 1)
        elif not state.is_file():
            raise HarnessError(f"{state}: no QAT state of {relative} from this checkpoint in --from-cache")
        evaluation, _ = evaluate(policy, log)  # the cache entry quantize made
        name = f"{policy.name}.{QAT_STATE}"
        shutil.copyfile(state, out_dir / name)
        files.append({"kind": "qat", "name": policy.quantization_hash, "file": name,
                      "key": shipped.qat_key(policy, files[0]["sha256"]), "sha256": shipped.file_sha256(state)})
        memory = memory_report(structural_graph(policy))
        policies.append({"policy": relative, "name": policy.name, "qat_epochs": policy.qat.epochs,
                         "qat_seconds": qat_seconds, "weight_bytes": memory.weight_bytes,
                         "arena_bytes": memory.arena_bytes, **evaluation.to_dict()})
    (out_dir / "manifest.json").write_text(json.dumps(
        {"command": shipped.REGENERATE, "note": __doc__.splitlines()[0], "files": files}, indent=1) + "\n")
    return {"model": model.zoo, "float_epochs": epochs, "float_seconds": float_seconds,
            "float_accuracy": float(saved["test_accuracy"]), "torch_threads": TORCH_THREADS, "policies": policies}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    sys.path.insert(0, str(REPO))
    args = parse_args(argv)
    from harness.frontend.shipped import SHIPPED_DIR

    out_dir = args.out_dir or SHIPPED_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ship-checkpoints-") as cache:
        # an empty cache: everything is trained here (or the cache that trained them)
        os.environ["MPQ_HARNESS_CACHE"] = str(args.from_cache or cache)
        results = {"provenance": provenance(argv), **train_and_ship(args, out_dir)}
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=1) + "\n")
    print(f"written {out_dir} and {args.results}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
