"""The memory model's flash and RAM of the shipped 2 MB / 512 kB ImageNet policies (no training,
no build: `harness policy check`'s figures), for docs/models.md, and of the memory-driven search's
MobileNetV1 0.75/224 policies at 1 MB / 256 kB and 2 MB / 512 kB, for docs/search.md (through
tools/docs.py).

    python tools/memory_table.py          # writes results/memory-2MB-512kB.json (seconds)
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
POLICIES = ("mobilenet_v1-0.75-224-2MB-512kB.json", "mobilenet_v1-1.0-224-2MB-512kB.json",
            "mobilenet_v2-1.0-160-2MB-512kB.json", "mnasnet-1.0-224-2MB-512kB.json")
# (model, args, flash, ram) that `harness search --method memory-driven` is documented at
MEMORY_DRIVEN = (("mobilenet_v1", {"width": 0.75, "resolution": 224}, "1MB", "256kB"),
                 ("mobilenet_v1", {"width": 0.75, "resolution": 224}, "2MB", "512kB"))
DEFAULT_OUT = REPO / "results" / "memory-2MB-512kB.json"


def row(name: str) -> dict:
    from harness.ir.memory import memory_report
    from harness.policy import load_policy
    from harness.quantize.lower import structural_graph

    policy = load_policy(REPO / "policies" / name)
    return {"policy": name, **_figures(memory_report(structural_graph(policy)), policy)}


def memory_driven_row(model: str, args: dict, flash: str, ram: str) -> dict:
    """The memory-driven search's policy for the budget: its cuts and memory figures."""
    from harness.search.memory_driven import search

    result = search(model, args, flash, ram)
    return {"model": model, "model_args": args, "flash": flash, "ram": ram, "cuts": len(result.cuts),
            **_figures(result.report, result.policy)}


def _figures(report, policy) -> dict:
    return {"macs": report.macs, "flash_bytes": report.flash_bytes, "ram_bytes": report.ram_bytes,
            "flash_budget": policy.budget.flash, "ram_budget": policy.budget.ram, "weight_bytes": report.weight_bytes,
            "param_bytes": report.param_bytes, "code_bytes": report.code_bytes, "arena_bytes": report.arena_bytes,
            "work_buffer_bytes": report.work_buffer_bytes, "runtime_ram_bytes": report.runtime_ram_bytes,
            "input_bytes": report.input_bytes}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from harness.measure.provenance import provenance

    block = provenance() | {"command": shlex.join(["python", "tools/memory_table.py", *argv])}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"provenance": block, "policies": [row(name) for name in POLICIES],
                                          "memory_driven": [memory_driven_row(*case) for case in MEMORY_DRIVEN]}, indent=1) + "\n")
    print(f"written {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
