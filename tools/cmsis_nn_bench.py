"""Time CMSIS-NN's s8 fully connected kernel on the zoo's fully connected geometries, on the same
board and tick counter as `harness bench kernels --shapes zoo`, and write the results file that
docs/benchmarks.md compares those layers with.

    PYTHONPATH=. .venv/bin/python tools/cmsis_nn_bench.py --cmsis-nn PATH \\
        --out results/cmsis-nn-fc-qemu-m7.json

PATH is a checkout of CMSIS-NN (github.com/ARM-software/CMSIS-NN); nothing is downloaded, and
nothing of it enters this repository. tools/cmsis_nn_bench/fc_bench.c calls the kernel
arm_fully_connected_s8 runs (arm_nn_vec_mat_mult_t_s8, per-tensor requantization) and its
per-channel twin once per geometry, between the same two counter reads the runner puts around a
PERF run, built with the firmware's core flags and optimization (firmware/Makefile's print-
goals) and the board's BSP. A geometry whose weights do not fit RAM beside the rest
(MobileNetV1's 1024 -> 1000) is listed as skipped.
"""
from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import serial

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from harness.backends import load_board, open_link  # noqa: E402 - after the repository is importable
from harness.errors import HarnessError  # noqa: E402
from harness.files import write_atomic  # noqa: E402
from harness.link.protocol import CounterKind, TickCounter  # noqa: E402
from harness.measure.bench import zoo_shapes  # noqa: E402
from harness.measure.provenance import provenance  # noqa: E402
from harness.measure.run import TickUnit  # noqa: E402

FRONT_END = ROOT / "tools" / "cmsis_nn_bench" / "fc_bench.c"
FIRMWARE = ROOT / "firmware"
KERNELS = {"per_tensor": "Source/NNSupportFunctions/arm_nn_vec_mat_mult_t_s8.c",
           "per_channel": "Source/NNSupportFunctions/arm_nn_vec_mat_mult_t_per_ch_s8.c"}
SOURCES = tuple(KERNELS.values())
HEADER = "Include/arm_nnsupportfunctions.h"
MAX_WEIGHT_BYTES = 256 * 1024  # of the board's 512 kB RAM, beside input, output and stack
RUN_TIMEOUT_S = 120.0


def fully_connected_geometries() -> list[dict]:
    """The zoo's fully connected layers (harness.measure.bench.zoo_shapes), in its order."""
    return [{"shape": s.name, "title": s.title, "inputs": s.h * s.w * s.cin, "outputs": s.cout, "macs": s.macs}
            for s in zoo_shapes() if s.op == "fully_connected"]


def check_checkout(path: Path) -> None:
    missing = [name for name in (HEADER, *SOURCES) if not (path / name).is_file()]
    if missing:
        raise HarnessError(f"{path} is not a CMSIS-NN checkout: {missing[0]} is missing")


def make_variables(names: list[str], board: str) -> dict[str, str]:
    """Variables of firmware/Makefile for `board`, from one run of its print- goals."""
    done = subprocess.run(["make", "-s", "-C", str(FIRMWARE), *(f"print-{name}" for name in names), f"BOARD={board}"],
                          capture_output=True, text=True)
    if done.returncode:
        raise HarnessError(f"firmware/Makefile print-{names[0]}...: {done.stderr.strip()}")
    return dict(zip(names, done.stdout.split("\n")))


def build(cmsis_nn: Path, board: str, geometries: list[dict], out_dir: Path) -> Path:
    """fc_bench.c, the CMSIS-NN sources and the board's BSP linked into one ELF."""
    var = make_variables(["ARCH_FLAGS", "OPT", "BSP_DIR", "CORE_DIR", "COUNTER_KIND", f"BOARD_CFLAGS.{board}",
                          "LINKER_SCRIPT"], board)
    bsp_dir, core_dir = Path(var["BSP_DIR"]), Path(var["CORE_DIR"])
    shapes = "{" + ",".join(f"{{{g['inputs']},{g['outputs']}}}" for g in geometries) + "}"
    weights = max(g["inputs"] * g["outputs"] for g in geometries)
    side = max(max(g["inputs"], g["outputs"]) for g in geometries)
    elf = out_dir / "cmsis-nn-fc-bench.elf"
    command = ["arm-none-eabi-gcc", *var["ARCH_FLAGS"].split(), *var["OPT"].split(), "-std=c11", "-ffunction-sections",
               "-fdata-sections", f"-I{cmsis_nn / 'Include'}", f"-I{FIRMWARE / 'bsp'}", f"-I{core_dir}", f"-I{bsp_dir}",
               f'-DBSP_BOARD_NAME="{board}"', f"-DBSP_COUNTER_KIND={var['COUNTER_KIND']}",
               *var[f"BOARD_CFLAGS.{board}"].split(), f"-DFC_SHAPES={shapes}", f"-DFC_MAX_WEIGHTS={weights}",
               f"-DFC_MAX_SIDE={side}", str(FRONT_END), *(str(cmsis_nn / s) for s in SOURCES),
               *map(str, sorted(core_dir.glob("*.c"))), *map(str, sorted(bsp_dir.glob("*.c"))),
               "-nostartfiles", "--specs=nano.specs", "--specs=nosys.specs", f"-T{var['LINKER_SCRIPT']}",
               "-Wl,--gc-sections", "-Wl,--no-warn-rwx-segments", "-o", str(elf)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        first = next((line for line in done.stderr.splitlines() if "error" in line), done.stderr.strip())
        raise HarnessError(f"building against {cmsis_nn} failed: {first}")
    return elf


def run(board, elf: Path, expected: int) -> tuple[TickCounter, list[tuple[int, ...]]]:
    """The counter and the (inputs, outputs, then ticks and status of each kernel) lines fc_bench.c prints."""
    counter, rows = None, []
    deadline = time.monotonic() + RUN_TIMEOUT_S
    with open_link(board, elf) as link, serial.serial_for_url(link.url, timeout=0.5) as port:
        while time.monotonic() < deadline:
            line = port.readline().decode("ascii", "replace").strip()
            if line.startswith("counter "):
                kind, hz = map(int, line.split()[1:])
                counter = TickCounter(CounterKind(kind), hz)
            elif line.startswith("fc "):
                rows.append(tuple(map(int, line.split()[1:])))
            elif line.startswith("fault"):
                raise HarnessError(f"the bench firmware faulted: {line}")
            elif line == "end":
                break
    if counter is None or len(rows) != expected:
        raise HarnessError(f"the bench firmware printed {len(rows)} of {expected} results in {RUN_TIMEOUT_S:g} s")
    return counter, rows


def revision(path: Path) -> str | None:
    """The `$Revision:` a CMSIS-NN file's header states."""
    found = re.search(r"\$Revision:\s*(\S+)", path.read_text(errors="replace"))
    return found.group(1) if found else None


def version(cmsis_nn: Path, origin: str | None) -> dict:
    """What CMSIS-NN was measured: its git commit if a clone, where it came from, its files' revisions."""
    asked = subprocess.run(["git", "-C", str(cmsis_nn), "rev-parse", "--show-toplevel", "HEAD"], capture_output=True,
                           text=True)
    top, commit = (asked.stdout.split() + [None, None])[:2] if asked.returncode == 0 else (None, None)
    return {"path": str(cmsis_nn), "git_commit": commit if top and Path(top) == cmsis_nn.resolve() else None,
            "origin": origin, "revisions": {name: revision(cmsis_nn / name) for name in (HEADER, *SOURCES)}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cmsis-nn", type=Path, required=True, help="a CMSIS-NN checkout")
    parser.add_argument("--origin", help="where the checkout came from when it is not a git clone (kept in the "
                                             "results file)")
    parser.add_argument("--board", default="qemu-m7")
    parser.add_argument("--out", type=Path, required=True)
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    try:
        check_checkout(args.cmsis_nn)
        board = load_board(args.board)
        geometries = fully_connected_geometries()
        fits = [g for g in geometries if g["inputs"] * g["outputs"] <= MAX_WEIGHT_BYTES]
        with tempfile.TemporaryDirectory() as scratch:
            elf = build(args.cmsis_nn.resolve(), board.name, fits, Path(scratch))
            counter, rows = run(board, elf, len(fits))
            block = provenance(board, elf) | {"command": shlex.join(["python", "tools/cmsis_nn_bench.py", *argv])}
        unit = TickUnit.of(counter)
        measured = {tuple(row[:2]): row[2:] for row in rows}
        results = []
        for g in geometries:
            if g not in fits:
                results.append(g | {"skipped": f"{g['inputs'] * g['outputs']:,} B of weights: more than the "
                                               f"{MAX_WEIGHT_BYTES // 1024} kB the bench fills in RAM"})
                continue
            values = measured[(g["inputs"], g["outputs"])]  # ticks and status of each kernel in turn
            result = dict(g)
            for (kind, source), ticks, status in zip(KERNELS.items(), values[::2], values[1::2]):
                if status != 0:
                    raise HarnessError(f"{Path(source).stem} returned {status} on {g['title']}")
                result |= {f"ticks_{kind}": ticks, f"per_mac_{kind}": ticks * unit.per_tick / g["macs"]}
            results.append(result)
    except HarnessError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    report = {"provenance": block, "kernels": {kind: Path(source).stem + " (8/8/8, as arm_fully_connected_s8 calls it)"
                                               for kind, source in KERNELS.items()},
              "cmsis_nn": version(args.cmsis_nn, args.origin), "unit": unit.name, "meaning": unit.meaning,
              "timed": "bsp_ticks_align() to bsp_ticks() around one call, as the runner times a PERF run",
              "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out, json.dumps(report, indent=2) + "\n")
    for r in results:
        print(f"{r['title']}: " + (f"{r['per_mac_per_tensor']:.2f} per tensor, {r['per_mac_per_channel']:.2f} per "
                                   f"channel ({unit.name}/MAC)" if "skipped" not in r else r["skipped"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
