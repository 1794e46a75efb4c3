"""The real firmware (runtime + kernels + mps2-an500 BSP) in QEMU, driven by harness.link.protocol.

One image holds hand-written test models: two fully connected layers on the real kernels
(checked bit-exact against harness.ir.reference) and small runner models that exercise chunked
LOAD/READ, per-layer ticks, a failing status and the runtime's checks. A second QEMU instance
checks fault reporting; raw frames check the device's resynchronization. Plus link-time budget
checks. Skipped when arm-none-eabi-gcc or qemu-system-arm is missing.
"""
from __future__ import annotations

import re
import struct
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from harness.ir import reference
from harness.errors import HarnessError
from harness.ir.graph import Graph
from harness.ir.packing import pack, unpack
from harness.paths import FIRMWARE_DIR
from harness.processes import free_loopback_port
from harness.link.protocol import (
    ANSWER, ERROR, PROTOCOL_VERSION, Command, CounterKind, Device, DeviceError, ErrorCode, Frame, FrameDecoder,
    encode_frame, fill_bytes,
)
from harness.ir.random_graphs import random_input, random_layer_graph

GCC = "arm-none-eabi-gcc"
QEMU = "qemu-system-arm"
pytestmark = pytest.mark.tools(GCC, QEMU, "make")

MODEL_HASH = "feedc0de12345678"
FC_BITS = ((4, 2, 8), (8, 8, 32))  # (input, weight, output) bits of the two fully connected models
SCRATCH_BYTES = 4096
LAYERS_BYTES = 3000  # > 2 LOAD chunks
MAX_LAYERS = 128  # the runtime's default MPQ_MAX_LAYERS
RUNNER_MODELS = ("layers", "failing", "clobber", "bad_hooks", "many_layers", "faulty", "overflow", "consuming",
                 "refused")


# ---- the test image ---------------------------------------------------------------------------


def _c_array(values) -> str:
    return ", ".join(str(int(v)) for v in np.asarray(values).ravel())


def _fc_graph(bits: tuple[int, int, int]) -> Graph:
    """A fully connected layer with enough outputs to be interesting."""
    for seed in range(200):
        graph = random_layer_graph("fully_connected", *bits, seed=seed)
        if graph.tensors["y"].channels >= 8 and graph.tensors["x"].channels >= 16:
            return graph
    raise AssertionError("no suitable random fully connected graph")


def _fc_model_c(k: int, graph: Graph, in_at: int, out_at: int, scratch_at: int) -> str:
    layer = graph.layers[0]
    x, y = graph.tensors["x"], graph.tensors["y"]
    cin, cout = x.channels, y.channels
    weights = pack(layer.weights, layer.w_bits, signed=True)
    return f"""
static const uint8_t fc{k}_w[] = {{{_c_array(weights)}}};
static const int32_t fc{k}_bias[] = {{{_c_array(layer.bias)}}};
static const int32_t fc{k}_mult[] = {{{_c_array(layer.mult)}}};
static const int8_t fc{k}_shift[] = {{{_c_array(layer.shift)}}};
static const mpq_requant_t fc{k}_rq = {{fc{k}_bias, fc{k}_mult, fc{k}_shift}};
static const mpq_dims_t fc{k}_in = {{1, 1, {cin}, {x.bits}, 0, 0}};
static const mpq_dims_t fc{k}_out = {{1, 1, {cout}, {y.bits}, 0, 0}};
static int fc{k}_run(void) {{
    if (mpq_fully_connected_get_buffer_size(&fc{k}_in, {layer.w_bits}, &fc{k}_out) > {SCRATCH_BYTES}u) return -100;
    mpq_layer_begin(0);
    int status = mpq_fully_connected(&fc{k}_in, arena + {in_at}, {graph.in_offset(layer)}, fc{k}_w, {layer.w_bits},
                                     &fc{k}_rq, &fc{k}_out, arena + {out_at}, arena + {scratch_at});
    mpq_layer_end(0);
    return status;
}}
static const mpq_model_t fc{k} = {{"{graph.name}", {{1, 1, {cin}, {x.bits}, 0, 0}}, {{1, 1, {cout}, {y.bits}, 0, 0}},
    {x.nbytes}, {y.nbytes}, arena + {in_at}, arena + {out_at}, 1, fc{k}_run, 0, 0}};
"""


_RUNNER_MODELS_C = f"""
/* layers: 3 layers, layer l rewrites the output (l + 1) times: out = in + 3, ticks grow with l. */
static int layers_run(void) {{
    const uint8_t *in = arena + LAYERS_IN;
    volatile uint8_t *out = arena + LAYERS_OUT;
    for (uint32_t l = 0; l < 3; ++l) {{
        mpq_layer_begin(l);
        for (uint32_t r = 0; r <= l; ++r) {{
            for (uint32_t j = 0; j < {LAYERS_BYTES}u; ++j) out[j] = (uint8_t)(in[j] + l + 1);
        }}
        mpq_layer_end(l);
    }}
    return 0;
}}
static int failing_run(void) {{ mpq_layer_begin(0); mpq_layer_end(0); return -7; }}
static int clobber_run(void) {{ mpq_layer_begin(0); arena[LAYERS_IN] ^= 1u; mpq_layer_end(0); return 0; }}
static int bad_hooks_run(void) {{ mpq_layer_begin(1); mpq_layer_end(1); return 0; }}
static int many_layers_run(void) {{ return 0; }}
static int faulty_run(void) {{ return (int)*(volatile uint32_t *)0x50000000u; /* nothing mapped there */ }}
static int deep(volatile uint8_t *p, uint32_t n) {{ /* 256+ bytes of stack per call */
    volatile uint8_t pad[256];
    pad[0] = p[0];
    return n == 0 ? pad[0] : deep(pad, n - 1) + 1;
}}
static int overflow_run(void) {{ return deep(arena, 100000u); }}
/* consuming: its arena reuses the input (input_reused = 1): each run overwrites the input and
   counts itself in the output's first byte. */
/* refused: its check() fails, so its run() (consuming's, counting itself) must never be called. */
static int refused_check(void) {{ return -1; }}
static int consuming_run(void) {{
    mpq_layer_begin(0);
    arena[LAYERS_IN] ^= 1u;
    arena[LAYERS_OUT] = (uint8_t)(arena[LAYERS_OUT] + 1u);
    mpq_layer_end(0);
    return 0;
}}

#define RUNNER_MODEL(id, n_layers) \\
    static const mpq_model_t id = {{#id, {{1, 1, {LAYERS_BYTES}, 8, 0, 0}}, {{1, 1, {LAYERS_BYTES}, 8, 0, 0}}, {LAYERS_BYTES}, \\
                                   {LAYERS_BYTES}, arena + LAYERS_IN, arena + LAYERS_OUT, n_layers, id##_run, 0, 0}}
RUNNER_MODEL(layers, 3);
RUNNER_MODEL(failing, 1);
RUNNER_MODEL(clobber, 1);
RUNNER_MODEL(bad_hooks, 1);
RUNNER_MODEL(many_layers, {MAX_LAYERS + 1});
RUNNER_MODEL(faulty, 0);
RUNNER_MODEL(overflow, 0);
static const mpq_model_t consuming = {{"consuming", {{1, 1, {LAYERS_BYTES}, 8, 0, 0}}, {{1, 1, {LAYERS_BYTES}, 8, 0, 0}},
    {LAYERS_BYTES}, {LAYERS_BYTES}, arena + LAYERS_IN, arena + LAYERS_OUT, 1, consuming_run, 1, 0}};
static const mpq_model_t refused = {{"refused", {{1, 1, {LAYERS_BYTES}, 8, 0, 0}}, {{1, 1, {LAYERS_BYTES}, 8, 0, 0}},
    {LAYERS_BYTES}, {LAYERS_BYTES}, arena + LAYERS_IN, arena + LAYERS_OUT, 1, consuming_run, 0, refused_check}};
"""


def write_test_model(gen_dir: Path) -> list[Graph]:
    """model.c with the fully connected models first, then the runner models."""
    graphs = [_fc_graph(bits) for bits in FC_BITS]
    at = 0
    parts = []
    for k, graph in enumerate(graphs):
        in_at, out_at = at, _align(at + graph.tensors["x"].nbytes)
        scratch_at = _align(out_at + graph.tensors["y"].nbytes)
        at = scratch_at + SCRATCH_BYTES
        parts.append(_fc_model_c(k, graph, in_at, out_at, scratch_at))
    layers_in, layers_out = at, _align(at + LAYERS_BYTES)
    arena_bytes = layers_out + LAYERS_BYTES
    names = [f"fc{k}" for k in range(len(graphs))] + list(RUNNER_MODELS)
    gen_dir.mkdir(parents=True, exist_ok=True)
    (gen_dir / "model.c").write_text(
        '#include "mpq_model.h"\n'
        f"#define LAYERS_IN {layers_in}u\n#define LAYERS_OUT {layers_out}u\n"
        f"static uint8_t arena[{arena_bytes}] __attribute__((aligned(8)));\n"
        + "".join(parts) + _RUNNER_MODELS_C
        + f"const mpq_model_t *const mpq_models[] = {{{', '.join('&' + n for n in names)}}};\n"
        f"const uint32_t mpq_model_count = {len(names)};\n"
        f'const char mpq_model_hash[] = "{MODEL_HASH}";\n'
        'const char mpq_policy_hash[] = "";\n'
        "const uint32_t mpq_arena_bytes = sizeof arena;\n")
    return graphs


def _align(n: int) -> int:
    return (n + 7) // 8 * 8


def build(gen_dir: Path, out_dir: Path, *make_args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-j2", "-C", str(FIRMWARE_DIR), "BOARD=qemu-m7", f"GEN={gen_dir}", f"OUT={out_dir}",
                           *make_args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    root = tmp_path_factory.mktemp("firmware")
    graphs = write_test_model(root / "gen")
    result = build(root / "gen", root / "out")
    assert result.returncode == 0, f"firmware build failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return root / "out" / "firmware.elf", graphs, root / "gen"


# ---- QEMU -------------------------------------------------------------------------------------


@contextmanager
def qemu_device(elf: Path, log_path: Path):
    """QEMU waits for our connection before it starts the guest, so the hello frame is never
    lost; nodelay=on avoids Nagle's 40 ms per answer. QEMU is always killed."""
    for _ in range(3):
        port = free_loopback_port()
        with open(log_path, "wb") as log:
            qemu = subprocess.Popen(
                [QEMU, "-machine", "mps2-an500", "-cpu", "cortex-m7", "-icount", "shift=0", "-display", "none",
                 "-monitor", "none", "-kernel", str(elf),
                 "-serial", f"tcp:127.0.0.1:{port},server=on,wait=on,nodelay=on"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        try:
            try:
                device = Device.open(f"socket://127.0.0.1:{port}", connect_timeout=10.0, timeout=2.0, run_timeout=10.0)
            except HarnessError:
                if qemu.poll() is not None:
                    continue  # the port was taken meanwhile: try another
                raise
            with device:
                yield device
            return
        finally:
            qemu.kill()
            qemu.wait(timeout=10)
    raise AssertionError(f"QEMU could not start: {log_path.read_text(errors='replace')[-500:]}")


@pytest.fixture(scope="module")
def device(image, tmp_path_factory):
    elf = image[0]
    with qemu_device(elf, tmp_path_factory.mktemp("qemu") / "qemu.log") as device:
        assert device.wait_hello(10.0) == MODEL_HASH
        yield device


def _index(device: Device, name: str) -> int:
    return next(i for i in range(device.info().n_models) if device.model(i).name == name)


# ---- sessions ---------------------------------------------------------------------------------


def test_info_describes_the_image(device):
    info = device.info()
    assert (info.protocol, info.model_hash, info.policy_hash, info.board) == (PROTOCOL_VERSION, MODEL_HASH, "", "qemu-m7")
    assert info.n_models == len(FC_BITS) + len(RUNNER_MODELS)
    assert (info.counter_kind, info.counter_hz, info.core_hz) == (CounterKind.VIRTUAL_TIME, 25_000_000, 25_000_000)
    assert info.instructions_per_tick == 40 and info.max_payload == 1024 and info.arena_bytes > LAYERS_BYTES
    assert info.rx_buffer == 4096  # the UART ring: three LOAD frames in flight
    device.require_model_hash(MODEL_HASH)


def test_model_descriptions_match_the_graphs(device, image):
    graphs = image[1]
    for index, graph in enumerate(graphs):
        model = device.model(index)
        x, y = graph.tensors["x"], graph.tensors["y"]
        assert (model.name, model.in_shape, model.in_bits, model.out_shape, model.out_bits) == \
            (graph.name, x.shape, x.bits, y.shape, y.bits)
        assert (model.in_bytes, model.out_bytes, model.n_layers) == (x.nbytes, y.nbytes, 1)


@pytest.mark.parametrize("k", range(len(FC_BITS)))
def test_fully_connected_is_bit_exact_with_the_reference(device, image, k):
    graph = image[1][k]
    y = graph.tensors["y"]
    for seed in range(3):
        x = random_input(graph, seed)
        device.load(k, pack(x, graph.tensors["x"].bits, signed=False).tobytes())
        result = device.run(k)
        assert result.ok and len(result.layer_ticks) == 1 and 0 < result.layer_ticks[0] <= result.total_ticks
        raw = np.frombuffer(device.read_output(k), dtype=np.uint8)
        if y.bits == 32:
            got = raw.view("<i4").reshape(y.shape)
        else:
            got = unpack(raw.reshape(*y.shape[:2], -1), y.bits, y.channels, signed=False)
        np.testing.assert_array_equal(got, reference.predict(graph, x))


def test_chunked_load_per_layer_ticks_and_determinism(device):
    """Under -icount the same run executes the same instructions, and every timed run restarts
    the tick period (bsp_ticks_align), so repeat runs give exactly the same ticks."""
    index = _index(device, "layers")
    data = bytes((7 * i) & 0xFF for i in range(LAYERS_BYTES))
    device.load(index, data)
    first, second = device.run(index), device.run(index)
    assert first.ok and device.read_output(index) == bytes((b + 3) & 0xFF for b in data)
    assert (first.total_ticks, *first.layer_ticks) == (second.total_ticks, *second.layer_ticks)
    t0, t1, t2 = first.layer_ticks
    assert 0 < t0 < t1 < t2 and sum(first.layer_ticks) <= first.total_ticks
    assert 1.8 < t1 / t0 < 2.2 and 2.7 < t2 / t0 < 3.3  # layer l does (l + 1) passes
    perf = device.perf(index, 4)
    assert perf.ok and perf.max_ticks == perf.min_ticks == first.total_ticks
    assert perf.min_ticks * 4 <= perf.total_ticks <= perf.max_ticks * 4
    assert device.layer_ticks(index) == first.layer_ticks


def test_load_answers_are_cumulative_and_a_frame_beyond_the_prefix_is_dropped(device):
    """docs/protocol.md, "LOAD window": a LOAD at offset 0 starts an input, one inside the prefix
    received extends it, one beyond it (an earlier frame was lost) is dropped; every answer is the
    prefix, and a fresh input of the whole size still runs right."""
    index = _index(device, "layers")

    def load(offset: int, data: bytes) -> int:
        return struct.unpack("<I", device.request(Command.LOAD, struct.pack("<BI", index, offset) + data))[0]

    assert load(0, b"\x01" * 100) == 100
    assert load(200, b"\x02" * 100) == 100  # beyond the prefix: dropped
    assert load(50, b"\x03" * 100) == 150  # inside it: extends it
    assert load(0, b"\x04" * 10) == 10  # a new input
    data = bytes((3 * i) & 0xFF for i in range(LAYERS_BYTES))
    device.load(index, data)
    assert device.run(index).ok and device.read_output(index) == bytes((b + 3) & 0xFF for b in data)


def test_fill_writes_the_seeded_bytes_the_host_computes_and_counts_as_a_load(device):
    """FILL: the device writes the xorshift32 bytes harness.link.protocol.fill_bytes computes, as a
    complete input: a run reads them, and a model whose run consumed its input may run again."""
    index = _index(device, "layers")
    data = device.fill(index, 7)
    assert data == fill_bytes(7, LAYERS_BYTES) and len(set(data)) > 200
    assert device.run(index).ok and device.read_output(index) == bytes((b + 3) & 0xFF for b in data)
    consuming = _index(device, "consuming")
    device.fill(consuming, 1)
    assert device.run(consuming).ok
    with pytest.raises(DeviceError, match="BAD_ARG: the last run consumed this model's input"):
        device.run(consuming)
    device.fill(consuming, 1)
    assert device.perf(consuming, 1).ok


def test_a_model_that_consumes_its_input_runs_once_per_load(device):
    """input_reused (the planner let later tensors reuse the input's bytes): the MODEL answer
    says so, no CRC check applies, PERF of more than one run is refused, a repeated RUN (a lost
    answer: same seq and payload) gets the stored answer of the run that consumed the input without
    running again, any other RUN before a fresh LOAD is refused, and a fresh LOAD allows the next run."""
    index = _index(device, "consuming")
    assert device.model(index).input_reused and not device.model(_index(device, "layers")).input_reused
    device.load(index, bytes(LAYERS_BYTES))
    request = encode_frame(Command.RUN, 60, bytes([index]))
    first, repeated = _exchange(device, request, 1), _exchange(device, request, 1)
    assert [f.type for f in first + repeated] == [Command.RUN | ANSWER] * 2
    assert repeated[0].payload == first[0].payload  # replayed, not run on the consumed input
    count = device.read_output(index)[0]
    with pytest.raises(DeviceError, match="BAD_ARG: the last run consumed this model's input"):
        device.run(index)  # a new request, not a repeat
    with pytest.raises(HarnessError, match="PERF runs once per LOAD"):
        device.perf(index, 2)
    with pytest.raises(DeviceError, match="BAD_ARG: this model's arena reuses its input"):
        device.request(Command.PERF, struct.pack("<BI", index, 2))
    device.load(index, bytes(LAYERS_BYTES))
    assert device.perf(index, 1).ok and device.read_output(index)[0] == (count + 1) & 0xFF
    assert device.run(_index(device, "failing")).status == -7  # another model ran since
    with pytest.raises(DeviceError, match="BAD_ARG: the last run consumed this model's input"):
        device.run(index)


def test_a_model_whose_check_fails_is_never_run(device):
    index = _index(device, "refused")
    device.load(index, bytes(LAYERS_BYTES))
    count = device.read_output(index)[0]
    assert device.run(index).status == -1
    perf = device.perf(index, 3)
    assert perf.status == -1 and perf.total_ticks == perf.min_ticks == perf.max_ticks == 0
    assert device.read_output(index)[0] == count, "run() was called although check() failed"


def test_status_and_runtime_checks_are_reported(device):
    assert device.run(_index(device, "failing")).status == -7
    with pytest.raises(DeviceError, match="overwrote the model's input") as caught:
        device.run(_index(device, "clobber"))
    assert caught.value.code == ErrorCode.RUN_FAILED
    with pytest.raises(DeviceError, match="layer index >= its n_layers"):
        device.run(_index(device, "bad_hooks"))
    with pytest.raises(DeviceError, match="BAD_ARG: model has more layers than the runtime records"):
        device.run(_index(device, "many_layers"))
    with pytest.raises(DeviceError, match="BAD_ARG: no model with this index"):
        device.request(Command.RUN, bytes([200]))
    with pytest.raises(DeviceError, match="BAD_ARG: LOAD beyond the end"):
        device.request(Command.LOAD, struct.pack("<BI", 0, 10_000) + b"x")
    with pytest.raises(DeviceError, match="BAD_ARG: run count must be at least 1"):
        device.request(Command.PERF, struct.pack("<BI", 0, 0))
    with pytest.raises(DeviceError, match="BAD_LEN"):
        device.request(Command.RUN, b"\x00\x00")


def test_tick_counter_extends_across_wraps(device, image, tmp_path):
    """With SysTick wrapping every 1000 ticks (instead of every 2^24) runs cross many wraps:
    the 64-bit count must stay exact (up to the wrap interrupt's own instructions)."""
    result = build(image[2], tmp_path / "out", "EXTRA_CFLAGS=-DMPS2_SYSTICK_RELOAD=999")
    assert result.returncode == 0, result.stderr[-3000:]
    data = bytes(range(256)) * (LAYERS_BYTES // 256) + bytes(LAYERS_BYTES % 256)
    index = _index(device, "layers")
    device.load(index, data)
    steady = device.run(index)
    with qemu_device(tmp_path / "out" / "firmware.elf", tmp_path / "qemu.log") as wrapping:
        wrapping.load(index, data)
        run = wrapping.run(index)
        perf = wrapping.perf(index, 50)
    assert steady.total_ticks > 2000  # so the runs below cross several wraps
    assert abs(run.total_ticks - steady.total_ticks) <= 3
    assert all(abs(a - b) <= 3 for a, b in zip(run.layer_ticks, steady.layer_ticks))
    assert perf.ok and steady.total_ticks - 1 <= perf.min_ticks <= perf.max_ticks <= steady.total_ticks + 3


# ---- the device's framing, with raw frames ----------------------------------------------------


def _exchange(device: Device, data: bytes, n_frames: int, timeout: float = 5.0) -> list[Frame]:
    device.port.write(data)
    decoder, frames = FrameDecoder(), []
    deadline = time.monotonic() + timeout
    while len(frames) < n_frames and time.monotonic() < deadline:
        frames += decoder.feed(device.port.read(max(1, device.port.in_waiting)))
    return frames


def _info_request(seq: int) -> bytes:
    return encode_frame(Command.INFO, seq, b"")


def test_device_answers_a_corrupt_request_with_bad_crc(device):
    corrupt = bytearray(encode_frame(Command.MODEL, 41, b"\x00"))
    corrupt[-1] ^= 0xFF
    frames = _exchange(device, bytes(corrupt), 1)
    assert [(f.type, f.seq, f.payload[:1]) for f in frames] == [(ERROR, 41, bytes([ErrorCode.BAD_CRC]))]


class CorruptFirstWrite:
    """The port of a live session, with one bit of the first request's CRC flipped on the wire;
    records what is written and read, so a test sees the device's BAD_CRC answer and the retry."""

    def __init__(self, port):
        self.port = port
        self.writes: list[bytes] = []
        self.received = bytearray()

    def write(self, data: bytes) -> int | None:
        self.writes.append(bytes(data))
        if len(self.writes) == 1:
            data = data[:-1] + bytes([data[-1] ^ 0x01])
        return self.port.write(data)

    def read(self, size: int = 1) -> bytes:
        data = self.port.read(size)
        self.received += data
        return data

    @property
    def in_waiting(self) -> int:
        return self.port.in_waiting

    def close(self) -> None:
        self.port.close()


def test_a_request_corrupted_on_the_wire_is_answered_bad_crc_and_retried(device, image):
    """harness.link.protocol's retry path against the real firmware: the device answers the
    corrupted MODEL request with BAD_CRC (its seq), the host sends the same frame again, and
    the answer is the one an undisturbed request gets."""
    index = len(image[1]) - 1
    clean = device.request(Command.MODEL, bytes([index]))
    wire = CorruptFirstWrite(device.port)
    device.port = wire
    try:
        answer = device.request(Command.MODEL, bytes([index]))
    finally:
        device.port = wire.port
    assert answer == clean
    assert len(wire.writes) == 2 and wire.writes[0] == wire.writes[1]  # the same frame, sent again
    seq = wire.writes[0][2]
    frames = FrameDecoder().feed(bytes(wire.received))
    assert [(f.type, f.seq) for f in frames] == [(ERROR, seq), (Command.MODEL | ANSWER, seq)]
    assert frames[0].payload[:1] == bytes([ErrorCode.BAD_CRC]) and frames[1].payload == clean


def test_device_resynchronizes_after_noise_and_a_cut_frame(device):
    """Noise, an impossible length, and a frame cut short (completed by the next frame, so it
    fails its CRC): the device answers BAD_CRC for the cut frame and still finds the next one."""
    too_long = bytes([0xA5, Command.INFO, 50]) + struct.pack("<H", 5000)
    cut = encode_frame(Command.MODEL, 42, b"\x00")[:6]
    frames = _exchange(device, b"\x00\x13\x37" + too_long + cut + _info_request(43), 2)
    assert [(f.type, f.seq) for f in frames] == [(ERROR, 42), (Command.INFO | ANSWER, 43)]
    frames = _exchange(device, encode_frame(0x33, 44, b""), 1)
    assert [(f.type, f.seq, f.payload[:1]) for f in frames] == [(ERROR, 44, bytes([ErrorCode.UNKNOWN_TYPE]))]


def test_device_drops_a_frame_that_stops_half_way(device):
    """After 0.5 s without bytes a partial frame is dropped, so the next request is clean."""
    device.port.write(encode_frame(Command.MODEL, 45, b"\x00")[:7])
    time.sleep(1.0)
    frames = _exchange(device, _info_request(46), 2, timeout=1.0)
    assert [(f.type, f.seq) for f in frames] == [(Command.INFO | ANSWER, 46)]


# ---- faults and budgets -----------------------------------------------------------------------


@pytest.mark.parametrize("model, evidence", [
    ("faulty", "cfsr=0x00008200 .* bfar=0x50000000"),   # precise bus error at the address read
    ("overflow", "cfsr=0x00009200 .* bfar=0x5ff"),      # stacking error just below the STACK region
])
def test_a_fault_is_reported_at_once(image, tmp_path, model, evidence):
    elf = image[0]
    with qemu_device(elf, tmp_path / "qemu.log") as device:
        assert device.wait_hello(10.0) == MODEL_HASH
        start = time.monotonic()
        with pytest.raises(DeviceError, match="crashed during RUN: FAULT: HardFault exception=0x00000003 pc=0x") \
                as caught:
            device.run(_index(device, model))
        assert caught.value.code == ErrorCode.FAULT and time.monotonic() - start < 2.0
        assert re.search(evidence, str(caught.value)), str(caught.value)


@pytest.mark.parametrize("region, declaration", [
    ("FLASH", "static const uint8_t big[3u << 20] = {1};"),
    ("RAM", "static uint8_t big[600u << 10];"),
])
def test_an_over_budget_model_fails_at_link_time(tmp_path, region, declaration):
    gen = tmp_path / "gen"
    gen.mkdir()
    (gen / "model.c").write_text(
        '#include "mpq_model.h"\n' + declaration + "\n"
        "static int run(void) { return big[7]; }\n"
        'static const mpq_model_t m = {"big", {1, 1, 1, 8, 0, 0}, {1, 1, 1, 8, 0, 0}, 1, 1, (uint8_t *)big, big, 0, run, 0, 0};\n'
        "const mpq_model_t *const mpq_models[] = {&m};\nconst uint32_t mpq_model_count = 1;\n"
        'const char mpq_model_hash[] = "0";\nconst char mpq_policy_hash[] = "";\n'
        "const uint32_t mpq_arena_bytes = 0;\n")
    result = build(gen, tmp_path / "out")
    assert result.returncode != 0
    assert f"region `{region}' overflowed" in result.stderr
    assert f"{region} budget" in result.stderr
