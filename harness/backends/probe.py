"""Probe backend: flash a real board through its debug probe with pyocd, talk over its serial port.

pyocd's Python API with its builtin target (`stm32h743xx`: no CMSIS pack to download):
choose the probe by unique id (board file `probe_id`), or take the only one attached; connect
trying each of the board's connect modes in turn; flash the ELF (FileProgrammer) with a
timeout and one retry; then open the serial port, reset the target and wait for the
firmware's hello frame. The port is the ST-LINK's virtual COM port, found by its USB id
(0483:374B/374E/374F/3753, the one whose serial number is the probe's id when several are
attached) or given by the board file's `port` / `harness measure --port`.

pyocd is imported only when used, so the rest of the harness works without it; tool_status()
says when it is missing or when no probe is attached.
"""
from __future__ import annotations

import importlib.metadata
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from harness.backends import Backend, Link, ToolStatus, register_backend
from harness.errors import HarnessError

if TYPE_CHECKING:
    from harness.boards import Board

PYOCD_INSTALL = "install it with: pip install pyocd (or pip install -e '.[test]' in this repository)"
NO_PROBE = ("no debug probe found (pyocd sees none): connect the board's ST-LINK USB port; on Linux "
            "install pyocd's udev rules (README, 'Running on a Nucleo-H743ZI')")
# ST-LINK/V2-1, V3 (E, loader), V3 (STLINK-V3SET), V3 MINI/-PWR: the Nucleo-144 boards use V2-1 or V3
ST_LINK_USB_IDS = ("0483:374b", "0483:374e", "0483:374f", "0483:3753")
CONNECT_MODES = ("halt", "pre-reset", "under-reset", "attach")
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
    connect_timeout_s: float = 15.0      # per connect attempt
    flash_timeout_s: float = 60.0        # per flash attempt (one retry)
    hello_timeout_s: float = 5.0         # from reset to the firmware's hello frame

    def __post_init__(self) -> None:
        unknown = [mode for mode in self.connect_modes if mode not in CONNECT_MODES]
        if not self.connect_modes or unknown:
            raise ValueError(f"connect_modes must be a non-empty list of {', '.join(CONNECT_MODES)}")
        for name in ("baud", "connect_timeout_s", "flash_timeout_s", "hello_timeout_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for usb_id in self.usb_ids:
            _parse_usb_id(usb_id)


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
        _retry_once(lambda: _flash(probe.unique_id, elf_path, settings), "flashing")
        _retry_once(lambda: _reset_and_wait_hello(probe.unique_id, port, settings), "reset")
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
        raise HarnessError(f"board {board_name}: {len(probes)} probes attached ({ids}); set backend.probe_id in its board file")
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


@contextmanager
def _session(probe_id: str, settings: ProbeSettings) -> Iterator[Any]:
    """An open pyocd session, trying each connect mode (each within connect_timeout_s)."""
    connect_helper, _ = _pyocd()
    problems = []
    for mode in settings.connect_modes:
        try:
            session = connect_helper.session_with_chosen_probe(
                blocking=False, unique_id=probe_id, target_override=settings.target, auto_open=False,
                options={"connect_mode": mode})
        except Exception as error:  # pyocd raises many types (USB, target, option errors)
            raise HarnessError(f"pyocd cannot open probe {probe_id}: {error}") from None
        if session is None:
            raise HarnessError(f"probe {probe_id} is gone")
        try:
            _with_timeout(session.open, settings.connect_timeout_s, f"connecting ({mode})")
        except HarnessError as error:  # try the next mode
            problems.append(f"{mode}: {error}")
            _close_quietly(session)
            continue
        try:
            yield session
        finally:
            _close_quietly(session)
        return
    raise HarnessError(f"cannot connect to {settings.target} through probe {probe_id}: " + "; ".join(problems))


def _flash(probe_id: str, elf_path: Path, settings: ProbeSettings) -> None:
    """Program the ELF and leave the target halted (it starts with the reset that follows)."""
    _, file_programmer = _pyocd()
    with _session(probe_id, settings) as session:
        def program() -> None:
            file_programmer(session, no_reset=True).program(str(elf_path), file_format="elf")
            session.target.reset_and_halt()
        _with_timeout(program, settings.flash_timeout_s, f"flashing {elf_path.name}")


def _reset_and_wait_hello(probe_id: str, port: str, settings: ProbeSettings) -> None:
    """Open the serial port first, then reset, so the hello frame the firmware sends at boot is seen."""
    from harness.link.protocol import Device

    with Device.open(port, baudrate=settings.baud, connect_timeout=2.0) as device:
        with _session(probe_id, settings) as session:
            _with_timeout(session.target.reset, settings.connect_timeout_s, "reset")
        device.wait_hello(settings.hello_timeout_s)


def _retry_once(action: Callable[[], None], what: str) -> None:
    try:
        action()
    except HarnessError as first:
        try:
            action()
        except HarnessError as second:
            raise HarnessError(f"{what} failed twice: {second} (first attempt: {first})") from None


def _with_timeout(action: Callable[[], T], timeout_s: float, what: str) -> T:
    """Run `action` in a worker thread; HarnessError if it fails or takes longer than timeout_s.

    A probe call stuck in USB cannot be interrupted: its daemon thread is abandoned."""
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
        raise HarnessError(f"{what} timed out after {timeout_s:g} s")
    if "error" in outcome:
        error = outcome["error"]
        raise error if isinstance(error, HarnessError) else HarnessError(f"{what} failed: {error}")
    return outcome.get("value")


def _close_quietly(session: Any) -> None:
    try:
        session.close()
    except Exception:  # closing a half-open session may fail too: nothing left to do
        pass
