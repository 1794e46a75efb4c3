"""The libFuzzer target of the firmware's frame receiver and dispatcher (firmware/fuzz), run for
a bounded time under ASan and UBSan when clang is installed."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from harness.paths import FIRMWARE_DIR

FUZZ_SECONDS = 20


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("clang") is None, reason="clang not installed (apt-get install clang): "
                                                        "the libFuzzer target needs it")
def test_frame_parser_and_dispatcher_survive_libfuzzer(tmp_path):
    make = ["make", "-s", "-C", str(FIRMWARE_DIR / "fuzz"), f"OUT={tmp_path}"]
    built = subprocess.run(make, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-3000:]
    run = subprocess.run([*make, "run", f"FUZZ_SECONDS={FUZZ_SECONDS}"], capture_output=True, text=True,
                         timeout=FUZZ_SECONDS + 120)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Done" in run.stderr and "ERROR" not in run.stderr
    executed = int(run.stderr.split("stat::number_of_executed_units:")[1].split()[0])
    assert executed > 10_000
