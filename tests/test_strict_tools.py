"""Strict mode (harness/pytest_plugin.py): with the ARM compiler off PATH, `bash tools/test.sh`
fails naming it, while a plain pytest run skips with the reason; Renode-only tests still skip.

The run uses the real tools/test.sh in a scratch copy of the repo's entry points whose
tools/setup.sh does nothing (the real one would apt-get the compiler back) and whose
.venv/bin/pytest is this interpreter's pytest on this tree; PATH holds every tool but
arm-none-eabi-*. Two small selections that need the compiler: a codegen test (marker
`tools`) and a device test (marker `device`).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SELECTION = ["tests/test_codegen.py::test_single_graph_image_compiles_for_cortex_m7",
             "tests/test_kernels_device.py", "-k", "single_graph or conv2d-m7"]
TIMEOUT_S = 300


def _path_without_arm_gcc(root: Path) -> str:
    """A PATH directory of links to every executable on PATH except arm-none-eabi-*."""
    bin_dir = root / "bin"
    bin_dir.mkdir()
    for directory in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(directory):
            continue
        for entry in os.scandir(directory):
            target = bin_dir / entry.name
            if entry.name.startswith("arm-none-eabi-") or target.exists():
                continue
            if entry.is_file() and os.access(entry.path, os.X_OK):
                target.symlink_to(entry.path)
    return str(bin_dir)


def _scratch_repo(root: Path) -> Path:
    """tools/test.sh as shipped, a no-op tools/setup.sh, .venv/bin/pytest running this tree."""
    repo = root / "repo"
    (repo / "tools").mkdir(parents=True)
    shutil.copy(REPO / "tools" / "test.sh", repo / "tools" / "test.sh")
    (repo / "tools" / "setup.sh").write_text("exit 0\n")
    pytest_script = repo / ".venv" / "bin" / "pytest"
    pytest_script.parent.mkdir(parents=True)
    pytest_script.write_text(f'#!/bin/sh\ncd "{REPO}" && PYTHONPATH="{REPO}" exec "{sys.executable}" -m pytest '
                             f'-p no:cacheprovider "$@"\n')
    pytest_script.chmod(0o755)
    return repo


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("strict")
    env = {key: value for key, value in os.environ.items() if key != "MPQ_STRICT_TOOLS"}
    env["PATH"] = _path_without_arm_gcc(root)
    assert shutil.which("arm-none-eabi-gcc", path=env["PATH"]) is None
    repo = _scratch_repo(root)
    strict = subprocess.run(["bash", str(repo / "tools" / "test.sh"), "-ra", *SELECTION], env=env, cwd=root,
                            capture_output=True, text=True, timeout=TIMEOUT_S)
    plain = subprocess.run([str(repo / ".venv" / "bin" / "pytest"), "-ra", *SELECTION], env=env, cwd=root,
                           capture_output=True, text=True, timeout=TIMEOUT_S)
    env["PATH"] = os.environ["PATH"]  # every tool present; Renode is not one tools/setup.sh installs
    renode = subprocess.run(["bash", str(repo / "tools" / "test.sh"), "-ra", "--board", "renode-h743",
                             "tests/test_kernels_device.py", "-k", "conv2d-m7"], env=env, cwd=root,
                            capture_output=True, text=True, timeout=TIMEOUT_S)
    return strict, plain, renode


def test_tools_test_sh_fails_naming_the_missing_compiler(runs):
    strict, _, _ = runs
    out = strict.stdout + strict.stderr
    assert strict.returncode != 0, out[-3000:]
    lines = [line for line in out.splitlines() if "missing tool arm-none-eabi-gcc" in line]
    assert len(lines) >= 2, out[-3000:]  # one for the codegen test, one for the device test
    assert "skipped" not in out.splitlines()[-1] and "passed" not in out.splitlines()[-1], out[-3000:]


def test_without_strict_mode_the_same_tests_skip_with_the_reason(runs):
    _, plain, _ = runs
    out = plain.stdout + plain.stderr
    assert plain.returncode == 0, out[-3000:]
    skips = [line for line in out.splitlines() if line.startswith("SKIPPED")]
    assert len(skips) >= 2 and all("arm-none-eabi-gcc" in line for line in skips), out[-3000:]
    assert "failed" not in out.splitlines()[-1] and "error" not in out.splitlines()[-1], out[-3000:]


def test_strict_mode_still_skips_what_only_renode_or_hardware_can_run(runs):
    *_, renode = runs
    out = renode.stdout + renode.stderr
    if shutil.which("renode"):
        pytest.skip("Renode is installed here: its device tests would run for real")
    assert renode.returncode == 0, out[-3000:]
    skips = [line for line in out.splitlines() if line.startswith("SKIPPED")]
    assert skips and all("board renode-h743: renode not found" in line for line in skips), out[-3000:]
