"""The probe backend against a fake pyocd (monkeypatched ConnectHelper and FileProgrammer
sessions): timeouts, read-back verification, the silicon revision check and the USB id table.
No board is needed; tests/test_real_boards.py covers board files, ports and connect modes."""
import threading
import zlib
from pathlib import Path

import pytest

from harness.backends import load_board, probe
from harness.errors import HarnessError
from harness.paths import REPO_ROOT

ELF = Path("firmware.elf")  # the fake programmer ignores the path; the segments to verify are passed in
PROBE_ID = "066AFF"
SEGMENTS = [(0x08000000, bytes(range(256)) * 4), (0x08000400, b"\x5a" * 100)]
IDC_REV_V, IDC_REV_Y = 0x20036450, 0x10036450


class FakeTarget:
    """A target whose flash holds what the fake programmer wrote (or something else)."""

    def __init__(self, idc, flash):
        self.idc, self.flash, self.resets = idc, flash, 0

    def read32(self, address):
        assert address == probe.DBGMCU_IDC
        return self.idc

    def read_memory_block8(self, address, size):
        return list(self.flash.get(address, b"\xff" * size)[:size])

    def reset_and_halt(self):
        self.resets += 1


class FakePyocd:
    """ConnectHelper and FileProgrammer fakes that log every session and what they did."""

    def __init__(self, idc=IDC_REV_V, program=None):
        self.log, self.sessions, self.idc = [], [], idc
        self.program_action = program or (lambda session: session.target.flash.update(dict(SEGMENTS)))
        fake = self

        class Session:
            def __init__(self, options):
                self.options, self.target, self.closed = options, FakeTarget(fake.idc, {}), threading.Event()

            def open(self):
                fake.log.append("open")

            def close(self):
                fake.log.append("close")
                self.closed.set()

        class ConnectHelper:
            @staticmethod
            def session_with_chosen_probe(**kwargs):
                assert kwargs["unique_id"] == PROBE_ID and kwargs["target_override"] == "stm32h743xx"
                session = Session(kwargs["options"])
                fake.sessions.append(session)
                return session

        class FileProgrammer:
            def __init__(self, session, no_reset):
                self.session = session

            def program(self, path, file_format):
                fake.log.append("program")
                fake.program_action(self.session)

        self.connect_helper, self.file_programmer = ConnectHelper, FileProgrammer


@pytest.fixture
def nucleo():
    return load_board("nucleo-h743")


def _install(monkeypatch, fake):
    monkeypatch.setattr(probe, "_pyocd", lambda: (fake.connect_helper, fake.file_programmer))


def _flash(board):
    probe._retry_once(lambda: probe._flash(PROBE_ID, ELF, SEGMENTS, board), "flashing")


def test_flashing_programs_verifies_and_halts_at_the_board_swd_clock(monkeypatch, nucleo):
    fake = FakePyocd(program=lambda session: session.target.flash.update(dict(SEGMENTS)))
    _install(monkeypatch, fake)
    _flash(nucleo)
    assert fake.log == ["open", "program", "close"]
    (session,) = fake.sessions
    assert session.options == {"connect_mode": "halt", "frequency": 4_000_000}
    assert session.target.resets == 1


def test_a_verify_failure_is_one_line_after_one_retry(monkeypatch, nucleo):
    def program_badly(session):
        session.target.flash.update(dict(SEGMENTS))
        session.target.flash[0x08000400] = b"\x5a" * 99 + b"\x00"
    fake = FakePyocd(program=program_badly)
    _install(monkeypatch, fake)
    with pytest.raises(HarnessError) as error:
        _flash(nucleo)
    message = str(error.value)
    assert "\n" not in message and message.startswith("flashing failed twice: flash verify failed: 100 bytes at 0x08000400")
    assert f"0x{zlib.crc32(b'Z' * 100):08x}" in message
    assert fake.log == ["open", "program", "close"] * 2


def test_a_timeout_holding_the_probe_opens_no_second_session(monkeypatch, nucleo):
    stuck = threading.Event()
    fake = FakePyocd(program=lambda session: stuck.wait(10))  # a USB call that close() does not end
    _install(monkeypatch, fake)
    monkeypatch.setattr(probe, "CLOSE_GRACE_S", 0.2)
    board = _fast_timeouts(nucleo)
    try:
        with pytest.raises(probe.ProbeStuck, match="timed out after .* still busy: flash may be partially written"):
            _flash(board)
    finally:
        stuck.set()
    assert len(fake.sessions) == 1 and fake.log.count("open") == 1


def test_a_timeout_that_closing_ends_is_retried_in_a_fresh_session(monkeypatch, nucleo):
    attempts = []

    def hang_until_closed_once(session):
        attempts.append(session)
        if len(attempts) == 1:
            session.closed.wait(10)  # pyocd: closing the probe makes the pending transfer fail
            raise RuntimeError("USB transfer aborted")
        session.target.flash.update(dict(SEGMENTS))
    fake = FakePyocd(program=hang_until_closed_once)
    _install(monkeypatch, fake)
    _flash(_fast_timeouts(nucleo))
    assert len(fake.sessions) == 2 and fake.sessions[0].closed.is_set()
    assert fake.log.index("close") < fake.log.index("open", 1)  # the first session closed before the second opened


def _fast_timeouts(board):
    import dataclasses
    settings = dataclasses.replace(board.backend_settings, flash_timeout_s=0.2, flash_min_bytes_per_s=10**9)
    return dataclasses.replace(board, backend_settings=settings)


def test_the_flash_timeout_grows_with_the_image(nucleo):
    settings = nucleo.backend_settings
    assert settings.flash_timeout_for(0) == settings.flash_timeout_s
    assert settings.flash_timeout_for(1_900_000) > settings.flash_timeout_s + 100  # ~1.9 MB images need minutes


def test_a_revision_y_part_is_refused_before_flashing_with_the_board_to_use(monkeypatch, nucleo):
    fake = FakePyocd(idc=IDC_REV_Y)
    _install(monkeypatch, fake)
    with pytest.raises(HarnessError, match=r"silicon revision Y \(DBGMCU_IDC REV_ID 0x1003\), which runs at most "
                                           r"400 MHz, but the firmware is built for 480 MHz: use --board nucleo-h743-revy"):
        _flash(nucleo)
    assert "program" not in fake.log


def test_the_revision_y_board_builds_for_400_mhz_and_flashes(monkeypatch):
    revy = load_board(probe.REV_Y_BOARD)
    assert revy.core_clock_hz == 400_000_000
    makefile = (REPO_ROOT / "firmware" / "Makefile").read_text()
    assert f"BOARD_CFLAGS.{probe.REV_Y_BOARD} := -DSTM32H7_SYSCLK_MHZ=400" in makefile
    fake = FakePyocd(idc=IDC_REV_Y, program=lambda session: session.target.flash.update(dict(SEGMENTS)))
    _install(monkeypatch, fake)
    _flash(revy)
    assert fake.log == ["open", "program", "close"]


def test_a_revision_v_part_runs_the_480_mhz_build():
    probe.check_silicon(FakeTarget(IDC_REV_V, {}), load_board("nucleo-h743"))


def test_the_usb_id_table_has_the_st_link_ids_without_mass_storage():
    assert {"0483:3752", "0483:3754", "0483:3755", "0483:3757"} <= set(probe.ST_LINK_USB_IDS)
    assert set(load_board("nucleo-h743").backend_settings.usb_ids) == set(probe.ST_LINK_USB_IDS)


def test_flash_segments_are_the_elf_load_segments_in_flash(tmp_path, nucleo):
    from harness.build.firmware import toolchain_status
    if not toolchain_status().present:
        pytest.skip("arm-none-eabi-gcc not installed: cannot link an ELF to read")
    import subprocess
    source = tmp_path / "image.c"
    source.write_text("const unsigned char table[64] = {1, 2, 3};\nint counter = 7;\nvoid _start(void) { for (;;) {} }\n")
    script = tmp_path / "image.ld"
    script.write_text("MEMORY { FLASH (rx) : ORIGIN = 0x08000000, LENGTH = 2M\n RAM (rwx) : ORIGIN = 0x24000000, LENGTH = 512K }\n"
                      "SECTIONS { .text : { *(.text*) *(.rodata*) } > FLASH\n .data : { *(.data*) } > RAM AT > FLASH\n"
                      " .bss : { *(.bss*) } > RAM }\n")
    elf = tmp_path / "image.elf"
    subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m7", "-mthumb", "-nostdlib", "-O1", "-T", str(script),
                    str(source), "-o", str(elf)], check=True, capture_output=True)
    segments = probe.flash_segments(elf, nucleo)
    assert segments and all(0x08000000 <= address < 0x08200000 for address, _ in segments)
    assert any(bytes([1, 2, 3]) in data for _, data in segments)
    assert any((7).to_bytes(4, "little") in data for _, data in segments)  # .data's load image
