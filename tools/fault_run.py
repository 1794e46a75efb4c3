"""Measure the digits policy through the seeded fault link at several per-byte fault rates and
write the results file docs/reliability.md quotes (harness/measure/faults.py says what is counted).

    PYTHONPATH=. .venv/bin/python tools/fault_run.py --images 900 --rates 0.001,0.01 --seed 1 \
        --out results/fault-run.json

Images beyond the test split's 450 repeat it. Runs on qemu-m7 (the fault link wraps an emulator's
socket). tests/test_reliability_device.py runs a small campaign the same way.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from harness.backends import load_board
from harness.datasets.registry import integer_test_set
from harness.errors import HarnessError, one_line
from harness.quantize.pipeline import policy_graph
from harness.measure.faults import fault_campaign
from harness.paths import POLICIES_DIR
from harness.policy import load_policy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policy", type=Path, default=POLICIES_DIR / "digits-mixed.json")
    parser.add_argument("--board", default="qemu-m7")
    parser.add_argument("--images", type=int, default=900)
    parser.add_argument("--rates", default="0.001,0.01", help="comma-separated per-byte fault rates")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        rates = [float(rate) for rate in args.rates.split(",")]
        if args.images < 1:
            raise HarnessError(f"--images must be at least 1, got {args.images}")
        policy = load_policy(args.policy)
        board = load_board(args.board)
        graph = policy_graph(policy, False)
        _, test_inputs, labels = integer_test_set(policy)
        repeat = -(-args.images // len(test_inputs))
        inputs = np.concatenate([test_inputs] * repeat)[:args.images]
        labels = np.concatenate([labels] * repeat)[:args.images]
        results = fault_campaign(policy, graph, board, inputs, labels, rates, args.seed,
                                 progress=lambda message: print(message, file=sys.stderr))
    except (HarnessError, ValueError) as error:
        print(f"error: {one_line(str(error))}", file=sys.stderr)
        return 2
    results["command"] = "tools/fault_run.py " + " ".join(argv if argv is not None else sys.argv[1:])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    for run in results["runs"]:
        print(f"rate {run['rate']:g}: {run['measured']}/{run['images']} measured, {run['frames']} frames, "
              f"{run['wrong_results_accepted']} wrong accepted, {run['timing_equal']} timing equal, "
              f"{run['hangs']} hangs, {run['remeasured']} re-measured, {run['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
