"""The MLPerf Tiny front end's command parser (firmware/runtime/mlperf_dut.c) compiled for the
host with bounds checks that trap (-fsanitize=undefined, trap on error) and driven through
ctypes: exact answers to each command and each malformed one, and hypothesis fuzzing (bounded:
300 examples) of arbitrary byte streams: every command answers lines ending in m-ready, nothing
overflows the 80-character command or the input buffer, and the device still loads and infers
correctly afterwards."""
import ctypes
import re
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.link.mlperf import format_score
from harness.paths import FIRMWARE_DIR, REPO_ROOT
from harness.pytest_plugin import require_tools

DB_BYTES = 64  # the stub's input buffer
LINE = re.compile(r"^(m-[ -~]*|e-\[[^\]]+\])$")


@pytest.fixture(scope="module")
def dut(tmp_path_factory):
    require_tools("gcc")
    library = tmp_path_factory.mktemp("mlperf_host") / "libmlperf_dut.so"
    command = ["gcc", "-std=c11", "-O1", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared",
               "-fsanitize=undefined", "-fsanitize-undefined-trap-on-error", f"-DMLPERF_DB_BYTES={DB_BYTES}u",
               f"-I{FIRMWARE_DIR / 'runtime'}", str(FIRMWARE_DIR / "runtime" / "mlperf_dut.c"),
               str(REPO_ROOT / "tests" / "support" / "mlperf_host_stub.c"), "-o", str(library)]
    subprocess.run(command, check=True, timeout=120)
    lib = ctypes.CDLL(str(library))
    lib.mlperf_dut_push.argtypes = [ctypes.c_char]
    lib.stub_take_output.restype = lib.stub_prepared.restype = lib.stub_runs.restype = ctypes.c_uint32
    return Parser(lib)


class Parser:
    def __init__(self, lib) -> None:
        self.lib = lib

    def feed(self, data: bytes) -> list[str]:
        for byte in data:
            self.lib.mlperf_dut_push(bytes([byte]))
        buffer = ctypes.create_string_buffer(1 << 16)
        n = self.lib.stub_take_output(buffer, len(buffer))
        text = buffer.raw[:n].decode("ascii")
        assert text == "" or text.endswith("\r\n")
        return text.split("\r\n")[:-1]

    def prepared(self) -> bytes:
        buffer = ctypes.create_string_buffer(DB_BYTES)
        n = self.lib.stub_prepared(buffer, DB_BYTES)
        return buffer.raw[:n]

    def reset(self) -> None:
        self.lib.mlperf_dut_reset()
        self.feed(b"")


def load_and_infer(dut: Parser, data: bytes) -> list[str]:
    assert dut.feed(f"db load {len(data)}%".encode()) == [f"m-[Expecting {len(data)} bytes]", "m-ready"]
    for start in range(0, len(data), 31):
        answer = dut.feed(b"db " + data[start:start + 31].hex().encode() + b"%")
        assert answer == (["m-load-done", "m-ready"] if start + 31 >= len(data) else ["m-ready"])
    return dut.feed(b"infer 3 2%")


def test_commands_answer_exactly(dut):
    dut.reset()
    assert dut.feed(b"name%") == ["m-name-dut-[host-stub]", "m-ready"]
    assert dut.feed(b"profile%") == ["m-profile-[mpq-harness MLPerf Tiny DUT 1]", "m-model-[stub01]", "m-ready"]
    data = bytes(range(100, 100 + DB_BYTES))
    runs = dut.lib.stub_runs()
    lines = load_and_infer(dut, data)
    total = float(sum(data))
    assert lines[:3] == ["m-warmup-start-2", "m-warmup-done", "m-infer-start-3"]
    t0, t1 = (int(line.removeprefix("m-lap-us-")) for line in lines[3:5])
    assert t1 - t0 == 3000  # the stub's clock advances 1 ms a run: the lap brackets the 3 runs only
    assert lines[5:] == ["m-infer-done", f"m-results-[{format_score(total)},{format_score(-total / 7.0)}]", "m-ready"]
    assert dut.lib.stub_runs() - runs == 5 and dut.prepared() == data
    assert dut.feed(b"results%") == [lines[6], "m-ready"]
    assert dut.feed(b"timestamp%")[0] == f"m-lap-us-{t1}"


@pytest.mark.parametrize("command, error", [
    (b"name" + b" " * 77 + b"x%", "e-[command longer than 80 characters]"),
    (b"db " + b"ab" * 32 + b"%", "e-[db: more than 31 bytes in one command]"),
    (b"db 0g%", "e-[db: invalid hex digit]"),
    (b"db 012%", "e-[db: odd number of hex digits]"),
    (b"db load%", "e-[db takes 'load N' or one run of hex bytes]"),
    (b"db load 0%", "e-[db load needs a byte count of 1 or more]"),
    (b"db load 65%", "e-[db load: more bytes than the input buffer holds]"),
    (b"db load 1234567890%", "e-[db load needs a byte count of 1 or more]"),
    (b"infer 0%", "e-[infer: the inference count must be a number of 1 or more]"),
    (b"infer 1 -1%", "e-[infer: the warmup count must be a number]"),
    (b"%", "e-[empty command]"),
    (b"a b c d e%", "e-[too many arguments]"),
])
def test_malformed_commands(dut, command, error):
    dut.reset()
    assert dut.feed(b"db load 4%")[0] == "m-[Expecting 4 bytes]"
    assert dut.feed(command) == [error, "m-ready"]
    assert dut.feed(b"db 01020304%") == ["m-load-done", "m-ready"]  # the pending load survived the error


def test_command_length_bound_is_exact(dut):
    dut.reset()
    assert dut.feed(b"name" + b" " * 76 + b"%") == ["m-name-dut-[host-stub]", "m-ready"]  # 80 characters
    assert dut.feed(b"name" + b" " * 77 + b"%") == ["e-[command longer than 80 characters]", "m-ready"]  # 81
    assert dut.feed(b"db load 64%")[0] == "m-[Expecting 64 bytes]"
    assert dut.feed(b"db " + b"ab" * 31 + b"%") == ["m-ready"]  # 31 bytes: the most one db carries
    assert dut.feed(b"db " + b"cd" * 33 + b"%") == ["e-[db: more than 31 bytes in one command]", "m-ready"]
    assert dut.feed(b"db " + b"cd" * 31 + b"%") == ["m-ready"]
    assert dut.feed(b"db " + b"ef" * 3 + b"%") == ["e-[db: more bytes than db load announced]", "m-ready"]  # 65th
    assert dut.feed(b"db " + b"ef" * 2 + b"%") == ["m-load-done", "m-ready"]
    assert dut.feed(b"infer 1 0%")[-2].startswith("m-results-[")
    assert dut.prepared() == b"\xab" * 31 + b"\xcd" * 31 + b"\xef" * 2


def test_db_state_errors(dut):
    dut.reset()
    assert dut.feed(b"db 00%") == ["e-[db data before db load]", "m-ready"]
    assert dut.feed(b"infer 1 0%")[0].startswith("e-[infer: no complete input")
    assert dut.feed(b"results%") == ["e-[results: no inference since the last load]", "m-ready"]
    assert dut.feed(b"db load 2%")[0] == "m-[Expecting 2 bytes]"
    assert dut.feed(b"db 010203%") == ["e-[db: more bytes than db load announced]", "m-ready"]
    assert dut.feed(b"db 01%") == ["m-ready"]
    assert dut.feed(b"infer 1 0%")[0].startswith("e-[infer: no complete input")
    assert dut.feed(b"db 02%") == ["m-load-done", "m-ready"]
    assert dut.feed(b"db 03%") == ["e-[db data before db load]", "m-ready"]
    assert dut.feed(b"infer 1 0%")[0] == "e-[infer: the loaded byte count is not the model's input size]"


WORDS = [b"name", b"profile", b"db", b"load", b"infer", b"results", b"timestamp", b" ", b"%", b"64", b"0",
         b"31", b"99999", b"ff", b"0A", b"zz", b"\r\n", b"\x00", b"\xff", b"db load 64%", b"db load 1%",
         b" " * 70, b" " * 76, b"ab" * 31, b"ab" * 32, b"00" * 16]
streams = st.lists(st.one_of(st.sampled_from(WORDS), st.binary(max_size=100)), max_size=40).map(b"".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stream=streams, data=st.binary(min_size=DB_BYTES, max_size=DB_BYTES))
def test_fuzzed_streams_answer_in_format_and_leave_the_device_serving(dut, stream, data):
    dut.reset()
    lines = dut.feed(stream + b"%")  # the final '%' ends whatever command was in progress
    answers = stream.count(b"%") + 1
    assert lines.count("m-ready") == answers and lines[-1] == "m-ready"
    assert all(LINE.match(line) for line in lines), lines
    assert all(len(line) <= 200 for line in lines)
    lines = load_and_infer(dut, data)
    assert lines[-1] == "m-ready" and lines[5] == "m-infer-done" and dut.prepared() == data
