"""The pytest plugin as a user meets it: `pytest --board ...` in a subprocess, the `dut` fixture,
and the README's example test (which must be tests/test_dut_example.py word for word)."""
import re
import subprocess
import sys

import numpy as np
import pytest

from harness.paths import REPO_ROOT


def _pytest(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *args],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)


def test_an_unknown_board_is_one_usage_error():
    result = _pytest("--board", "nope", "tests/test_dut_example.py")
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert errors == ["ERROR: unknown board 'nope' (known boards: nucleo-h743, nucleo-h743-revy, qemu-m7, renode-h743)"]


def test_an_option_the_board_cannot_take_is_a_usage_error():
    result = _pytest("--board", "qemu-m7", "--probe-id", "066A", "tests/test_dut_example.py")
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    assert "ERROR: --probe-id: board qemu-m7 (qemu backend) has no probe_id setting" in result.stderr


def test_without_a_probe_device_fixtures_skip_even_outside_device_tests(tmp_path):
    from harness.backends import get_backend, load_board
    if get_backend(load_board("nucleo-h743").backend).tool_status().present:
        pytest.skip("a probe is attached here: the test would run on the board for real")
    unmarked = tmp_path / "test_unmarked.py"
    unmarked.write_text("def test_uses_dut(dut):\n    raise AssertionError('must not run')\n\n"
                        "def test_uses_session(device_session):\n    raise AssertionError('must not run')\n")
    result = _pytest("--board", "nucleo-h743", "--probe-id", "066A", "--port", "/dev/ttyACM0", "--baud", "921600",
                     str(unmarked), "tests/test_dut_example.py")
    assert result.returncode == 0, result.stdout[-2000:]
    skips = [line for line in result.stdout.splitlines() if line.startswith("SKIPPED")]
    assert len(skips) == 3 and all("board nucleo-h743: no debug probe found" in line for line in skips), skips


def test_board_options_reach_the_backend_settings(pytestconfig):
    from harness.pytest_plugin import _configured_board

    class Options:
        values = {"--board": "nucleo-h743", "--port": "/dev/ttyACM3", "--probe-id": "066A", "--baud": 921600}

        def getoption(self, name):
            return self.values[name]

    settings = _configured_board(Options()).backend_settings
    assert (settings.port, settings.probe_id, settings.baud) == ("/dev/ttyACM3", "066A", 921600)


def test_the_readme_example_is_the_example_test():
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme[readme.index("### Write your own board test"):]
    (code,) = re.findall(r"```python\n(.*?)```", section, re.S)[:1]
    example = (REPO_ROOT / "tests" / "test_dut_example.py").read_text()
    assert code == example.split("\n", 1)[1]  # the file's first line says where it comes from


@pytest.mark.device
def test_dut_checks_against_the_host_reference(dut):
    import dataclasses

    from harness.ir import reference
    from harness.measure.dut import Dut, ReferenceMismatch

    x = np.full(dut.input.shape, 2 ** dut.input.bits - 1)
    output, ticks, layer_ticks = dut.infer(x)
    assert np.array_equal(output, reference.predict(dut.graph, x)) and sum(layer_ticks) <= ticks
    # the same session checked against another graph (the first layer's bias pushed far down,
    # so its outputs clip to zero) must fail the check
    first = dut.graph.layers[0]
    other = dataclasses.replace(dut.graph, layers=[dataclasses.replace(first, bias=first.bias - (1 << 20)),
                                                   *dut.graph.layers[1:]])
    with pytest.raises(ReferenceMismatch, match="differs from the host reference in [0-9]+ of"):
        Dut(dut.device, other, dut.board).infer(x)
    assert dut.infer(x, check=False).output.shape == output.shape
