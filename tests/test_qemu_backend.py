"""The QEMU backend's lifecycle: a live link, and QEMU gone after every way out of the with-block."""
import dataclasses
import os
import signal
import socket
import time

import pytest
import serial
from support.tiny_firmware import MESSAGE, build_tiny_elf

from harness.backends import open_link
from harness.backends import qemu as qemu_backend
from harness.backends import load_board
from harness.errors import HarnessError

pytestmark = pytest.mark.tools(qemu_backend.QEMU)


@pytest.fixture(scope="module")
def tiny_elf(tmp_path_factory):
    return build_tiny_elf(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def board():
    return load_board("qemu-m7")


def with_settings(board, **changes):
    return dataclasses.replace(board, backend_settings=dataclasses.replace(board.backend_settings, **changes))


def assert_gone(pid):
    """The process is reaped: no /proc entry (a zombie would still have one)."""
    assert not os.path.exists(f"/proc/{pid}"), f"QEMU {pid} still exists"


def read_until(url, expected, timeout_s=10.0):
    received = b""
    deadline = time.monotonic() + timeout_s
    with serial.serial_for_url(url, timeout=0.5) as port:
        while expected not in received and time.monotonic() < deadline:
            received += port.read(64)
    return received


def test_link_carries_the_firmware_output_from_its_first_byte(board, tiny_elf):
    with open_link(board, tiny_elf) as link:
        assert link.url.startswith("socket://127.0.0.1:")
        assert link.alive()
        received = read_until(link.url, MESSAGE)
        pid = link.pid
    # QEMU holds the guest until the first client connects: nothing is lost
    assert received.startswith(MESSAGE)
    assert_gone(pid)


def test_qemu_is_stopped_when_the_block_raises(board, tiny_elf):
    with pytest.raises(RuntimeError, match="measuring failed"):
        with open_link(board, tiny_elf) as link:
            pid = link.pid
            raise RuntimeError("measuring failed")
    assert_gone(pid)


def test_qemu_is_stopped_on_ctrl_c(board, tiny_elf):
    with pytest.raises(KeyboardInterrupt):
        with open_link(board, tiny_elf) as link:
            pid = link.pid
            raise KeyboardInterrupt
    assert_gone(pid)


def test_a_killed_qemu_is_detected_with_its_reason(board, tiny_elf):
    with open_link(board, tiny_elf) as link:
        os.kill(link.pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while link.alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not link.alive()
        with pytest.raises(HarnessError, match=r"QEMU \(qemu-m7, socket://.*\): QEMU killed by signal SIGKILL"):
            link.raise_if_dead()


def test_qemu_failing_to_start_is_reported_in_one_line(board, tiny_elf):
    broken = with_settings(board, extra_args=("-no-such-option",))
    with pytest.raises(HarnessError, match="stopped before its serial port opened: QEMU exited with code 1: .*no-such-option") as caught:
        with open_link(broken, tiny_elf):
            pass
    assert "\n" not in str(caught.value)


def test_a_crashing_firmware_is_reported_with_qemus_message(board, tmp_path):
    garbage = tmp_path / "garbage.elf"
    garbage.write_bytes(b"\xff" * 64)  # not an ELF: QEMU loads it raw and the core locks up
    with open_link(board, garbage) as link:
        host, port = link.url.removeprefix("socket://").rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=5):  # lets the guest start
            deadline = time.monotonic() + 10
            while link.alive() and time.monotonic() < deadline:
                time.sleep(0.01)
        with pytest.raises(HarnessError, match="Lockup") as caught:
            link.raise_if_dead()
        assert "\n" not in str(caught.value)


def test_a_taken_port_is_retried_with_another(board, tiny_elf, monkeypatch):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        real_free_port = qemu_backend._free_port
        handed_out = []

        def taken_first():
            handed_out.append(taken if not handed_out else real_free_port())
            return handed_out[-1]

        monkeypatch.setattr(qemu_backend, "_free_port", taken_first)
        with open_link(board, tiny_elf) as link:
            assert link.url == f"socket://127.0.0.1:{handed_out[-1]}"
            assert MESSAGE in read_until(link.url, MESSAGE)
        assert len(handed_out) == 2 and handed_out[0] == taken


def test_missing_elf_and_missing_qemu_are_clear(board, tiny_elf, tmp_path, monkeypatch):
    with pytest.raises(HarnessError, match="no firmware image"):
        with open_link(board, tmp_path / "absent.elf"):
            pass
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(HarnessError, match="apt-get install qemu-system-arm"):
        with open_link(board, tiny_elf):
            pass
    status = qemu_backend.QemuBackend.tool_status()
    assert not status.present and "apt-get install qemu-system-arm" in status.detail
