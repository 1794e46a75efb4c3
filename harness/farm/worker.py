"""One board of the farm as a Ray actor: it starts the board's backend and runs jobs on it.

Jobs carry their firmware (the ELF's bytes, built once on the driver's host, so every board
runs the same image and a board's host needs no toolchain). The worker keeps the board
started while jobs use the same firmware. A job answers ("ok", result), ("lost", reason) when
the board is gone (the emulator died, the probe was unplugged, it did not start) and the job
must go to another board, or ("failed", message) when the job itself failed (it would on
every board).
"""
from __future__ import annotations

import os
import socket
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from harness.backends import get_backend, load_board
from harness.build.firmware import BuildResult
from harness.errors import HarnessError
from harness.ir.graph import Graph
from harness.link.device import board_info, open_device
from harness.link.protocol import Device, DeviceInfo
from harness.measure.profile import ProfiledGroup, profile_on_device
from harness.measure.run import ImageResult, Session, image_measurer, start_session

Outcome = tuple[str, object]
LOSS_GRACE_S = 2.0


@dataclass(frozen=True)
class Firmware:
    """An ELF to run: its cache key (the run's firmware digest), bytes and the model hash it must report."""

    key: str
    elf: bytes
    model_hash: str

    @classmethod
    def of(cls, build: BuildResult, model_hash: str) -> Firmware:
        return cls(build.key, build.elf_path.read_bytes(), model_hash)


@dataclass(frozen=True)
class MeasureJob:
    """Images `indices` (their inputs and labels) of a run of `graph`, measured as harness.measure.run does."""

    firmware: Firmware
    graph: Graph
    indices: list[int]
    inputs: np.ndarray
    labels: np.ndarray
    link_faults: str | None = None


@dataclass(frozen=True)
class Measured:
    """A MeasureJob's answer: which worker, what INFO said, the images, and the link's counters for them."""

    worker: str
    info: DeviceInfo
    results: list[ImageResult]
    link: dict


@dataclass(frozen=True)
class ProfileJob:
    firmware: Firmware
    group: list[Graph]


class BoardWorker:
    """The `number`-th board of kind `board_name` on this host (Ray places it by `board:<name>`)."""

    def __init__(self, board_name: str, number: int) -> None:
        self.board = load_board(board_name)
        self.name = f"{board_name}#{number}@{socket.gethostname()}"
        self._files = tempfile.TemporaryDirectory(prefix="mpq-farm-")
        self._stack = ExitStack()
        self._firmware: str | None = None
        self._device: Device | None = None
        self._session: Session | None = None

    def describe(self) -> dict:
        """Name, process id, and why the board cannot run here (its backend's tool missing), or None."""
        tools = get_backend(self.board.backend).tool_status()
        return {"name": self.name, "pid": os.getpid(), "problem": None if tools.present else tools.detail}

    def measure(self, job: MeasureJob) -> Outcome:
        def work() -> Measured:
            device = self._started(job.firmware, job.link_faults)
            if self._session is None or self._session.graph.hash() != job.graph.hash():
                self._session = start_session(device, job.graph, self.board, job.inputs[0])
            before = dict(device.stats)
            measure_one = image_measurer(self._session, job.inputs[0])
            results = [measure_one(index, image, label) for index, image, label in zip(job.indices, job.inputs, job.labels)]
            link = {key: value - before.get(key, 0) for key, value in device.stats.items()}
            return Measured(self.name, board_info(device.info(), self.board), results, link)
        return self._attempt(work)

    def profile(self, job: ProfileJob) -> Outcome:
        def work() -> ProfiledGroup:
            return profile_on_device(self._started(job.firmware, None), job.group)
        return self._attempt(work)

    def close(self) -> None:
        self._stop()
        self._files.cleanup()

    def _attempt(self, work: Callable[[], object]) -> Outcome:
        try:
            return "ok", work()
        except HarnessError as error:
            device = self._device  # None: the board did not start
            reason = _health_problem(device) if device is not None else None
            self._stop()
            if reason is not None:
                return "lost", f"{self.name}: {reason} ({error})"
            return ("lost" if device is None else "failed"), f"{self.name}: {error}"

    def _started(self, firmware: Firmware, link_faults: str | None) -> Device:
        """The board running `firmware` (started now unless it already runs it)."""
        if self._firmware == firmware.key and self._device is not None:
            return self._device
        self._stop()
        elf = Path(self._files.name) / f"{firmware.key}.elf"
        elf.write_bytes(firmware.elf)
        self._device = self._stack.enter_context(
            open_device(self.board, elf, expected_hash=firmware.model_hash, link_faults=link_faults))
        self._firmware = firmware.key
        return self._device

    def _stop(self) -> None:
        try:
            self._stack.close()
        except HarnessError:
            pass  # the board is being given up on; why was already reported
        self._stack = ExitStack()
        self._firmware, self._device, self._session = None, None, None


def _health_problem(device: Device) -> str | None:
    """Why the board is gone, or None when it stays healthy for LOSS_GRACE_S (a killed emulator's
    socket may reset a moment before its process is seen to exit)."""
    deadline = time.monotonic() + LOSS_GRACE_S
    while device.health_check is not None:
        reason = device.health_check()
        if reason is not None or time.monotonic() >= deadline:
            return reason
        time.sleep(0.05)
    return None
