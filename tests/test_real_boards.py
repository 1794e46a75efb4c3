"""The STM32H743 boards without the hardware: board files, the probe and renode backends up to
where they need a probe or the renode binary, `harness doctor`, and what happens when those
are missing (one-line errors, device tests skipped with the reason)."""
import re
import subprocess
import sys
from types import SimpleNamespace

import pytest

from harness.backends import get_backend, parse_settings
from harness.backends import probe, renode
from harness.backends import load_board
from harness.cli import main
from harness.link.device import board_info
from harness.errors import HarnessError
from harness.paths import POLICIES_DIR, REPO_ROOT
from harness.link.protocol import CounterKind, DeviceInfo

DEVICE_TESTS = ["tests/test_kernels_device.py", "tests/test_measure_device.py"]


def test_nucleo_and_renode_boards_describe_the_same_h743():
    nucleo, emulated = load_board("nucleo-h743"), load_board("renode-h743")
    assert (nucleo.backend, emulated.backend) == ("probe", "renode")
    assert nucleo.bsp == emulated.bsp == "stm32h7"
    assert nucleo.memory == emulated.memory and nucleo.budget == emulated.budget
    assert {(r.name, r.origin, r.size) for r in nucleo.memory} == {
        ("flash", 0x08000000, 2 << 20), ("axi_sram", 0x24000000, 512 << 10), ("dtcm", 0x20000000, 128 << 10)}
    assert nucleo.region_named("dtcm").reserved
    assert (nucleo.counter.kind, emulated.counter.kind) == ("cycles", "instructions")


def test_renode_runs_the_nucleo_elf():
    emulated = load_board("renode-h743")
    assert emulated.firmware_board().name == "nucleo-h743"
    assert load_board("nucleo-h743").firmware_board().name == "nucleo-h743"


def test_firmware_of_another_bsp_is_refused(tmp_path):
    text = (REPO_ROOT / "boards" / "renode-h743.toml").read_text().replace('firmware = "nucleo-h743"', 'firmware = "qemu-m7"')
    (tmp_path / "renode-h743.toml").write_text(text)
    (tmp_path / "qemu-m7.toml").write_text((REPO_ROOT / "boards" / "qemu-m7.toml").read_text())
    with pytest.raises(HarnessError, match="same bsp"):
        load_board("renode-h743", tmp_path).firmware_board()


def _info(kind: CounterKind) -> DeviceInfo:
    return DeviceInfo(1, 1, kind, 480_000_000, 480_000_000, 1024, 256, 4096, "m", "p", "nucleo-h743")


def test_the_board_file_says_what_ticks_mean():
    in_renode = board_info(_info(CounterKind.CORE_CYCLES), load_board("renode-h743"))
    assert in_renode.counter_kind == CounterKind.INSTRUCTIONS and in_renode.instructions_per_tick == 1.0
    on_board = board_info(_info(CounterKind.CORE_CYCLES), load_board("nucleo-h743"))
    assert on_board.counter_kind == CounterKind.CORE_CYCLES and on_board.instructions_per_tick is None


# ---- renode ----------------------------------------------------------------------------------
def test_resc_builds_the_h743_with_dwt_pwr_tag_and_a_local_uart(tmp_path):
    """The script parsed line by line: Renode monitor commands, one per line, `#` comments."""
    settings = load_board("renode-h743").backend_settings
    script = renode.resc_script("renode-h743", settings, tmp_path / "firmware.elf", tmp_path / "uart")
    commands = [line.split(maxsplit=1) for line in script.splitlines() if line and not line.startswith("#")]
    lines = [" ".join(words) for words in commands]
    assert "machine LoadPlatformDescription @platforms/boards/nucleo_h753zi.repl" in lines
    assert 'machine LoadPlatformDescriptionFromString "dwt: Miscellaneous.DWT @ sysbus 0xE0001000 { frequency: 480000000 }"' in lines
    assert "sysbus.cpu PerformanceInMips 480" in lines
    # PWR_CSR1 at 0x58024800 + 4 reads ACTVOSRDY (bit 13), before the ELF runs
    tag = re.fullmatch(r'sysbus Tag <0x([0-9A-Fa-f]+) 4> "PWR_CSR1" 0x([0-9A-Fa-f]+)', renode.PWR_CSR1_TAG)
    assert tag and int(tag[1], 16) == 0x58024804 and int(tag[2], 16) & (1 << 13)
    # a subtag must intersect exactly one tag: stm32h7.repl tags PWR 0x58024800.. and D3CR at 0x58024818
    assert 0x58024800 <= int(tag[1], 16) and int(tag[1], 16) + 4 <= 0x58024818
    assert renode.PWR_CSR1_TAG in lines
    # the UART is a pseudo-terminal: nothing listens on the network (a server socket binds 0.0.0.0)
    assert f'emulation CreateUartPtyTerminal "uart" "{tmp_path / "uart"}"' in lines
    assert not any("Socket" in line for line in lines)
    assert "connector Connect sysbus.usart3 uart" in lines
    assert lines.index(renode.PWR_CSR1_TAG) < lines.index(f"sysbus LoadELF @{tmp_path / 'firmware.elf'}") \
        < lines.index("start") == len(lines) - 1


@pytest.mark.parametrize("version, problem", [
    ("Renode, version 1.15.3.27419 (d7e0a1a3-202409111437)", None),
    ("Renode v1.16.1.12345", None),
    ("Renode, version 1.14.0.1 (abc)", "Renode 1.14.0 is older than 1.15.3"),
    ("something else", "cannot read a version"),
])
def test_renode_older_than_the_floor_is_refused(version, problem):
    found = renode.version_problem(version)
    assert (found is None) if problem is None else (problem in found)


def test_an_old_renode_is_not_usable(monkeypatch, tmp_path):
    monkeypatch.setattr(renode.shutil, "which", lambda name: "/opt/renode/renode")
    monkeypatch.setattr(renode, "_version", lambda path: "Renode, version 1.13.3.1 (x)")
    status = renode.RenodeBackend.tool_status()
    assert not status.present and "older than 1.15.3" in status.detail


def test_renode_waits_for_the_pty_without_opening_it(tmp_path):
    """A stand-in for Renode that makes the pty link file late: the wait sees it appear, opens nothing."""
    pty = tmp_path / "uart"
    process = subprocess.Popen([sys.executable, "-c", f"import time, pathlib; time.sleep(0.5); pathlib.Path({str(pty)!r}).touch(); time.sleep(30)"])
    try:
        with open(tmp_path / "log", "w+b") as output:
            renode._wait_for_pty(process, output, pty, timeout_s=10)
        assert pty.exists() and process.poll() is None
    finally:
        process.kill()
        process.wait()


@pytest.mark.parametrize("help_text, flags", [
    ("  --console  Run the Monitor in the console.\n  --disable-gui  Disable XWT GUI support.", ("--console", "--disable-gui")),
    ("  --disable-xwt  Disable XWT GUI support.\n  --console  ...", ("--console", "--disable-xwt")),
    ("  --disable-xwt  Disable XWT GUI support.", ("--disable-xwt",)),
])
def test_headless_flags_follow_renodes_help(help_text, flags):
    assert renode.headless_flags_from_help(help_text) == flags


def test_headless_needs_one_of_the_flags():
    with pytest.raises(HarnessError, match="cannot run it headless"):
        renode.headless_flags_from_help("usage: renode [options]")


def test_dwt_ticks_are_instructions_only_when_mips_match():
    with pytest.raises(HarnessError, match="performance_in_mips"):
        parse_settings(renode.RenodeSettings, {"dwt_frequency_hz": 480_000_000, "performance_in_mips": 100}, "backend")
    assert parse_settings(renode.RenodeSettings, {"dwt_frequency_hz": 400_000_000, "performance_in_mips": 400},
                          "backend").performance_in_mips == 400


def test_missing_renode_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setattr(renode.shutil, "which", lambda name: None)
    status = renode.RenodeBackend.tool_status()
    assert not status.present and "renode not found" in status.detail and "releases" in status.detail
    elf = tmp_path / "firmware.elf"
    elf.write_bytes(b"\x7fELF")
    with pytest.raises(HarnessError, match="renode not found"):
        with renode.RenodeBackend.open_link(load_board("renode-h743"), elf):
            pass


# ---- probe -----------------------------------------------------------------------------------
def test_missing_pyocd_is_reported(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyocd.core.helpers", None)  # import fails as if not installed
    status = probe.ProbeBackend.tool_status()
    assert not status.present and status.detail.startswith("pyocd not installed") and "pip install 'pyocd>=0.43'" in status.detail


def test_no_probe_attached_is_reported(monkeypatch):
    monkeypatch.setattr(probe, "_list_probes", lambda: [])
    status = probe.ProbeBackend.tool_status()
    assert not status.present and status.detail.startswith("no debug probe found")


def _probe(unique_id):
    return SimpleNamespace(unique_id=unique_id, product_name="STLINK-V3")


def test_a_probe_is_chosen_by_id_prefix_or_as_the_only_one():
    probes = [_probe("003A00123"), _probe("0670FF45")]
    assert probe._choose_probe(probes, "0670", "b").unique_id == "0670FF45"
    assert probe._choose_probe(probes[:1], None, "b").unique_id == "003A00123"
    with pytest.raises(HarnessError, match="2 probes attached .*probe_id"):
        probe._choose_probe(probes, None, "b")
    with pytest.raises(HarnessError, match="no debug probe found"):
        probe._choose_probe([], None, "b")
    with pytest.raises(HarnessError, match="matches 0 attached probes"):
        probe._choose_probe(probes, "FFFF", "b")


def _port(device, vid=None, pid=None, serial_number=None):
    return SimpleNamespace(device=device, vid=vid, pid=pid, serial_number=serial_number, description="")


def test_the_serial_port_is_found_by_the_st_link_usb_id(monkeypatch):
    from serial.tools import list_ports

    ports = [_port("/dev/ttyS0"), _port("/dev/ttyACM0", 0x0483, 0x374B, "066AFF"),
             _port("/dev/ttyACM1", 0x0483, 0x374E, "003A00")]
    monkeypatch.setattr(list_ports, "comports", lambda: ports)
    assert probe.find_serial_port(probe.ST_LINK_USB_IDS, "003a00") == "/dev/ttyACM1"
    with pytest.raises(HarnessError, match="2 ST-LINK serial ports .*--port"):
        probe.find_serial_port(probe.ST_LINK_USB_IDS, None)
    monkeypatch.setattr(list_ports, "comports", lambda: ports[:2])
    assert probe.find_serial_port(probe.ST_LINK_USB_IDS, None) == "/dev/ttyACM0"
    monkeypatch.setattr(list_ports, "comports", lambda: ports[:1])
    with pytest.raises(HarnessError, match="no ST-LINK virtual COM port found.*--port"):
        probe.find_serial_port(probe.ST_LINK_USB_IDS, None)


def test_bad_connect_mode_names_the_field():
    with pytest.raises(HarnessError, match="connect_modes"):
        parse_settings(probe.ProbeSettings, {"target": "stm32h743xx", "connect_modes": ["hold"]}, "backend")


def test_port_option_goes_to_the_probe_settings():
    assert load_board("nucleo-h743").with_serial_port("/dev/ttyACM3").backend_settings.port == "/dev/ttyACM3"
    with pytest.raises(HarnessError, match="no serial port to choose"):
        load_board("qemu-m7").with_serial_port("/dev/ttyACM3")


def _require_no_probe():
    if get_backend("probe").tool_status().present:
        pytest.skip("a debug probe is attached: this test is about its absence")


def test_measure_without_a_probe_fails_in_one_line(capsys):
    _require_no_probe()
    code = main(["measure", str(POLICIES_DIR / "digits-mixed.json"), "--board", "nucleo-h743", "--port", "/dev/ttyACM0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0
    assert len(err) == 1 and err[0].startswith("error: board nucleo-h743: no debug probe found"), err


def test_doctor_reports_tools_probes_and_ports(capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    for expected in ("firmware toolchain", "qemu backend", "renode backend", "probe backend", "serial ports"):
        assert expected in out


@pytest.mark.parametrize("board, reason", [("nucleo-h743", "no debug probe found"), ("renode-h743", "renode not found")])
def test_device_suites_skip_with_the_reason_without_the_tools(board, reason):
    if get_backend(load_board(board).backend).tool_status().present:
        pytest.skip(f"{board}'s tools are installed here: its device tests would run for real")
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "--board", board,
                             *DEVICE_TESTS], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:]
    summary = result.stdout.strip().splitlines()[-1]
    assert "skipped" in summary and "passed" not in summary and "failed" not in summary, summary
    skips = [line for line in result.stdout.splitlines() if line.startswith("SKIPPED")]
    assert skips and all(f"board {board}: {reason}" in line for line in skips), skips


class _FakeSession:
    """A pyocd session whose open() fails in the connect modes given."""

    def __init__(self, mode, failing, log):
        self.mode, self.failing, self.log = mode, failing, log

    def open(self):
        self.log.append(("open", self.mode))
        if self.mode in self.failing:
            raise RuntimeError(f"{self.mode}: no ACK")

    def close(self):
        self.log.append(("close", self.mode))


def _fake_pyocd(monkeypatch, failing):
    log = []

    class ConnectHelper:
        @staticmethod
        def session_with_chosen_probe(**options):
            assert options["target_override"] == "stm32h743xx" and options["unique_id"] == "066AFF"
            return _FakeSession(options["options"]["connect_mode"], failing, log)

    monkeypatch.setattr(probe, "_pyocd", lambda: (ConnectHelper, None))
    return log


def test_connect_falls_back_through_the_modes(monkeypatch):
    log = _fake_pyocd(monkeypatch, failing={"halt"})
    with probe._session("066AFF", load_board("nucleo-h743").backend_settings) as session:
        assert session.mode == "under-reset"
    assert log == [("open", "halt"), ("close", "halt"), ("open", "under-reset"), ("close", "under-reset")]


def test_no_connect_mode_working_is_one_error_naming_each(monkeypatch):
    _fake_pyocd(monkeypatch, failing=set(probe.CONNECT_MODES))
    with pytest.raises(HarnessError, match="cannot connect to stm32h743xx .*halt: .*attach: "):
        with probe._session("066AFF", load_board("nucleo-h743").backend_settings):
            pass


def test_a_failed_step_is_retried_once():
    attempts = []

    def flaky():
        attempts.append(1)
        if len(attempts) == 1:
            raise HarnessError("USB hiccup")

    probe._retry_once(flaky, "flashing")
    assert len(attempts) == 2
    with pytest.raises(HarnessError, match="flashing failed twice: still broken"):
        probe._retry_once(lambda: (_ for _ in ()).throw(HarnessError("still broken")), "flashing")


def test_a_stuck_probe_call_times_out():
    import threading

    release = threading.Event()
    with pytest.raises(HarnessError, match="flashing timed out after 0.1 s"):
        probe._with_timeout(lambda: release.wait(5), 0.1, "flashing")
    release.set()
