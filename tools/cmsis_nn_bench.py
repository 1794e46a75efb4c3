"""Time CMSIS-NN's s8 kernels on the zoo's layer geometries, on the same board and tick counter as
the repository's benches, and write the results files that docs/benchmarks.md compares those
layers with.

    PYTHONPATH=. .venv/bin/python tools/cmsis_nn_bench.py --cmsis-nn PATH \\
        --out results/cmsis-nn-fc-qemu-m7.json
    PYTHONPATH=. .venv/bin/python tools/cmsis_nn_bench.py --cmsis-nn PATH --op add \\
        --out results/cmsis-nn-add-qemu-m7.json

PATH is a checkout of CMSIS-NN (github.com/ARM-software/CMSIS-NN); nothing is downloaded, and
nothing of it enters this repository. A front end in tools/cmsis_nn_bench/ calls the kernels
once per geometry, between the same two counter reads the runner puts around a PERF run, built
with the firmware's core flags and optimization (firmware/Makefile's print- goals) and the
board's BSP:

- fully_connected (fc_bench.c, against `harness bench kernels --shapes zoo`): the kernel
  arm_fully_connected_s8 runs (arm_nn_vec_mat_mult_t_s8, per-tensor requantization) and its
  per-channel twin on every fully connected geometry of the zoo. A geometry whose weights do
  not fit RAM beside the rest (MobileNetV1's 1024 -> 1000) is listed as skipped.
- add (add_bench.c, against the add layers of `harness bench network ... --layers`):
  arm_elementwise_add_s8 on every residual add of the zoo (ResNet-8's), per element.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import serial

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from harness.backends import load_board, open_link  # noqa: E402 - after the repository is importable
from harness.errors import HarnessError  # noqa: E402
from harness.files import write_atomic  # noqa: E402
from harness.link.protocol import CounterKind, TickCounter  # noqa: E402
from harness.measure.bench import ZOO_NETWORKS, zoo_shapes  # noqa: E402
from harness.measure.provenance import provenance  # noqa: E402
from harness.measure.run import TickUnit  # noqa: E402

FRONT_ENDS = ROOT / "tools" / "cmsis_nn_bench"
FIRMWARE = ROOT / "firmware"
HEADER = "Include/arm_nnsupportfunctions.h"
MAX_WEIGHT_BYTES = 256 * 1024  # of the board's 512 kB RAM, beside input, output and stack
RUN_TIMEOUT_S = 120.0


def fully_connected_geometries() -> list[dict]:
    """The zoo's fully connected layers (harness.measure.bench.zoo_shapes), in its order."""
    return [{"shape": s.name, "title": s.title, "inputs": s.h * s.w * s.cin, "outputs": s.cout, "macs": s.macs}
            for s in zoo_shapes() if s.op == "fully_connected"]


def add_geometries() -> list[dict]:
    """Every distinct element count of the zoo's add layers, in order of first appearance."""
    from harness import zoo

    found: dict[int, dict] = {}
    for model, args in ZOO_NETWORKS:
        arch = zoo.build(model, args)
        sizes = arch.shapes()
        for spec in arch.layers:
            if spec.op == "add":
                h, w, c = sizes[arch.sources(spec)[0]]
                found.setdefault(h * w * c, {"title": f"add {h}x{w}x{c} ({arch.name} {spec.name})",
                                             "elements": h * w * c})
    return list(found.values())


def fc_defines(geometries: list[dict]) -> list[str]:
    shapes = "{" + ",".join(f"{{{g['inputs']},{g['outputs']}}}" for g in geometries) + "}"
    weights = max(g["inputs"] * g["outputs"] for g in geometries)
    side = max(max(g["inputs"], g["outputs"]) for g in geometries)
    return [f"-DFC_SHAPES={shapes}", f"-DFC_MAX_WEIGHTS={weights}", f"-DFC_MAX_SIDE={side}"]


def add_defines(geometries: list[dict]) -> list[str]:
    sizes = "{" + ",".join(str(g["elements"]) for g in geometries) + "}"
    # A kernel of 2022 or before spells SADD16 as CMSIS-Core's __SADD16, which needs CMSIS-Core;
    # ACLE's __sadd16 is the same instruction (later kernels use CMSIS-NN's own SADD16).
    return [f"-DADD_SIZES={sizes}", f"-DADD_MAX_ELEMENTS={max(g['elements'] for g in geometries)}",
            "-D__SADD16=__sadd16"]


def fc_too_large(geometry: dict) -> str | None:
    weights = geometry["inputs"] * geometry["outputs"]
    return (f"{weights:,} B of weights: more than the {MAX_WEIGHT_BYTES // 1024} kB the bench fills in RAM"
            if weights > MAX_WEIGHT_BYTES else None)


@dataclass(frozen=True)
class Op:
    """One op the tool times: its front end, the CMSIS-NN kernels (kind -> source) it calls in turn
    on each geometry, how they are called, the geometry fields each printed line starts with,
    what a figure is per (the geometry's `work` field), and the geometries."""

    line: str  # what each result line of the front end starts with
    front_end: str
    kernels: dict[str, str]
    called: str
    keys: tuple[str, ...]
    work: str  # "macs" or "elements"
    geometries: Callable[[], list[dict]]
    defines: Callable[[list[dict]], list[str]]
    skip: Callable[[dict], str | None] = lambda geometry: None

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(self.kernels.values())

    @property
    def per(self) -> str:
        """What one figure is per: "mac" or "element"."""
        return self.work[:-1]


OPS = {
    "fully_connected": Op(
        line="fc", front_end="fc_bench.c",
        kernels={"per_tensor": "Source/NNSupportFunctions/arm_nn_vec_mat_mult_t_s8.c",
                 "per_channel": "Source/NNSupportFunctions/arm_nn_vec_mat_mult_t_per_ch_s8.c"},
        called="(8/8/8, as arm_fully_connected_s8 calls it)", keys=("inputs", "outputs"), work="macs",
        geometries=fully_connected_geometries, defines=fc_defines, skip=fc_too_large),
    "add": Op(
        line="add", front_end="add_bench.c", kernels={"s8": "Source/BasicMathFunctions/arm_elementwise_add_s8.c"},
        called="(with the arguments TFLite Micro's add passes, inputs and output of one scale)", keys=("elements",),
        work="elements", geometries=add_geometries, defines=add_defines),
}


def check_checkout(path: Path, op: Op) -> None:
    missing = [name for name in (HEADER, *op.sources) if not (path / name).is_file()]
    if missing:
        raise HarnessError(f"{path} is not a CMSIS-NN checkout: {missing[0]} is missing")


def make_variables(names: list[str], board: str) -> dict[str, str]:
    """Variables of firmware/Makefile for `board`, from one run of its print- goals."""
    done = subprocess.run(["make", "-s", "-C", str(FIRMWARE), *(f"print-{name}" for name in names), f"BOARD={board}"],
                          capture_output=True, text=True)
    if done.returncode:
        raise HarnessError(f"firmware/Makefile print-{names[0]}...: {done.stderr.strip()}")
    return dict(zip(names, done.stdout.split("\n")))


def build(cmsis_nn: Path, board: str, op: Op, geometries: list[dict], out_dir: Path) -> Path:
    """The op's front end, its CMSIS-NN sources and the board's BSP linked into one ELF."""
    var = make_variables(["ARCH_FLAGS", "OPT", "BSP_DIR", "CORE_DIR", "COUNTER_KIND", f"BOARD_CFLAGS.{board}",
                          "LINKER_SCRIPT"], board)
    bsp_dir, core_dir = Path(var["BSP_DIR"]), Path(var["CORE_DIR"])
    elf = out_dir / f"cmsis-nn-{op.line}-bench.elf"
    command = ["arm-none-eabi-gcc", *var["ARCH_FLAGS"].split(), *var["OPT"].split(), "-std=c11", "-ffunction-sections",
               "-fdata-sections", f"-I{cmsis_nn / 'Include'}", f"-I{FIRMWARE / 'bsp'}", f"-I{core_dir}", f"-I{bsp_dir}",
               f"-I{FRONT_ENDS}", f'-DBSP_BOARD_NAME="{board}"', f"-DBSP_COUNTER_KIND={var['COUNTER_KIND']}",
               *var[f"BOARD_CFLAGS.{board}"].split(), *op.defines(geometries), str(FRONT_ENDS / op.front_end),
               str(FRONT_ENDS / "bench_io.c"), *(str(cmsis_nn / s) for s in op.sources),
               *map(str, sorted(core_dir.glob("*.c"))), *map(str, sorted(bsp_dir.glob("*.c"))),
               "-nostartfiles", "--specs=nano.specs", "--specs=nosys.specs", f"-T{var['LINKER_SCRIPT']}",
               "-Wl,--gc-sections", "-Wl,--no-warn-rwx-segments", "-o", str(elf)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        first = next((line for line in done.stderr.splitlines() if "error" in line), done.stderr.strip())
        raise HarnessError(f"building against {cmsis_nn} failed: {first}")
    return elf


def run(board, elf: Path, line: str, expected: int) -> tuple[TickCounter, list[tuple[int, ...]]]:
    """The counter and the result lines (the geometry, then ticks and status of each kernel) the
    front end prints, each starting with `line`."""
    counter, rows = None, []
    deadline = time.monotonic() + RUN_TIMEOUT_S
    with open_link(board, elf) as link, serial.serial_for_url(link.url, timeout=0.5) as port:
        while time.monotonic() < deadline:
            text = port.readline().decode("ascii", "replace").strip()
            if text.startswith("counter "):
                kind, hz = map(int, text.split()[1:])
                counter = TickCounter(CounterKind(kind), hz)
            elif text.startswith(line + " "):
                rows.append(tuple(map(int, text.split()[1:])))
            elif text.startswith("fault"):
                raise HarnessError(f"the bench firmware faulted: {text}")
            elif text == "end":
                break
    if counter is None or len(rows) != expected:
        raise HarnessError(f"the bench firmware printed {len(rows)} of {expected} results in {RUN_TIMEOUT_S:g} s")
    return counter, rows


def revision(path: Path) -> str | None:
    """The `$Revision:` a CMSIS-NN file's header states."""
    found = re.search(r"\$Revision:\s*(\S+)", path.read_text(errors="replace"))
    return found.group(1) if found else None


def version(cmsis_nn: Path, origin: str | None, op: Op) -> dict:
    """What CMSIS-NN was measured: its git commit if a clone, where it came from, its files' revisions."""
    asked = subprocess.run(["git", "-C", str(cmsis_nn), "rev-parse", "--show-toplevel", "HEAD"], capture_output=True,
                           text=True)
    top, commit = (asked.stdout.split() + [None, None])[:2] if asked.returncode == 0 else (None, None)
    return {"path": str(cmsis_nn), "git_commit": commit if top and Path(top) == cmsis_nn.resolve() else None,
            "origin": origin, "revisions": {name: revision(cmsis_nn / name) for name in (HEADER, *op.sources)}}


def measure(op: Op, geometries: list[dict], unit: TickUnit, rows: list[tuple[int, ...]]) -> list[dict]:
    """Each geometry with its kernels' ticks and figures (ticks_<kind>, per_<unit>_<kind>), or why skipped."""
    measured = {row[:len(op.keys)]: row[len(op.keys):] for row in rows}
    results = []
    for g in geometries:
        if (why := op.skip(g)) is not None:
            results.append(g | {"skipped": why})
            continue
        values = measured[tuple(g[k] for k in op.keys)]  # ticks and status of each kernel in turn
        result = dict(g)
        for (kind, source), ticks, status in zip(op.kernels.items(), values[::2], values[1::2]):
            if status != 0:
                raise HarnessError(f"{Path(source).stem} returned {status} on {g['title']}")
            result |= {f"ticks_{kind}": ticks, f"per_{op.per}_{kind}": ticks * unit.per_tick / g[op.work]}
        results.append(result)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cmsis-nn", type=Path, required=True, help="a CMSIS-NN checkout")
    parser.add_argument("--op", choices=sorted(OPS), default="fully_connected", help="the op to time")
    parser.add_argument("--origin", help="where the checkout came from when it is not a git clone (kept in the "
                                             "results file)")
    parser.add_argument("--board", default="qemu-m7")
    parser.add_argument("--out", type=Path, required=True)
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    op = OPS[args.op]
    try:
        check_checkout(args.cmsis_nn, op)
        board = load_board(args.board)
        geometries = op.geometries()
        fits = [g for g in geometries if op.skip(g) is None]
        with tempfile.TemporaryDirectory() as scratch:
            elf = build(args.cmsis_nn.resolve(), board.name, op, fits, Path(scratch))
            counter, rows = run(board, elf, op.line, len(fits))
            block = provenance(board, elf) | {"command": shlex.join(["python", "tools/cmsis_nn_bench.py", *argv])}
        unit = TickUnit.of(counter)
        results = measure(op, geometries, unit, rows)
    except HarnessError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    report = {"provenance": block, "kernels": {kind: f"{Path(source).stem} {op.called}"
                                               for kind, source in op.kernels.items()},
              "cmsis_nn": version(args.cmsis_nn, args.origin, op), "unit": unit.name, "meaning": unit.meaning,
              "timed": "bsp_ticks_align() to bsp_ticks() around one call, as the runner times a PERF run",
              "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out, json.dumps(report, indent=2) + "\n")
    for r in results:
        figures = r.get("skipped") or ", ".join(f"{r[f'per_{op.per}_{kind}']:.2f} {kind.replace('_', ' ')}"
                                                for kind in op.kernels) + f" ({unit.name}/{op.per})"
        print(f"{r['title']}: {figures}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
