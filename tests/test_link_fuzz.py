"""Bounded fuzzing of the host side of the protocol (hypothesis): the frame decoder on arbitrary
byte streams, and a whole device session through the seeded fault injector. Plus the fault
injector itself, and the sanitising of device-supplied text."""
from __future__ import annotations

import struct
import zlib
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.errors import HarnessError
from harness.link.protocol import (
    ERROR, FRAME_OVERHEAD, MAX_PAYLOAD, SYNC, Command, Device, DeviceError, ErrorCode, FrameDecoder, device_text,
    encode_frame,
)
from harness.link.protocol_fault import FaultInjector, FaultSettings

from test_protocol import FakeDevice

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.lists(st.binary(max_size=300), max_size=20), st.integers(16, MAX_PAYLOAD))
def test_decoder_survives_any_stream_and_only_returns_frames_with_a_good_crc(chunks, max_payload):
    decoder = FrameDecoder(max_payload)
    frames = []
    for chunk in chunks:
        frames += decoder.feed(chunk)
        assert len(decoder._buf) <= FRAME_OVERHEAD + max_payload + max(len(c) for c in chunks)
    frames += decoder.flush_stale()
    assert not decoder.partial
    for frame in frames:
        assert len(frame.payload) <= max_payload
        encoded = encode_frame(frame.type, frame.seq, frame.payload)
        assert zlib.crc32(encoded[1:-4]) == struct.unpack("<I", encoded[-4:])[0]


frame_strategy = st.builds(lambda t, s, p: (t, s, p), st.integers(0, 255), st.integers(0, 255),
                           st.binary(max_size=64))


@FUZZ
@given(st.lists(st.tuples(st.binary(max_size=40).map(lambda b: b.replace(bytes([SYNC]), b"")), frame_strategy),
                max_size=10), st.integers(1, 50))
def test_decoder_finds_every_frame_between_noise_without_sync_bytes(items, split):
    """Noise holding no sync byte never hides a frame, however the stream is cut into reads."""
    stream = b"".join(noise + encode_frame(*frame) for noise, frame in items)
    decoder = FrameDecoder()
    found = []
    for at in range(0, len(stream), split):
        found += decoder.feed(stream[at:at + split])
    assert [(f.type, f.seq, f.payload) for f in found] == [frame for _, frame in items]


class FaultyFake:
    """FakeDevice behind FaultInjectors in both directions (stalls count as no delay)."""

    def __init__(self, rate: float, seed: int) -> None:
        self.fake = FakeDevice()
        self.counts: Counter = Counter()
        fault = FaultSettings(rate=rate, seed=seed)
        self._down, self._up = FaultInjector(fault, "to-device", self.counts), FaultInjector(fault, "to-host", self.counts)
        self._pending = bytearray()

    def write(self, data: bytes) -> int:
        for _, chunk in self._down.apply(bytes(data)):
            self.fake.write(chunk)
        return len(data)

    def read(self, size: int = 1) -> bytes:
        if not self._pending:
            raw = self.fake.read(4096)
            self._pending += b"".join(chunk for _, chunk in self._up.apply(raw))
        chunk, self._pending[:] = bytes(self._pending[:size]), self._pending[size:]
        return chunk

    @property
    def in_waiting(self) -> int:
        return len(self._pending) or self.fake.in_waiting

    def close(self) -> None:
        pass


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([0.0, 0.002, 0.01, 0.05]), st.integers(0, 2 ** 32 - 1), st.binary(min_size=150, max_size=150))
def test_a_session_through_faults_gives_the_right_answer_or_one_clean_error(rate, seed, data):
    port = FaultyFake(rate, seed)
    device = Device(port, "fuzz://fake", timeout=0.02, retry_budget=2.0, run_timeout=0.02, seed=seed)
    try:
        device.load(0, data)
        result = device.run(0)
        output = device.read_output(0)
    except DeviceError as error:  # a corrupted request can only be refused, never misread
        assert error.code in (ErrorCode.BAD_ARG, ErrorCode.BAD_LEN, ErrorCode.UNKNOWN_TYPE)
        return
    except HarnessError as error:
        assert "\n" not in str(error) and "did not answer" in str(error)
        return
    assert output == bytes((b + 1) & 0xFF for b in data)
    assert result.total_ticks == 600 and result.layer_ticks == (100, 200, 300) and not result.disturbed


def test_fault_injector_is_seeded_and_injects_each_kind():
    def run(seed):
        counts = Counter()
        injector = FaultInjector(FaultSettings(rate=0.05, seed=seed), "to-device", counts)
        return injector.apply(bytes(range(256)) * 20), counts

    first, counts = run(3)
    assert first == run(3)[0] and first != run(4)[0]
    assert set(counts) == {"drop", "flip", "dup", "noise", "stall"}
    assert 0.03 < sum(counts.values()) / 5120 < 0.07


@pytest.mark.parametrize("query, message", [
    ("rate=0.7", "rate must be 0 .. 0.5"), ("kinds=drop,melt", "kinds must be some of"), ("speed=1", "unknown option"),
    ("rate=abc", "rate='abc'"),
])
def test_fault_options_are_checked(query, message):
    with pytest.raises(ValueError, match=message):
        FaultSettings.parse(query)


def test_device_text_is_printable_ascii_and_capped():
    assert device_text(b"ok\n\x1b[2J\x00\xffdone") == "ok??[2J??done"
    long = device_text(b"x" * 5000)
    assert len(long) == 200 and long.endswith("...")


def test_a_device_error_message_cannot_break_the_line():
    fake = FakeDevice()
    device = Device(fake, "fake://device", timeout=0.2, run_timeout=0.2)
    device.info()
    fake.script.append("ok")
    fake._handle = lambda request: encode_frame(ERROR, request.seq, bytes([ErrorCode.BAD_ARG]) +
                                                b"evil\n\x1b[31mline two" + b"!" * 900)
    with pytest.raises(DeviceError) as caught:
        device.request(Command.MODEL, bytes([0]))
    text = str(caught.value)
    assert "\n" not in text and "\x1b" not in text and len(text) < 400
