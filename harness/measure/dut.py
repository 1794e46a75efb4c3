"""A model running on a board as a test's device under test: one call per inference, every output
checked against the host reference unless asked not to.

    with open_dut(board, graph) as dut:
        output, ticks, layer_ticks = dut.infer(x)   # x: unpacked input [H, W, C]
        perf = dut.perf(10)                          # PERF: 10 timed runs of the last input
        dut.info                                     # INFO, with the board file's tick meaning

The pytest plugin's `dut` fixture yields one of these (harness/pytest_plugin.py).
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np

from harness.boards import Board
from harness.build.firmware import build_graphs
from harness.errors import HarnessError
from harness.ir import reference
from harness.ir.graph import Graph, Tensor
from harness.link.device import board_info, open_device, pack_tensor, unpack_tensor
from harness.link.protocol import Device, DeviceInfo, PerfResult


class Inference(NamedTuple):
    """One RUN: the unpacked output tensor, its total ticks and the ticks of every layer."""

    output: np.ndarray
    ticks: int
    layer_ticks: tuple[int, ...]


class ReferenceMismatch(AssertionError):
    """The device's output differs from the host reference (a test failure, not a usage error)."""


class Dut:
    """A live session with firmware holding one graph (model index 0)."""

    def __init__(self, device: Device, graph: Graph, board: Board, check: bool = True) -> None:
        self.device, self.graph, self.board, self.check = device, graph, board, check
        self.input: Tensor = graph.tensors[graph.input]
        self.output: Tensor = graph.tensors[graph.output]
        self._loaded: bytes | None = None  # the packed input of the last infer

    @property
    def info(self) -> DeviceInfo:
        """INFO as the board file means it (what a tick counts)."""
        return board_info(self.device.info(), self.board)

    def infer(self, x: np.ndarray, check: bool | None = None) -> Inference:
        """Load `x`, RUN, read the output; ReferenceMismatch when it differs from the host
        reference (with `check`, default the Dut's)."""
        x = np.asarray(x)
        if x.shape != tuple(self.input.shape):
            raise HarnessError(f"input of shape {x.shape}, the model takes {tuple(self.input.shape)}")
        self._loaded = pack_tensor(x, self.input)
        self.device.load(0, self._loaded)
        run = self.device.run(0)
        if not run.ok:
            raise HarnessError(f"firmware on {self.device.name} reported status {run.status} for RUN")
        output = unpack_tensor(self.device.read_output(0), self.output)
        if self.check if check is None else check:
            expected = reference.predict(self.graph, x)
            differ = np.flatnonzero(output.ravel() != expected.ravel())
            if differ.size:
                first = int(differ[0])
                raise ReferenceMismatch(
                    f"device output differs from the host reference in {differ.size} of {output.size} values "
                    f"(first at flat index {first}: device {output.ravel()[first]}, host {expected.ravel()[first]})")
        return Inference(output, run.total_ticks, run.layer_ticks)

    def perf(self, n: int) -> PerfResult:
        """PERF: `n` timed runs of the input of the last infer, no I/O inside a timed run. A model
        whose arena reuses its input (deployable RAM) consumes it, so it is loaded again before
        each of its runs (outside the timed region) and the n one-run PERFs are combined."""
        if not self.device.model(0).input_reused:
            return self._checked(self.device.perf(0, n))
        if self._loaded is None:
            raise HarnessError("dut.perf: call dut.infer(x) first (this model consumes its input, so PERF reloads it)")
        if n < 1:
            raise HarnessError(f"dut.perf: n must be at least 1, got {n}")
        runs = []
        for _ in range(n):
            self.device.load(0, self._loaded)
            runs.append(self._checked(self.device.perf(0, 1)))
        return PerfResult(0, n, sum(r.total_ticks for r in runs), min(r.min_ticks for r in runs),
                          max(r.max_ticks for r in runs), sum(r.irqs for r in runs), sum(r.rx_bytes for r in runs))

    def _checked(self, result: PerfResult) -> PerfResult:
        if not result.ok:
            raise HarnessError(f"firmware on {self.device.name} reported status {result.status} for PERF")
        return result


@contextmanager
def open_dut(board: Board, graph: Graph, policy_hash: str = "", check: bool = True) -> Iterator[Dut]:
    """Build (cached) and start firmware for `graph` on `board`; the Dut is valid inside the with-block."""
    build = build_graphs([graph], board, policy_hash)
    with open_device(board, build.elf_path, expected_hash=graph.hash()) as device:
        yield Dut(device, graph, board, check)
