"""Probe backend: flash a real board through its debug probe with pyocd, talk over its serial port.

pyocd's Python API with its builtin target (`stm32h743xx`: no CMSIS pack to download), pyocd
0.43 or newer (0.36 erased H7 flash in 32 kB sectors, 0.37-0.42 could corrupt it while
double-buffering): choose the probe by unique id (board file `probe_id`, or --probe-id), or take
the only one attached; connect trying each of the board's connect modes in turn, at the board's
SWD clock (`swd_frequency_hz`, pyocd's session option `frequency`); read the silicon revision
(DBGMCU_IDC) and refuse a part that cannot run the firmware's core clock; flash the ELF
(FileProgrammer) and read every programmed segment back (CRC-32 against the ELF) within a timeout
that grows with the image, with one retry; then open the serial port, reset the target and wait
for the firmware's hello frame. The port is the ST-LINK's virtual COM port, found by its USB id
(ST_LINK_USB_IDS; the one whose serial number is the probe's id when several are attached) or
given by the board file's `port` / `--port`.

A probe call that does not return in time cannot be interrupted: the session is closed (which
normally makes the stuck USB call fail); if the call still holds the probe, nothing is retried
and the error says that flash may be partially written.

pyocd is imported only when used, so the rest of the harness works without it; tool_status()
says when it is missing or when no probe is attached.
"""
from __future__ import annotations

import importlib.metadata
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from harness.backends import Backend, Link, ToolStatus, register_backend
from harness.errors import HarnessError

if TYPE_CHECKING:
    from harness.boards import Board

PYOCD_INSTALL = "install it with: pip install 'pyocd>=0.43' (or pip install -e '.[test]' in this repository)"
NO_PROBE = ("no debug probe found (pyocd sees none): connect the board's ST-LINK USB port; on Linux "
            "install pyocd's udev rules (README, 'Running on a Nucleo-H743ZI')")
# The ST-LINK virtual COM port's USB ids, as pyocd's probe/stlink/usb.py lists them: V2-1 (374b;
# 3752 without mass storage), V3 (374e; 374f with bridge; 3753 two VCPs, no mass storage; 3754 no
# mass storage; 3755; 3757, also V4). Nucleo-144 boards carry a V2-1 (H743ZI) or a V3E (H743ZI2).
ST_LINK_USB_IDS = ("0483:374b", "0483:3752", "0483:374e", "0483:374f", "0483:3753", "0483:3754",
                   "0483:3755", "0483:3757")
CONNECT_MODES = ("halt", "pre-reset", "under-reset", "attach")
# DBGMCU_IDC of the STM32H742/743/750/753 (RM0433 §60.5.8): DEV_ID in bits 11:0, REV_ID in 31:16.
# Revisions Z and Y run at most 400 MHz (VOS1); X and V reach 480 MHz with overdrive (VOS0).
DBGMCU_IDC = 0x5C001000
H743_DEV_ID = 0x450
H743_MAX_CORE_HZ = {0x1001: ("Z", 400_000_000), 0x1003: ("Y", 400_000_000),
                    0x2001: ("X", 480_000_000), 0x2003: ("V", 480_000_000)}
REV_Y_BOARD = "nucleo-h743-revy"  # the 400 MHz build of the same board
CLOSE_GRACE_S = 5.0  # after a timeout, how long closing the session may take to free the probe
T = TypeVar("T")


@dataclass(frozen=True)
class ProbeSettings:
    """The board file's [backend] table for `name = "probe"`."""

    target: str                          # pyocd builtin target, e.g. "stm32h743xx"
    probe_id: str | None = None          # probe unique id (a prefix is enough); default: the only probe
    port: str | None = None              # serial port; default: found by USB id (see usb_ids)
    baud: int = 115200                   # the firmware's UART rate
    usb_ids: tuple[str, ...] = ST_LINK_USB_IDS  # "vid:pid" of the probe's virtual COM port
    connect_modes: tuple[str, ...] = CONNECT_MODES  # tried in order until one connects
    swd_frequency_hz: int = 4_000_000    # SWD clock (pyocd's default is 1 MHz)
    connect_timeout_s: float = 15.0      # per connect attempt
    flash_timeout_s: float = 30.0        # per flash attempt, plus the image's share below (one retry)
    flash_min_bytes_per_s: int = 16_384  # slowest expected program + verify rate: scales the timeout
    hello_timeout_s: float = 5.0         # from reset to the firmware's hello frame

    def __post_init__(self) -> None:
        unknown = [mode for mode in self.connect_modes if mode not in CONNECT_MODES]
        if not self.connect_modes or unknown:
            raise ValueError(f"connect_modes must be a non-empty list of {', '.join(CONNECT_MODES)}")
        for name in ("baud", "swd_frequency_hz", "connect_timeout_s", "flash_timeout_s",
                     "flash_min_bytes_per_s", "hello_timeout_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for usb_id in self.usb_ids:
            _parse_usb_id(usb_id)

    def flash_timeout_for(self, image_bytes: int) -> float:
        """Seconds one flash attempt (program and verify) of `image_bytes` may take."""
        return self.flash_timeout_s + image_bytes / self.flash_min_bytes_per_s


class ProbeStuck(HarnessError):
    """A probe call timed out and still holds the probe: retrying would meet a busy probe."""


class ProbeLink(Link):
    """A flashed, running board behind its serial port; the backend already consumed its hello."""

    hello_consumed = True

    def failure(self) -> str | None:
        return None  # a board does not exit; a silent one shows up as the protocol's timeout

    def health(self) -> str | None:
        """The probe's serial device must still be there (unplugged: it vanishes)."""
        if self.url.startswith("/dev/") and not Path(self.url).exists():
            return f"serial port {self.url} is gone: the probe was unplugged or reset"
        return None


@register_backend
class ProbeBackend(Backend):
    name = "probe"
    settings_type = ProbeSettings

    @classmethod
    def tool_status(cls) -> ToolStatus:
        try:
            probes = _list_probes()
        except HarnessError as error:
            return ToolStatus(False, str(error))
        if not probes:
            return ToolStatus(False, NO_PROBE)
        ids = ", ".join(f"{probe.unique_id} ({probe.product_name})" for probe in probes)
        return ToolStatus(True, f"pyocd {importlib.metadata.version('pyocd')}; probes: {ids}")

    @classmethod
    @contextmanager
    def open_link(cls, board: Board, elf_path: Path) -> Iterator[ProbeLink]:
        settings: ProbeSettings = board.backend_settings
        probe = _choose_probe(_list_probes(), settings.probe_id, board.name)
        port = settings.port or find_serial_port(settings.usb_ids, probe.unique_id)
        segments = flash_segments(elf_path, board)
        _retry_once(lambda: _flash(probe.unique_id, elf_path, segments, board), "flashing")
        wait_boot = _reset_and_wait_mlperf_ready if speaks_mlperf_tiny(elf_path) else _reset_and_wait_hello
        _retry_once(lambda: wait_boot(probe.unique_id, port, settings), "reset")
        yield ProbeLink(port, f"{board.name} (probe {probe.unique_id}, {port})")


def _pyocd() -> Any:
    """pyocd's ConnectHelper and FileProgrammer; HarnessError with the install hint if missing."""
    try:
        from pyocd.core.helpers import ConnectHelper
        from pyocd.flash.file_programmer import FileProgrammer
    except ImportError:
        raise HarnessError(f"pyocd not installed; {PYOCD_INSTALL}") from None
    return ConnectHelper, FileProgrammer


def _list_probes() -> list:
    connect_helper, _ = _pyocd()
    try:
        return list(connect_helper.get_all_connected_probes(blocking=False, print_wait_message=False))
    except Exception as error:  # a USB stack problem (libusb missing, permissions)
        raise HarnessError(f"pyocd cannot list debug probes: {error}") from None


def _choose_probe(probes: list, probe_id: str | None, board_name: str):
    if probe_id is not None:
        chosen = [probe for probe in probes if probe.unique_id.lower().startswith(probe_id.lower())]
        if len(chosen) == 1:
            return chosen[0]
        found = ", ".join(probe.unique_id for probe in probes) or "none"
        raise HarnessError(f"board {board_name}: probe_id {probe_id!r} matches {len(chosen)} attached probes (attached: {found})")
    if not probes:
        raise HarnessError(f"board {board_name}: {NO_PROBE}")
    if len(probes) > 1:
        ids = ", ".join(probe.unique_id for probe in probes)
        raise HarnessError(f"board {board_name}: {len(probes)} probes attached ({ids}); set backend.probe_id in its board file or give --probe-id")
    return probes[0]


def find_serial_port(usb_ids: tuple[str, ...], probe_id: str | None = None) -> str:
    """The device of the probe's virtual COM port: among ports with one of `usb_ids`, the one
    whose USB serial number is `probe_id`, else the only one; HarnessError otherwise."""
    from serial.tools import list_ports

    wanted = {_parse_usb_id(usb_id) for usb_id in usb_ids}
    ports = [port for port in list_ports.comports() if (port.vid, port.pid) in wanted]
    same_probe = [port for port in ports if probe_id and (port.serial_number or "").lower() == probe_id.lower()]
    if len(same_probe) == 1:
        return same_probe[0].device
    if len(ports) == 1:
        return ports[0].device
    if not ports:
        raise HarnessError(f"no ST-LINK virtual COM port found (USB ids {', '.join(usb_ids)}); give it with --port")
    raise HarnessError(f"{len(ports)} ST-LINK serial ports ({', '.join(port.device for port in ports)}); choose one with --port")


def _parse_usb_id(usb_id: str) -> tuple[int, int]:
    try:
        vid, pid = usb_id.split(":")
        return int(vid, 16), int(pid, 16)
    except ValueError:
        raise ValueError(f"USB id {usb_id!r} must be 'vid:pid' in hex, e.g. '0483:374b'") from None


def flash_segments(elf_path: Path, board: Board) -> list[tuple[int, bytes]]:
    """(load address, bytes) of every ELF segment FileProgrammer writes into the board's flash."""
    from elftools.elf.elffile import ELFFile

    flash = [region for region in board.memory if region.kind == "flash"]
    with open(elf_path, "rb") as stream:
        segments = [(segment["p_paddr"], segment.data()) for segment in ELFFile(stream).iter_segments()
                    if segment["p_type"] == "PT_LOAD" and segment["p_filesz"] > 0]
    inside = [(address, data) for address, data in segments if any(region.contains(address) for region in flash)]
    if not inside:
        raise HarnessError(f"{elf_path}: no loadable segment lies in {board.name}'s flash")
    return inside


def check_silicon(target: Any, board: Board) -> None:
    """Refuse an STM32H743 whose silicon revision cannot run the firmware's core clock."""
    if not board.backend_settings.target.startswith("stm32h7"):
        return
    idc = target.read32(DBGMCU_IDC)
    dev_id, rev_id = idc & 0xFFF, idc >> 16
    if dev_id != H743_DEV_ID or rev_id not in H743_MAX_CORE_HZ:
        return
    revision, max_hz = H743_MAX_CORE_HZ[rev_id]
    if board.core_clock_hz > max_hz:
        raise HarnessError(
            f"board {board.name}: this STM32H743 is silicon revision {revision} (DBGMCU_IDC REV_ID 0x{rev_id:04x}), "
            f"which runs at most {max_hz // 1_000_000} MHz, but the firmware is built for "
            f"{board.core_clock_hz // 1_000_000} MHz: use --board {REV_Y_BOARD} (the same board at 400 MHz)")


def verify_segments(target: Any, segments: list[tuple[int, bytes]]) -> None:
    """Read every programmed segment back; HarnessError naming the first one whose CRC-32 differs."""
    for address, data in segments:
        actual = zlib.crc32(bytes(target.read_memory_block8(address, len(data))))
        expected = zlib.crc32(data)
        if actual != expected:
            raise HarnessError(f"flash verify failed: {len(data)} bytes at 0x{address:08x} read back with "
                               f"CRC-32 0x{actual:08x}, the ELF has 0x{expected:08x}")


@contextmanager
def _session(probe_id: str, settings: ProbeSettings) -> Iterator[Any]:
    """An open pyocd session, trying each connect mode (each within connect_timeout_s); closed
    on exit (closing is bounded too: a probe stuck in USB must not hang the harness)."""
    connect_helper, _ = _pyocd()
    problems = []
    for mode in settings.connect_modes:
        try:
            session = connect_helper.session_with_chosen_probe(
                blocking=False, unique_id=probe_id, target_override=settings.target, auto_open=False,
                options={"connect_mode": mode, "frequency": settings.swd_frequency_hz})
        except Exception as error:  # pyocd raises many types (USB, target, option errors)
            raise HarnessError(f"pyocd cannot open probe {probe_id}: {error}") from None
        if session is None:
            raise HarnessError(f"probe {probe_id} is gone")
        try:
            _with_timeout(session.open, settings.connect_timeout_s, f"connecting ({mode})", session)
        except ProbeStuck:
            raise
        except HarnessError as error:  # try the next mode
            problems.append(f"{mode}: {error}")
            _close_bounded(session)
            continue
        try:
            yield session
        finally:
            _close_bounded(session)
        return
    raise HarnessError(f"cannot connect to {settings.target} through probe {probe_id}: " + "; ".join(problems))


def _flash(probe_id: str, elf_path: Path, segments: list[tuple[int, bytes]], board: Board) -> None:
    """Check the silicon, program the ELF, verify it and leave the target halted (it starts with
    the reset that follows)."""
    settings: ProbeSettings = board.backend_settings
    _, file_programmer = _pyocd()
    image_bytes = sum(len(data) for _, data in segments)
    with _session(probe_id, settings) as session:
        def program() -> None:
            check_silicon(session.target, board)
            file_programmer(session, no_reset=True).program(str(elf_path), file_format="elf")
            verify_segments(session.target, segments)
            session.target.reset_and_halt()
        _with_timeout(program, settings.flash_timeout_for(image_bytes), f"flashing {elf_path.name}", session)


def _reset_and_wait_hello(probe_id: str, port: str, settings: ProbeSettings) -> None:
    """Open the serial port first, then reset, so the hello frame the firmware sends at boot is seen."""
    from harness.link.protocol import Device

    with Device.open(port, baudrate=settings.baud, connect_timeout=2.0) as device:
        with _session(probe_id, settings) as session:
            _with_timeout(session.target.reset, settings.connect_timeout_s, "reset", session)
        device.wait_hello(settings.hello_timeout_s)


def speaks_mlperf_tiny(elf_path: Path) -> bool:
    """Whether the image was built with the MLPerf Tiny front end (make PROTOCOL=mlperf-tiny),
    which boots with the text line m-ready instead of a hello frame."""
    from elftools.elf.elffile import ELFFile

    with open(elf_path, "rb") as stream:
        symbols = ELFFile(stream).get_section_by_name(".symtab")
        return symbols is not None and bool(symbols.get_symbol_by_name("mlperf_dut_push"))


def _reset_and_wait_mlperf_ready(probe_id: str, port: str, settings: ProbeSettings) -> None:
    """Open the serial port, reset, and wait for the MLPerf Tiny banner's m-ready line."""
    import serial

    try:
        with serial.Serial(port, settings.baud, timeout=0.1) as link:
            with _session(probe_id, settings) as session:
                _with_timeout(session.target.reset, settings.connect_timeout_s, "reset", session)
            seen, deadline = b"", time.monotonic() + settings.hello_timeout_s
            while b"m-ready\r\n" not in seen:
                if time.monotonic() > deadline:
                    raise HarnessError(f"no m-ready from the MLPerf Tiny firmware on {port} within "
                                       f"{settings.hello_timeout_s:g} s after reset (got {seen[-80:]!r})")
                seen += link.read(256)
    except serial.SerialException as error:
        raise HarnessError(f"cannot open {port}: {error}") from None


def _retry_once(action: Callable[[], None], what: str) -> None:
    """Run `action`, once more if it fails; never again after ProbeStuck (the probe is held) or
    a hello reporting a boot problem (a reset does not mend a clock)."""
    from harness.link.protocol import BootProblem

    try:
        action()
    except (ProbeStuck, BootProblem):
        raise
    except HarnessError as first:
        try:
            action()
        except HarnessError as second:
            raise HarnessError(f"{what} failed twice: {second} (first attempt: {first})") from None


def _with_timeout(action: Callable[[], T], timeout_s: float, what: str, session: Any = None) -> T:
    """Run `action` in a worker thread; HarnessError if it fails or takes longer than timeout_s.

    On a timeout the session is closed, which frees the probe when the stuck call then fails;
    ProbeStuck when the call still runs after that (a daemon thread that cannot be interrupted)."""
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["value"] = action()
        except Exception as error:  # reported in the caller's thread
            outcome["error"] = error

    worker = threading.Thread(target=work, name=f"pyocd {what}", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        if session is not None:
            _close_bounded(session)
            worker.join(CLOSE_GRACE_S)
        if worker.is_alive():
            raise ProbeStuck(f"{what} timed out after {timeout_s:g} s and the probe is still busy: flash may be "
                             "partially written; unplug the board's USB cable, plug it in and run again")
        raise HarnessError(f"{what} timed out after {timeout_s:g} s (session closed)")
    if "error" in outcome:
        error = outcome["error"]
        raise error if isinstance(error, HarnessError) else HarnessError(f"{what} failed: {error}")
    return outcome.get("value")


def _close_bounded(session: Any) -> None:
    """Close the session, waiting at most CLOSE_GRACE_S (a close stuck in USB is left behind)."""
    def close() -> None:
        try:
            session.close()
        except Exception:  # closing a half-open session may fail too: nothing left to do
            pass

    closer = threading.Thread(target=close, name="pyocd close", daemon=True)
    closer.start()
    closer.join(CLOSE_GRACE_S)
