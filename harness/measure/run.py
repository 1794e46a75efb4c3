"""`harness measure`: run a policy's firmware on a board over N test images and check every
output bit-exactly against the host reference.

Each image's result is appended to a JSONL log (harness.measure.log: locked, flushed and
fsynced) as soon as it is known, so a crash, a dead emulator or Ctrl-C never loses what was
already measured, and `measure --resume LOG` continues after the last recorded image. A run
whose timed region the link disturbed (the firmware counts interrupts and received bytes in
it) is measured again (harness.link.device.undisturbed); the report says how many were.
"""
from __future__ import annotations

import hashlib
import statistics
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Callable, TypeVar

import numpy as np

from harness.ir import reference
from harness.boards import Board
from harness.build.firmware import BuildResult
from harness.link.device import board_info, open_device, pack_tensor, undisturbed, unpack_tensor
from harness.errors import HarnessError
from harness.build.firmware import build_graphs
from harness.ir.graph import Graph
from harness.quantize.lower import structural_graph
from harness.ir.memory import memory_report
from harness.policy import Policy
from harness.link.protocol import Device, DeviceInfo, PerfResult, RunResult, TickCounter, fill_bytes
from harness.measure.link_time import link_time, spent_since
from harness.measure.log import RunLog
from harness.measure.provenance import provenance


@dataclass(frozen=True)
class ImageResult:
    """One test image measured on the device."""

    index: int
    label: int
    device_class: int
    host_class: int
    bit_exact: bool
    ticks: int
    layer_ticks: list[int]
    output_hash: str
    remeasured: int = 0  # runs repeated because the link disturbed their timing


@dataclass(frozen=True)
class TickUnit:
    """What measured numbers are reported in: core cycles on hardware, instructions in emulators."""

    name: str
    per_tick: float
    meaning: str

    @classmethod
    def of(cls, info: DeviceInfo | TickCounter) -> "TickUnit":
        per_tick = info.instructions_per_tick
        if per_tick is None:
            return cls("cycles", 1.0, info.tick_meaning)
        return cls("instructions", per_tick, info.tick_meaning + "; these are executed instructions, not cycles")


def check_predicted_memory(graph: Graph, policy: Policy, board: Board) -> None:
    """Fail before building when the memory model already says the graph cannot fit."""
    report = memory_report(graph)
    for owner, budget in ((f"board {board.name}", board.budget), (f"policy {policy.name}", policy.budget)):
        problems = report.over_budget(budget)
        if problems:
            raise HarnessError(f"{policy.name} does not fit the {owner} budget: " + "; ".join(problems))


def check_policy_fits(policy: Policy, board: Board) -> None:
    """The same check on the policy's structure alone: fails in a second, before any training."""
    check_predicted_memory(structural_graph(policy), policy, board)


def build_policy_firmware(graph: Graph, policy: Policy, board: Board) -> BuildResult:
    check_predicted_memory(graph, policy, board)
    return build_graphs([graph], board, policy.hash)


WORST_TICKS_PER_MAC = 64  # generous cost of one MAC (2-bit portable kernels) for the first RUN deadline
SLOWEST_EMULATOR_IPS = 20e6  # instructions per wall-clock second assumed of an emulator, pessimistically
RUN_MARGIN = 8.0  # deadline = RUN_SLACK_S + margin x the expected wall time of one RUN
RUN_SLACK_S = 0.25


def first_run_timeout(graph: Graph, info: DeviceInfo) -> float:
    """The first RUN's deadline from the memory model's MAC count at the board's clock (emulators:
    at a pessimistic instruction rate); later RUNs the quickest measured round trip (Session.ran)."""
    work = memory_report(graph).macs * WORST_TICKS_PER_MAC + 1e6
    rate = SLOWEST_EMULATOR_IPS if info.instructions_per_tick is not None else info.core_hz
    return RUN_SLACK_S + RUN_MARGIN * work / rate


def output_hash(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass
class Session:
    """What measuring one image needs: the device, the graph, the RUN deadline (from the
    prediction until a RUN was seen, then from the quickest RUN round trip seen)."""

    device: Device
    graph: Graph
    run_timeout: float
    remeasured: int = 0
    quickest_run_s: float = float("inf")
    bytes_loaded: int = 0
    loaded: bytes | None = None  # the packed input the device holds (None: consumed by a run)

    def ran(self, wall_s: float) -> None:
        self.quickest_run_s = min(self.quickest_run_s, wall_s)
        self.run_timeout = RUN_SLACK_S + RUN_MARGIN * self.quickest_run_s


def start_session(device: Device, graph: Graph, board: Board, first_image: np.ndarray) -> Session:
    """A Session after one warm-up RUN of `first_image`, whose result is dropped: the first run
    after boot can take a tick more under QEMU (its code is being translated), so without it the
    first image measured in a session (a resumed one too) would differ from a warm run's."""
    session = Session(device, graph, first_run_timeout(graph, board_info(device.info(), board)))
    packed = pack_tensor(first_image, graph.tensors[graph.input])
    device.load(0, packed)
    started = time.monotonic()
    device.run(0, timeout=session.run_timeout)
    session.ran(time.monotonic() - started)
    session.loaded = None if device.model(0).input_reused else packed
    return session


def measure_image(session: Session, index: int, image: np.ndarray, label: int) -> ImageResult:
    """LOAD and RUN (both again while the link disturbed the timed region, at most MAX_REMEASURE
    times), READ, and compare with the host reference."""
    graph, device = session.graph, session.device
    packed = pack_tensor(image, graph.tensors[graph.input])
    run, again = undisturbed(lambda: _timed(session, packed, lambda: device.run(0, timeout=session.run_timeout)),
                             f"image {index}")
    return _result(session, index, label, run, again, run.layer_ticks, reference.predict(graph, image))


FILL_SEED = 1  # the seed of the input a latency-only run has the device FILL


def image_measurer(session: Session, first: np.ndarray) -> Callable[[int, np.ndarray, int], ImageResult]:
    """How each image of a run is measured: measure_image, or with random weights a latency-only
    PERF of `first` (or of the device's FILL; see latency_input) whatever the image."""
    graph = session.graph
    if not graph.meta.get("random_weights"):
        return lambda index, image, label: measure_image(session, index, image, label)
    image, fill_seed = latency_input(session.device, graph, first)
    expected = reference.predict(graph, image)
    return lambda index, _image, _label: measure_latency(session, index, image, expected, fill_seed)


def latency_input(device: Device, graph: Graph, first: np.ndarray) -> tuple[np.ndarray, int | None]:
    """The input of a latency-only run and its FILL seed: `first`, LOADed once, when the input
    survives a run; the device's own FILL (no input bytes on the link) before every run when a
    run consumes it (MODEL flag input_reused) and it packs into bytes (at most 8 bits)."""
    tensor = graph.tensors[graph.input]
    if not device.model(0).input_reused or tensor.bits > 8:
        return first, None
    return unpack_tensor(fill_bytes(FILL_SEED, device.model(0).in_bytes), tensor), FILL_SEED


def measure_latency(session: Session, index: int, image: np.ndarray, expected: np.ndarray,
                    fill_seed: int | None) -> ImageResult:
    """A latency-only run (random weights): PERF of one run of `image` (see latency_input), sent
    only when the device does not hold it; READ, and compare with `expected`, its host reference."""
    packed = pack_tensor(image, session.graph.tensors[session.graph.input])
    device = session.device
    run, again = undisturbed(lambda: _timed(session, packed, lambda: device.perf(0, 1, timeout=session.run_timeout),
                                            fill_seed), f"run {index}")
    return _result(session, index, -1, run, again, device.layer_ticks(0), expected)


T = TypeVar("T", RunResult, PerfResult)


def _timed(session: Session, packed: bytes, request: Callable[[], T], fill_seed: int | None = None) -> T:
    """`request()` (a RUN or PERF) on `packed`, LOADed (or FILLed from `fill_seed`) first unless
    the device holds it."""
    if session.loaded != packed and fill_seed is not None:
        session.device.fill(0, fill_seed)
    elif session.loaded != packed:
        session.device.load(0, packed)
        session.bytes_loaded += len(packed)
    session.loaded = None if session.device.model(0).input_reused else packed  # a run consumes such an input
    started = time.monotonic()
    result = request()
    session.ran(time.monotonic() - started)
    return result


def _result(session: Session, index: int, label: int, run: RunResult | PerfResult, again: int,
            layer_ticks: tuple[int, ...], expected: np.ndarray) -> ImageResult:
    """The ImageResult of a timed run: its output READ and compared with the host's `expected`."""
    session.remeasured += again
    if not run.ok:
        raise HarnessError(f"firmware reported status {run.status} running image {index}")
    raw = session.device.read_output(0)
    device_out = unpack_tensor(raw, session.graph.tensors[session.graph.output])
    return ImageResult(index, int(label), int(device_out.argmax()), int(expected.argmax()),
                       bool(np.array_equal(device_out, expected)), run.total_ticks, list(layer_ticks),
                       output_hash(raw), again)


def measure(policy: Policy, graph: Graph, board: Board, inputs: np.ndarray, labels: np.ndarray, log: RunLog,
            on_image: Callable[[ImageResult], None] = lambda result: None, *, policy_path: str = "",
            resume: tuple[dict, list[dict]] | None = None, link_faults: str | None = None) -> dict:
    """Build, start, stream the integer `inputs` [N, H, W, C] (labels -1 when there are none)
    into the open `log`, and return the report (a JSON-able dict). With `resume` (the start
    record and image records of an interrupted run, harness.measure.log.resume_point) only the
    images after the recorded ones are measured, on a firmware and policy that must match. With
    random weights the run is latency-only: every timed run is a PERF of the first input, which is
    sent once (again before every run only when the model's run consumes it)."""
    build = build_policy_firmware(graph, policy, board)
    results, run_id = prior_results(resume, policy, graph, build, len(inputs))
    try:
        with open_device(board, build.elf_path, expected_hash=graph.hash(), link_faults=link_faults) as device:
            info = board_info(device.info(), board)
            session = start_session(device, graph, board, inputs[len(results) % len(inputs)])
            spent_before, loaded_before = dict(device.seconds), session.bytes_loaded
            measure_one = image_measurer(session, inputs[0])
            log.append(start_record(run_id, policy_path, policy, graph, build, board, len(inputs), len(results)))
            for index in range(len(results), len(inputs)):
                result = measure_one(index, inputs[index], labels[index])
                log.append(image_record(run_id, result))
                results.append(result)
                on_image(result)
            stats = dict(device.stats)
            spent = spent_since(spent_before, device.seconds)
            measured = results[len(resume[1]) if resume else 0:]
    except (HarnessError, KeyboardInterrupt) as error:  # after open_device named a dead target
        log_error(log, run_id, len(results), error)
        raise
    report = summarize(policy, graph, board, build, info, results)
    report["link_time"] = link_time(spent, sum(r.ticks for r in measured), info, max(1, len(measured)),
                                    session.bytes_loaded - loaded_before)
    return finish(log, run_id, report, results, stats)


def prior_results(resume: tuple[dict, list[dict]] | None, policy: Policy, graph: Graph, build: BuildResult,
                  n_images: int) -> tuple[list[ImageResult], str]:
    """The images already measured and the run id: a resumed run's (checked to match), or none and a new id."""
    if resume is None:
        return [], uuid.uuid4().hex[:12]
    _check_resumable(resume[0], policy, graph, build.key[:16], n_images)
    return [_recorded(record) for record in resume[1]], resume[0]["run_id"]


def start_record(run_id: str, policy_path: str, policy: Policy, graph: Graph, build: BuildResult, board: Board,
                 n_images: int, first: int) -> dict:
    return {"event": "start", "run_id": run_id, "policy": policy_path, "policy_hash": policy.hash,
            "model_hash": graph.hash(), "firmware": build.key[:16], "board": board.name, "images": n_images,
            "random_weights": bool(graph.meta.get("random_weights")), "first": first}


def image_record(run_id: str, result: ImageResult) -> dict:
    return {"event": "image", "run_id": run_id, **asdict(result)}


def log_error(log: RunLog, run_id: str, next_index: int, error: BaseException) -> None:
    log.append({"event": "error", "run_id": run_id, "next": next_index,
                "message": str(error) or type(error).__name__})


def finish(log: RunLog, run_id: str, report: dict, results: list[ImageResult], link_stats: dict) -> dict:
    """The summary `report` completed with the run id, the re-measured runs and the link's
    counters, after the log's end record."""
    report["run_id"] = run_id
    report["remeasured"] = sum(r.remeasured for r in results)
    report["link"] = link_stats
    log.append({"event": "end", "run_id": run_id, "images": len(results), "bit_exact": report["bit_exact"],
                "remeasured": report["remeasured"]})
    return report


def _check_resumable(start: dict, policy: Policy, graph: Graph, firmware: str, n_images: int) -> None:
    """The interrupted run must be continued with the same policy, graph, firmware and count."""
    for key, now in (("policy_hash", policy.hash), ("model_hash", graph.hash()), ("firmware", firmware),
                     ("images", n_images)):
        if start.get(key) != now:
            raise HarnessError(f"--resume: the log's run has {key} {start.get(key)!r}, this run {now!r}: "
                               "it can only be continued with what it started with")


def _recorded(record: dict) -> ImageResult:
    return ImageResult(**{name: record[name] for name in ImageResult.__dataclass_fields__})


def summarize(policy: Policy, graph: Graph, board: Board, build: BuildResult, info: DeviceInfo,
              results: list[ImageResult]) -> dict:
    """The report: accuracy on device and host, bit-exactness, latency, per-layer cost, memory."""
    unit = TickUnit.of(info)
    totals = [r.ticks * unit.per_tick for r in results]
    per_layer = np.median(np.array([r.layer_ticks for r in results]), axis=0) * unit.per_tick
    layers = [layer_entry(graph, layer, unit, float(cost), float(per_layer.sum()))
              for layer, cost in zip(graph.layers, per_layer)]
    predicted = memory_report(graph)
    n = len(results)
    random_weights = bool(graph.meta.get("random_weights"))
    scored = not random_weights and all(r.label >= 0 for r in results)  # random inputs have no labels
    latency = {"unit": unit.name, "meaning": unit.meaning, "min": min(totals),
               "median": statistics.median(totals), "max": max(totals)}
    latency.update(latency_in_ms(latency["median"], unit, info, board))
    return {
        "policy": policy.name, "policy_hash": policy.hash, "model_hash": graph.hash(),
        "board": board.name, "firmware_board": info.board, "elf": str(build.elf_path),
        "images": n,
        "data": None if random_weights else policy.data,
        "random_weights": random_weights,
        **({"note": graph.meta.get("note", "random weights")} if random_weights else {}),
        "bit_exact": sum(r.bit_exact for r in results),
        "device_accuracy": sum(r.device_class == r.label for r in results) / n if scored else None,
        "host_accuracy": sum(r.host_class == r.label for r in results) / n if scored else None,
        "latency": latency,
        "per_image": totals,
        "layers": layers,
        "provenance": provenance(board, build.elf_path),
        "memory": {
            "flash_bytes": build.flash_bytes, "ram_bytes": build.ram_bytes,
            "flash_budget": board.budget.flash, "ram_budget": board.budget.ram,
            "predicted_flash_bytes": predicted.flash_bytes, "predicted_arena_bytes": predicted.arena_bytes,
            "predicted_weight_bytes": predicted.weight_bytes + predicted.param_bytes,
            "predicted_ram_bytes": predicted.ram_bytes, "work_buffer_bytes": predicted.work_buffer_bytes,
            "input_survives": predicted.input_survives,
        },
    }


def layer_entry(graph: Graph, layer, unit: TickUnit, cost: float, total: float) -> dict:
    """One layer of the report: its cost, share, MACs, bits and cost per MAC."""
    macs = graph.macs(layer)
    return {"name": layer.name, "op": layer.op, unit.name: cost, "share": cost / max(total, 1.0), "macs": macs,
            f"{unit.name}_per_mac": cost / macs if macs else None, "w_bits": layer.w_bits,
            "in_bits": graph.tensors[layer.input].bits, "out_bits": graph.tensors[layer.output].bits}


def latency_in_ms(median: float, unit: TickUnit, info: DeviceInfo, board: Board) -> dict:
    """Milliseconds: measured from cycles at the core clock, or, for instructions, an estimate at
    the clock of the hardware the board stands for, labelled as one."""
    if unit.name == "cycles":
        return {"median_ms": median / info.core_hz * 1e3}
    clock = board.clock_for_estimates
    return {"estimate_ms": median / clock * 1e3, "estimate_clock_hz": clock,
            "estimate_note": f"at {clock / 1e6:g} MHz if 1 instruction ≈ 1 cycle (estimate; the emulator "
                             "does not model the pipeline)"}
