"""`harness measure`: run a policy's firmware on a board over N test images and check every
output bit-exactly against the host reference.

Each image's result is appended to a JSONL log (flushed and fsynced) as soon as it is known,
so a crash, a dead emulator or Ctrl-C never loses what was already measured.
"""
from __future__ import annotations

import json
import os
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from harness.ir import reference
from harness.boards import Board
from harness.build.firmware import BuildResult
from harness.link.device import board_info, open_device, pack_tensor, unpack_tensor
from harness.errors import HarnessError
from harness.build.firmware import build_graphs
from harness.ir.graph import Graph
from harness.quantize.lower import structural_graph
from harness.ir.memory import memory_report
from harness.policy import Policy
from harness.measure.provenance import provenance
from harness.link.protocol import DeviceInfo


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


@dataclass(frozen=True)
class TickUnit:
    """What measured numbers are reported in: core cycles on hardware, instructions in emulators."""

    name: str
    per_tick: float
    meaning: str

    @classmethod
    def of(cls, info: DeviceInfo) -> "TickUnit":
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


def measure(policy: Policy, graph: Graph, board: Board, inputs: np.ndarray, labels: np.ndarray, log_path: Path,
            on_image: Callable[[ImageResult], None] = lambda result: None) -> dict:
    """Build, start, stream the integer `inputs` [N, H, W, C] (labels -1 when there are none),
    and return the report (a JSON-able dict)."""
    build = build_policy_firmware(graph, policy, board)
    n_images = len(inputs)
    in_tensor, out_tensor = graph.tensors[graph.input], graph.tensors[graph.output]
    results: list[ImageResult] = []
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a") as log, open_device(board, build.elf_path, expected_hash=graph.hash()) as device:
        info = board_info(device.info(), board)
        _append(log, {"event": "start", "policy": policy.name, "policy_hash": policy.hash,
                      "model_hash": graph.hash(), "board": board.name, "images": n_images})
        for index in range(n_images):
            device.load(0, pack_tensor(inputs[index], in_tensor))
            run = device.run(0)
            if not run.ok:
                raise HarnessError(f"firmware reported status {run.status} running image {index}")
            device_out = unpack_tensor(device.read_output(0), out_tensor)
            host_out = reference.predict(graph, inputs[index])
            result = ImageResult(index, int(labels[index]), int(device_out.argmax()), int(host_out.argmax()),
                                 bool(np.array_equal(device_out, host_out)), run.total_ticks, list(run.layer_ticks))
            _append(log, {"event": "image", **asdict(result)})
            results.append(result)
            on_image(result)
    return summarize(policy, graph, board, build, info, results)


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


def _append(log, record: dict) -> None:
    log.write(json.dumps(record) + "\n")
    log.flush()
    os.fsync(log.fileno())
