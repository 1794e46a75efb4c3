"""A seeded fault-injecting serial link: pyserial's `socket://` with faults on every byte.

    fault://127.0.0.1:PORT?rate=0.01&seed=7            1% of the bytes in each direction hit
    fault://127.0.0.1:PORT?rate=0&stray=200            200 stray bytes during every other RUN

Each byte, host to device and device to host, is hit with probability `rate` by one fault
drawn uniformly from `kinds` (default all): `drop` (lost), `flip` (one bit inverted), `dup`
(sent twice), `noise` (a random byte inserted before it), `stall` (everything from it on
delayed 50-300 ms). The same seed gives the same faults for the same byte streams. `stray=N`
sends N bytes that hold no sync byte during every `stray_every`-th RUN request (default every
second, starting with the second): from a thread, at half the time the previous RUN took to
start answering, so they arrive while the device runs and the timing-disturbance check must
flag that run. (QEMU -icount hands input to the guest only when its vCPU leaves the translated
code, about every 100 ms of virtual time, so a run must be long enough to be hit at all; a
digits RUN takes 1 ms and is almost never hit.) `counts` tallies what was injected.

pyserial finds the handler by module name (`protocol_<scheme>` in a package listed in
serial.protocol_handler_packages); `register()` adds this package there.
"""
from __future__ import annotations

import random
import threading
import time
import urllib.parse
from collections import Counter, deque

import serial
from serial.urlhandler import protocol_socket

KINDS = ("drop", "flip", "dup", "noise", "stall")
STALL_S = (0.05, 0.3)

_RUN_TYPE = 0x04  # Command.RUN (not imported: the link layer stays below the protocol)
_SYNC = 0xA5


def register() -> None:
    """Make `fault://` URLs known to serial.serial_for_url."""
    if __package__ not in serial.protocol_handler_packages:
        serial.protocol_handler_packages.append(__package__)


def fault_url(url: str, query: str) -> str:
    """`socket://HOST:PORT` with the fault options `query` ("rate=0.01&seed=1") as a fault URL."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "socket":
        raise ValueError(f"fault injection needs a socket:// link (an emulator), not {url}")
    FaultSettings.parse(query)  # refuse bad options before anything starts
    register()
    return f"fault://{parts.netloc}?{query}"


class FaultSettings:
    """The URL's options, checked."""

    def __init__(self, rate: float = 0.0, seed: int = 0, kinds: tuple[str, ...] = KINDS, stray: int = 0,
                 stray_every: int = 2) -> None:
        if not 0.0 <= rate <= 0.5:
            raise ValueError(f"rate must be 0 .. 0.5, got {rate}")
        unknown = set(kinds) - set(KINDS)
        if not kinds or unknown:
            raise ValueError(f"kinds must be some of {', '.join(KINDS)}, got {', '.join(kinds) or 'none'}")
        if not 0 <= stray <= 100_000 or stray_every < 1:
            raise ValueError(f"stray must be 0 .. 100000 and stray_every at least 1 (got {stray}, {stray_every})")
        self.rate, self.seed, self.kinds, self.stray, self.stray_every = rate, seed, tuple(kinds), stray, stray_every

    @classmethod
    def parse(cls, query: str) -> FaultSettings:
        options = {}
        for key, values in urllib.parse.parse_qs(query, keep_blank_values=True, strict_parsing=bool(query)).items():
            value = values[-1]
            try:
                if key == "rate":
                    options[key] = float(value)
                elif key in ("seed", "stray", "stray_every"):
                    options[key] = int(value)
                elif key == "kinds":
                    options[key] = tuple(kind for kind in value.split(",") if kind)
                else:
                    raise ValueError(f"unknown option {key!r} (known: rate, seed, kinds, stray, stray_every)")
            except ValueError as error:
                raise ValueError(f"fault link option {key}={value!r}: {error}") from None
        return cls(**options)


class FaultInjector:
    """Faults for one direction of the link, from its own seeded random stream."""

    def __init__(self, settings: FaultSettings, direction: str, counts: Counter) -> None:
        self.settings = settings
        self.counts = counts
        self._random = random.Random(f"{settings.seed}/{direction}")

    def apply(self, data: bytes) -> list[tuple[float, bytes]]:
        """`data` after the faults, as (delay before, bytes) segments in order."""
        segments: list[tuple[float, bytearray]] = [(0.0, bytearray())]
        rng, rate, kinds = self._random, self.settings.rate, self.settings.kinds
        for byte in data:
            if rate == 0.0 or rng.random() >= rate:
                segments[-1][1].append(byte)
                continue
            kind = rng.choice(kinds)
            self.counts[kind] += 1
            if kind == "flip":
                segments[-1][1].append(byte ^ (1 << rng.randrange(8)))
            elif kind == "dup":
                segments[-1][1].extend((byte, byte))
            elif kind == "noise":
                segments[-1][1].extend((rng.randrange(256), byte))
            elif kind == "stall":
                segments.append((rng.uniform(*STALL_S), bytearray([byte])))
            # drop: nothing
        return [(delay, bytes(chunk)) for delay, chunk in segments]


class Serial(protocol_socket.Serial):
    """pyserial's socket port with a FaultInjector on each direction."""

    def from_url(self, url: str):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "fault":
            raise serial.SerialException(f"expected fault://HOST:PORT?OPTIONS, got {url!r}")
        try:
            self.settings = FaultSettings.parse(parts.query)
        except ValueError as error:
            raise serial.SerialException(str(error)) from None
        self.counts: Counter = Counter()
        self._to_device = FaultInjector(self.settings, "to-device", self.counts)
        self._to_host = FaultInjector(self.settings, "to-host", self.counts)
        self._held: deque[tuple[float, bytes]] = deque()  # (release time, bytes) still to deliver
        self._runs_seen = 0
        self._run_sent: float | None = None  # when the last RUN went out, until its answer starts
        self._run_latency = 0.0  # how long the device took to start answering the last RUN
        self._stray_random = random.Random(f"{self.settings.seed}/stray")
        return super().from_url(f"socket://{parts.netloc}")

    def write(self, data) -> int:
        data = bytes(data)
        for delay, chunk in self._to_device.apply(data):
            if delay:
                time.sleep(delay)
            if chunk:
                super().write(chunk)
        if self.settings.stray and len(data) > 1 and data[0] == _SYNC and data[1] == _RUN_TYPE:
            self._runs_seen += 1
            self._run_sent = time.perf_counter()
            if self._runs_seen % self.settings.stray_every == 0:
                stray = bytes(self._stray_random.choice(_NOT_SYNC) for _ in range(self.settings.stray))
                threading.Thread(target=self._send_stray, args=(stray, self._run_latency / 2), daemon=True).start()
        return len(data)

    def _send_stray(self, stray: bytes, delay_s: float) -> None:
        """The stray bytes `delay_s` after the RUN went out (busy-waited: sleep is coarse); the
        host sends nothing while it waits for the answer."""
        start = time.perf_counter()
        while time.perf_counter() - start < delay_s:
            pass
        super().write(stray)
        self.counts["stray"] += len(stray)

    @property
    def in_waiting(self) -> int:
        ready = sum(len(chunk) for release, chunk in self._held if release <= time.monotonic())
        return ready or super().in_waiting

    def read(self, size: int = 1) -> bytes:
        if not self._held:
            data = super().read(size)
            if not data:
                return data
            if self._run_sent is not None:
                self._run_latency = time.perf_counter() - self._run_sent
                self._run_sent = None
            now = time.monotonic()
            for delay, chunk in self._to_host.apply(data):
                now += delay
                if chunk:
                    self._held.append((now, chunk))
        out = bytearray()
        while self._held and self._held[0][0] <= time.monotonic() and len(out) < size:
            release, chunk = self._held.popleft()
            take = size - len(out)
            out += chunk[:take]
            if len(chunk) > take:
                self._held.appendleft((release, chunk[take:]))
        if not out and self._held:  # stalled: wait (at most one read timeout) like a quiet line
            time.sleep(max(0.0, min(self._held[0][0] - time.monotonic(), self._timeout or 0.05)))
        return bytes(out)


_NOT_SYNC = [value for value in range(256) if value != _SYNC]
