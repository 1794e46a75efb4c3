"""Host side of the UART protocol (docs/protocol.md) over any pyserial URL.

`Device` talks to one firmware: every request has a deadline and is repeated (same seq) when
its answer is missing or corrupt, with exponential backoff and jitter, within a retry budget
counted in seconds; LOAD and READ chunks shrink after repeated failures; a health check of the
target (is the emulator alive, not stopped?) runs before every retry and during long waits.
Stray, stale and corrupt frames are skipped. Every failure is a HarnessError naming the command
and the link, with device-supplied text reduced to printable ASCII.

    with Device.open("socket://127.0.0.1:4321") as device:
        info = device.info()
        device.load(0, packed_input)
        result = device.run(0)            # status, total ticks, per-layer ticks
        output = device.read_output(0)
"""
from __future__ import annotations

import logging
import random
import struct
import time
import zlib
from collections import deque
from dataclasses import dataclass
from enum import IntEnum
from typing import Callable, Protocol

import serial

from harness.errors import HarnessError

log = logging.getLogger(__name__)

PROTOCOL_VERSION = 3  # 3: INFO carries the receive buffer, LOAD frames go in a window with cumulative answers
MODEL_FLAG_INPUT_REUSED = 0x01  # MODEL answer flags: a run consumes the loaded input
SYNC = 0xA5
MAX_PAYLOAD = 1024  # the spec's bound; INFO reports the device's own
ANSWER = 0x80
HELLO = 0xC0
ERROR = 0xFF
_HEADER = struct.Struct("<BBBH")  # sync, type, seq, len
_CRC = struct.Struct("<I")
_LOAD_ACK = struct.Struct("<I")
_RUN_ANSWER = struct.Struct("<iQHII")  # status, total ticks, n_layers, irqs, rx bytes
_PERF_ANSWER = struct.Struct("<iQQQII")  # status, total, min, max ticks, irqs, rx bytes
FRAME_OVERHEAD = _HEADER.size + _CRC.size
LOAD_HEADER_BYTES = 5  # u8 model, u32 offset
POLL_S = 0.05  # longest single blocking read
IDLE_GAP_S = 0.1  # a frame whose bytes stop this long is given up (its rest is not coming)
HEALTH_EVERY_S = 1.0  # the target's health is checked this often while an answer is awaited
MAX_TIMEOUT_S = 4.0  # a per-try deadline doubles after each silent try, up to this (or the first)
BACKOFF_S = 0.01  # pause before the second try, doubling up to MAX_BACKOFF_S, times a jitter
MAX_BACKOFF_S = 0.5
SHRINK_AFTER = 2  # failed tries of one LOAD/READ chunk before the chunk size is halved
RATE_MARGIN = 2.0  # a LOAD window's deadline allows its bytes this many times the link's observed time per byte
MAX_SECONDS_PER_BYTE = 1e-3  # the slowest link time per byte deadlines allow for (8 kbaud)
MIN_CHUNK = 16
TEXT_LIMIT = 200  # characters of device-supplied text kept


class Command(IntEnum):
    INFO = 0x01
    MODEL = 0x02
    LOAD = 0x03
    RUN = 0x04
    READ = 0x05
    PERF = 0x06
    FILL = 0x07


class ErrorCode(IntEnum):
    BAD_CRC = 1
    BAD_LEN = 2
    UNKNOWN_TYPE = 3
    BAD_ARG = 4
    RUN_FAILED = 5
    FAULT = 6


class CounterKind(IntEnum):
    """What one tick is (docs/protocol.md, "Ticks, cycles and instructions")."""

    CORE_CYCLES = 0
    VIRTUAL_TIME = 1  # QEMU -icount: 1e9 / counter_hz instructions per tick
    INSTRUCTIONS = 2


class ReadWhat(IntEnum):
    OUTPUT = 0
    LAYER_TICKS = 1


# ---------------------------------------------------------------------------------------------
# Frames


@dataclass(frozen=True)
class Frame:
    type: int
    seq: int
    payload: bytes


def encode_frame(frame_type: int, seq: int, payload: bytes = b"") -> bytes:
    """The bytes of one frame; CRC-32 over type, seq, len and payload."""
    if len(payload) > 0xFFFF:
        raise ValueError(f"payload of {len(payload)} bytes does not fit a frame")
    body = _HEADER.pack(SYNC, frame_type, seq, len(payload))[1:] + payload
    return bytes([SYNC]) + body + _CRC.pack(zlib.crc32(body))


class FrameDecoder:
    """Byte stream -> frames. A frame that fails (bad CRC, length above the bound) is skipped
    by resuming the scan at the byte after its sync byte, so a frame starting inside it is
    still found; at most one maximal frame is ever held."""

    def __init__(self, max_payload: int = MAX_PAYLOAD) -> None:
        self.max_payload = max_payload
        self.skipped_frames = 0  # failed candidates, for diagnostics
        self.rejected: list[tuple[int, int]] = []  # (type, seq) of complete frames whose CRC failed
        self._buf = bytearray()

    @property
    def partial(self) -> bool:
        """True while part of a frame is held."""
        return bool(self._buf)

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        return self._parse()

    def flush_stale(self) -> list[Frame]:
        """Give up on the frame being assembled (its rest is not coming) and rescan what
        follows its sync byte; returns any complete frames found there."""
        frames: list[Frame] = []
        while self._buf:
            del self._buf[0]
            self.skipped_frames += 1
            frames += self._parse()
        return frames

    def _parse(self) -> list[Frame]:
        frames = []
        buf = self._buf
        while True:
            start = buf.find(SYNC)
            if start < 0:
                buf.clear()
                return frames
            del buf[:start]
            if len(buf) < _HEADER.size:
                return frames
            _, frame_type, seq, length = _HEADER.unpack_from(buf)
            if length > self.max_payload:
                del buf[0]
                self.skipped_frames += 1
                continue
            total = _HEADER.size + length + _CRC.size
            if len(buf) < total:
                return frames
            body = bytes(buf[1:_HEADER.size + length])
            (crc,) = _CRC.unpack_from(buf, _HEADER.size + length)
            if zlib.crc32(body) == crc:
                frames.append(Frame(frame_type, seq, body[_HEADER.size - 1:]))
                del buf[:total]
            else:
                del buf[0]
                self.skipped_frames += 1
                self.rejected = (self.rejected + [(frame_type, seq)])[-8:]


# ---------------------------------------------------------------------------------------------
# Answers


@dataclass(frozen=True)
class TickCounter:
    """A device's tick counter: its kind and rate."""

    kind: CounterKind
    hz: int

    @property
    def tick_meaning(self) -> str:
        """What a tick is, in words a report can print."""
        if self.kind == CounterKind.CORE_CYCLES:
            return f"core clock cycles at {self.hz / 1e6:g} MHz"
        if self.kind == CounterKind.VIRTUAL_TIME:
            return f"emulator virtual time at {self.hz / 1e6:g} MHz ({self.instructions_per_tick:g} instructions per tick)"
        return "emulator instructions"

    @property
    def instructions_per_tick(self) -> float | None:
        """Instructions per tick when ticks count instructions (emulators), else None."""
        if self.kind == CounterKind.VIRTUAL_TIME:
            return 1e9 / self.hz
        if self.kind == CounterKind.INSTRUCTIONS:
            return 1.0
        return None


@dataclass(frozen=True)
class DeviceInfo:
    """The INFO answer."""

    protocol: int
    n_models: int
    counter_kind: CounterKind
    counter_hz: int
    core_hz: int
    arena_bytes: int
    max_payload: int
    rx_buffer: int  # bytes of LOAD frames the device holds unanswered: the host's window
    model_hash: str
    policy_hash: str
    board: str

    _FIXED = struct.Struct("<BBBxIIIHI16s16s")

    @classmethod
    def parse(cls, payload: bytes) -> DeviceInfo:
        fixed = _unpack(cls._FIXED, payload, "INFO", at_least=True)
        protocol, n_models, kind, counter_hz, core_hz, arena, max_payload, rx_buffer, model_hash, policy_hash = fixed
        if protocol != PROTOCOL_VERSION:
            raise HarnessError(f"device speaks protocol version {protocol}, this host speaks {PROTOCOL_VERSION}")
        if kind not in CounterKind.__members__.values():
            raise HarnessError(f"device reports unknown counter kind {kind}")
        if max_payload <= LOAD_HEADER_BYTES:
            raise HarnessError(f"device reports max_payload {max_payload}, too small to LOAD anything")
        return cls(protocol, n_models, CounterKind(kind), counter_hz, core_hz, arena, max_payload, rx_buffer,
                   _text(model_hash), _text(policy_hash), _text(payload[cls._FIXED.size:]))

    @property
    def counter(self) -> TickCounter:
        return TickCounter(self.counter_kind, self.counter_hz)

    @property
    def tick_meaning(self) -> str:
        return self.counter.tick_meaning

    @property
    def instructions_per_tick(self) -> float | None:
        return self.counter.instructions_per_tick


@dataclass(frozen=True)
class ModelInfo:
    """The MODEL answer."""

    index: int
    name: str
    in_shape: tuple[int, int, int]
    in_bits: int
    out_shape: tuple[int, int, int]
    out_bits: int
    in_bytes: int
    out_bytes: int
    n_layers: int
    input_reused: bool = False  # flags bit 0: a run consumes the input (LOAD before every RUN, PERF n = 1)

    _FIXED = struct.Struct("<HHHBHHHBIIHB")

    @classmethod
    def parse(cls, index: int, payload: bytes) -> ModelInfo:
        ih, iw, ic, ib, oh, ow, oc, ob, in_bytes, out_bytes, n_layers, flags = _unpack(
            cls._FIXED, payload, "MODEL", at_least=True)
        return cls(index, _text(payload[cls._FIXED.size:]), (ih, iw, ic), ib, (oh, ow, oc), ob, in_bytes,
                   out_bytes, n_layers, bool(flags & MODEL_FLAG_INPUT_REUSED))


class _TimedAnswer:
    """What RUN and PERF answers share: a status, and what the link did to the timed region
    (interrupts taken, UART bytes received)."""

    status: int
    irqs: int
    rx_bytes: int

    @property
    def ok(self) -> bool:
        return self.status == 0

    @property
    def disturbed(self) -> bool:
        """True when something interrupted the timed region: its ticks are not the model's alone."""
        return self.irqs != 0 or self.rx_bytes != 0


@dataclass(frozen=True)
class RunResult(_TimedAnswer):
    """One RUN: the model's status (0 = every kernel succeeded), its ticks, and what the link
    did to it: interrupts taken and UART bytes received inside the timed region."""

    status: int
    total_ticks: int
    layer_ticks: tuple[int, ...]
    irqs: int = 0
    rx_bytes: int = 0


@dataclass(frozen=True)
class PerfResult(_TimedAnswer):
    """PERF over `runs` runs of the loaded input."""

    status: int
    runs: int
    total_ticks: int
    min_ticks: int
    max_ticks: int
    irqs: int = 0
    rx_bytes: int = 0

    @property
    def mean_ticks(self) -> float:
        return self.total_ticks / self.runs


class DeviceError(HarnessError):
    """The device answered a request with an error frame."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class BootProblem(HarnessError):
    """The hello frame says the board runs degraded (e.g. its PLL did not lock): not measurable."""


def _hello_hash(payload: bytes, name: str) -> str:
    """The model hash of a hello frame; BootProblem when the firmware appended a problem to it."""
    hash_text, _, problem = _text(payload).partition(" ")
    if problem:
        raise BootProblem(f"the firmware on {name} reports at boot: {problem}")
    return hash_text


def _check_settings(timeout: float, retries: int | None, run_timeout: float, retry_budget: float) -> None:
    if timeout <= 0 or run_timeout <= 0 or retry_budget <= 0 or (retries is not None and retries < 1):
        raise HarnessError(f"link settings: timeouts and the retry budget must be positive and retries at least 1 "
                           f"(got timeout={timeout}, run_timeout={run_timeout}, retry_budget={retry_budget}, "
                           f"retries={retries})")


def _model_byte(index: int) -> int:
    """The protocol's one-byte model index."""
    if not 0 <= index <= 255:
        raise HarnessError(f"model index {index} out of range: the protocol addresses models 0 .. 255")
    return index


def _unpack(layout: struct.Struct, payload: bytes, what: str, at_least: bool = False) -> tuple:
    if len(payload) < layout.size or (not at_least and len(payload) != layout.size):
        raise HarnessError(f"malformed {what} answer: {len(payload)} bytes, expected {layout.size}")
    return layout.unpack_from(payload)


def _text(raw: bytes) -> str:
    return device_text(raw.rstrip(b"\0"))


def device_text(raw: bytes | str, limit: int = TEXT_LIMIT) -> str:
    """Text a device supplied, safe for a one-line error or a report: printable ASCII only
    (anything else becomes '?'), at most `limit` characters ('...' marks a cut)."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", errors="replace")
    text = "".join(chr(b) if 0x20 <= b < 0x7F else "?" for b in raw[:limit + 1])
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _error_text(payload: bytes) -> tuple[int, str]:
    if not payload:
        return 0, "(empty error frame)"
    code = payload[0]
    name = ErrorCode(code).name if code in ErrorCode.__members__.values() else f"error {code}"
    return code, f"{name}: {_text(payload[1:])}"


# ---------------------------------------------------------------------------------------------
# The device


class Port(Protocol):
    """What Device needs of a pyserial port (or a test double)."""

    def write(self, data: bytes) -> int | None: ...

    def read(self, size: int = 1) -> bytes: ...

    @property
    def in_waiting(self) -> int: ...

    def close(self) -> None: ...


class _Failures(Exception):
    """A request failed `max_failures` tries: the caller changes something (a smaller chunk)."""


HealthCheck = Callable[[], "str | None"]  # why the target cannot answer (one line), or None


class Device:
    """A session with one firmware over an open port. Use as a context manager (closes it).

    `timeout` is the first try's answer deadline for ordinary requests (`run_timeout` for RUN
    and PERF); a try that hears nothing doubles it (up to MAX_TIMEOUT_S, or the first deadline
    if that is longer). A request is given up `retry_budget` seconds after its first deadline
    (or after `retries` tries, if given). `health_check` is asked before every retry and every HEALTH_EVERY_S of waiting.
    """

    def __init__(self, port: Port, name: str, *, timeout: float = 0.25, retries: int | None = None,
                 run_timeout: float = 30.0, retry_budget: float = 30.0, health_check: HealthCheck | None = None,
                 seed: int | None = None, seconds_per_byte: float = 0.0) -> None:
        _check_settings(timeout, retries, run_timeout, retry_budget)
        self.name = name
        self.timeout = timeout
        self.retries = retries
        self.run_timeout = run_timeout
        self.retry_budget = retry_budget
        self.health_check = health_check
        self.hello: str | None = None  # model hash of the last hello frame seen
        self.port = port
        # requests, frames sent (tries) and good frames received, and why tries failed
        self.stats = {"requests": 0, "tries": 0, "frames_in": 0, "timeouts": 0, "corrupt": 0, "bad_crc": 0, "gaps": 0}
        # the link's time per byte: from the baud rate on a serial port, then from LOAD answers seen
        self.seconds_per_byte = seconds_per_byte
        self.seconds: dict[str, float] = {}  # host wall time spent in each command (LOAD: whole windows)
        self._random = random.Random(seed)
        self._decoder = FrameDecoder()
        self._frames: deque[Frame] = deque()
        self._seq = 0
        self._info: DeviceInfo | None = None
        self._models: dict[int, ModelInfo] = {}
        self._chunk: dict[Command, int] = {}  # current LOAD/READ chunk sizes (shrunk after failures)
        self._next_health = 0.0

    @classmethod
    def open(cls, url: str, *, baudrate: int = 115200, connect_timeout: float = 0.0, **settings) -> Device:
        """Open a pyserial URL ("/dev/ttyACM0", "socket://127.0.0.1:PORT"); keeps trying for
        connect_timeout seconds (an emulator may still be starting). `settings` go to Device."""
        timeout = settings.get("timeout", 0.25)
        _check_settings(timeout, settings.get("retries"), settings.get("run_timeout", 30.0),
                        settings.get("retry_budget", 30.0))
        deadline = time.monotonic() + connect_timeout
        while True:
            try:
                port = serial.serial_for_url(url, baudrate=baudrate, timeout=POLL_S, write_timeout=max(timeout, 2.0))
                break
            except (serial.SerialException, OSError, ValueError) as error:
                if time.monotonic() >= deadline:
                    raise HarnessError(f"cannot open {url}: {device_text(str(error))}") from None
                time.sleep(0.1)
        if "://" not in url:  # a serial device: 10 bits per byte (8N1) at the baud rate
            settings.setdefault("seconds_per_byte", 10.0 / baudrate)
        return cls(port, url, **settings)

    def __enter__(self) -> Device:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self.port.close()

    # -- requests -------------------------------------------------------------------------
    def info(self) -> DeviceInfo:
        """INFO, asked once and remembered (it cannot change without a reset)."""
        if self._info is None:
            self._info = DeviceInfo.parse(self.request(Command.INFO))
            self._decoder.max_payload = max(MAX_PAYLOAD, self._info.max_payload)
        return self._info

    def require_model_hash(self, expected: str) -> None:
        """Refuse a firmware built from another graph than the one to be measured."""
        actual = self.info().model_hash
        if actual != expected:
            raise HarnessError(f"firmware on {self.name} has model hash {actual}, expected {expected}: "
                               f"it was built from another graph; rebuild and flash it")

    def model(self, index: int) -> ModelInfo:
        """MODEL, asked once per index and remembered."""
        if index not in self._models:
            n_models = self.info().n_models
            if not 0 <= index < n_models:
                raise HarnessError(f"model index {index} out of range: firmware on {self.name} holds {n_models}")
            self._models[index] = ModelInfo.parse(index, self.request(Command.MODEL, bytes([index])))
        return self._models[index]

    def load(self, index: int, data: bytes) -> None:
        """Write the packed input as a window of LOAD frames (docs/protocol.md, "LOAD window")."""
        expected = self.model(index).in_bytes
        if len(data) != expected:
            raise HarnessError(f"input for model {index} has {len(data)} bytes, the firmware expects {expected}")
        started = time.monotonic()
        try:
            _LoadWindow(self, _model_byte(index), data).send()
        finally:
            self._spent(Command.LOAD, started)

    def fill(self, index: int, seed: int) -> bytes:
        """FILL: the device writes fill_bytes(seed) as the model's input (no input bytes on the
        link); returns those bytes, as the host computes them."""
        if not 0 <= seed <= 0xFFFFFFFF:
            raise HarnessError(f"FILL seed must be 0 .. 2^32-1, got {seed}")
        size = self.model(index).in_bytes
        (acked,) = _unpack(_LOAD_ACK, self.request(Command.FILL, struct.pack("<BI", _model_byte(index), seed)), "FILL")
        if acked != size:
            raise HarnessError(f"device on {self.name} answered FILL with {acked} bytes, the input has {size}")
        return fill_bytes(seed, size)

    def run(self, index: int, timeout: float | None = None) -> RunResult:
        """RUN once on the loaded input, then READ the per-layer ticks. `disturbed` on the
        result says whether the link interrupted the timed region (then measure it again)."""
        answer = self.request(Command.RUN, bytes([_model_byte(index)]), timeout or self.run_timeout)
        status, total, n_layers, irqs, rx_bytes = _unpack(_RUN_ANSWER, answer, "RUN")
        return RunResult(status, total, self._read_layer_ticks(index, n_layers), irqs, rx_bytes)

    def layer_ticks(self, index: int) -> tuple[int, ...]:
        """Per-layer ticks of the model's last RUN, or of the last run of its last PERF."""
        return self._read_layer_ticks(index, self.model(index).n_layers)

    def read_output(self, index: int) -> bytes:
        """The output tensor of the model's last run, as the firmware stores it."""
        return self._read(ReadWhat.OUTPUT, index, self.model(index).out_bytes)

    def perf(self, index: int, runs: int, timeout: float | None = None) -> PerfResult:
        """PERF: `runs` runs of the loaded input timed on the device, no I/O in between.
        The default deadline allows run_timeout per run."""
        if not 1 <= runs <= 0xFFFFFFFF:
            raise HarnessError(f"PERF run count must be 1 .. 2^32-1, got {runs}")
        if runs > 1 and self.model(index).input_reused:
            raise HarnessError(f"model {index}: its arena reuses the input, so PERF runs once per LOAD (asked {runs})")
        answer = self.request(Command.PERF, struct.pack("<BI", _model_byte(index), runs),
                              timeout or self.run_timeout * runs)
        status, total, low, high, irqs, rx_bytes = _unpack(_PERF_ANSWER, answer, "PERF")
        return PerfResult(status, runs, total, low, high, irqs, rx_bytes)

    def wait_hello(self, timeout: float) -> str:
        """Wait for the hello frame a device sends after reset; returns its model hash."""
        deadline = time.monotonic() + timeout
        while True:
            while self._frames:
                frame = self._frames.popleft()
                if frame.type == HELLO:
                    self.hello = _hello_hash(frame.payload, self.name)
                    return self.hello
                self._check_fault(frame, "hello")
            if not self._receive(deadline):
                raise HarnessError(f"no hello frame from {self.name} within {timeout:g} s "
                                   "(it is sent once after reset; output sent before a client connects may be lost)")

    def request(self, command: Command, payload: bytes = b"", timeout: float | None = None, *,
                max_failures: int | None = None) -> bytes:
        """Send one request and return its answer's payload, repeating it (same seq) on a
        missing or corrupt answer with backoff; HarnessError when the retry budget is spent or
        on an error answer. With `max_failures`, _Failures after that many failed tries."""
        command = Command(command)
        started = time.monotonic()
        try:
            return self._request(command, payload, timeout or self.timeout, max_failures)
        finally:
            self._spent(command, started)

    def _spent(self, command: Command, started: float) -> None:
        self.seconds[command.name] = self.seconds.get(command.name, 0.0) + time.monotonic() - started

    def _request(self, command: Command, payload: bytes, first: float, max_failures: int | None) -> bytes:
        seq = self._next_seq()
        frame = encode_frame(command, seq, payload)
        # a slow link gets the time its bytes take: the request and, for READ, the answer it asks for
        answer_bytes = struct.unpack_from("<H", payload, 6)[0] if command == Command.READ and len(payload) == 8 else 0
        first += RATE_MARGIN * self.seconds_per_byte * (len(frame) + FRAME_OVERHEAD + answer_bytes)
        started = time.monotonic()
        give_up = started + first + self.retry_budget
        try_timeout = first
        outcomes: list[str] = []
        self.stats["requests"] += 1
        while True:
            self.stats["tries"] += 1
            self._write(frame, command)
            answer = self._await_answer(command, [seq], time.monotonic() + try_timeout)
            if isinstance(answer, tuple):
                return answer[1]
            outcomes.append(answer)
            self.stats[answer] += 1
            tries = len(outcomes)
            if max_failures is not None and tries >= max_failures:
                raise _Failures()
            remaining = give_up - time.monotonic()
            if remaining <= 0 or (self.retries is not None and tries >= self.retries):
                raise HarnessError(f"device did not answer {command.name} on {self.name} after {tries} tries in "
                                   f"{time.monotonic() - started:.1f} s ({_tally(outcomes)})")
            self._require_healthy()
            if answer == "timeouts":  # a slow device gets longer; the budget still bounds the whole
                try_timeout = min(2 * try_timeout, max(MAX_TIMEOUT_S, first), remaining)
            log.debug("%s: repeating %s after %s (try %d)", self.name, command.name, answer, tries + 1)
            late = self._await_answer(command, [seq], time.monotonic() + self._backoff(tries), listen_only=True)
            if isinstance(late, tuple):  # the answer to an earlier try arrived during the pause
                return late[1]

    def _next_seq(self) -> int:
        self._seq = self._seq % 255 + 1  # 1..255; 0 is the device's own (hello, fault)
        return self._seq

    def _backoff(self, tries: int) -> float:
        """The pause before try `tries + 1`: doubling from BACKOFF_S up to MAX_BACKOFF_S, jittered."""
        return min(MAX_BACKOFF_S, BACKOFF_S * 2 ** (tries - 1)) * (0.5 + 0.5 * self._random.random())

    # -- internals ------------------------------------------------------------------------
    def _chunked(self, command: Command, size: int, largest: int, send: Callable[[int, int], int]) -> None:
        """Call send(offset, n) over `size` bytes in chunks of at most `largest`; a chunk that
        fails SHRINK_AFTER tries is halved (down to MIN_CHUNK), since a long frame is the one a
        noisy link breaks."""
        chunk = min(self._chunk.get(command, largest), largest)
        offset = 0
        while offset < size:
            n = min(chunk, size - offset)
            try:
                offset += send(offset, n)
            except _Failures:
                chunk = max(MIN_CHUNK, chunk // 2)
                self._chunk[command] = chunk
                log.debug("%s: %s chunks shrunk to %d bytes", self.name, command.name, chunk)

    def _read_request(self, payload: bytes) -> bytes:
        """A READ request that hands back _Failures while its chunk can still shrink."""
        shrinkable = struct.unpack_from("<H", payload, 6)[0] > MIN_CHUNK
        return self.request(Command.READ, payload, max_failures=SHRINK_AFTER if shrinkable else None)

    def _read_layer_ticks(self, index: int, n_layers: int) -> tuple[int, ...]:
        return struct.unpack(f"<{n_layers}Q", self._read(ReadWhat.LAYER_TICKS, index, 8 * n_layers))

    def _read(self, what: ReadWhat, index: int, size: int) -> bytes:
        data = bytearray()

        def receive(offset: int, n: int) -> int:
            answer = self._read_request(struct.pack("<BBIH", what, _model_byte(index), offset, n))
            if len(answer) != n:
                raise HarnessError(f"device on {self.name} answered READ with {len(answer)} bytes, expected {n}")
            data.extend(answer)
            return n

        self._chunked(Command.READ, size, self.info().max_payload, receive)
        return bytes(data)

    def _await_answer(self, command: Command, seqs: list[int], deadline: float,
                      listen_only: bool = False) -> tuple[int, bytes] | str:
        """(seq, payload) of the first answer to one of `seqs` (the requests in flight, oldest
        first), or why this try failed: "timeouts" (nothing in time), "corrupt" (the answer to
        the newest request failed its CRC) or "bad_crc" (the device saw one of ours corrupted).
        Other frames are skipped. `listen_only` (a backoff pause) waits the whole time for a
        late answer."""
        newest = (command | ANSWER, seqs[-1]) if seqs else None
        while True:
            while self._frames:
                frame = self._frames.popleft()
                self._check_fault(frame, command.name)
                if frame.type == ERROR and frame.seq in seqs:
                    code, text = _error_text(frame.payload)
                    if code == ErrorCode.BAD_CRC:
                        if not listen_only:
                            return "bad_crc"
                        continue
                    raise DeviceError(f"device on {self.name} refused {command.name}: {text}", code)
                if frame.type == command | ANSWER and frame.seq in seqs:
                    return frame.seq, frame.payload
                if frame.type == HELLO:
                    self.hello = _hello_hash(frame.payload, self.name)
                else:
                    log.debug("%s: skipping stray frame type 0x%02x seq %d", self.name, frame.type, frame.seq)
            corrupt = newest in self._decoder.rejected
            self._decoder.rejected.clear()
            if corrupt and not listen_only:
                return "corrupt"
            if not self._receive(deadline):
                self._frames.extend(self._decoder.flush_stale())
                if not self._frames:
                    return "timeouts"

    def _check_fault(self, frame: Frame, during: str) -> None:
        if frame.type == ERROR and frame.payload[:1] == bytes([ErrorCode.FAULT]):
            raise DeviceError(f"device on {self.name} crashed during {during}: {_error_text(frame.payload)[1]}",
                              ErrorCode.FAULT)

    def _require_healthy(self) -> None:
        """HarnessError naming the reason when the health check says the target cannot answer."""
        self._next_health = time.monotonic() + HEALTH_EVERY_S
        if self.health_check is not None:
            reason = self.health_check()
            if reason is not None:
                raise HarnessError(f"{self.name}: {reason}")

    def _receive(self, deadline: float) -> bool:
        """Read what arrives before the deadline into the frame queue; False if nothing came.
        A partial frame whose bytes stop for IDLE_GAP_S is given up (rescanned) at once."""
        last_byte = time.monotonic()
        while not self._frames:
            now = time.monotonic()
            if now >= deadline:
                return False
            if now >= self._next_health:
                self._require_healthy()
            if self._decoder.partial and now - last_byte > IDLE_GAP_S:
                self._frames.extend(self._decoder.flush_stale())
                if self._decoder.rejected:
                    return True
                continue
            try:
                data = self.port.read(max(1, self.port.in_waiting))
            except (serial.SerialException, OSError) as error:
                raise HarnessError(f"link {self.name} failed while reading: {device_text(str(error))}") from None
            if data:
                last_byte = time.monotonic()
                frames = self._decoder.feed(data)
                self.stats["frames_in"] += len(frames)
                self._frames.extend(frames)
                if self._decoder.rejected:
                    return True
        return True

    def _write(self, frame: bytes, command: Command) -> None:
        try:
            self.port.write(frame)
        except (serial.SerialException, OSError) as error:
            raise HarnessError(f"link {self.name} failed while sending {command.name}: {device_text(str(error))}") from None


class _LoadWindow:
    """One input sent as LOAD frames, several in flight (docs/protocol.md, "LOAD window"): at most
    the device's receive buffer of frame bytes is unanswered at a time; every answer carries the
    device's cumulative acknowledgement (the prefix of the input it holds). An answer below its
    frame's end, a BAD_CRC or a deadline without progress sends the frames again from the
    acknowledged byte (go-back-N, new seqs; answers to abandoned frames are ignored), after the
    backoff pause and health check, one frame at a time until the next progress; frames that fail
    SHRINK_AFTER times running are halved (down to MIN_CHUNK); the retry budget counts from the
    last progress."""

    def __init__(self, device: Device, model: int, data: bytes) -> None:
        self.device, self.model, self.data = device, model, data
        largest = device.info().max_payload - LOAD_HEADER_BYTES
        self.chunk = min(device._chunk.get(Command.LOAD, largest), largest)
        self.acked = 0  # the device's cumulative acknowledgement
        self.sent = 0  # end of the last frame sent in this round
        self.flight: dict[int, tuple[int, int]] = {}  # seq -> (frame end, furthest end sent by then), this round
        self.reach = 0  # the furthest end of any frame of this input sent
        self.outcomes: list[str] = []  # failed tries since the last progress
        self.single = False  # after a failure: one frame in flight until the next progress
        self._progress()

    def send(self) -> None:
        device = self.device
        while self.acked < len(self.data):
            self._fill()
            frame_bytes = self.chunk + LOAD_HEADER_BYTES + FRAME_OVERHEAD  # the oldest frame in flight, at most
            deadline = time.monotonic() + self.try_timeout + RATE_MARGIN * device.seconds_per_byte * frame_bytes
            answer = device._await_answer(Command.LOAD, list(self.flight), deadline)
            if isinstance(answer, tuple):
                self._answered(*answer)
            else:
                self._failed(answer)

    def _fill(self) -> None:
        """Send frames while the window has room (always at least one frame in flight)."""
        device, size = self.device, len(self.data)
        room = max(device.info().rx_buffer, self.chunk + LOAD_HEADER_BYTES + FRAME_OVERHEAD)
        while self.sent < size and not (self.flight and self.single):
            n = min(self.chunk, size - self.sent)
            if self.flight and self.sent - self.acked + n + (LOAD_HEADER_BYTES + FRAME_OVERHEAD) * (
                    len(self.flight) + 1) > room:
                return
            seq = device._next_seq()
            payload = struct.pack("<BI", self.model, self.sent) + self.data[self.sent:self.sent + n]
            device.stats["requests"] += 1
            device.stats["tries"] += 1
            device._write(encode_frame(Command.LOAD, seq, payload), Command.LOAD)
            self.sent += n
            self.reach = max(self.reach, self.sent)
            self.flight[seq] = (self.sent, self.reach)

    def _answered(self, seq: int, payload: bytes) -> None:
        device = self.device
        (acked,) = _unpack(_LOAD_ACK, payload, "LOAD")
        if acked > len(self.data):
            raise HarnessError(f"device on {device.name} acknowledged LOAD up to byte {acked}, "
                               f"beyond the input's {len(self.data)}")
        end, reach = self.flight[seq]
        if acked > reach:  # a prefix longer than this input's bytes sent by then: another input's
            acked = 0  # (this one's first frame was lost): start again at offset 0, which restarts it
        while next(iter(self.flight)) != seq:  # the device answers in order: earlier frames are done
            del self.flight[next(iter(self.flight))]
        del self.flight[seq]
        progressed = acked > self.acked
        if progressed and not self.outcomes and not self.single:  # only clean progress measures the link
            observed = (time.monotonic() - self.progress_at) / (acked - self.acked)
            device.seconds_per_byte = min(MAX_SECONDS_PER_BYTE, max(observed, device.seconds_per_byte / 2))
        if progressed:
            self.acked = acked
            self._progress()
        if acked < end:  # the device dropped this frame: one before it was lost
            self.acked = acked  # the device's word, also when a repeated first frame restarted it
            if progressed:
                device.stats["gaps"] += 1
                self._go_back()
            else:
                self.flight.clear()  # the frames after it were dropped too: their answers say nothing new
                self._failed("gaps")

    def _failed(self, outcome: str) -> None:
        device = self.device
        self.outcomes.append(outcome)
        device.stats[outcome] += 1
        tries = len(self.outcomes)
        remaining = self.give_up - time.monotonic()
        if remaining <= 0 or (device.retries is not None and tries >= device.retries):
            raise HarnessError(f"device did not answer LOAD on {device.name} after {tries} tries in "
                               f"{time.monotonic() - self.progress_at:.1f} s without progress "
                               f"(byte {self.acked} of {len(self.data)} acknowledged; {_tally(self.outcomes)})")
        if tries % SHRINK_AFTER == 0 and self.chunk > MIN_CHUNK:
            self.chunk = max(MIN_CHUNK, self.chunk // 2)
            device._chunk[Command.LOAD] = self.chunk
            log.debug("%s: LOAD chunks shrunk to %d bytes", device.name, self.chunk)
        device._require_healthy()
        if outcome == "timeouts":
            self.try_timeout = min(2 * self.try_timeout, max(MAX_TIMEOUT_S, device.timeout), remaining)
        late = device._await_answer(Command.LOAD, list(self.flight), time.monotonic() + device._backoff(tries),
                                    listen_only=True)
        if isinstance(late, tuple) and _unpack(_LOAD_ACK, late[1], "LOAD")[0] > self.acked:
            self._answered(*late)  # progress after all; an answer without it says what we know
        self._go_back()

    def _progress(self) -> None:
        self.progress_at = time.monotonic()
        self.give_up = self.progress_at + self.device.timeout + self.device.retry_budget
        self.try_timeout = self.device.timeout
        self.outcomes = []
        self.single = False

    def _go_back(self) -> None:
        self.sent = self.acked
        self.flight.clear()
        self.single = True


def fill_bytes(seed: int, size: int) -> bytes:
    """The bytes FILL writes (docs/protocol.md): the low byte of each xorshift32 step from `seed`
    (0 counts as 1)."""
    x, out = seed or 1, bytearray(size)
    for i in range(size):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        out[i] = x & 0xFF
    return bytes(out)


def _tally(outcomes: list[str]) -> str:
    """"2 timeouts, 1 corrupt" from the outcomes of failed tries."""
    words = {"timeouts": "no answer in time", "corrupt": "answer corrupt", "bad_crc": "request corrupt",
             "gaps": "frame lost"}
    return ", ".join(f"{outcomes.count(key)}x {word}" for key, word in words.items() if key in outcomes)
