"""Reliability on the emulator (issue 15): stray bytes during a RUN are flagged and the run is
measured again with the clean run's ticks; a frozen or killed QEMU is named within seconds, the
log gets an `error` event and `--resume` completes the run to what a clean run gives; and a small
fault campaign through the seeded fault link accepts no wrong result and changes no timing."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.backends import load_board
from harness.build.firmware import build_graphs
from harness.cli import main
from harness.datasets.registry import integer_test_set
from harness.datasets.measured import measured_inputs
from harness.quantize.pipeline import policy_graph
from harness.link.device import open_device
from harness.measure.faults import fault_campaign
from harness.measure.run import measure_image, start_session
from harness.paths import POLICIES_DIR
from harness.policy import load_policy, parse_policy

from support.processes import qemu_children

pytestmark = pytest.mark.device
MIXED = POLICIES_DIR / "digits-mixed.json"


@pytest.fixture(autouse=True)
def qemu_only(board_name):
    if board_name != "qemu-m7":
        pytest.skip("drives the emulator's socket link and process: qemu-m7 only")


def _measure_images(board, elf, graph, inputs, labels, link_faults=None):
    with open_device(board, elf, expected_hash=graph.hash(), link_faults=link_faults) as device:
        session = start_session(device, graph, board, inputs[0])
        results = [measure_image(session, i, inputs[i], labels[i]) for i in range(len(inputs))]
        return results, session, dict(getattr(device.port, "counts", {}))


def test_stray_bytes_during_a_run_are_flagged_and_the_run_measured_again():
    """A wide digits network (random weights, 2.2 M ticks a run): QEMU hands UART input to the
    guest only every ~100 ms of virtual time, so a 1 ms digits RUN is too short to be hit."""
    document = json.loads(MIXED.read_text())
    document.update(name="digits-wide", model={"zoo": "digits-cnn", "args": {"width": 64, "input_size": 64}})
    policy = parse_policy(document)
    board = load_board("qemu-m7")
    graph = policy_graph(policy, True)
    elf = build_graphs([graph], board, policy.hash).elf_path
    inputs, labels = measured_inputs(policy, graph, 4)
    clean, clean_session, _ = _measure_images(board, elf, graph, inputs, labels)
    assert clean_session.remeasured == 0
    stray, session, counts = _measure_images(board, elf, graph, inputs, labels, "rate=0&stray=200")
    # the warm-up RUN calibrates the injector; RUNs 2, 4, 6, 8 (the first of each image) get 200 bytes
    assert counts["stray"] == 4 * 200
    assert session.remeasured == 4 and [r.remeasured for r in stray] == [1, 1, 1, 1]
    assert [(r.ticks, r.layer_ticks, r.output_hash) for r in stray] == \
        [(r.ticks, r.layer_ticks, r.output_hash) for r in clean]
    assert all(r.bit_exact for r in stray)


def _records(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def _start_measure(log: Path, images: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "harness.cli", "measure", str(MIXED), "--images", str(images),
                             "--log", str(log)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _qemu_after_images(process: subprocess.Popen, log: Path, n: int) -> int:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not log.exists() or log.read_text().count('"image"') < n):
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    qemu = qemu_children(process.pid)
    assert qemu, "no QEMU child found"
    return qemu[0]


def _clean_records(tmp_path: Path, images: int) -> list[dict]:
    out = tmp_path / "clean.json"
    assert main(["measure", str(MIXED), "--images", str(images), "--out", str(out)]) == 0
    return [r for r in _records(out.with_suffix(".jsonl")) if r["event"] == "image"]


def _same_images(records: list[dict], clean: list[dict]) -> None:
    keys = ("index", "ticks", "layer_ticks", "output_hash", "bit_exact", "device_class")
    assert [tuple(r[k] for k in keys) for r in records] == [tuple(r[k] for k in keys) for r in clean]


@pytest.mark.slow
@pytest.mark.parametrize("how, limit_s, words", [
    (signal.SIGSTOP, 10.0, "is stopped"),
    (signal.SIGKILL, 5.0, "killed by signal SIGKILL"),
])
def test_a_frozen_or_killed_emulator_is_named_fast_and_the_run_resumes(tmp_path, how, limit_s, words):
    images = 30
    clean = _clean_records(tmp_path, images)  # also warms the graph and firmware caches
    log = tmp_path / "interrupted.jsonl"
    process = _start_measure(log, images)
    try:
        qemu = _qemu_after_images(process, log, 5)
        os.kill(qemu, how)
        hit = time.monotonic()
        _, stderr = process.communicate(timeout=60)
        elapsed = time.monotonic() - hit
    finally:
        process.kill()
        try:
            os.kill(qemu, signal.SIGKILL)
        except (ProcessLookupError, UnboundLocalError):
            pass
    assert process.returncode != 0 and "Traceback" not in stderr
    message = stderr.strip().splitlines()[-1]
    assert message.startswith("error:") and "QEMU" in message and words in message, message
    assert elapsed < limit_s, f"took {elapsed:.1f} s to name the emulator's state"
    errors = [r for r in _records(log) if r["event"] == "error"]
    assert len(errors) == 1 and words in errors[0]["message"]

    out = tmp_path / "resumed.json"
    assert main(["measure", "--resume", str(log), "--out", str(out)]) == 0
    records = _records(log)
    run_ids = {r["run_id"] for r in records}
    assert len(run_ids) == 1, "a resumed run keeps its run id"
    assert [r["event"] for r in records].count("end") == 1
    images_done = sorted((r for r in records if r["event"] == "image"), key=lambda r: r["index"])
    _same_images(images_done, clean)
    report = json.loads(out.read_text())
    assert report["images"] == report["bit_exact"] == images


@pytest.mark.slow
def test_a_small_fault_campaign_accepts_no_wrong_result_and_keeps_every_timing():
    policy = load_policy(MIXED)
    board = load_board("qemu-m7")
    graph = policy_graph(policy, False)
    _, inputs, labels = integer_test_set(policy)
    results = fault_campaign(policy, graph, board, inputs[:20], labels[:20], [0.001, 0.01], seed=5)
    low, high = results["runs"]
    for run in (low, high):
        assert run["wrong_results_accepted"] == 0 and run["hangs"] == 0
        assert run["timing_equal"] == run["measured"]
        assert sum(run["faults_injected"].values()) > 0
    assert low["measured"] == 20
    assert high["measured"] >= 19
