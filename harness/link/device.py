"""One session API over every backend: (board, ELF) -> a started target and a protocol session.

    with open_device(board, elf, expected_hash=graph.hash()) as device:
        device.load(0, packed_input); result = device.run(0)

The backend starts (or flashes) the target, the protocol talks to it; a failure while the
target is gone is reported as the target's death (e.g. "QEMU exited"), in one line.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import numpy as np

from harness.backends import open_link
from harness.boards import Board
from harness.errors import HarnessError
from harness.ir.graph import Tensor
from harness.ir.packing import pack, unpack
from harness.link.protocol import BootProblem, CounterKind, Device, DeviceInfo, PerfResult, RunResult
from harness.link.protocol_fault import fault_url

HELLO_TIMEOUT_S = 5.0


@contextmanager
def open_device(board: Board, elf_path: Path, *, expected_hash: str | None = None,
                timeout: float = 0.25, run_timeout: float = 60.0, retry_budget: float = 30.0,
                link_faults: str | None = None) -> Iterator[Device]:
    """Start `elf_path` on `board` and yield a protocol session to it; stop the target after.

    With `expected_hash`, refuse a firmware built from another graph. The backend's health
    check (emulator alive and not stopped, probe attached) runs before every retry. With
    `link_faults` (protocol_fault options, e.g. "rate=0.01&seed=1") an emulator's socket link
    goes through the seeded fault injector.
    """
    with open_link(board, elf_path) as link:
        url = link.url
        if link_faults is not None:
            try:
                url = fault_url(link.url, link_faults)
            except ValueError as error:
                raise HarnessError(f"--link-faults: {error}") from None
        try:
            with Device.open(url, baudrate=getattr(board.backend_settings, "baud", 115200),
                             connect_timeout=5.0, timeout=timeout, run_timeout=run_timeout,
                             retry_budget=retry_budget, health_check=link.health) as device:
                try:
                    if not link.hello_consumed:
                        device.wait_hello(HELLO_TIMEOUT_S)
                except BootProblem:
                    raise
                except HarnessError:
                    if link.health() is not None:
                        raise
                    # the hello may have gone out before we connected; INFO below decides
                device.info()
                if expected_hash is not None:
                    device.require_model_hash(expected_hash)
                yield device
        except HarnessError as error:
            reason = link.failure()
            if reason is not None and reason not in str(error):
                raise HarnessError(f"{link.description}: {reason} ({error})") from None
            raise


MAX_REMEASURE = 5  # runs of one input whose timing the link disturbed, before giving up on it
T = TypeVar("T", RunResult, PerfResult)


def undisturbed(measure: Callable[[], T], what: str) -> tuple[T, int]:
    """`measure()` (a RUN or PERF) repeated while the device says the link disturbed its timed
    region (docs/protocol.md, "Disturbed runs"), at most MAX_REMEASURE times; the result and
    how many runs were measured again. HarnessError when every one was disturbed."""
    for again in range(MAX_REMEASURE + 1):
        result = measure()
        if not result.disturbed:
            return result, again
    raise HarnessError(f"{what}: the link disturbed the timing of {MAX_REMEASURE + 1} runs in a row "
                       f"({result.irqs} interrupts, {result.rx_bytes} bytes received during the last)")


def board_info(info: DeviceInfo, board: Board) -> DeviceInfo:
    """INFO as `board` means it: the board file says what a tick counts. One ELF reports core
    cycles on the Nucleo and also runs in Renode, whose DWT counts instructions (renode-h743)."""
    return dataclasses.replace(info, counter_kind=CounterKind(board.counter.protocol_kind))


def pack_tensor(values: np.ndarray, tensor: Tensor) -> bytes:
    """The bytes the firmware expects for an unpacked tensor [H, W, C]."""
    if tensor.bits == 32:
        return np.asarray(values, dtype="<i4").tobytes()
    return pack(values, tensor.bits, signed=False).tobytes()


def unpack_tensor(raw: bytes, tensor: Tensor) -> np.ndarray:
    """An output tensor read from the firmware, unpacked to int32 [H, W, C]."""
    if tensor.bits == 32:
        return np.frombuffer(raw, dtype="<i4").astype(np.int32).reshape(tensor.shape)
    h, w, c = tensor.shape
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(h, w, -1)
    return unpack(rows, tensor.bits, c, signed=False)
