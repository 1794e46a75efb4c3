"""`harness measure POLICY --board B [--images N] [--out report.json]`."""
from __future__ import annotations

import argparse
import json
import os
import time
from contextlib import nullcontext
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness.backends import get_backend, load_board
from harness.boards import DEFAULT_BOARD
from harness.commands.options import (add_farm_options, add_model_source_options, add_protocol_options,
                                     check_protocol_options, checked_policy_graph, farm_pool, policy_with_data)
from harness.errors import HarnessError
from harness.policy import load_policy, safe_name
from harness.units import format_size

MAX_IMAGES = 100_000


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "measure", help="run a policy on a board: predictions, cycles, bit-exact check",
        description="Build the policy's firmware, start it on the board, stream test images over UART and "
                    "check every output bit-exactly against the host reference.")
    parser.add_argument("policy", type=Path, nargs="?", help="policy.json (optional with --resume: the log names it)")
    parser.add_argument("--board", help=f"board name (default {DEFAULT_BOARD}, or the resumed run's); see `harness boards`")
    parser.add_argument("--images", type=int,
                        help=f"test images to stream, 1 .. {MAX_IMAGES} (default 100 or the whole test part if smaller, "
                             "or the resumed run's)")
    parser.add_argument("--out", type=Path, help="write the JSON report here (the per-image log goes beside it as .jsonl)")
    parser.add_argument("--log", type=Path, help="per-image JSONL log (default: beside --out, or runs/)")
    parser.add_argument("--resume", type=Path, metavar="LOG",
                        help="continue the interrupted run of this log after its last recorded image (same policy "
                             "and firmware); the report covers the whole run")
    parser.add_argument("--port", help="serial port of a board on a debug probe, e.g. /dev/ttyACM0 (default: found by USB id)")
    parser.add_argument("--baud", type=int, help="the link's baud rate on a board with a real UART (default: the board "
                                                 "file's [backend] baud); the firmware is built for it")
    parser.add_argument("--link-faults", metavar="OPTIONS",
                        help="inject seeded UART faults into an emulator's link, e.g. 'rate=0.01&seed=1' "
                             "(harness/link/protocol_fault.py); for testing the protocol's recovery")
    add_model_source_options(parser)
    add_farm_options(parser, "measure the images")
    add_protocol_options(parser)
    parser.add_argument("--infer", nargs=2, type=int, metavar=("N", "W"), default=(1, 0),
                        help="with --protocol mlperf-tiny: `infer N W` per input, N timed runs after W warmups "
                             "(default 1 0, MLPerf Tiny's accuracy mode; its performance mode sends 20 5 for ic01)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # torch and the firmware pipeline load only when the command runs: `harness --help` stays fast
    from harness.measure.log import RunLog, resume_point
    console = Console(stderr=True, log_path=False)
    if args.images is not None and not 1 <= args.images <= MAX_IMAGES:
        raise HarnessError(f"--images must be 1 .. {MAX_IMAGES}, got {args.images}")
    check_protocol_options(args)
    if args.protocol == "mlperf-tiny":
        if args.farm is not None:
            raise HarnessError("--farm measures through the harness protocol, not --protocol mlperf-tiny")
        from harness.commands.mlperf_measure import measure_through_mlperf_tiny
        return measure_through_mlperf_tiny(args, console)
    resume = resume_point(args.resume) if args.resume else None
    settings = _settings(args, resume[0] if resume else None)
    policy = policy_with_data(load_policy(settings["policy"]), args)
    if resume and resume[0].get("policy_hash") != policy.hash:
        raise HarnessError(f"--resume {args.resume}: the run measured policy_hash {resume[0].get('policy_hash')!r}, "
                           f"{settings['policy']} has {policy.hash!r}: it can only be continued with its own policy")
    board = load_board(settings["board"]).with_serial_port(args.port).with_baud(args.baud)
    if args.link_faults is not None:
        _check_link_faults(args.link_faults)
    tools = get_backend(board.backend).tool_status()
    if not tools.present:  # before quantizing and building: say at once that the board is not here
        raise HarnessError(f"board {board.name}: {tools.detail}")
    if args.out is not None:
        check_writable_file(args.out, "--out")
    log_path = args.resume or args.log or _default_log(args.out, policy.name, board.name)
    check_writable_file(log_path, "--log")
    _check_test_split(policy, settings)
    with RunLog(log_path) as log:  # locked before any training: two runs cannot share a log
        # the farm too starts before any training: a farm without such a board fails at once
        with farm_pool(args, board.name, console) if args.farm is not None else nullcontext() as pool:
            return _measure(args, console, policy, board, settings, log, resume, pool)


def _measure(args, console, policy, board, settings, log, resume, pool) -> int:
    from harness.datasets.measured import measured_inputs
    from harness.measure.run import measure as on_board
    if pool is None:
        measure = on_board
    else:
        from functools import partial

        from harness.farm.measure import farm_measure
        measure = partial(farm_measure, pool)
    args.random_weights = settings["random_weights"]
    graph = checked_policy_graph(policy, board, args, console)
    inputs, labels = measured_inputs(policy, graph, settings["images"])
    done = len(resume[1]) if resume else 0
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("bit-exact {task.fields[exact]}"), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task(f"{policy.name} on {board.name}", total=len(inputs), completed=done,
                            exact=sum(record["bit_exact"] for record in resume[1]) if resume else 0)
        exact = bar.tasks[0].fields["exact"]

        def advance(result) -> None:
            nonlocal exact
            exact += result.bit_exact
            bar.update(task, advance=1, exact=exact)

        report = measure(policy, graph, board, inputs, labels, log, on_image=advance, policy_path=str(settings["policy"]),
                         resume=resume, link_faults=args.link_faults)
    report["log"] = str(log.path)
    if args.out:
        write_report(args.out, report)
    Console().print(summary_table(report))
    if args.out:
        console.print(f"report: {args.out}   per-image log: {log.path}")
    return 0 if report["bit_exact"] == report["images"] else 1


def _settings(args: argparse.Namespace, start: dict | None) -> dict:
    """Policy, board, image count and weights source: from the arguments, else the resumed run."""
    if start is None:
        if args.policy is None:
            raise HarnessError("measure: give a policy file (or --resume LOG)")
        return {"policy": args.policy, "board": args.board or DEFAULT_BOARD, "images": args.images,
                "random_weights": args.random_weights}
    settings = {"policy": args.policy or Path(start.get("policy") or ""), "board": args.board or start["board"],
                "images": args.images or start["images"], "random_weights": bool(start.get("random_weights"))}
    if not str(settings["policy"]) or str(settings["policy"]) == ".":
        raise HarnessError(f"--resume {args.resume}: the log does not name its policy; give the policy file too")
    if args.random_weights and not settings["random_weights"]:
        raise HarnessError(f"--resume {args.resume}: the run used trained weights; drop --random-weights")
    return settings


def _check_link_faults(options: str) -> None:
    from harness.link.protocol_fault import FaultSettings
    try:
        FaultSettings.parse(options)
    except ValueError as error:
        raise HarnessError(f"--link-faults: {error}") from None


def _check_test_split(policy, settings: dict) -> None:
    """Enough test images for --images, known from the dataset before any training (random
    weights and a model file without data stream seeded random inputs: any count)."""
    if settings["random_weights"] or (policy.model.file is not None and policy.data is None) \
            or settings["images"] is None:
        return
    from harness.datasets.registry import model_split
    available = len(model_split(policy.architecture, policy.data, policy.preprocess).test_labels)
    if settings["images"] > available:
        raise HarnessError(f"--images must be 1 .. {available} (the test split), got {settings['images']}")


def check_writable_file(path: Path, option: str) -> None:
    """An output file that can be written: not a directory, in a directory that exists or can be made
    and is writable, the file itself writable when it exists. Checked before any work starts."""
    if path.is_dir():
        raise HarnessError(f"{option} {path}: is a directory; give a file name")
    if path.exists():
        if not path.is_file():
            raise HarnessError(f"{option} {path}: not a regular file")
        if not os.access(path, os.W_OK):
            raise HarnessError(f"{option} {path}: not writable")
        return
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise HarnessError(f"{option} {path}: cannot create it: {parent} is not a writable directory")


def write_report(path: Path, report: dict) -> None:
    """Write the report atomically (a temporary file renamed into place)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_text(json.dumps(report, indent=1) + "\n")
        partial.replace(path)
    except OSError as error:
        raise HarnessError(f"--out {path}: cannot write the report: {error.strerror}") from None


def summary_table(report: dict) -> Table:
    lat = report["latency"]
    unit = lat["unit"]
    table = Table(title=f"{report['policy']} on {report['board']} ({report['images']} images)", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("bit-exact outputs", f"{report['bit_exact']}/{report['images']}")
    if report.get("random_weights"):
        table.add_row("[yellow]random weights[/yellow]", f"[yellow]{report.get('note', '')}[/yellow]")
    elif report["device_accuracy"] is None:
        table.add_row("[yellow]unlabelled inputs[/yellow]", "[yellow]seeded random inputs: no accuracy[/yellow]")
    else:
        table.add_row("accuracy device / host", f"{report['device_accuracy']:.2%} / {report['host_accuracy']:.2%}")
    table.add_row(f"{unit} per image min/median/max", f"{lat['min']:,.0f} / {lat['median']:,.0f} / {lat['max']:,.0f}")
    if "median_ms" in lat:
        table.add_row("latency (median)", f"{lat['median_ms']:.3f} ms")
    if "estimate_ms" in lat:
        table.add_row("latency estimate", f"≈ {lat['estimate_ms']:.3f} ms {lat['estimate_note']}")
    table.add_row("what is counted", lat["meaning"])
    for worker, images in report.get("farm", {}).items():
        table.add_row(f"measured on {worker}", f"{images} images")
    if report.get("remeasured"):
        table.add_row("runs measured again", f"{report['remeasured']} (the link disturbed their timing)")
    for what, text in format_link_time(report.get("link_time")):
        table.add_row(what, text)
    for layer in sorted(report["layers"], key=lambda row: -row[unit])[:5]:
        table.add_row(f"  {layer['name']} ({layer['op']})", f"{layer[unit]:,.0f} {unit} ({layer['share']:.1%})")
    for what, text in format_memory(report):
        table.add_row(f"{what} used / budget", text)
    return table


def format_link_time(link: dict | None) -> list[tuple[str, str]]:
    """(what, text) rows: the link's host wall time against the device's compute."""
    if not link:
        return []
    rate = f", LOAD {link['load_bytes_per_s'] / 1e3:.1f} kB/s" if link["load_bytes_per_s"] else ""
    ratio = f" = {link['link_over_compute']:.2f}x the compute" if link["link_over_compute"] is not None else ""
    fill = f"FILL {link['fill_s']:.2f} s, " if link.get("fill_s") else ""
    return [("link per run (host wall)", f"{link['link_per_run_s'] * 1e3:.1f} ms (LOAD {link['load_s']:.2f} s, "
                                         f"{fill}READ {link['read_s']:.2f} s in all{rate}){ratio}"),
            ("compute per run (device counter)", f"{link['device_compute_per_run_s'] * 1e3:.2f} ms; RUN/PERF round "
                                                 f"trips {link['run_round_trips_s']:.2f} s host wall in all")]


def format_memory(report: dict) -> list[tuple[str, str]]:
    """(what, used vs budget) rows for the summary."""
    mem = report["memory"]
    return [(what, f"{format_size(mem[f'{what}_bytes'])} of {format_size(mem[f'{what}_budget'])} "
                   f"({100 * mem[f'{what}_bytes'] / mem[f'{what}_budget']:.1f}%)")
            for what in ("flash", "ram")]


def _default_log(out: Path | None, policy: str, board: str) -> Path:
    if out is not None:
        return out.with_suffix(".jsonl")
    return Path("runs") / f"{safe_name(policy)}-{safe_name(board)}-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
