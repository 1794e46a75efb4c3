"""Renode backend: run the ELF on Renode's STM32H7 model, headless, its USART3 on a pseudo-terminal.

The generated .resc builds the machine from `platforms/boards/nucleo_h753zi.repl` (the H743's
memory map and peripherals), adds a DWT at 0xE0001000 with the core frequency, sets the core's
PerformanceInMips to the same number of millions (Renode's DWT counts virtual time at its
frequency, and virtual time advances by PerformanceInMips million instructions a second, so
one tick is one executed instruction: docs/protocol.md kind 2, said by the board file), tags
PWR_CSR1 as 0x2000 (ACTVOSRDY: Renode 1.15/1.16 model PWR only as a tag reading 0, so the
BSP's supply wait would spin a million logged reads; Renode's own nucleo_h753zi_hubris.resc
does the same; harmless elsewhere: SystemBus consults a tag only for an access no peripheral
handles, so a Renode that models PWR ignores it, and the 4 bytes lie inside one piece of the
platform's "PWR" tag, between its start and its "D3CR" subtag, as a subtag must), connects `sysbus.usart3` to `emulation CreateUartPtyTerminal`, loads the ELF and
starts. The script is kept beside the ELF (`<board>.resc`) for the user to read or run.

Why a pseudo-terminal and not `CreateServerSocketTerminal`: Renode's server socket binds every
interface (SocketServerProvider uses IPAddress.Any and has no address option, up to Renode's
current source), so anyone on the network could drive the UART; a pty is reachable from this
host only. It also needs no probe connection: the backend waits for the pty's link file, while
Renode keeps the pty's other end open, so the hello frame the firmware sends at boot waits in the
pty for the session. The link is the pty's path (a pyserial URL). Renode offers ptys on Linux
and macOS only; on Windows the backend refuses with one line.

Renode runs headless: `--console --disable-gui` (recent releases) or `--disable-xwt` (older
ones), whichever its `--help` lists. It must be at least RENODE_MIN_VERSION (`renode --version`;
tools/ci-renode.sh pins the same release). It is stopped with `quit` on its monitor (stdin),
then SIGTERM/SIGKILL of its process group if it does not exit in time.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import IO, TYPE_CHECKING

from harness.backends import Backend, Link, ToolStatus, register_backend
from harness.errors import HarnessError
from harness.processes import start_in_group, stop_group, stopped_reason, version_line

if TYPE_CHECKING:
    from harness.boards import Board

RENODE = "renode"
INSTALL_HINT = ("install the renode package from https://github.com/renode/renode/releases "
                "(renode_<version>_amd64.deb with apt, or the portable linux tarball) and put `renode` on PATH")
# The oldest Renode this backend is written against; tools/ci-renode.sh pins this release (a test
# checks that they agree and that the README quotes it).
RENODE_MIN_VERSION = "1.15.3"
# PWR_CSR1 (RM0433 §6.8.2) with ACTVOSRDY (bit 13) set, for Renode releases that model PWR as a tag.
PWR_CSR1_TAG = 'sysbus Tag <0x58024804 4> "PWR_CSR1" 0x2000'
_POLL_S = 0.2


@dataclass(frozen=True)
class RenodeSettings:
    """The board file's [backend] table for `name = "renode"`."""

    platform: str = "platforms/boards/nucleo_h753zi.repl"  # relative to Renode's installation
    dwt_frequency_hz: int = 480_000_000  # the DWT peripheral's core frequency
    performance_in_mips: int = 480       # virtual instructions per second of the core, in millions
    uart: str = "sysbus.usart3"          # the UART the serial link connects to
    start_timeout_s: float = 60.0        # until the UART's pseudo-terminal exists
    stop_timeout_s: float = 5.0          # after `quit`, before the process group is killed
    extra_commands: tuple[str, ...] = ()  # monitor commands run before `start`

    def __post_init__(self) -> None:
        for name in ("dwt_frequency_hz", "performance_in_mips", "start_timeout_s", "stop_timeout_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        # Renode's DWT counts virtual time at its frequency, and virtual time advances one second
        # per performance_in_mips million instructions: a tick is one instruction only when they match
        if self.dwt_frequency_hz != self.performance_in_mips * 1_000_000:
            raise ValueError(f"dwt_frequency_hz ({self.dwt_frequency_hz}) must equal performance_in_mips * 1e6 "
                             f"({self.performance_in_mips * 1_000_000}) so that a DWT tick is one instruction")


class RenodeLink(Link):
    """A running Renode; `failure()` reports its exit and the end of its output."""

    def __init__(self, url: str, description: str, process: subprocess.Popen, output: IO[bytes]) -> None:
        super().__init__(url, description)
        self.process = process
        self._output = output

    def failure(self) -> str | None:
        code = self.process.poll()
        if code is None:
            return None
        return f"Renode exited with code {code}" + (f": {_tail(self._output)}" if _tail(self._output) else "")

    def health(self) -> str | None:
        stopped = stopped_reason(self.process.pid)
        return self.failure() or (f"Renode (pid {self.process.pid}) {stopped}" if stopped else None)


@register_backend
class RenodeBackend(Backend):
    name = "renode"
    settings_type = RenodeSettings

    @classmethod
    def tool_status(cls) -> ToolStatus:
        path = shutil.which(RENODE)
        if path is None:
            return ToolStatus(False, f"{RENODE} not found; {INSTALL_HINT}")
        version = _version(path)
        if version is None:
            return ToolStatus(False, f"{path} --version does not run (Renode older than 1.15 has no --version); {INSTALL_HINT}")
        problem = version_problem(version)
        if problem is not None:
            return ToolStatus(False, f"{path}: {problem}; {INSTALL_HINT}")
        return ToolStatus(True, version)

    @classmethod
    @contextmanager
    def open_link(cls, board: Board, elf_path: Path) -> Iterator[RenodeLink]:
        settings: RenodeSettings = board.backend_settings
        if sys.platform == "win32":
            raise HarnessError(f"board {board.name}: Renode's UART pseudo-terminal needs Linux or macOS (its socket "
                               "terminal would listen on every network interface)")
        status = cls.tool_status()
        if not status.present:
            raise HarnessError(f"board {board.name}: {status.detail}")
        executable = shutil.which(RENODE)
        with tempfile.TemporaryDirectory(prefix="mpq-renode-") as scratch, \
                tempfile.TemporaryFile() as output:
            pty = Path(scratch) / "uart"
            script = elf_path.parent / f"{board.name}.resc"
            _write_atomically(script, resc_script(board.name, settings, elf_path.resolve(), pty))
            command = [executable, *headless_flags(executable), str(script)]
            process = start_in_group(command, stdin=subprocess.PIPE, stdout=output, stderr=subprocess.STDOUT)
            try:
                _wait_for_pty(process, output, pty, settings.start_timeout_s)
                yield RenodeLink(str(pty), f"Renode ({board.name}, {pty}, script {script})", process, output)
            finally:
                _quit(process, settings.stop_timeout_s)


def resc_script(machine: str, settings: RenodeSettings, elf_path: Path, pty: Path) -> str:
    """The Renode script that builds the machine, wires the UART to a pseudo-terminal and starts."""
    dwt = f"dwt: Miscellaneous.DWT @ sysbus 0xE0001000 {{ frequency: {settings.dwt_frequency_hz} }}"
    lines = [
        f"# written by mpq-harness for board {machine}; the UART pty path is the one of the run that wrote it",
        f'mach create "{machine}"',
        f"machine LoadPlatformDescription @{settings.platform}",
        f'machine LoadPlatformDescriptionFromString "{dwt}"',
        f"sysbus.cpu PerformanceInMips {settings.performance_in_mips}",
        PWR_CSR1_TAG,
        f'emulation CreateUartPtyTerminal "uart" "{pty}"',
        f"connector Connect {settings.uart} uart",
        f"sysbus LoadELF @{elf_path}",
        *settings.extra_commands,
        "start",
    ]
    return "\n".join(lines) + "\n"


def version_problem(version_text: str) -> str | None:
    """Why this `renode --version` line is too old (or unreadable), or None when it is new enough."""
    found = re.search(r"(\d+)\.(\d+)\.(\d+)", version_text)
    if found is None:
        return f"cannot read a version in {version_text!r}"
    floor = tuple(int(part) for part in RENODE_MIN_VERSION.split("."))
    if tuple(int(part) for part in found.groups()) < floor:
        return f"Renode {'.'.join(found.groups())} is older than {RENODE_MIN_VERSION}, the oldest this harness supports"
    return None


@cache
def headless_flags(executable: str) -> tuple[str, ...]:
    """The options that run this Renode without a window: newer and older spellings."""
    try:
        result = subprocess.run([executable, "--help"], capture_output=True, text=True, timeout=60)
        help_text = result.stdout + result.stderr
    except (OSError, subprocess.TimeoutExpired) as error:
        raise HarnessError(f"{executable} --help failed: {error}") from None
    return headless_flags_from_help(help_text)


def headless_flags_from_help(help_text: str) -> tuple[str, ...]:
    """`--console --disable-gui` when listed, else `--console --disable-xwt` (or without --console)."""
    console = ("--console",) if "--console" in help_text else ()
    if "--disable-gui" in help_text:
        return (*console, "--disable-gui")
    if "--disable-xwt" in help_text:
        return (*console, "--disable-xwt")
    raise HarnessError("this renode lists neither --disable-gui nor --disable-xwt in --help: cannot run it headless")


def _wait_for_pty(process: subprocess.Popen, output: IO[bytes], pty: Path, timeout_s: float) -> None:
    """Return once Renode has made the UART's pseudo-terminal (its link file exists; nothing is
    opened, so nothing the firmware sends is taken); HarnessError if Renode dies or is late."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        code = process.poll()
        if code is not None:
            raise HarnessError(f"Renode exited with code {code} before its UART pseudo-terminal appeared: {_tail(output)}")
        if pty.exists():
            return
        time.sleep(_POLL_S)
    raise HarnessError(f"Renode did not create its UART pseudo-terminal within {timeout_s:g} s: {_tail(output)}")


def _write_atomically(path: Path, text: str) -> None:
    """Write `path` whole (another run of the same ELF may be reading its copy)."""
    partial = path.with_name(f".{path.name}.{time.monotonic_ns()}")
    partial.write_text(text)
    partial.replace(path)


def _quit(process: subprocess.Popen, grace_s: float) -> None:
    """`quit` on the monitor, then stop the process group (whatever is left after grace_s)."""
    try:
        process.stdin.write(b"quit\n")
        process.stdin.close()
        process.wait(timeout=grace_s)
    except (OSError, subprocess.TimeoutExpired):
        pass
    stop_group(process, grace_s)


def _tail(output: IO[bytes], limit: int = 300) -> str:
    """The last lines Renode printed, as one line."""
    if output.closed:
        return ""
    output.flush()
    output.seek(0)
    lines = [line.strip() for line in output.read().decode(errors="replace").splitlines() if line.strip()]
    return " | ".join(lines[-3:])[-limit:]


@cache
def _version(executable: str) -> str | None:
    """"Renode v1.15.3..." or None when it does not run (its runtime starts slowly)."""
    return version_line(executable, timeout_s=60.0)
