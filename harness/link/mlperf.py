"""Our host side of the MLPerf Tiny DUT protocol (docs/mlperf-tiny.md), over any pyserial URL
(a pty path, /dev/ttyACM0, socket://...). It checks every answer's format strictly:

    with MlperfSession.open(url) as dut:
        dut.sync()                          # past the boot banner
        dut.name(); dut.profile()          # 'mpq-harness', ('mpq-harness ...', 'ic01')
        dut.load(raw_bytes)                 # db load N, then db HEX of 31 bytes at most
        result = dut.infer(20, 5)           # lap times and the m-results strings
"""
from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass

import numpy as np

from harness.errors import HarnessError

DB_MAX_BYTES = 31
READY = "m-ready"
_EMPTY = "e-[empty command]"
_RESULTS = re.compile(r"^m-results-\[(-?\d+\.\d{3}(?:,-?\d+\.\d{3})*)?\]$")


class MlperfError(HarnessError):
    """The DUT answered e-[...] (the message), or broke the protocol's format."""


@dataclass(frozen=True)
class InferResult:
    runs: int
    warmups: int
    start_us: int
    end_us: int
    results: tuple[str, ...]   # the m-results values as the device printed them
    lines: tuple[str, ...]     # the whole answer

    @property
    def elapsed_us(self) -> int:
        return self.end_us - self.start_us


def format_score(x: float) -> str:
    """A score as the device prints it: round(|x| * 1000) half away from zero, in doubles."""
    milli = x * 1000.0
    rounded = math.floor(abs(milli) + 0.5)
    sign = "-" if milli < 0 and rounded else ""
    return f"{sign}{rounded // 1000}.{rounded % 1000:03d}"


def expected_scores(output: np.ndarray, scale: float, zero_point: int, window: np.ndarray | None = None) -> tuple[str, ...]:
    """The m-results strings for an integer output [H, W, C]: dequantized values, or with the float32
    input `window` (ad01) its mean squared reconstruction error, summed in order as the device does."""
    values = [scale * float(int(q) - zero_point) for q in np.asarray(output).ravel()]
    if window is None:
        return tuple(format_score(v) for v in values)
    total = 0.0
    for x, y in zip(np.asarray(window, dtype=np.float32).ravel(), values):
        d = float(x) - y
        total += d * d
    return (format_score(total / len(values)),)


class MlperfSession:
    """One open serial connection to a DUT speaking the MLPerf Tiny protocol."""

    def __init__(self, port, timeout: float) -> None:
        self._port = port
        self.timeout = timeout
        self._pending = b""

    @classmethod
    def open(cls, url: str, baudrate: int = 115200, timeout: float = 10.0) -> "MlperfSession":
        import serial

        try:
            port = serial.serial_for_url(url, baudrate=baudrate, timeout=0.05)
        except (serial.SerialException, ValueError) as error:
            raise HarnessError(f"cannot open {url}: {error}") from None
        return cls(port, timeout)

    def __enter__(self) -> "MlperfSession":
        return self

    def __exit__(self, *exc) -> None:
        self._port.close()

    def sync(self, timeout: float | None = None) -> list[str]:
        """Skip whatever the DUT printed before (its boot banner, a half-read answer): send an empty
        command and read until its answer, e-[empty command] then m-ready; the lines skipped."""
        self._port.write(b"%")
        skipped: list[str] = []
        while True:
            lines = self._answer("an empty command", self.timeout if timeout is None else timeout)
            if lines[-2:] == [_EMPTY, READY]:
                return skipped + lines[:-2]
            skipped += lines

    def command(self, text: str, timeout: float | None = None) -> list[str]:
        """Send `text%` and return the answer's lines up to and including m-ready."""
        if len(text) > 80 or "%" in text:
            raise HarnessError(f"not a DUT command (at most 80 characters, no '%'): {text[:40]!r}")
        self._port.write(text.encode("ascii") + b"%")
        return self._answer(text, self.timeout if timeout is None else timeout)

    def send_raw(self, data: bytes, timeout: float | None = None) -> list[str]:
        """Send any bytes (the fuzz and error tests) and read one answer."""
        self._port.write(data)
        return self._answer(repr(data[:40]), self.timeout if timeout is None else timeout)

    def _answer(self, what: str, timeout: float) -> list[str]:
        lines: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            while b"\r\n" in self._pending:
                raw, self._pending = self._pending.split(b"\r\n", 1)
                line = raw.decode(errors="replace")
                lines.append(line)
                if line == READY:
                    return lines
            if time.monotonic() > deadline:
                raise HarnessError(f"DUT: no m-ready within {timeout:g} s after {what} (got {lines[-3:]})")
            self._pending += self._port.read(max(1, self._port.in_waiting))  # returns with the first byte

    def checked(self, text: str, timeout: float | None = None) -> list[str]:
        """command(), raising MlperfError on an e-[...] line; the lines without m-ready."""
        lines = self.command(text, timeout)
        errors = [line for line in lines if line.startswith("e-[")]
        if errors:
            raise MlperfError(f"DUT refused {text[:30]!r}: {errors[0]}")
        return lines[:-1]

    def name(self) -> str:
        return _single(self.checked("name"), r"^m-name-dut-\[([^\]]+)\]$", "name")

    def profile(self) -> tuple[str, str]:
        lines = self.checked("profile")
        if len(lines) != 2:
            raise MlperfError(f"DUT: profile answered {lines}")
        return (_single(lines[:1], r"^m-profile-\[([^\]]+)\]$", "profile"),
                _single(lines[1:], r"^m-model-\[([^\]]+)\]$", "profile"))

    def load(self, data: bytes) -> None:
        """db load N, then db commands of at most 31 bytes; the last answers m-load-done."""
        announced = _single(self.checked(f"db load {len(data)}"), r"^m-\[Expecting (\d+) bytes\]$", "db load")
        if int(announced) != len(data):
            raise MlperfError(f"DUT expects {announced} bytes, {len(data)} announced")
        for start in range(0, len(data), DB_MAX_BYTES):
            lines = self.checked("db " + data[start:start + DB_MAX_BYTES].hex())
            last = start + DB_MAX_BYTES >= len(data)
            if lines != (["m-load-done"] if last else []):
                raise MlperfError(f"DUT: db at byte {start} answered {lines}")

    def infer(self, runs: int, warmups: int, timeout: float = 600.0) -> InferResult:
        lines = self.checked(f"infer {runs} {warmups}", timeout)
        pattern = [f"m-warmup-start-{warmups}", "m-warmup-done", f"m-infer-start-{runs}",
                   r"m-lap-us-(\d+)", r"m-lap-us-(\d+)", "m-infer-done", _RESULTS.pattern[1:-1]]
        if len(lines) != len(pattern):
            raise MlperfError(f"DUT: infer answered {len(lines)} lines, the protocol has {len(pattern)}: {lines}")
        matches = []
        for line, expected in zip(lines, pattern):
            match = re.fullmatch(expected, line)
            if match is None:
                raise MlperfError(f"DUT: infer line {line!r} is not {expected!r}")
            matches.append(match)
        values = matches[6].group(1)
        return InferResult(runs, warmups, int(matches[3].group(1)), int(matches[4].group(1)),
                           tuple(values.split(",")) if values else (), tuple(lines))


def _single(lines: list[str], pattern: str, what: str) -> str:
    if len(lines) != 1 or not re.match(pattern, lines[0]):
        raise MlperfError(f"DUT: {what} answered {lines}, expected {pattern}")
    return re.match(pattern, lines[0]).group(1)
