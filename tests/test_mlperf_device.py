"""The MLPerf Tiny front end on qemu-m7, through a pseudo-terminal as MLPerf Tiny's runner would
open it: MLPerf Tiny's ResNet-8 (imported from its fp32 TFLite file) built with
--protocol mlperf-tiny answers name, profile, db load, db and `infer 20 5` exactly in the
protocol's format; its m-results equal the binary protocol's output for the same input
(dequantized and printed the same way) and the host reference's; malformed commands answer
e-[...] and the device keeps serving; `harness serve`, `build` and `measure --protocol mlperf-tiny`;
the kws01, ad01 and vww01 input formats. About 25 s with the builds cached (a first run
calibrates and builds seven firmwares: a few minutes)."""
import re

import numpy as np
import pytest

from harness.backends import load_board
from harness.backends.qemu import open_pty_link
from harness.build.mlperf_config import quantize_loaded
from harness.cli import main
from harness.link.mlperf import MlperfSession, expected_scores
from harness.measure.dut import open_dut
from harness.measure.mlperf_run import build_mlperf_firmware, host_scores, loaded_inputs, mlperf_config
from harness.paths import REPO_ROOT

pytestmark = pytest.mark.device
DATA = REPO_ROOT / "tests" / "data"
MODELS = DATA / "mlperf-tiny"
CIFAR10, IMAGENET32 = DATA / "samples" / "cifar10", DATA / "samples" / "imagenet32"


@pytest.fixture(scope="module")
def resnet8(tmp_path_factory):
    from harness.policy import load_policy
    from harness.quantize.pipeline import policy_graph

    path = tmp_path_factory.mktemp("mlperf") / "resnet8.json"
    assert main(["import", str(MODELS / "ic_resnet8_fp32.tflite"), "--input-range-from",
                 str(MODELS / "ic_resnet8_int8.tflite"), "--out", str(path)]) == 0
    policy = load_policy(path)
    return policy, policy_graph(policy, False, calibration_dir=IMAGENET32), path


@pytest.fixture(scope="module")
def session(resnet8, board_name):
    if board_name != "qemu-m7":
        pytest.skip("the pty is QEMU's; on hardware the runner opens the board's serial port")
    policy, graph, _ = resnet8
    board = load_board(board_name)
    build = build_mlperf_firmware(graph, policy, board)
    with open_pty_link(board, build.elf_path) as link:
        assert re.fullmatch(r"/dev/pts/\d+", link.url)
        with MlperfSession.open(link.url, timeout=20.0) as dut:
            dut.sync()
            yield dut


def test_resnet8_answers_in_the_protocol_format_and_equals_the_binary_protocol(resnet8, session, board_name):
    policy, graph, _ = resnet8
    config = mlperf_config(policy, graph)
    assert config.model_id == "ic01" and config.input_format == "uint8"
    (raw, *_), (label, *_) = loaded_inputs(graph, config, 1, CIFAR10)
    assert len(raw) == 3072

    assert session.command("name") == ["m-name-dut-[mpq-harness]", "m-ready"]
    assert session.command("profile") == ["m-profile-[mpq-harness MLPerf Tiny DUT 1]", "m-model-[ic01]", "m-ready"]
    assert session.command("db load 3072") == ["m-[Expecting 3072 bytes]", "m-ready"]
    chunks = [raw[i:i + 31] for i in range(0, len(raw), 31)]
    for chunk in chunks[:-1]:
        assert session.command("db " + chunk.hex()) == ["m-ready"]
    assert session.command("db " + chunks[-1].hex().upper()) == ["m-load-done", "m-ready"]  # hex in either case

    lines = session.command("infer 20 5", timeout=120)
    assert lines[:3] == ["m-warmup-start-5", "m-warmup-done", "m-infer-start-20"]
    t0, t1 = (int(re.fullmatch(r"m-lap-us-(\d+)", line).group(1)) for line in lines[3:5])
    assert lines[5:6] == ["m-infer-done"] and lines[7:] == ["m-ready"] and len(lines) == 8
    results = re.fullmatch(r"m-results-\[(.*)\]", lines[6]).group(1).split(",")
    assert len(results) == 10 and all(re.fullmatch(r"-?\d+\.\d{3}", v) for v in results)
    assert t1 > t0

    # the same input through the binary protocol: the same output, printed the same way
    x = quantize_loaded(raw, graph, config)
    assert np.array_equal(x, np.frombuffer(raw, np.uint8).reshape(32, 32, 3))  # input range 0..255: raw pixels
    out = graph.tensors[graph.output]
    with open_dut(load_board(board_name), graph, policy.hash) as dut:
        binary = dut.infer(x)  # checked against the host reference inside
    assert tuple(results) == expected_scores(binary.output, out.scale, out.zero_point) == host_scores(graph, config, raw)
    assert int(np.argmax([float(v) for v in results])) == label  # the first CIFAR-10 sample is classified right

    # 20 runs of ~12.5 M MACs: the lap is virtual time at the 25 MHz board clock, far above 1 ms
    ms_per_inference = (t1 - t0) / 20 / 1000
    assert 1 < ms_per_inference < 10_000
    print(f"ic01 on {board_name}: {ms_per_inference:.1f} ms of virtual time per inference, results {','.join(results)}")


MALFORMED = {
    "overlong": b"name" + b" " * 77 + b"x%",
    "overlong hex": b"db " + b"00" * 60 + b"%",
    "bad hex": b"db 0g%",
    "odd hex": b"db 012%",
    "unknown": b"launch%",
    "empty": b"%",
    "db load 0": b"db load 0%",
    "db load beyond the buffer": b"db load 3073%",
    "db load not a number": b"db load 12ab%",
    "db load huge": b"db load 99999999999999%",
    "infer 0": b"infer 0 1%",
    "too many arguments": b"infer 1 2 3 4%",
}


def test_malformed_commands_answer_errors_and_the_device_keeps_serving(session):
    for what, data in MALFORMED.items():
        lines = session.send_raw(data)
        assert len(lines) == 2 and re.fullmatch(r"e-\[[^\]]+\]", lines[0]) and lines[1] == "m-ready", (what, lines)
    session.command("db load 2")  # a fresh load: nothing pending
    assert session.command("db 0102")[0] == "m-load-done"
    assert session.command("db 03")[0].startswith("e-[")  # db after the load completed: none announced
    assert session.command("db load 3")[0] == "m-[Expecting 3 bytes]"
    assert session.command("db 01020304")[0] == "e-[db: more bytes than db load announced]"
    assert session.command("infer 1 0")[0].startswith("e-[infer: no complete input")  # 0 of 3 bytes loaded
    assert session.command("results")[0].startswith("e-[")
    assert session.command("name") == ["m-name-dut-[mpq-harness]", "m-ready"]


def test_db_before_db_load_is_refused_at_boot(resnet8, board_name):
    if board_name != "qemu-m7":
        pytest.skip("the pty is QEMU's")
    policy, graph, _ = resnet8
    board = load_board(board_name)
    with open_pty_link(board, build_mlperf_firmware(graph, policy, board).elf_path) as link:
        with MlperfSession.open(link.url) as dut:
            dut.sync()
            assert dut.command("db 00") == ["e-[db data before db load]", "m-ready"]
            assert dut.command("infer 1 0")[0].startswith("e-[")
            assert dut.command("name")[0] == "m-name-dut-[mpq-harness]"


def test_harness_serve_keeps_the_firmware_on_a_pty_until_ctrl_c(resnet8, board_name, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    if board_name != "qemu-m7":
        pytest.skip("serve's pty is QEMU's")
    _, _, policy_file = resnet8
    # faulthandler: a serve that does not stop is made to print where each of its threads is
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONFAULTHANDLER": "1"}
    # started with SIGINT ignored, as a background job of a non-interactive shell is (a CI runner's
    # may be): serve must still stop on it
    process = subprocess.Popen([sys.executable, "-m", "harness.cli", "serve", str(policy_file), "--board", board_name,
                                "--protocol", "mlperf-tiny", "--calibration", str(IMAGENET32)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        line = process.stdout.readline()
        path = re.fullmatch(r"serial port: (/dev/pts/\d+)\n", line).group(1)
        with MlperfSession.open(path) as dut:
            dut.sync()
            assert dut.profile()[1] == "ic01"
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGABRT)
            pytest.fail(f"serve did not stop within 30 s of SIGINT; its stderr:\n{process.communicate(timeout=30)[1][-4000:]}")
        assert code == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_harness_measure_through_mlperf_tiny(resnet8, board_name, tmp_path):
    import json

    _, _, policy_file = resnet8
    report_file = tmp_path / "report.json"
    assert main(["measure", str(policy_file), "--board", board_name, "--protocol", "mlperf-tiny", "--data", str(CIFAR10),
                 "--calibration", str(IMAGENET32), "--images", "3", "--infer", "2", "1", "--out", str(report_file)]) == 0
    report = json.loads(report_file.read_text())
    assert report["model"] == "ic01" and report["images"] == report["equal"] == 3
    assert all(image["results"] == image["expected"] for image in report["per_image"])


# real input ranges of the two networks, from their int8 files' input quantization (tests/test_import_device.py)
@pytest.mark.parametrize("model, input_range, model_id, scores", [
    ("kws_dscnn_fp32.tflite", "-123.4,25.7", "kws01", 12),         # 490 int8 MFCC bytes, 12 class scores
    ("ad_fc_autoencoder_fp32.tflite", "-84.8,14.9", "ad01", 1),   # 640 float32, quantized on the device; one MSE
])
def test_kws_and_ad_input_formats(board_name, tmp_path, model, input_range, model_id, scores):
    import json

    policy = tmp_path / "model.json"
    assert main(["import", str(MODELS / model), f"--input-range={input_range}", "--out", str(policy)]) == 0
    report_file = tmp_path / "report.json"
    assert main(["measure", str(policy), "--board", board_name, "--protocol", "mlperf-tiny", "--images", "2",
                 "--out", str(report_file)]) == 0
    report = json.loads(report_file.read_text())
    assert report["model"] == model_id and report["equal"] == report["images"] == 2
    assert all(len(image["results"]) == scores for image in report["per_image"])
    assert len({tuple(image["results"]) for image in report["per_image"]}) == 2  # two inputs, two answers


def test_harness_build_protocol_picks_the_front_end(resnet8, board_name, capsys):
    from pathlib import Path

    from harness.backends.probe import speaks_mlperf_tiny

    _, _, policy_file = resnet8
    elfs = {}
    for protocol in ("mlperf-tiny", "binary"):
        capsys.readouterr()
        assert main(["build", str(policy_file), "--board", board_name, "--protocol", protocol,
                     "--calibration", str(IMAGENET32)]) == 0
        elfs[protocol] = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert speaks_mlperf_tiny(elfs["mlperf-tiny"]) and not speaks_mlperf_tiny(elfs["binary"])


def test_vww_with_a_4_bit_input_packed_on_the_device(board_name):
    """vww01's 27648 uint8 bytes into MobileNetV1 0.25 (random weights, mixed bits) whose input is
    4 bits: the device maps each pixel through its table and packs two values a byte."""
    from support.zoo_policies import mixed_policy

    from harness.measure.mlperf_run import measure_mlperf
    from harness.policy import parse_policy
    from harness.quantize.pipeline import policy_graph

    base = mixed_policy("mlperf_vww_mobilenet", {})
    document = dict(base.document, input=dict(base.document["input"], bits=4))
    policy = parse_policy(document)
    graph = policy_graph(policy, True)
    assert graph.tensors[graph.input].bits == 4
    report = measure_mlperf(policy, graph, load_board(board_name), 2)
    assert report["model"] == "vww01" and report["equal"] == report["images"] == 2
    assert all(len(image["results"]) == 2 for image in report["per_image"])


_FAULTY_MODEL_C = """
#include "mpq_model.h"
static uint8_t arena[8];
static int faulty_run(void) { return (int)*(volatile uint32_t *)0x50000000u; /* nothing mapped there */ }
static const mpq_model_t faulty = {"faulty", {1, 1, 4, 8, 0, 0}, {1, 1, 4, 8, 0, 0}, 4, 4, arena, arena + 4, 0, faulty_run, 0, 0};
const mpq_model_t *const mpq_models[] = {&faulty};
const uint32_t mpq_model_count = 1u;
const char mpq_model_hash[] = "faulty";
const char mpq_policy_hash[] = "";
const uint32_t mpq_arena_bytes = sizeof arena;
"""


def test_a_fault_answers_an_error_line_with_the_registers(board_name, tmp_path):
    """A model that reads unmapped memory: the infer answer ends in e-[fault: BusFault ...] and
    m-ready instead of leaving the host waiting."""
    from harness.build.firmware import build_firmware
    from harness.build.mlperf_config import MlperfConfig, write_config
    from harness.ir.graph import Graph, Tensor
    from harness.policy import InputQuantization

    if board_name != "qemu-m7":
        pytest.skip("the pty is QEMU's")
    gen = tmp_path / "gen"
    gen.mkdir()
    (gen / "model.c").write_text(_FAULTY_MODEL_C)
    graph = Graph.__new__(Graph)
    graph.tensors = {"x": Tensor("x", (1, 1, 4), 8, 1.0), "y": Tensor("y", (1, 1, 4), 8, 1.0)}
    graph.input, graph.output = "x", "y"
    write_config(gen, graph, MlperfConfig("faulty01", InputQuantization(8, 0.0, 255.0)))
    board = load_board(board_name)
    build = build_firmware(board, gen, make_vars={"PROTOCOL": "mlperf-tiny"})
    with open_pty_link(board, build.elf_path) as link:
        with MlperfSession.open(link.url) as dut:
            dut.sync()
            dut.load(b"\x01\x02\x03\x04")
            lines = dut.command("infer 1 0")
    assert lines[:3] == ["m-warmup-start-0", "m-warmup-done", "m-infer-start-1"]
    assert re.fullmatch(r"e-\[fault: (BusFault|HardFault) exception=0x0000000\d pc=0x[0-9a-f]{8} .*\]", lines[-2]), lines
    assert lines[-1] == "m-ready"
