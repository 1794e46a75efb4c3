"""Measure the link against the compute with `harness measure` and write the results file the
link's claims rest on (issue 13: the VWW network on qemu-m7 spends less time on the link than on
compute; a 300-image digits run takes under 10 s warm).

    PYTHONPATH=. .venv/bin/python tools/link_bench.py --out results/link-qemu-m7.json

Each case runs `harness measure` twice: the first run builds (and trains) what the cache lacks,
the second is the warm one whose wall time and report are recorded. The machine's load average
is recorded too: the emulator's UART costs host CPU per byte, so a busy host slows the link.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = {  # name: policy, images, extra options
    "vww-random-weights": ("policies/mlperf_vww_mobilenet-int8.json", 20, ["--random-weights"]),
    "digits-300": ("policies/digits-int8.json", 300, []),
}


def measure(policy: str, images: int, extra: list[str], board: str, out: Path) -> float:
    """Wall seconds of one `harness measure` run writing its report to `out`."""
    command = [sys.executable, "-m", "harness.cli", "measure", policy, "--board", board, "--images", str(images),
               "--out", str(out), *extra]
    started = time.monotonic()
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--board", default="qemu-m7")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of: {', '.join(CASES)}")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    names = args.cases.split(",")
    unknown = sorted(set(names) - set(CASES))
    if unknown:
        print(f"error: unknown case {unknown[0]!r}; known: {', '.join(CASES)}", file=sys.stderr)
        return 2
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name in names:
            policy, images, extra = CASES[name]
            report_path = Path(scratch) / f"{name}.json"
            measure(policy, images, extra, args.board, report_path)  # cold: builds what the cache lacks
            load_before = os.getloadavg()[0]
            wall_s = measure(policy, images, extra, args.board, report_path)
            report = json.loads(report_path.read_text())
            link = report["link_time"]
            results[name] = {"policy": policy, "images": images, "options": extra, "warm_wall_s": wall_s,
                             "load_average": [load_before, os.getloadavg()[0]],
                             "bit_exact": report["bit_exact"], "link_time": link, "link_stats": report["link"],
                             "link_below_device_compute": link["link_s"] < link["device_compute_s"],
                             "link_below_run_round_trips": link["link_s"] < link["run_round_trips_s"]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"provenance": {"command": " ".join(["tools/link_bench.py", *(argv or sys.argv[1:])]),
                                                   "board": args.board, "cpus": os.cpu_count()},
                                    "cases": results}, indent=1) + "\n")
    print(json.dumps({name: {"warm_wall_s": round(r["warm_wall_s"], 2), "link_s": round(r["link_time"]["link_s"], 3),
                             "device_compute_s": round(r["link_time"]["device_compute_s"], 4)}
                      for name, r in results.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
