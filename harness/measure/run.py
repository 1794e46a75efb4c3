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
    layers = [{"name": layer.name, "op": layer.op, unit.name: float(cost),
               "share": float(cost / max(per_layer.sum(), 1))}
              for layer, cost in zip(graph.layers, per_layer)]
    predicted = memory_report(graph)
    n = len(results)
    random_weights = bool(graph.meta.get("random_weights"))
    latency = {"unit": unit.name, "meaning": unit.meaning, "min": min(totals),
               "median": statistics.median(totals), "max": max(totals)}
    if unit.name == "cycles":
        latency["median_ms"] = latency["median"] / info.core_hz * 1e3
    return {
        "policy": policy.name, "policy_hash": policy.hash, "model_hash": graph.hash(),
        "board": board.name, "firmware_board": info.board, "elf": str(build.elf_path),
        "images": n,
        "data": None if random_weights else policy.data,
        "random_weights": random_weights,
        **({"note": graph.meta.get("note", "random weights")} if random_weights else {}),
        "bit_exact": sum(r.bit_exact for r in results),
        "device_accuracy": None if random_weights else sum(r.device_class == r.label for r in results) / n,
        "host_accuracy": None if random_weights else sum(r.host_class == r.label for r in results) / n,
        "latency": latency,
        "per_image": totals,
        "layers": layers,
        "memory": {
            "flash_bytes": build.flash_bytes, "ram_bytes": build.ram_bytes,
            "flash_budget": board.budget.flash, "ram_budget": board.budget.ram,
            "predicted_flash_bytes": predicted.flash_bytes, "predicted_arena_bytes": predicted.arena_bytes,
            "predicted_ram_bytes": predicted.ram_bytes, "work_buffer_bytes": predicted.work_buffer_bytes,
            "input_survives": predicted.input_survives,
        },
    }


def _append(log, record: dict) -> None:
    log.write(json.dumps(record) + "\n")
    log.flush()
    os.fsync(log.fileno())
