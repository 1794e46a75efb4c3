"""End to end on the --board target: `harness measure` on the digits policies."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.processes import qemu_children

from harness.cli import main
from harness.paths import POLICIES_DIR

pytestmark = pytest.mark.device
MIXED = POLICIES_DIR / "digits-mixed.json"


def _measure(tmp_path: Path, name: str, board: str, images: int) -> dict:
    out = tmp_path / f"{name}.json"
    assert main(["measure", str(MIXED), "--board", board, "--images", str(images), "--out", str(out)]) == 0
    return json.loads(out.read_text())


def test_measure_is_bit_exact_and_deterministic(tmp_path, board_name):
    first = _measure(tmp_path, "first", board_name, 40)
    second = _measure(tmp_path, "second", board_name, 40)
    assert first["bit_exact"] == first["images"] == 40
    assert first["device_accuracy"] == first["host_accuracy"] >= 0.9
    assert first["per_image"] == second["per_image"], "ticks must be deterministic"
    assert 0 < first["memory"]["flash_bytes"] <= first["memory"]["flash_budget"]
    assert 0 < first["memory"]["ram_bytes"] <= first["memory"]["ram_budget"]
    log = [json.loads(line) for line in (tmp_path / "first.jsonl").read_text().splitlines()]
    assert [r["index"] for r in log if r["event"] == "image"] == list(range(40))
    assert {layer["name"] for layer in first["layers"]} >= {"conv1", "fc"}


def test_killed_emulator_fails_fast_and_keeps_measured_images(tmp_path, board_name):
    if board_name != "qemu-m7":
        pytest.skip("kills the emulator process: only meaningful on qemu-m7")
    _measure(tmp_path, "warm", board_name, 1)  # quantized graph and firmware now cached
    log = tmp_path / "killed.jsonl"
    process = subprocess.Popen([sys.executable, "-m", "harness.cli", "measure", str(MIXED), "--board", board_name,
                                "--images", "300", "--log", str(log)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not log.exists() or log.read_text().count('"image"') < 5):
            time.sleep(0.1)
        assert log.exists(), "measure never started writing its log"
        qemu = qemu_children(process.pid)
        assert qemu, "no QEMU child found"
        os.kill(qemu[0], signal.SIGKILL)
        killed_at = time.monotonic()
        _, stderr = process.communicate(timeout=30)
        elapsed = time.monotonic() - killed_at
    finally:
        process.kill()
    assert process.returncode != 0
    assert elapsed < 10, f"took {elapsed:.1f} s to notice"
    assert "Traceback" not in stderr
    message = stderr.strip().splitlines()[-1]
    assert message.startswith("error:") and "QEMU" in message, message
    images = [json.loads(line) for line in log.read_text().splitlines() if '"image"' in line]
    assert len(images) >= 5 and all(r["bit_exact"] for r in images)
    assert [r["index"] for r in images] == list(range(len(images)))


def test_a_latency_only_run_sends_no_input_per_run(tmp_path, board_name):
    """--random-weights: the digits model's run consumes its input, so every run gets a FILL (the
    device writes the seeded input itself) instead of a LOAD; the report splits the link's host
    wall time from the device's compute."""
    out = tmp_path / "latency.json"
    policy = POLICIES_DIR / "digits-int8.json"
    assert main(["measure", str(policy), "--board", board_name, "--random-weights", "--images", "4",
                 "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    link = report["link_time"]
    assert report["bit_exact"] == 4 and link["bytes_loaded"] == 0 and link["load_s"] == 0.0
    assert link["fill_s"] > 0 and link["link_s"] == pytest.approx(link["fill_s"] + link["read_s"])
    assert link["device_compute_s"] == pytest.approx(sum(report["per_image"]) * 1e-9)  # 1 ns per instruction
