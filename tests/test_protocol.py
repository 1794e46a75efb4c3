"""Host protocol client (harness/link/protocol.py) against an in-memory fake device: framing, CRC,
resynchronization, retries of dropped/corrupt answers, error answers, chunked LOAD/READ."""
from __future__ import annotations

import struct
import time
import zlib
from collections import deque

import pytest
import serial

from harness.errors import HarnessError
from harness.link.protocol import (
    ANSWER, ERROR, HELLO, MAX_PAYLOAD, PROTOCOL_VERSION, Command, CounterKind, Device, DeviceError, ErrorCode,
    Frame, FrameDecoder, encode_frame,
)

MODEL_HASH = "0123456789abcdef"
FAKE_MAX_PAYLOAD = 64  # small, so LOAD and READ need several chunks
TIMEOUT = 0.2


class FakeDevice:
    """A pyserial-like port with a tiny firmware behind it: one model whose output is its input
    plus one (bytewise), 3 layers; LOAD keeps the firmware's rule (offset 0 starts an input, a
    frame beyond the prefix received is dropped, answers carry the prefix). `script` lists what
    to do to the next requests: "drop" (the answer), "lose" (the request), "corrupt", "garbage",
    "stray", "bad_crc", "silent" (drop all from now on)."""

    IN_BYTES = 150
    RX_BUFFER = 256  # three LOAD frames of FAKE_MAX_PAYLOAD in flight

    def __init__(self, script: list[str] | None = None, max_payload: int = FAKE_MAX_PAYLOAD) -> None:
        self.script = deque(script or [])
        self.max_payload = max_payload
        self.requests: list[Frame] = []
        self.input = bytearray(self.IN_BYTES)
        self.loaded = 0  # the prefix of the input received (the cumulative LOAD acknowledgement)
        self.output = bytearray(self.IN_BYTES)
        self.requests_at_reads: list[int] = []  # requests received when each answer was read
        self.out = bytearray()
        self.silent = False
        self.closed = False
        self._decoder = FrameDecoder()

    # -- pyserial surface
    def write(self, data: bytes) -> int:
        for frame in self._decoder.feed(data):
            self.requests.append(frame)
            self._answer(frame)
        return len(data)

    def read(self, size: int = 1) -> bytes:
        if not self.out:
            time.sleep(0.005)
            return b""
        self.requests_at_reads.append(len(self.requests))
        chunk, self.out[:] = bytes(self.out[:size]), self.out[size:]
        return chunk

    @property
    def in_waiting(self) -> int:
        return len(self.out)

    def close(self) -> None:
        self.closed = True

    # -- the fake firmware
    def _answer(self, request: Frame) -> None:
        action = self.script.popleft() if self.script else "ok"
        if action == "silent":
            self.silent = True
        if action in ("drop", "lose") or self.silent:
            if action == "drop":
                self._handle(request)
            return
        if action == "bad_crc":
            self.out += encode_frame(ERROR, request.seq, bytes([ErrorCode.BAD_CRC]) + b"CRC mismatch")
            return
        frame = self._handle(request)
        if action == "corrupt":
            frame = bytearray(frame)
            frame[-6] ^= 0x40
            frame = bytes(frame)
        elif action == "garbage":
            frame = b"\x00\xa5\xff\x13\xa5\x01" + frame
        elif action == "stray":
            frame = encode_frame(Command.RUN | ANSWER, (request.seq + 7) % 256, bytes(14)) + \
                encode_frame(HELLO, 0, MODEL_HASH.encode()) + frame
        self.out += frame

    def _handle(self, request: Frame) -> bytes:
        p = request.payload
        if request.type == Command.INFO:
            payload = struct.pack("<BBBxIIIHI16s16s", PROTOCOL_VERSION, 1, 1, 25_000_000, 25_000_000, 4096,
                                  self.max_payload, self.RX_BUFFER, MODEL_HASH.encode(), b"") + b"fake-board"
        elif request.type == Command.MODEL:
            if p[0] != 0:
                return encode_frame(ERROR, request.seq, bytes([ErrorCode.BAD_ARG]) + b"no model with this index")
            payload = struct.pack("<HHHBHHHBIIHB", 1, 1, self.IN_BYTES, 8, 1, 1, self.IN_BYTES, 8, self.IN_BYTES,
                                  self.IN_BYTES, 3, 0) + b"plus_one"
        elif request.type == Command.LOAD:
            (offset,) = struct.unpack_from("<I", p, 1)
            data = p[5:]
            assert len(p) <= self.max_payload
            if offset == 0:
                self.loaded = 0
            if offset <= self.loaded:
                self.input[offset:offset + len(data)] = data
                self.loaded = max(self.loaded, offset + len(data))
            payload = struct.pack("<I", self.loaded)
        elif request.type == Command.RUN:
            self.output[:] = bytes((b + 1) & 0xFF for b in self.input)
            payload = struct.pack("<iQHII", 0, 600, 3, 0, 0)
        elif request.type == Command.READ:
            what, _, offset, n = struct.unpack("<BBIH", p)
            source = self.output if what == 0 else struct.pack("<3Q", 100, 200, 300)
            if offset + n > len(source):
                return encode_frame(ERROR, request.seq, bytes([ErrorCode.BAD_ARG]) + b"READ beyond the end")
            payload = bytes(source[offset:offset + n])
        elif request.type == Command.PERF:
            (runs,) = struct.unpack_from("<I", p, 1)
            payload = struct.pack("<iQQQII", 0, 600 * runs, 600, 600, 0, 0)
        else:
            return encode_frame(ERROR, request.seq, bytes([ErrorCode.UNKNOWN_TYPE]) + b"unknown request type")
        return encode_frame(request.type | ANSWER, request.seq, payload)


def make_device(fake: FakeDevice, retries: int = 3) -> Device:
    return Device(fake, "fake://device", timeout=TIMEOUT, retries=retries, run_timeout=TIMEOUT)


# ---- framing ----------------------------------------------------------------------------------


def test_frame_layout_and_crc_match_zlib():
    frame = encode_frame(Command.READ, 7, b"\x01\x02\x03")
    assert frame[:5] == bytes([0xA5, 0x05, 7, 3, 0])
    assert frame[5:8] == b"\x01\x02\x03"
    assert struct.unpack("<I", frame[8:])[0] == zlib.crc32(bytes([0x05, 7, 3, 0, 1, 2, 3]))


def test_decoder_accepts_bytes_one_at_a_time():
    frames = [encode_frame(Command.INFO | ANSWER, 1, b"abc"), encode_frame(HELLO, 0, b"h" * 16)]
    decoder = FrameDecoder()
    got = [f for byte in b"".join(frames) for f in decoder.feed(bytes([byte]))]
    assert got == [Frame(0x81, 1, b"abc"), Frame(HELLO, 0, b"h" * 16)]
    assert not decoder.partial


def test_decoder_skips_garbage_and_a_corrupt_frame():
    good = encode_frame(Command.RUN | ANSWER, 2, b"ok")
    corrupt = bytearray(encode_frame(Command.RUN | ANSWER, 1, b"bad"))
    corrupt[6] ^= 0x01
    decoder = FrameDecoder()
    assert decoder.feed(b"\x00\x13" + bytes(corrupt) + good) == [Frame(0x84, 2, b"ok")]
    assert decoder.skipped_frames >= 1
    assert not decoder.partial


def test_decoder_finds_a_frame_that_starts_inside_a_broken_one():
    """A frame cut short is completed by the next frame's bytes, fails its CRC, and the scan
    resumes after its sync byte: the next frame is still found."""
    cut = encode_frame(Command.READ | ANSWER, 1, bytes(10))[:8]
    good = encode_frame(Command.READ | ANSWER, 2, bytes(range(20)))
    decoder = FrameDecoder()
    assert decoder.feed(cut + good + bytes(10)) == [Frame(0x85, 2, bytes(range(20)))]


def test_decoder_rejects_lengths_above_the_bound_without_waiting():
    header = bytes([0xA5, 0x81, 1]) + struct.pack("<H", MAX_PAYLOAD + 1)
    good = encode_frame(Command.INFO | ANSWER, 3, b"x")
    assert FrameDecoder().feed(header + good) == [Frame(0x81, 3, b"x")]


def test_flush_stale_recovers_a_frame_behind_a_stuck_header():
    """A corrupt length that looks plausible makes the decoder wait for bytes that never come;
    flushing gives up on it and finds the complete frame it swallowed."""
    stuck = bytes([0xA5, 0x81, 9]) + struct.pack("<H", 900)
    good = encode_frame(Command.INFO | ANSWER, 4, b"y")
    decoder = FrameDecoder()
    assert decoder.feed(stuck + good) == []
    assert decoder.partial
    assert decoder.flush_stale() == [Frame(0x81, 4, b"y")]


def test_frames_survive_a_pyserial_loop_port():
    port = serial.serial_for_url("loop://", timeout=0.1)
    try:
        frame = encode_frame(Command.PERF, 200, struct.pack("<BI", 0, 10))
        port.write(b"\x13" + frame)
        assert FrameDecoder().feed(port.read(len(frame) + 1)) == [Frame(Command.PERF, 200, struct.pack("<BI", 0, 10))]
    finally:
        port.close()


# ---- sessions ---------------------------------------------------------------------------------


def test_full_session_with_chunked_load_and_read():
    fake = FakeDevice()
    with make_device(fake) as device:
        info = device.info()
        assert (info.model_hash, info.policy_hash, info.board) == (MODEL_HASH, "", "fake-board")
        assert info.counter_kind == CounterKind.VIRTUAL_TIME and info.instructions_per_tick == 40
        model = device.model(0)
        assert (model.name, model.in_shape, model.n_layers) == ("plus_one", (1, 1, 150), 3)
        data = bytes(range(150))
        device.load(0, data)
        loads = [r for r in fake.requests if r.type == Command.LOAD]
        assert len(loads) == 3 and all(len(r.payload) <= FAKE_MAX_PAYLOAD for r in loads)
        result = device.run(0)
        assert (result.status, result.total_ticks, result.layer_ticks) == (0, 600, (100, 200, 300))
        assert device.read_output(0) == bytes((b + 1) & 0xFF for b in data)
        perf = device.perf(0, 5)
        assert (perf.runs, perf.total_ticks, perf.mean_ticks) == (5, 3000, 600)
    assert fake.closed


def test_load_frames_go_in_a_window_the_device_buffer_holds():
    fake = FakeDevice()
    device = make_device(fake)
    device.info()
    device.load(0, bytes(150))
    loads = [r for r in fake.requests if r.type == Command.LOAD]
    assert len(loads) == 3 and len({r.seq for r in loads}) == 3
    assert fake.requests_at_reads[-1] == len(fake.requests)  # all three sent before the first answer was read
    assert 3 * (FAKE_MAX_PAYLOAD + 9) <= FakeDevice.RX_BUFFER


def test_a_lost_load_answer_is_covered_by_the_next_cumulative_one():
    fake = FakeDevice(["ok", "ok", "drop"])  # INFO, MODEL, then the first LOAD's answer is lost
    device = make_device(fake)
    data = bytes(range(150))
    device.load(0, data)
    assert len([r for r in fake.requests if r.type == Command.LOAD]) == 3  # nothing sent again
    assert fake.input == data and device.stats["timeouts"] == 0


@pytest.mark.parametrize("fault", ["lose", "bad_crc"])
def test_a_lost_load_frame_sends_the_window_again_from_the_acknowledged_byte(fault):
    """The second frame never arrives (or arrives corrupt): the device drops the third (beyond its
    prefix) and answers it with the prefix; the host goes back to it with new seqs."""
    fake = FakeDevice(["ok", "ok", "ok", fault])
    device = make_device(fake)
    data = bytes(range(150))
    device.load(0, data)
    loads = [r for r in fake.requests if r.type == Command.LOAD]
    offsets = [struct.unpack_from("<I", r.payload, 1)[0] for r in loads]
    assert offsets == [0, 59, 118, 59, 118]
    assert len({r.seq for r in loads}) == 5 and fake.input == data
    assert device.stats["gaps" if fault == "lose" else "bad_crc"] == 1


def test_a_lost_first_frame_cannot_pass_for_the_previous_inputs_prefix():
    """The device still holds the last input's whole prefix (no run ended it) and the first
    frame of the next input is lost: the second frame extends the old prefix and its answer says
    150 bytes. The host, which had sent 118 bytes by then, starts again at offset 0."""
    fake = FakeDevice()
    device = make_device(fake)
    device.load(0, bytes(150))
    fake.script.extend(["lose"])
    data = bytes(range(150))
    device.load(0, data)
    assert fake.input == data


def test_a_repeated_first_frame_restarts_the_input_and_the_host_follows():
    """A device that restarted the input (a repeat of the first frame) answers below what the
    host believed acknowledged: the host takes the device's word and sends the rest again."""
    fake = FakeDevice()
    device = make_device(fake)
    data = bytes(range(150))
    device.load(0, data)
    fake.loaded = 10
    device.load(0, bytes(150))
    assert fake.input == bytes(150) and fake.loaded == 150


@pytest.mark.parametrize("fault", ["drop", "corrupt", "bad_crc"])
def test_a_lost_or_corrupt_answer_is_retried_with_the_same_seq(fault):
    fake = FakeDevice([fault])
    device = make_device(fake)
    assert device.info().board == "fake-board"
    assert [r.seq for r in fake.requests] == [fake.requests[0].seq] * 2


def test_a_device_side_crc_error_is_retried_at_once():
    fake = FakeDevice(["bad_crc", "bad_crc"])
    start = time.monotonic()
    make_device(fake).info()
    assert time.monotonic() - start < TIMEOUT
    assert len(fake.requests) == 3


@pytest.mark.parametrize("noise", ["garbage", "stray"])
def test_noise_and_stray_frames_are_skipped(noise):
    """The garbage holds a plausible header that swallows the answer: found again at the deadline."""
    fake = FakeDevice([noise])
    device = make_device(fake)
    assert device.info().model_hash == MODEL_HASH
    assert len(fake.requests) == 1
    if noise == "stray":
        assert device.hello == MODEL_HASH


def test_silent_device_fails_within_its_retry_budget_with_growing_deadlines():
    fake = FakeDevice(["silent"])
    device = Device(fake, "fake://device", timeout=TIMEOUT, retry_budget=1.0, run_timeout=TIMEOUT, seed=1)
    start = time.monotonic()
    with pytest.raises(HarnessError, match=r"device did not answer INFO on fake://device after 3 tries in "
                                           r"1\.\d s \(3x no answer in time\)"):
        device.info()
    elapsed = time.monotonic() - start
    assert len(fake.requests) == 3  # deadlines 0.2, 0.4, then the 0.4 s left of the budget
    assert 1.0 <= elapsed < 1.3


def test_a_retry_cap_still_bounds_the_tries():
    fake = FakeDevice(["silent"])
    with pytest.raises(HarnessError, match="after 2 tries"):
        Device(fake, "fake://device", timeout=TIMEOUT, retries=2, run_timeout=TIMEOUT).info()
    assert len(fake.requests) == 2


def test_error_answer_raises_without_retry():
    fake = FakeDevice()
    device = make_device(fake)
    device.info()
    with pytest.raises(DeviceError, match="refused READ: BAD_ARG: READ beyond the end") as caught:
        device.request(Command.READ, struct.pack("<BBIH", 0, 0, 149, 2))
    assert caught.value.code == ErrorCode.BAD_ARG
    assert len(fake.requests) == 2


def test_fault_frame_fails_at_once_whatever_its_seq():
    fake = FakeDevice(["drop"])
    fake.out += encode_frame(ERROR, 0, bytes([ErrorCode.FAULT]) + b"HardFault pc=0x00001234")
    with pytest.raises(DeviceError, match="crashed during INFO: FAULT: HardFault pc=0x00001234"):
        make_device(fake).info()


def test_host_side_argument_checks():
    device = make_device(FakeDevice())
    with pytest.raises(HarnessError, match="input for model 0 has 3 bytes, the firmware expects 150"):
        device.load(0, b"abc")
    with pytest.raises(HarnessError, match="model index 1 out of range"):
        device.model(1)
    with pytest.raises(HarnessError, match="model index 300 out of range"):
        device.run(300)
    with pytest.raises(HarnessError, match="model hash 0123456789abcdef, expected ffff"):
        device.require_model_hash("ffff")
    device.require_model_hash(MODEL_HASH)


def test_wait_hello():
    fake = FakeDevice()
    fake.out += b"\x00junk" + encode_frame(HELLO, 0, MODEL_HASH.encode())
    assert make_device(fake).wait_hello(1.0) == MODEL_HASH
    with pytest.raises(HarnessError, match="no hello frame from fake://device within 0.1 s"):
        make_device(FakeDevice()).wait_hello(0.1)


def test_open_reports_an_unreachable_url():
    with pytest.raises(HarnessError, match=r"cannot open socket://127\.0\.0\.1:1"):
        Device.open("socket://127.0.0.1:1")
    with pytest.raises(HarnessError, match="retries at least 1"):
        Device(FakeDevice(), "fake://device", retries=0)
