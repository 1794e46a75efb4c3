"""A small mutation check: each named mutation is a one-place source edit that a real bug would
make; applied to a temporary copy of the repo (never the working tree), the tests that guard
that code must FAIL. `python tools/mutants.py` (or `make mutants`) runs every mutant, writes
docs/mutants.md and exits non-zero when a mutant survives or the unmutated copy fails.

Each mutant names the file, the exact text it replaces (which must occur once: a stale mutant
is an error, not a pass) and the test files relevant to it, so a run takes a minute or two.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "docs" / "mutants.md"
IGNORE = shutil.ignore_patterns(".git", ".venv", "runs", "artifacts", "build", ".cache", "__pycache__",
                                ".pytest_cache", ".hypothesis", "*.egg-info", "*.elf", "*.o", "*.so")
TIMEOUT_S = 300


@dataclass(frozen=True)
class Mutant:
    name: str
    what: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


MUTANTS = (
    Mutant("requant-no-rounding", "requantization drops the + 2^(shift-1) rounding term (truncates)",
           "harness/ir/requant.py",
           "prod = acc * np.asarray(mult, dtype=np.int64) + (np.int64(1) << (shift - 1))",
           "prod = acc * np.asarray(mult, dtype=np.int64)",
           ("tests/test_requant.py", "tests/test_reference.py")),
    Mutant("add-requant-no-rounding", "the add's requantization drops its rounding term",
           "harness/ir/requant.py",
           "y = (acc + (np.int64(1) << np.int64(shift - 1))) >> np.int64(shift)",
           "y = acc >> np.int64(shift)",
           ("tests/test_requant.py", "tests/test_reference.py")),
    Mutant("avg-pool-padding-code-0", "avg_pool pads with code 0 instead of the real value zero",
           "harness/ir/reference.py",
           "p = _patches(x, layer, out.shape[:2], off)\n        return p.sum(axis=(2, 3)) + bias",
           "p = _patches(x, layer, out.shape[:2], 0) + off\n        return p.sum(axis=(2, 3)) + bias",
           ("tests/test_reference.py",)),
    Mutant("backward-sweep-reversed", "the memory-driven backward sweep runs first to last",
           "harness/search/memory_driven.py",
           "order = range(len(graph.layers)) if forward else range(len(graph.layers) - 1, -1, -1)",
           "order = range(len(graph.layers))",
           ("tests/test_search_memory_driven.py",)),
    Mutant("planner-budget-step-disabled", "the budget is not lowered when the arena planner needs more",
           "harness/search/memory_driven.py",
           "allowed -= arena - (ram_budget - FIXED_RAM_BYTES)",
           "pass",
           ("tests/test_search_memory_driven.py",)),
    Mutant("haq-reward-ignores-latency", "the HAQ reward is the accuracy alone",
           "harness/search/haq.py",
           "return (accuracy or 0.0) - self.settings.latency_weight * self.latency_term(latency, reference)",
           "return (accuracy or 0.0)",
           ("tests/test_haq_reward.py",)),
    Mutant("haq-no-target-hinge", "latency below the target is rewarded (no max(0, ...))",
           "harness/search/haq.py",
           "return max(0.0, latency / target - 1.0)",
           "return latency / target - 1.0",
           ("tests/test_haq_reward.py",)),
    Mutant("haq-top-k-duplicates", "the top-K candidates may repeat a policy",
           "harness/search/haq.py",
           'if record["policy_hash"] not in seen:',
           "if True:",
           ("tests/test_haq_reward.py",)),
    Mutant("haq-verified-reward-predicted", "a verified candidate is rewarded by its predicted latency",
           "harness/search/haq.py",
           '"reward_measured": scorer.reward(candidate["accuracy"], measured, scorer.reference_measured)',
           '"reward_measured": scorer.reward(candidate["accuracy"], predicted, scorer.reference_measured)',
           ("tests/test_haq_reward.py",)),
)


def copy_repo(destination: Path) -> Path:
    tree = destination / "repo"
    shutil.copytree(REPO, tree, ignore=IGNORE, symlinks=True)
    return tree


def apply(tree: Path, mutant: Mutant) -> None:
    path = tree / mutant.path
    text = path.read_text()
    count = text.count(mutant.old)
    if count != 1:
        raise SystemExit(f"error: mutant {mutant.name}: the text to replace occurs {count} times in "
                         f"{mutant.path} (the source changed: update tools/mutants.py)")
    path.write_text(text.replace(mutant.old, mutant.new))


def run_tests(tree: Path, tests: tuple[str, ...]) -> tuple[int, float, str]:
    """pytest's exit code on `tests` in `tree` (slow tests excluded), the seconds taken and the
    first failing test (pytest -x stops there)."""
    env = dict(os.environ, PYTHONPATH=str(tree), PYTHONDONTWRITEBYTECODE="1")
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-m", "not slow",
                             *tests], cwd=tree, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    failed = next((line.split()[1] for line in result.stdout.splitlines() if line.startswith("FAILED ")), "")
    return result.returncode, time.monotonic() - started, failed


def outcome(code: int) -> str:
    return {0: "SURVIVED", 1: "killed"}.get(code, f"error (pytest exit {code})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="run only these mutants (names)")
    parser.add_argument("--results", type=Path, default=RESULTS, help=f"results file (default {RESULTS})")
    args = parser.parse_args(argv)
    mutants = [m for m in MUTANTS if not args.only or m.name in args.only]
    rows, ok = [], True
    with tempfile.TemporaryDirectory(prefix="mutants-") as scratch:
        baseline = copy_repo(Path(scratch) / "baseline")
        code, seconds, _ = run_tests(baseline, tuple(sorted({t for m in mutants for t in m.tests})))
        print(f"unmutated: pytest exit {code} ({seconds:.0f} s)")
        if code != 0:
            print("error: the tests fail without any mutation", file=sys.stderr)
            return 1
        for mutant in mutants:
            tree = copy_repo(Path(scratch) / mutant.name)
            apply(tree, mutant)
            code, seconds, failed = run_tests(tree, mutant.tests)
            result = outcome(code)
            ok &= code == 1
            rows.append(f"| `{mutant.name}` | {mutant.what} | `{mutant.path}` | {', '.join(mutant.tests)} | "
                        f"{result} | `{failed.split('/')[-1]}` | {seconds:.0f} s |")
            print(f"{mutant.name}: {result} ({seconds:.0f} s)")
            shutil.rmtree(tree)
    args.results.write_text(
        "# Mutation check\n\nWritten by `python tools/mutants.py` (`make mutants`; also run by the slow test "
        "tests/test_mutants.py). Each mutant is a one-place edit of a temporary copy of the repo; the tests "
        "listed must fail on it (\"killed\"). A surviving mutant means those tests cannot see that bug.\n\n"
        "| mutant | the bug | file | tests run | result | first failing test | time |\n"
        "|---|---|---|---|---|---|---:|\n"
        + "\n".join(rows) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
